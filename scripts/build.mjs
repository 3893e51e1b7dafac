// Bundles every part of PAL Studio with esbuild:
//   dist/extension.js  the VS Code extension (vscode is external: the host provides it)
//   dist/engine.js     the engine process the extension starts (JSON-RPC over stdio)
//   dist/cli.js        the `pal` command line
//   dist/webview/*     one bundle per webview, plus the codicon font they share
//   dist-test/*        the unit tests (with --tests)
// Flags: --production (minified, no inline source maps), --tests, --watch.
import * as esbuild from 'esbuild';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const args = new Set(process.argv.slice(2));
const production = args.has('--production');
const watch = args.has('--watch');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

const common = {
  bundle: true,
  logLevel: 'warning',
  sourcemap: production ? 'linked' : 'inline',
  minify: production,
  define: { __PAL_STUDIO_VERSION__: JSON.stringify(pkg.version) },
  absWorkingDir: root,
};
// 'module' first: jsonc-parser's UMD build (its "main") requires its parts dynamically, which a
// bundle cannot follow; its ESM build bundles cleanly.
const nodeOptions = { ...common, platform: 'node', format: 'cjs', target: 'node20', mainFields: ['module', 'main'] };

/** Every webview is a folder under webview/ with a main.ts. */
function webviewEntries() {
  const dir = path.join(root, 'webview');
  return readdirSync(dir)
    .filter((name) => statSync(path.join(dir, name)).isDirectory())
    .filter((name) => statSync(path.join(dir, name, 'main.ts'), { throwIfNoEntry: false }))
    .map((name) => ({ in: `webview/${name}/main.ts`, out: name }));
}

function testEntries() {
  const dir = path.join(root, 'test', 'unit');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => ({ in: `test/unit/${f}`, out: f.replace(/\.ts$/, '') }));
}

// transformers.js is bundled (its Node build), with sharp aliased to a stub (no images here).
// onnxruntime-node loads a native binding (.node and a shared library) and registers its backend
// in onnxruntime-common's registry, so both stay real packages: required from node_modules in the
// repository, and from dist/node_modules in the packaged extension (scripts/package-vsix.mjs).
const runtimeExternals = ['onnxruntime-node', 'onnxruntime-common'];
const noSharp = { alias: { sharp: './src/engine/no-sharp.cjs' } };

const builds = [
  { ...nodeOptions, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js', external: ['vscode'] },
  { ...nodeOptions, ...noSharp, entryPoints: ['src/engine/main.ts'], outfile: 'dist/engine.js', external: runtimeExternals },
  { ...nodeOptions, ...noSharp, entryPoints: ['src/engine/cli.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' }, external: runtimeExternals },
  // transformers.js alone, required on first use (src/engine/transformers.ts): startup stays light.
  { ...nodeOptions, ...noSharp, entryPoints: ['src/engine/transformersEntry.ts'], outfile: 'dist/transformers.js', external: runtimeExternals },
  { ...common, platform: 'browser', format: 'iife', target: 'chrome120', entryPoints: webviewEntries(), outdir: 'dist/webview' },
];
if (args.has('--tests')) {
  rmSync(path.join(root, 'dist-test'), { recursive: true, force: true });
  builds.push({
    ...nodeOptions,
    ...noSharp,
    sourcemap: 'inline',
    minify: false,
    entryPoints: testEntries(),
    outdir: 'dist-test',
    external: ['vscode', ...runtimeExternals],
  });
}

/** The formats' JSON Schemas, from src/core/formats/schemas.ts, for VS Code's validation and completion. */
async function writeSchemas() {
  const out = await esbuild.build({ ...nodeOptions, sourcemap: false, minify: false, entryPoints: ['src/core/formats/schemas.ts'], write: false });
  const mod = { exports: {} };
  new Function('module', 'exports', 'require', out.outputFiles[0].text)(mod, mod.exports, require);
  const dir = path.join(root, 'dist', 'schemas');
  mkdirSync(dir, { recursive: true });
  for (const [name, schema] of Object.entries(mod.exports.SCHEMAS)) {
    writeFileSync(path.join(dir, `${name}.schema.json`), `${JSON.stringify(schema, null, 2)}\n`);
  }
}

function copyAssets() {
  // The codicon font is loaded by the webviews from the extension's own files (no CDN).
  const codicons = path.dirname(require.resolve('@vscode/codicons/dist/codicon.css'));
  mkdirSync(path.join(root, 'dist', 'webview'), { recursive: true });
  for (const f of ['codicon.css', 'codicon.ttf']) cpSync(path.join(codicons, f), path.join(root, 'dist', 'webview', f));
}

if (watch) {
  copyAssets();
  await writeSchemas();
  const contexts = await Promise.all(builds.map((b) => esbuild.context(b)));
  await Promise.all(contexts.map((c) => c.watch()));
  console.log('build: watching for changes');
} else {
  rmSync(path.join(root, 'dist'), { recursive: true, force: true });
  copyAssets();
  const t0 = Date.now();
  await Promise.all([...builds.map((b) => esbuild.build(b)), writeSchemas()]);
  console.log(`build: ${builds.length} bundles in ${Date.now() - t0} ms${production ? ' (production)' : ''}`);
}
