// The layers of docs/architecture.md, checked on the import lines: core runs anywhere (no vscode,
// no Node built-ins, nothing above it); the engine never imports the extension or vscode; the
// webviews run in a browser sandbox and take only core's code and the type contracts.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../src/engine/paths';

const root = packageRoot();

function sources(dir: string): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)));
}

/** Each import of a file: its specifier, resolved to a repository path when relative, and whether it is type-only. */
function imports(file: string): { spec: string; target: string; typeOnly: boolean }[] {
  const text = readFileSync(path.join(root, file), 'utf8');
  const out = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm)) {
    const spec = m[2]!;
    const target = spec.startsWith('.') ? path.relative(root, path.resolve(path.dirname(path.join(root, file)), spec)) : spec;
    out.push({ spec, target, typeOnly: Boolean(m[1]) });
  }
  return out;
}

test('core imports no vscode, no Node built-in and nothing from the engine, the extension or the webviews', () => {
  const files = sources('src/core');
  assert.ok(files.length > 30);
  for (const file of files) {
    for (const i of imports(file)) {
      assert.ok(i.spec !== 'vscode' && !i.spec.startsWith('node:'), `${file} imports ${i.spec}`);
      assert.ok(!i.spec.startsWith('.') || i.target.startsWith(path.join('src', 'core')), `${file} imports ${i.spec} (outside src/core)`);
    }
  }
});

/**
 * The engine modules the extension host may load: the protocol and its client, and small lookups
 * that read no model (where things are, which models exist, how a report reads). Inference,
 * training and data work run in the engine process, never in the extension host.
 */
const ENGINE_MODULES_FOR_THE_EXTENSION = ['protocol', 'client', 'paths', 'baseModels', 'format'];

test('the engine never imports vscode or the extension; the extension loads only the engine modules it may', () => {
  for (const file of sources('src/engine')) {
    for (const i of imports(file)) {
      assert.ok(i.spec !== 'vscode', `${file} imports vscode`);
      assert.ok(!i.target.startsWith(path.join('src', 'extension')), `${file} imports ${i.spec}`);
    }
  }
  const engine = path.join('src', 'engine');
  for (const file of sources('src/extension')) {
    for (const i of imports(file)) {
      if (!i.target.startsWith(engine + path.sep) || i.typeOnly) continue;
      assert.ok(ENGINE_MODULES_FOR_THE_EXTENSION.includes(path.relative(engine, i.target)), `${file} loads ${i.spec} into the extension host`);
    }
  }
});

test('webviews take core code, their own protocols and type-only contracts, nothing that runs in the engine or the extension', () => {
  for (const file of sources('webview')) {
    for (const i of imports(file)) {
      if (!i.spec.startsWith('.')) continue;
      const inEngineOrExtension = i.target.startsWith(path.join('src', 'engine')) || i.target.startsWith(path.join('src', 'extension'));
      assert.ok(!inEngineOrExtension || i.typeOnly, `${file} imports ${i.spec} (code of the engine or the extension)`);
    }
  }
});
