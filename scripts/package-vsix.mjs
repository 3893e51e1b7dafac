// Packages the built extension (run scripts/build.mjs --production first) into out/pal-studio.vsix
// with @vscode/vsce, then prints its size and contents so a stray file is seen at once.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const out = path.join(root, 'out', `${pkg.name}-${pkg.version}.vsix`);
mkdirSync(path.dirname(out), { recursive: true });

const vsce = path.join(path.dirname(require.resolve('@vscode/vsce/package.json')), 'vsce');
// --no-dependencies: the bundles already contain every runtime dependency.
execFileSync(process.execPath, [vsce, 'package', '--no-dependencies', '--allow-missing-repository', '--out', out], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
const listing = execFileSync(process.execPath, [vsce, 'ls', '--no-dependencies'], { cwd: root, encoding: 'utf8' }).trim().split('\n');
const size = statSync(out).size;
console.log(`vsix: ${path.relative(root, out)}, ${(size / 1024).toFixed(1)} KiB, ${listing.length} files`);
for (const f of listing) console.log(`  ${f}`);
