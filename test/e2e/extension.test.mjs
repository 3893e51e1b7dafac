// PAL Studio in a real VS Code: the packaged vsix installed into code-server, driven through
// headless Chromium like a person would, with what happens inside the extension host read from
// the extension's test report (PAL_STUDIO_TEST_REPORT). See ../../../shared/docs/real-vscode-tests.md.
//
// Failed scenarios leave a screenshot, the page console, code-server's log and the extension's
// output channel under .test-results/e2e/<scenario>/. Passing ones keep their screenshots too, so
// that a person can look at what the view really rendered.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { createProfile, findCodeServer, findVsix, installExtension, repoRoot, sleep, startCodeServer } from '../../scripts/code-server.mjs';

const resultsDir = path.join(repoRoot, '.test-results', 'e2e');
const chromiumPath = process.env.PAL_CHROMIUM || '/usr/bin/chromium';

let tmp, profile, server, browser, page, reportFile, workspace;
// One warning (chosen equals rejected) and one error (no rejected response), for the Problems panel.
const BROKEN_PAIRS = '{"prompt": "hi", "chosen": "same .", "rejected": "same ."}\n{"prompt": "hi", "chosen": "a"}\n';
const consoleLines = [];

function events(kind) {
  if (!existsSync(reportFile)) return [];
  return readFileSync(reportFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((e) => kind === undefined || e.event === kind);
}

async function waitFor(what, fn, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(200);
  }
}

function findFiles(dir, match, found = []) {
  if (!existsSync(dir)) return found;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) findFiles(p, match, found);
    else if (match(p)) found.push(p);
  }
  return found;
}

function outputChannelLog() {
  // A log output channel is written to logs/<time>/exthost1/<extension id>/<channel name>.log.
  const files = findFiles(path.join(profile.userDataDir, 'logs'), (p) => path.basename(p) === 'PAL Studio.log');
  return files.map((f) => readFileSync(f, 'utf8')).join('\n');
}

async function saveArtifacts(name, failed) {
  const dir = path.join(resultsDir, name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase());
  mkdirSync(dir, { recursive: true });
  await page?.screenshot({ path: path.join(dir, 'screenshot.png') }).catch(() => undefined);
  if (!failed) return;
  writeFileSync(path.join(dir, 'console.log'), consoleLines.join('\n'));
  writeFileSync(path.join(dir, 'output-channel.log'), outputChannelLog());
  if (existsSync(reportFile)) cpSync(reportFile, path.join(dir, 'test-report.jsonl'));
  const serverLog = path.join(profile.dir, 'code-server.log');
  if (existsSync(serverLog)) cpSync(serverLog, path.join(dir, 'code-server.log'));
  console.error(`e2e: artifacts of the failed scenario "${name}" are in ${dir}`);
}

/** A test whose failure leaves artifacts behind; every scenario keeps a screenshot. */
function scenario(name, fn) {
  test(name, async () => {
    try {
      await fn();
      await saveArtifacts(name, false);
    } catch (err) {
      await saveArtifacts(name, true);
      throw err;
    }
  });
}

/**
 * A tiny base model in the workspace (word-level tokenizer over the sample's words, a random
 * 2-layer Llama) and a run config that trains it for a moment: what the palette's alignment run
 * needs, built by the trainer's own test helper.
 */
