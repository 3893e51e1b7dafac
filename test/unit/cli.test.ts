// The `pal` command line, run as a user runs it: the built dist/cli.js in a child process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../src/engine/paths';

const cli = path.join(packageRoot(), 'dist', 'cli.js');
const pal = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });

test('pal --help describes the commands and exits 0', () => {
  const r = pal('--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^pal \d+\.\d+\.\d+: PAL Studio's engine on the command line/);
  assert.match(r.stdout, /info {2,}The engine, its devices/);
  // Every command the help lists (from the command table) has its own help, which names it.
  const commands = [...r.stdout.matchAll(/^ {2}([a-z]+) {2,}\S/gm)].map((m) => m[1]!);
  assert.ok(commands.length >= 15, commands.join(' '));
  for (const name of commands) {
    const own = pal(name, '--help');
    assert.equal(own.status, 0, `pal ${name} --help: ${own.stderr}`);
    assert.match(own.stdout, new RegExp(`^Usage: pal ${name}\\b`), name);
    assert.doesNotMatch(own.stdout, /undefined/, name);
  }
  // Names that only exist on every object are not commands.
  assert.equal(pal('toString').status, 2);
});

test('pal with no command prints help to stderr and exits 2; an unknown command exits 2', () => {
  const none = pal();
  assert.equal(none.status, 2);
  assert.equal(none.stdout, '');
  assert.match(none.stderr, /Usage: pal <command>/);
  const bad = pal('trian');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown command "trian"/);
  const badOption = pal('info', '--jsn');
  assert.equal(badOption.status, 2);
  assert.match(badOption.stderr, /unknown option "--jsn" for "pal info"/);
});

test('pal --version prints the version the bundle was built as', () => {
  const r = pal('--version');
  assert.equal(r.status, 0);
  const { version } = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  assert.equal(r.stdout.trim(), version);
});

test('pal info --json --python <missing> reports the engine and why that interpreter cannot train', () => {
  const r = pal('info', '--json', '--python', '/no/such/python3');
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.equal(info.engine.pid > 0, true);
  assert.equal(info.devices[0].kind, 'cpu');
  assert.equal(info.python.found, false);
  assert.deepEqual(info.python.tried, [{ path: '/no/such/python3', source: 'setting', outcome: 'missing', detail: 'No such file.' }]);
  assert.match(info.python.reason, /\/no\/such\/python3 is not usable/);
});

test('pal info prints a readable report of the whole search', () => {
  const r = pal('info');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^PAL Studio engine \d+\.\d+\.\d+ \(protocol 1, pid \d+\)/);
  assert.match(r.stdout, /Devices:\n {2}cpu /);
  assert.match(r.stdout, /Python: {3}(\/\S+ \(Python [\d.]+|not usable)/);
});

test('pal chat answers with the embedded model, and refuses bad numbers and an empty persona before loading it', () => {
  const facts = 'i keep a lighthouse .|my cat is called tern .';
  const ok = pal('chat', '--model', 'pal-default', '--facts', facts, 'do you have pets ?', '--max-new-tokens', '6', '--json');
  assert.equal(ok.status, 0, ok.stderr);
  const reply = JSON.parse(ok.stdout);
  assert.equal(typeof reply.response, 'string');
  assert.equal(reply.selectionSource, 'model');
  assert.equal(reply.selectProbabilities.facts.length, 2);
  // Issue 18.5: every one of these was accepted silently.
  const cases: [string[], RegExp][] = [
    [['--temperature', 'abc'], /--temperature must be a number, not "abc"/],
    [['--temperature', '-1'], /--temperature must be a number, not "-1"/],
    [['--top-k', '-3'], /--top-k must be a whole number, not "-3"/],
    [['--top-p', '1.5'], /--top-p must be above 0 and at most 1/],
    [['--seed', 'xyz'], /--seed must be a whole number, not "xyz"/],
    [['--beams', 'abc'], /--beams must be a whole number, not "abc"/],
    [['--beams', '0'], /--beams must be 1 or more/],
    [['--max-new-tokens', '0'], /--max-new-tokens must be 1 or more/],
    [['--selection', 'gold'], /--selection must be auto, model, retrieval/],
    [['--no-repeat-ngram', '3', '--no-repeat-from', 'facts'], /--no-repeat-from must be one of reply, partner, prompt, not "facts"/],
    [['--no-repeat-from', 'partner'], /--no-repeat-from needs --no-repeat-ngram N/],
    [['--prefer-fact'], /--prefer-fact needs --beams N with N of 2 or more/],
    [['--prefer-fact', '--beams', '1'], /--prefer-fact needs --beams N with N of 2 or more/],
  ];
  for (const [extra, message] of cases) {
    const r = pal('chat', '--model', 'pal-default', '--facts', facts, 'hi', ...extra);
    assert.equal(r.status, 2, `${extra.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  // Issue 18.12: asked for retrieval, the message does not blame the model.
  const retrieval = pal('chat', '--model', 'pal-default', '--facts', facts, 'do you have a cat ?', '--max-new-tokens', '4', '--selection', 'retrieval');
  assert.equal(retrieval.status, 0, retrieval.stderr);
  assert.match(retrieval.stderr, /persona used: .*\(BM25 retrieval, as --selection retrieval asked\)/);
  assert.doesNotMatch(retrieval.stderr, /was not trained on select/);
  const empty = pal('chat', '--model', 'pal-default', '--facts', ' | ', 'hi');
  assert.equal(empty.status, 2);
  assert.match(empty.stderr, /--facts holds no fact: the model needs at least one/);
});
