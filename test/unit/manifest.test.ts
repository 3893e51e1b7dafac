// The extension manifest and the packaged file list: what VS Code and the Marketplace read.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../src/engine/paths';

const root = packageRoot();
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

test('the manifest has what VS Code and vsce require', () => {
  for (const key of ['name', 'displayName', 'description', 'version', 'publisher', 'main', 'icon', 'license']) {
    assert.ok(pkg[key], `package.json has ${key}`);
  }
  assert.match(pkg.engines.vscode, /^\^1\.\d+\.0$/);
  assert.ok(pkg.activationEvents.includes('onStartupFinished'));
  assert.equal(pkg.capabilities.untrustedWorkspaces.supported, 'limited');
  assert.ok(
    pkg.capabilities.untrustedWorkspaces.restrictedConfigurations.includes('palStudio.python.path'),
    'an untrusted workspace cannot pick the interpreter',
  );
});

test('every contributed command is registered by the extension, and every setting is described', () => {
  const dir = path.join(root, 'src', 'extension');
  const source = readdirSync(dir)
    .map((f) => readFileSync(path.join(dir, f), 'utf8'))
    .join('\n');
  for (const c of pkg.contributes.commands) {
    assert.equal(c.category, 'PAL', `${c.command} is under PAL:`);
    assert.ok(source.includes(`'${c.command}'`), `${c.command} is registered in src/extension/`);
  }
  for (const [key, setting] of Object.entries<Record<string, unknown>>(pkg.contributes.configuration.properties)) {
    assert.ok(key.startsWith('palStudio.'), key);
    assert.ok(setting.description || setting.markdownDescription, `${key} has a description`);
    assert.ok('default' in setting, `${key} has a default`);
  }
});

test('the vsix holds only what runs', () => {
  const vsce = path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
  const files = execFileSync(process.execPath, [vsce, 'ls', '--no-dependencies'], { cwd: root, encoding: 'utf8' }).trim().split('\n');
  const allowed = [
    /^package\.json$/,
    /^README\.md$/,
    /^LICENSE$/,
    /^dist\/(extension|engine|cli|transformers)\.js$/,
    /^dist\/webview\/[\w-]+\.(js|css|ttf)$/,
    /^dist\/schemas\/\w+\.schema\.json$/,
    /^dist\/node_modules\/onnxruntime-(node|common)\//,
    /^media\/[\w.-]+$/,
    /^media\/walkthrough\/[\w-]+\.md$/,
    /^samples\/studio\/[\w./-]+$/,
    /^src\/trainer\/pal_trainer\/[\w/]+\.py$/,
    /^src\/trainer\/pal_trainer\/job_contract\.json$/,
    /^models\//,
  ];
  for (const f of files)
    assert.ok(
      allowed.some((re) => re.test(f)),
      `${f} does not belong in the vsix`,
    );
  for (const needed of [
    'package.json',
    'dist/extension.js',
    'dist/engine.js',
    'dist/cli.js',
    'dist/transformers.js',
    'dist/webview/engine-info.js',
    'dist/webview/codicon.ttf',
    'media/icon.png',
    'media/webview.css',
    'src/trainer/pal_trainer/probe.py',
    'src/trainer/pal_trainer/job_contract.json',
    'dist/schemas/persona.schema.json',
    'dist/schemas/palrun.schema.json',
    'samples/studio/sample.palrun.yaml',
    'media/walkthrough/run.md',
  ]) {
    assert.ok(files.includes(needed), `${needed} is in the vsix`);
  }
});
