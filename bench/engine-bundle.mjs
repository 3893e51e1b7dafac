// The engine's own TypeScript, bundled for a benchmark to call in-process: `contents` re-exports
// what the bench needs from src/. Written to dist-bench/<name>.js, one folder below the root,
// where paths.ts finds dist/transformers.js; onnxruntime stays the installed native package.
import * as esbuild from 'esbuild';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function loadEngineModules(name, contents) {
  const out = path.join(root, 'dist-bench', `${name}.js`);
  mkdirSync(path.dirname(out), { recursive: true });
  await esbuild.build({
    stdin: { contents, resolveDir: root, loader: 'ts' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: out,
    logLevel: 'warning',
    mainFields: ['module', 'main'],
    external: ['onnxruntime-node', 'onnxruntime-common'],
    alias: { sharp: './src/engine/no-sharp.cjs' },
  });
  return createRequire(import.meta.url)(out);
}