function buildTinyBaseModel(ws) {
  const python = process.env.PAL_PYTHON || '/usr/bin/python3';
  const texts = [];
  for (const dir of ['data', 'personas', 'pairs']) {
    for (const f of readdirSync(path.join(ws, dir))) texts.push(readFileSync(path.join(ws, dir, f), 'utf8'));
  }
  const template = 'Persona: Dialogue: User: Using: none Which persona sentence does Persona\'s next reply use? Answer: 1. 2. 3. 4. 5.';
  const words = [...new Set([template, ...texts].join(' ').replace(/["{}\[\],]/g, ' ').split(/\s+/).filter(Boolean))];
  const specials = ['[PAD]', '[UNK]', '[EOS]'];
  const vocab = Object.fromEntries([...specials, ...words].map((w, i) => [w, i]));
  const hf = path.join(ws, 'tiny', 'hf');
  mkdirSync(hf, { recursive: true });
  writeFileSync(path.join(hf, 'tokenizer.json'), JSON.stringify({
    version: '1.0', truncation: null, padding: null, normalizer: null, post_processor: null,
    added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    pre_tokenizer: { type: 'WhitespaceSplit' }, decoder: { type: 'WordPiece', prefix: '##', cleanup: false },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  }));
  writeFileSync(path.join(hf, 'tokenizer_config.json'), JSON.stringify({ tokenizer_class: 'PreTrainedTokenizerFast', eos_token: '[EOS]', pad_token: '[PAD]', unk_token: '[UNK]' }));
  execFileSync(python, [path.join(repoRoot, 'src', 'trainer', 'tests', 'make_tiny_export.py'), String(Object.keys(vocab).length), '2', path.join(ws, 'tiny'), '[]', '0'], {
    env: { ...process.env, PYTHONPATH: path.join(repoRoot, 'src', 'trainer'), OPENBLAS_NUM_THREADS: '1' },
    stdio: 'ignore',
  });
  writeFileSync(
    path.join(ws, 'tiny.palrun.yaml'),
    'name: tiny-sample\nmodel: {base: tiny/hf}\ndata:\n  dialogues: [data/mara.dialogues.jsonl]\n  pairs: [pairs/mara.pairs.jsonl]\n  personas: [personas]\nstage1: {epochs: 1, batch_size: 4, warmup_steps: 0}\nstage2: {epochs: 1, batch_size: 2, warmup_steps: 0, rejected: {max_new_tokens: 6}}\ndevice: cpu\noutput: runs\n',
  );
}

/** Two `pal eval` reports in the workspace, for the comparison view. */
function writeEvalReports(ws) {
  const rows = (prediction) => [
    { prediction, reference: 'i have a dog named rex .', personas: ['i have a dog named rex .', 'i like jazz .'], selected: 0, gold_persona: 0 },
    { prediction: 'jazz , mostly .', reference: 'i like jazz a lot .', personas: ['i have a dog named rex .', 'i like jazz .'], selected: -1, gold_persona: 1 },
  ];
  for (const [name, first] of [['before', 'no pets .'], ['after', 'i have a dog , rex .']]) {
    const file = path.join(ws, 'eval', `${name}.jsonl`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, rows(first).map((r) => JSON.stringify(r)).join('\n') + '\n');
    execFileSync(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), 'eval', '--predictions', file, '--out', path.join(ws, 'eval', name)], { stdio: 'ignore' });
  }
}

/** Ctrl+P: opens a workspace file by name. */
async function quickOpen(name) {
  await page.keyboard.press('Control+P');
  const input = page.locator('.quick-input-widget input[type="text"]');
  await input.waitFor({ state: 'visible', timeout: 15_000 });
  await input.fill(name);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first().waitFor({ timeout: 15_000 });
  await page.keyboard.press('Enter');
}

async function runCommand(title) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input[type="text"]');
  await input.waitFor({ state: 'visible', timeout: 15_000 });
  await input.fill(`>${title}`);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor({ timeout: 15_000 });
  await page.keyboard.press('Enter');
}

function engineInfoView() {
  return page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
}

describe('PAL Studio in a real VS Code (code-server)', { timeout: 300_000 }, () => {
  before(async () => {
    rmSync(resultsDir, { recursive: true, force: true });
    tmp = mkdtempSync(path.join(os.tmpdir(), 'pal-e2e-'));
    const bin = findCodeServer();
    const { vsix } = findVsix();
    workspace = path.join(tmp, 'workspace');
    // "Try it" answers with the model the alignment-run scenario exports.
    profile = createProfile(path.join(tmp, 'profile'));
    // A machine-scoped setting: code-server (a remote) reads it from the Machine settings.
    mkdirSync(path.join(profile.userDataDir, 'Machine'), { recursive: true });
    writeFileSync(path.join(profile.userDataDir, 'Machine', 'settings.json'), JSON.stringify({ 'palStudio.models.default': path.join(workspace, 'runs', 'tiny-sample', 'model') }));
    installExtension(bin, profile, vsix);
    cpSync(path.join(repoRoot, 'samples', 'studio'), workspace, { recursive: true });
    writeFileSync(path.join(workspace, 'broken.pairs.jsonl'), BROKEN_PAIRS);
    buildTinyBaseModel(workspace);
    writeEvalReports(workspace);
    reportFile = path.join(tmp, 'test-report.jsonl');
    server = await startCodeServer(bin, profile, { env: { PAL_STUDIO_TEST_REPORT: reportFile } });
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
    // One page for the whole suite: each page load starts a new extension host.
    await page.goto(`${server.url}/?folder=${encodeURIComponent(workspace)}`);
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await server?.stop();
    if (tmp && !process.env.PAL_E2E_KEEP) rmSync(tmp, { recursive: true, force: true });
  });

  scenario('the extension activates and its engine answers engine/info inside the extension host', async () => {
    const activated = await waitFor('the extension to activate', () => events('activated')[0]);
    const info = await waitFor('an engine/info answer', () => events('engine-info')[0]);
    const ready = events('engine-ready');
    assert.equal(ready.length, 1, 'one engine started');
    assert.equal(info.info.engine.pid, ready[0].pid, 'the answer came from the engine that started');
    // The engine is a child of this very extension host, talking over its stdio.
    assert.equal(info.extensionHostPid, activated.extensionHostPid);
    assert.equal(info.info.engine.ppid, activated.extensionHostPid, 'the engine process is the extension host\'s child');
    assert.notEqual(info.info.engine.pid, activated.extensionHostPid);
    assert.equal(activated.vscodeVersion, '1.139.1');
    assert.equal(info.info.engine.version, activated.extensionVersion);
    assert.equal(info.info.devices[0].kind, 'cpu');
    // The machine this runs on has Debian's torch (scripts/setup-system.sh installs it).
    assert.equal(info.info.python.found, true, `Python with torch was found: ${info.info.python.reason}`);
    assert.match(info.info.python.torch.version, /^\d+\.\d+/);
    assert.ok(info.info.python.tried.some((t) => t.outcome === 'usable'));
  });

  scenario('"PAL: Show Engine Info" from the command palette shows the engine\'s report in a webview', async () => {
    await runCommand('PAL: Show Engine Info');
    const view = engineInfoView();
    await view.locator('h1', { hasText: 'PAL Studio engine' }).waitFor({ timeout: 30_000 });
    const info = events('engine-info').at(-1).info;
    assert.equal(await view.locator('[data-testid="engine-pid"]').textContent(), String(info.engine.pid));
    assert.equal(await view.locator('[data-testid="python-path"]').textContent(), info.python.selected.path);
    assert.equal(await view.locator('[data-testid="torch-version"]').textContent(), info.python.torch.version);
    assert.ok((await view.locator('[data-device="cpu"]').count()) === 1, 'the CPU is listed');
    assert.ok(events('command').some((e) => e.id === 'palStudio.showEngineInfo'));
    // Nothing remote, scripts only with the page's nonce.
    const csp = await view.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'nonce-[A-Za-z0-9+/=]{16,}'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*(?!\.vscode-cdn\.net)/);
    // The only https origin is webview.cspSource: where VS Code serves the extension's own files.
    for (const origin of csp.match(/https?:[^\s;]*/g) ?? []) assert.equal(origin, 'https://*.vscode-cdn.net');
    // The buttons are @vscode-elements web components that really rendered (not blank tags).
    const refresh = view.locator('vscode-button', { hasText: 'Search again' });
    assert.equal(await refresh.evaluate((el) => Boolean(el.shadowRoot)), true);
  });

  scenario('a crashed engine is restarted, the view follows it, and the user is told once', async () => {
    const first = events('engine-ready').at(-1).pid;
    process.kill(first, 'SIGKILL');
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'engine stopped unexpectedly' });
    await toast.first().waitFor({ timeout: 30_000 });
    assert.match(await toast.first().textContent(), /killed by SIGKILL.*restarted/);
    const second = await waitFor('a restarted engine', () => events('engine-ready').find((e) => e.pid !== first)?.pid);
    // The open view shows the new engine without being asked.
    const view = engineInfoView();
    await waitFor('the view to show the new engine', async () => (await view.locator('[data-testid="engine-pid"]').textContent()) === String(second), 30_000);

    // A second crash is logged and survived, but not announced again.
    process.kill(second, 'SIGKILL');
    const third = await waitFor('a second restart', () => events('engine-ready').find((e) => e.pid !== first && e.pid !== second)?.pid);
    assert.ok(third);
    assert.equal(events('engine-crash').length, 2);
    assert.equal(events('notification').length, 1, 'the user was told once');
    const info = await waitFor('engine/info from the third engine', () => events('engine-info').find((e) => e.info.engine.pid === third));
    assert.equal(info.info.engine.ppid, events('activated')[0].extensionHostPid);
  });

  scenario('problems in a PAL file appear in the Problems panel, and "PAL: Validate All PAL Files" counts them', async () => {
    await quickOpen('broken.pairs.jsonl');
    await page.locator('.tab', { hasText: 'broken.pairs.jsonl' }).waitFor({ timeout: 15_000 });
    await page.keyboard.press('Control+Shift+M');
    const markers = page.locator('.markers-panel');
    await markers.locator('.monaco-list-row', { hasText: 'the pair teaches the model nothing' }).waitFor({ timeout: 30_000 });
    await markers.locator('.monaco-list-row', { hasText: "Missing 'rejected'" }).waitFor({ timeout: 10_000 });

    await runCommand('PAL: Validate All PAL Files');
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'PAL Studio checked' });
    await toast.first().waitFor({ timeout: 30_000 });
    assert.match(await toast.first().textContent(), /checked 8 files: 1 error, 1 warning/);
    // Checking never writes: the file is exactly as it was.
    assert.equal(readFileSync(path.join(workspace, 'broken.pairs.jsonl'), 'utf8'), BROKEN_PAIRS);
  });

  scenario('"PAL: Start Alignment Run" trains both stages in the engine, shows progress, and exports the model', async () => {
    await runCommand('PAL: Start Alignment Run');
    const input = page.locator('.quick-input-widget input[type="text"]');
    await input.waitFor({ state: 'visible', timeout: 15_000 });
    await input.fill('tiny');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'tiny.palrun.yaml' }).first().waitFor({ timeout: 15_000 });
    await page.keyboard.press('Enter');
    await page.locator('.notifications-toasts .notification-toast', { hasText: 'PAL run tiny.palrun.yaml' }).first().waitFor({ timeout: 30_000 });
    const done = page.locator('.notifications-toasts .notification-toast', { hasText: 'PAL run tiny.palrun.yaml finished' });
    await done.first().waitFor({ timeout: 180_000 });
    const runDir = path.join(workspace, 'runs', 'tiny-sample');
    assert.ok(existsSync(path.join(runDir, 'model', 'onnx', 'model.onnx')), 'the exported model is on disk');
    assert.deepEqual(JSON.parse(readFileSync(path.join(runDir, 'state.json'), 'utf8')).done, ['prepare', 'stage1', 'generate', 'stage2', 'export', 'evaluate']);
    assert.ok(existsSync(path.join(runDir, 'eval', 'report.html')), 'the before/after report is written');
    assert.ok(events('command').some((e) => e.id === 'palStudio.startRun'));
  });

  scenario('"PAL: Compare Evaluation Reports" shows two runs side by side', async () => {
    await runCommand('PAL: Compare Evaluation Reports');
    const input = page.locator('.quick-input-widget input[type="text"]');
    for (const name of ['before', 'after']) {
      await page.locator('.quick-input-widget', { hasText: name === 'before' ? 'the baseline' : 'the run to compare' }).waitFor({ timeout: 15_000 });
      await input.fill(`eval/${name}/report.json`);
      await page.locator('.quick-input-list .monaco-list-row', { hasText: `eval/${name}/report.json` }).first().waitFor({ timeout: 15_000 });
      await page.keyboard.press('Enter');
    }
    const view = page.frameLocator('iframe.webview.ready >> nth=-1').frameLocator('iframe#active-frame');
    await view.locator('h1', { hasText: 'Runs compared' }).waitFor({ timeout: 30_000 });
    const bleu1 = view.locator('tr[data-metric="bleu1"] td');
    assert.equal(await bleu1.count(), 3);
    const [a, b] = [Number(await bleu1.nth(0).textContent()), Number(await bleu1.nth(1).textContent())];
    assert.ok(a !== b, 'the two runs differ');
    // The baseline (before) is the first column; "after" improved BLEU-1.
    const header = await view.locator('[data-testid="comparison"] tr').first().textContent();
    assert.match(header, /^Metricbeforeafter/);
    assert.ok(b > a);
    assert.equal(await view.locator('tr[data-metric="bleu1"] td.up').count(), 1);
  });

  scenario('engine logs reach the "PAL Studio" output channel', async () => {
    const log = await waitFor('the output channel log', () => {
      const text = outputChannelLog();
      return /Engine \d+\.\d+\.\d+ \(pid \d+/.test(text) && /stopped unexpectedly/.test(text) ? text : undefined;
    }, 30_000);
    assert.match(log, /Python: \/\S+ \(torch [\d.]+/);
    assert.match(log, /\[error\] .*killed by SIGKILL/);
  });

  scenario('the persona editor: a form over *.persona.yaml whose edits go through the document, in sync both ways', async () => {
    const file = path.join(workspace, 'personas', 'mara-the-lighthouse-keeper.persona.yaml');
    const original = readFileSync(file, 'utf8');
    await quickOpen('mara-the-lighthouse-keeper.persona.yaml');
    const view = page.frameLocator('iframe.webview.ready >> nth=-1').frameLocator('iframe#active-frame');
    await view.locator('h1', { hasText: 'Mara Quell' }).waitFor({ timeout: 30_000 });
    assert.equal(await view.locator('ol.facts > li').count(), 5);
    assert.equal(await view.locator('[data-path="facts.1"]').getAttribute('aria-label'), 'Fact 2');
    await saveArtifacts('persona editor (light theme)', false); // code-server's default theme is light

    // An edit in the form changes that one line of the document, and saving writes exactly that.
    const fact = view.locator('[data-path="facts.1"] input');
    await fact.fill('i bake rye bread every morning before the lamp goes out .');
    await fact.press('Enter');
    await page.locator('.tab.dirty', { hasText: 'mara-the-lighthouse-keeper.persona.yaml' }).waitFor({ timeout: 15_000 });
    await page.keyboard.press('Control+S');
    const expected = original.replace('  - i bake bread every morning before the lamp goes out .', '  - i bake rye bread every morning before the lamp goes out .');
    assert.notEqual(expected, original);
    await waitFor('the saved file', () => readFileSync(file, 'utf8') === expected, 15_000);

    // Adding a fact from the keyboard, then the document changing under the form: the form follows.
    const add = view.locator('[data-path="facts.new"] input');
    await add.fill('i whistle sea shanties to the gulls .');
    await add.press('Enter');
    await view.locator('ol.facts > li').nth(5).waitFor({ timeout: 15_000 });
    await page.keyboard.press('Control+S');
    await waitFor('the saved fact', () => readFileSync(file, 'utf8').includes('  - i whistle sea shanties to the gulls .\n'), 15_000);
    writeFileSync(file, readFileSync(file, 'utf8').replace('name: Mara Quell', 'name: Mara Quell-Ross'));
    await view.locator('h1', { hasText: 'Mara Quell-Ross' }).waitFor({ timeout: 30_000 });
    // The comment at the top and the untouched fields are exactly as written.
    assert.ok(readFileSync(file, 'utf8').startsWith('# A persona written for the PAL Studio sample project.\n'));

    // "Try it": select then generate with these facts on the model the settings name, streamed in.
    const message = view.locator('[data-path="try.message"] input');
    await message.fill('do you have a cat ?');
    await message.press('Enter');
    const used = view.locator('[data-testid="try-selected"]', { hasText: 'Persona fact used:' });
    await used.waitFor({ timeout: 60_000 });
    assert.match(await used.textContent(), /Persona fact used: (\d\. .+|none) \(selected by the model\)/);

    // The dark theme: the form follows VS Code's colours (--vscode-* variables).
    const background = () => view.locator('body').evaluate((b) => getComputedStyle(b).backgroundColor);
    const light = await background();
    // Ctrl+K Ctrl+T: the colour theme picker (the palette's fuzzy match prefers the marketplace
    // entry, which needs the internet). Its rows are labelled "Dark Modern", "Light Modern", …
    await page.locator('.monaco-workbench .part.statusbar').click();
    await page.keyboard.press('Control+K');
    await page.keyboard.press('Control+T');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: /Light Modern/ }).first().waitFor({ timeout: 15_000 });
    await page.locator('.quick-input-widget input[type="text"]').fill('Dark Modern');
    const darkRow = page.locator('.quick-input-list .monaco-list-row', { hasText: /^\s*Dark Modern/ }).first();
    await darkRow.waitFor({ timeout: 15_000 });
    await darkRow.click();
    await waitFor('the dark theme', async () => (await background()) !== light, 30_000);
    await saveArtifacts('persona editor (dark theme)', false);
  });
});
