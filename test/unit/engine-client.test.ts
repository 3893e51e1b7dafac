// The engine client against real engine processes (dist/engine.js, built with the tests).
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, afterEach, test } from 'node:test';
import { EngineClient, EngineStoppedError, type EngineCrash } from '../../src/engine/client';
import { engineEntry } from '../../src/engine/paths';
import { EngineInfoRequest, type EngineSettings } from '../../src/engine/protocol';

const dir = mkdtempSync(path.join(os.tmpdir(), 'pal-client-'));
after(() => rmSync(dir, { recursive: true, force: true }));
// Every engine a test started is stopped, also when the test failed halfway: a live child process
// would keep the test runner waiting forever.
const started: EngineClient[] = [];
afterEach(async () => {
  for (const c of started.splice(0)) await c.stop();
});

function client(settings: EngineSettings = { allowPython: false, logLevel: 'info' }, extra: Partial<ConstructorParameters<typeof EngineClient>[0]> = {}) {
  const c = new EngineClient({ enginePath: engineEntry(), client: { name: 'unit test', version: '0' }, settings: () => settings, ...extra });
  started.push(c);
  const crashes: EngineCrash[] = [];
  const readies: number[] = [];
  const states: string[] = [];
  c.onCrash((x) => crashes.push(x));
  c.onReady(({ pid }) => readies.push(pid));
  c.onDidChangeState(({ state }) => states.push(state));
  return { c, crashes, readies, states };
}

function until<T>(what: string, fn: () => T | undefined, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      const v = fn();
      if (v !== undefined && v !== false) return resolve(v);
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('starts the engine as a child process and gets answers from it', async () => {
  const { c, readies } = client();
  await c.start();
  const info = await c.request(EngineInfoRequest, {});
  assert.equal(info.engine.pid, c.pid);
  assert.notEqual(info.engine.pid, process.pid);
  assert.equal(info.engine.ppid, process.pid, 'the engine is our child');
  assert.deepEqual(readies, [info.engine.pid]);
  await c.stop();
});

test('a killed engine is restarted, says so in plain words, and answers again', async () => {
  const { c, crashes, readies } = client();
  await c.start();
  const first = c.pid!;
  process.kill(first, 'SIGKILL');
  await until('a restart', () => (readies.length === 2 ? true : undefined));
  assert.equal(crashes.length, 1);
  assert.equal(crashes[0]!.signal, 'SIGKILL');
  assert.equal(crashes[0]!.willRestart, true);
  assert.match(crashes[0]!.message, /stopped unexpectedly \(it was killed by SIGKILL\) and was restarted/);
  const info = await c.request(EngineInfoRequest, {});
  assert.notEqual(info.engine.pid, first);
  assert.equal(info.engine.pid, readies[1]);
  await c.stop();
});

test('a request in flight when the engine dies fails with an error that says so', async () => {
  // An interpreter that takes its time, so that engine/info is still being answered when we kill it.
  const slow = path.join(dir, 'slow-python');
  writeFileSync(slow, '#!/bin/sh\nexec sleep 20\n');
  chmodSync(slow, 0o755);
  const { c, readies } = client({ allowPython: true, logLevel: 'info', pythonPath: slow });
  await c.start();
  const pending = c.request(EngineInfoRequest, {});
  await new Promise((r) => setTimeout(r, 300));
  process.kill(c.pid!, 'SIGKILL');
  await assert.rejects(pending, (err: Error) => err instanceof EngineStoppedError && /stopped before answering engine\/info/.test(err.message));
  await until('a restart', () => (readies.length === 2 ? true : undefined));
  await c.stop();
});

test('an engine that keeps crashing is given up on after maxCrashes, and requests say why', async () => {
  const crasher = path.join(dir, 'crash.js');
  writeFileSync(crasher, 'process.exit(3);\n');
  const { c, crashes, states } = client(undefined, { enginePath: crasher, maxCrashes: 3, crashWindowMs: 60_000 });
  await c.start().catch(() => undefined);
  await until('giving up', () => (c.currentState === 'failed' ? true : undefined));
  assert.equal(crashes.length, 3);
  assert.deepEqual(
    crashes.map((x) => x.willRestart),
    [true, true, false],
  );
  assert.equal(crashes[2]!.code, 3);
  assert.match(crashes[2]!.message, /stopped unexpectedly 3 times within 1 minutes \(last time it exited with code 3\), so it was not restarted again/);
  assert.deepEqual(
    states.filter((s) => s !== 'ready'),
    ['starting', 'restarting', 'restarting', 'failed'],
    'the first start, two restarts, then giving up',
  );
  await assert.rejects(c.request(EngineInfoRequest, {}), /kept crashing/);
  // A restart by hand clears the history and tries again.
  await c.restart().catch(() => undefined);
  await until('the fresh crashes', () => (crashes.length >= 4 ? true : undefined));
  await c.stop();
});

test('with automatic restart off, a crash leaves the engine stopped and says how to start it', async () => {
  const { c, crashes } = client(undefined, { autoRestart: () => false });
  await c.start();
  process.kill(c.pid!, 'SIGKILL');
  await until('the crash', () => (crashes.length === 1 ? true : undefined));
  assert.equal(crashes[0]!.willRestart, false);
  assert.match(crashes[0]!.message, /Automatic restart is off; run "PAL: Restart Engine"/);
  assert.equal(c.currentState, 'failed');
});

test('stop shuts the engine down cleanly: no crash is reported and the process is gone', async () => {
  const { c, crashes, states } = client();
  await c.start();
  const pid = c.pid!;
  await c.stop();
  assert.equal(crashes.length, 0);
  assert.equal(states.at(-1), 'stopped');
  await until('the process to be gone', () => (!alive(pid) ? true : undefined), 5000);
  await assert.rejects(c.request(EngineInfoRequest, {}), /not running/);
});
