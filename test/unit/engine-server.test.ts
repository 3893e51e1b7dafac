import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import {
  DidChangeSettingsNotification,
  ENGINE_PROTOCOL_VERSION,
  EngineInfoRequest,
  ExitNotification,
  InitializeRequest,
  LogNotification,
  ShutdownRequest,
  type LogParams,
} from '../../src/engine/protocol';
import { serveEngine } from '../../src/engine/server';

/** An engine served over in-memory streams, and a client connection to it. */
function pair() {
  const toEngine = new PassThrough();
  const toClient = new PassThrough();
  const exits: number[] = [];
  const server = createMessageConnection(new StreamMessageReader(toEngine), new StreamMessageWriter(toClient));
  serveEngine(server, { onExit: (code) => exits.push(code) });
  const client: MessageConnection = createMessageConnection(new StreamMessageReader(toClient), new StreamMessageWriter(toEngine));
  const logs: LogParams[] = [];
  client.onNotification(LogNotification, (p) => {
    logs.push(p);
  });
  client.listen();
  return { client, server, exits, logs, close: () => (client.dispose(), server.dispose()) };
}

const restricted = { allowPython: false, logLevel: 'info' as const };

test('initialize answers the engine version and pid, and logs who it serves', async () => {
  const { client, logs, close } = pair();
  const r = await client.sendRequest(InitializeRequest, {
    protocolVersion: ENGINE_PROTOCOL_VERSION,
    client: { name: 'test', version: '1' },
    settings: restricted,
  });
  assert.equal(r.protocolVersion, ENGINE_PROTOCOL_VERSION);
  assert.equal(r.pid, process.pid);
  assert.match(r.engineVersion, /^\d+\.\d+\.\d+/);
  await new Promise((res) => setImmediate(res));
  assert.ok(logs.some((l) => l.level === 'info' && /serving test, version 1/.test(l.message)));
  close();
});

test('a client speaking another protocol version is refused with a message saying what to do', async () => {
  const { client, close } = pair();
  await assert.rejects(
    client.sendRequest(InitializeRequest, { protocolVersion: ENGINE_PROTOCOL_VERSION + 1, client: { name: 'old', version: '0' }, settings: restricted }),
    /speaks protocol 1 .* reinstall PAL Studio/,
  );
  close();
});

test('engine/info reports the engine, the CPU, and in Restricted Mode starts no Python', async () => {
  const { client, close } = pair();
  await client.sendRequest(InitializeRequest, { protocolVersion: ENGINE_PROTOCOL_VERSION, client: { name: 't', version: '1' }, settings: restricted });
  const info = await client.sendRequest(EngineInfoRequest, {});
  assert.equal(info.engine.pid, process.pid);
  assert.equal(info.engine.ppid, process.ppid);
  assert.equal(info.runtime.node, process.version);
  assert.equal(info.devices[0]?.kind, 'cpu');
  assert.ok(info.devices[0]!.kind === 'cpu' && info.devices[0]!.cores >= 1);
  assert.equal(info.python.found, false);
  assert.deepEqual(info.python.tried, [], 'no interpreter was run');
  assert.match(info.python.reason!, /Restricted Mode/);
  close();
});

test('a changed Python setting is searched again; the report follows the settings', async () => {
  const { client, close } = pair();
  await client.sendRequest(InitializeRequest, { protocolVersion: ENGINE_PROTOCOL_VERSION, client: { name: 't', version: '1' }, settings: restricted });
  assert.match((await client.sendRequest(EngineInfoRequest, {})).python.reason!, /Restricted Mode/);
  await client.sendNotification(DidChangeSettingsNotification, { settings: { allowPython: true, logLevel: 'info', pythonPath: '/definitely/not/python' } });
  const info = await client.sendRequest(EngineInfoRequest, {});
  assert.deepEqual(
    info.python.tried.map((t) => [t.path, t.source, t.outcome]),
    [['/definitely/not/python', 'setting', 'missing']],
  );
  close();
});

test('shutdown then exit ends the engine with code 0; exit without shutdown with 1', async () => {
  const a = pair();
  await a.client.sendRequest(ShutdownRequest);
  await a.client.sendNotification(ExitNotification);
  await new Promise((res) => setTimeout(res, 20));
  assert.equal(a.exits[0], 0);
  a.close();

  const b = pair();
  await b.client.sendNotification(ExitNotification);
  await new Promise((res) => setTimeout(res, 20));
  assert.equal(b.exits[0], 1);
  b.close();
});
