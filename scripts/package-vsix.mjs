// Packages the built extension (run scripts/build.mjs --production first) into out/pal-studio.vsix
// with @vscode/vsce, then prints its size and contents so a stray file is seen at once.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const out = path.join(root, 'out', `${pkg.name}-${pkg.version}.vsix`);
mkdirSync(path.dirname(out), { recursive: true });

// onnxruntime-node (and onnxruntime-common, whose backend registry it shares with transformers.js)
// must stay real packages: they go into dist/node_modules, where the bundles find them, with the
// native binding of this platform only. The vsix is therefore platform-specific (--target).
const target = `${process.platform === 'win32' ? 'win32' : process.platform}-${process.arch}`;
const runtime = path.join(root, 'dist', 'node_modules');
rmSync(runtime, { recursive: true, force: true });
for (const name of ['onnxruntime-common', 'onnxruntime-node']) {
  const from = path.join(root, 'node_modules', name);
  cpSync(from, path.join(runtime, name), {
    recursive: true,
    filter: (src) => {
      const rel = path.relative(from, src).split(path.sep);
      if (rel[0] === 'bin' && rel.length >= 3 && rel[2] !== process.platform) return false;
      if (rel[0] === 'bin' && rel.length >= 4 && rel[3] !== process.arch) return false;
      // The binding needs libonnxruntime.so.1 (its soname); the package also carries an identical
      // copy under the full version number, 21 MB that nothing loads.
      if (/libonnxruntime\.so\.\d+\.\d+\.\d+$/.test(src)) return false;
      return !/\.(map|ts)$/.test(src); // no source maps or type declarations: only what runs
    },
  });
}

const vsce = path.join(path.dirname(require.resolve('@vscode/vsce/package.json')), 'vsce');
// --no-dependencies: the bundles already contain every runtime dependency.
execFileSync(process.execPath, [vsce, 'package', '--no-dependencies', '--allow-missing-repository', '--target', target, '--out', out], {
  cwd: root,
  stdio: ['ignore', 'ignore', 'inherit'],
});
const listing = execFileSync(process.execPath, [vsce, 'ls', '--no-dependencies'], { cwd: root, encoding: 'utf8' }).trim().split('\n');
const size = statSync(out).size;
console.log(`vsix: ${path.relative(root, out)} (${target}), ${(size / 1024 / 1024).toFixed(1)} MiB, ${listing.length} files`);
for (const f of listing.filter((f) => !f.startsWith('dist/node_modules/'))) console.log(`  ${f}`);
console.log(
  `  dist/node_modules/: ${listing.filter((f) => f.startsWith('dist/node_modules/')).length} files (onnxruntime-node for ${target}, onnxruntime-common)`,
);
