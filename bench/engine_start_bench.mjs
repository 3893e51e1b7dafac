// Engine start to ready: the time from spawning the engine process (dist/engine.js) to its answer
// to engine/initialize, through the extension's own EngineClient, and then to its first
// engine/info (which searches for Python in the engine, not on the extension's path). The peer is
// a bare `node -e 0`: the floor any Node child process pays. Prints one JSON object.
//
// usage: node bench/engine_start_bench.mjs [--runs N]
import * as esbuild from 'esbuild';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 7;

const bundle = await esbuild.build({
  stdin: {
    contents: "export { EngineClient } from './src/engine/client'; export { EngineInfoRequest } from './src/engine/protocol';",
    resolveDir: root,
    loader: 'ts',
  },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  write: false,
  logLevel: 'warning',
  mainFields: ['module', 'main'],
});
const mod = { exports: {} };
new Function('module', 'exports', 'require', bundle.outputFiles[0].text)(mod, mod.exports, createRequire(import.meta.url));
const { EngineClient, EngineInfoRequest } = mod.exports;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ready = [];
const info = [];
const bare = [];
for (let i = 0; i < RUNS; i++) {
  let t0 = performance.now();
  execFileSync(process.execPath, ['-e', '0']);
  bare.push(performance.now() - t0);

  const client = new EngineClient({
    enginePath: path.join(root, 'dist', 'engine.js'),
    client: { name: 'engine start bench', version: '0' },
    settings: () => ({ allowPython: true, logLevel: 'error' }),
    autoRestart: () => false,
  });
  t0 = performance.now();
  await client.start();
  ready.push(performance.now() - t0);
  t0 = performance.now();
  await client.request(EngineInfoRequest, {});
  info.push(performance.now() - t0);
  await client.stop();
}
console.log(
  JSON.stringify({
    runs: RUNS,
    ready_ms_median: median(ready),
    ready_ms_max: Math.max(...ready),
    bare_node_ms_median: median(bare),
    first_info_ms_median: median(info),
  }),
);
