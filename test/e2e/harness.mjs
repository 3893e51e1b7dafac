// The shared harness of the real-VS-Code tests: a workspace copied from samples/studio, the
// packaged vsix installed into code-server, one headless Chromium page driving it like a person,
// and what happens inside the extension host read from the extension's test report
// (PAL_STUDIO_TEST_REPORT). See ../../../shared/docs/real-vscode-tests.md.
//
// Each e2e file opens its own studio (its own code-server, profile and workspace), so the files do
// not depend on each other's order. Failed scenarios leave a screenshot, the page console,
// code-server's log and the extension's output channel under .test-results/e2e/<scenario>/;
// passing ones keep their screenshots, so that a person can look at what the view rendered.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { createProfile, findCodeServer, findVsix, installExtension, repoRoot, sleep, startCodeServer } from '../../scripts/code-server.mjs';

export { repoRoot, sleep };
export const resultsDir = path.join(repoRoot, '.test-results', 'e2e');
const chromiumPath = process.env.PAL_CHROMIUM || '/usr/bin/chromium';

export async function waitFor(what, fn, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(200);
  }
}

export function findFiles(dir, match, found = []) {
  if (!existsSync(dir)) return found;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) findFiles(p, match, found);
    else if (match(p)) found.push(p);
  }
  return found;
}

/**
 * A studio: call `open()` in `before`, `close()` in `after`. Options:
 * - `prepare(workspace)`: writes extra files into the workspace before VS Code opens it;
 * - `machineSettings(workspace)`: machine-scoped settings (code-server, a remote, reads them from
 *   the Machine settings file);
 * - `settings`: user settings;
 * - `workspaceTrust`: keep workspace trust on, so that the folder opens in Restricted Mode.
 */
export function studio({ prepare, machineSettings, settings, workspaceTrust = false } = {}) {
  const s = {
    tmp: undefined,
    profile: undefined,
    server: undefined,
    browser: undefined,
    page: undefined,
    reportFile: undefined,
    workspace: undefined,
    consoleLines: [],

    async open() {
      mkdirSync(resultsDir, { recursive: true });
      s.tmp = mkdtempSync(path.join(os.tmpdir(), 'pal-e2e-'));
      const bin = findCodeServer();
      const { vsix } = findVsix();
      s.workspace = path.join(s.tmp, 'workspace');
      s.profile = createProfile(path.join(s.tmp, 'profile'), settings);
      // The studio answers with the embedded default model in every scenario (the fixture the
      // tests' expectations were written for), not with whatever set-up fetched into the cache.
      mkdirSync(path.join(s.profile.userDataDir, 'Machine'), { recursive: true });
      writeFileSync(
        path.join(s.profile.userDataDir, 'Machine', 'settings.json'),
        JSON.stringify({ 'palStudio.models.default': 'pal-default', ...(machineSettings ? machineSettings(s.workspace) : {}) }),
      );
      installExtension(bin, s.profile, vsix);
      cpSync(path.join(repoRoot, 'samples', 'studio'), s.workspace, { recursive: true });
      await prepare?.(s.workspace);
      s.reportFile = path.join(s.tmp, 'test-report.jsonl');
      s.server = await startCodeServer(bin, s.profile, { env: { PAL_STUDIO_TEST_REPORT: s.reportFile }, workspaceTrust });
      s.browser = await chromium.launch({
        executablePath: chromiumPath,
        headless: true,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      s.page = await s.browser.newPage({ viewport: { width: 1400, height: 900 } });
      s.page.on('console', (m) => s.consoleLines.push(`[${m.type()}] ${m.text()}`));
      s.page.on('pageerror', (e) => s.consoleLines.push(`[pageerror] ${e.message}`));
      // One page per file: each page load starts a new extension host.
      await s.page.goto(`${s.server.url}/?folder=${encodeURIComponent(s.workspace)}`);
      await s.page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    },

    async close() {
      await s.browser?.close().catch(() => undefined);
      await s.server?.stop();
      if (s.tmp && !process.env.PAL_E2E_KEEP) rmSync(s.tmp, { recursive: true, force: true });
    },

    /** The extension's test-report events, of one kind or all. */
    events(kind) {
      if (!existsSync(s.reportFile)) return [];
      return readFileSync(s.reportFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .filter((e) => kind === undefined || e.event === kind);
    },

    outputChannelLog() {
      // A log output channel is written to logs/<time>/exthost1/<extension id>/<channel name>.log.
      const files = findFiles(path.join(s.profile.userDataDir, 'logs'), (p) => path.basename(p) === 'PAL Studio.log');
      return files.map((f) => readFileSync(f, 'utf8')).join('\n');
    },

    async saveArtifacts(name, failed) {
      const dir = path.join(
        resultsDir,
        name
          .replace(/[^a-z0-9]+/gi, '-')
          .replace(/^-|-$/g, '')
          .toLowerCase(),
      );
      mkdirSync(dir, { recursive: true });
      await s.page?.screenshot({ path: path.join(dir, 'screenshot.png') }).catch(() => undefined);
      if (!failed) return;
      writeFileSync(path.join(dir, 'console.log'), s.consoleLines.join('\n'));
      writeFileSync(path.join(dir, 'output-channel.log'), s.outputChannelLog());
      if (existsSync(s.reportFile)) cpSync(s.reportFile, path.join(dir, 'test-report.jsonl'));
      const serverLog = path.join(s.profile.dir, 'code-server.log');
      if (existsSync(serverLog)) cpSync(serverLog, path.join(dir, 'code-server.log'));
      console.error(`e2e: artifacts of the failed scenario "${name}" are in ${dir}`);
    },

    /** A test whose failure leaves artifacts behind; every scenario keeps a screenshot. */
    scenario(name, fn) {
      test(name, async () => {
        try {
          await fn();
          await s.saveArtifacts(name, false);
        } catch (err) {
          await s.saveArtifacts(name, true);
          throw err;
        }
      });
    },

    /** Types into the open quick input and takes the first row showing `row` (another window: `page`). */
    async pick(text, row = text, page = s.page) {
      const input = page.locator('.quick-input-widget input[type="text"]');
      await input.waitFor({ state: 'visible', timeout: 15_000 });
      await input.fill(text);
      await page.locator('.quick-input-list .monaco-list-row', { hasText: row }).first().waitFor({ timeout: 15_000 });
      await page.keyboard.press('Enter');
    },

    /** Ctrl+P: opens a workspace file by name. */
    async quickOpen(name) {
      await s.page.keyboard.press('Control+P');
      await s.pick(name);
    },

    /** F1, then a command's title (as the palette shows it: "PAL: …"). */
    async runCommand(title, page = s.page) {
      await page.keyboard.press('F1');
      await s.pick(`>${title}`, title, page);
    },

    /** The content frame of the most recently created webview (editors and panels alike). */
    webview(nth = -1) {
      return s.page.frameLocator(`iframe.webview.ready >> nth=${nth}`).frameLocator('iframe#active-frame');
    },

    /**
     * Switches the colour theme with Ctrl+K Ctrl+T (the palette's fuzzy match prefers the
     * marketplace entry, which needs the internet). Rows are labelled "Dark Modern", "Light Modern"…
     */
    async setTheme(label) {
      await s.page.locator('.monaco-workbench .part.statusbar').click({ position: { x: 5, y: 5 } });
      await s.page.keyboard.press('Control+K');
      await s.page.keyboard.press('Control+T');
      await s.page.locator('.quick-input-list .monaco-list-row').first().waitFor({ timeout: 15_000 });
      await s.page.locator('.quick-input-widget input[type="text"]').fill(label);
      const row = s.page.locator('.quick-input-list .monaco-list-row', { hasText: new RegExp(`^\\s*${label}`) }).first();
      await row.waitFor({ timeout: 15_000 });
      await row.click();
    },
  };
  return s;
}

/**
 * A tiny base model in the workspace (word-level tokenizer over the sample's words, a random
 * 2-layer Llama) and a run config that trains it for a moment: what the palette's alignment run
 * needs, built by the trainer's own test helper.
 */
export function buildTinyBaseModel(ws) {
  const python = process.env.PAL_PYTHON || '/usr/bin/python3';
  const texts = [];
  for (const dir of ['data', 'personas', 'pairs']) {
    for (const f of readdirSync(path.join(ws, dir))) texts.push(readFileSync(path.join(ws, dir, f), 'utf8'));
  }
  const template = "Facts: Persona: Dialogue: User: Using: none Which fact does Persona's next reply use? Answer: 1. 2. 3. 4. 5.";
  const words = [
    ...new Set(
      [template, ...texts]
        .join(' ')
        .replace(/["{}[\],]/g, ' ')
        .split(/\s+/)
        .filter(Boolean),
    ),
  ];
  const specials = ['[PAD]', '[UNK]', '[EOS]'];
  const vocab = Object.fromEntries([...specials, ...words].map((w, i) => [w, i]));
  const hf = path.join(ws, 'tiny', 'hf');
  mkdirSync(hf, { recursive: true });
  writeFileSync(
    path.join(hf, 'tokenizer.json'),
    JSON.stringify({
      version: '1.0',
      truncation: null,
      padding: null,
      normalizer: null,
      post_processor: null,
      added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      pre_tokenizer: { type: 'WhitespaceSplit' },
      decoder: { type: 'WordPiece', prefix: '##', cleanup: false },
      model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
    }),
  );
  writeFileSync(
    path.join(hf, 'tokenizer_config.json'),
    JSON.stringify({ tokenizer_class: 'PreTrainedTokenizerFast', eos_token: '[EOS]', pad_token: '[PAD]', unk_token: '[UNK]' }),
  );
  execFileSync(
    python,
    [path.join(repoRoot, 'src', 'trainer', 'tests', 'make_tiny_export.py'), String(Object.keys(vocab).length), '2', path.join(ws, 'tiny'), '[]', '0'],
    {
      env: { ...process.env, PYTHONPATH: path.join(repoRoot, 'src', 'trainer'), OPENBLAS_NUM_THREADS: '1' },
      stdio: 'ignore',
    },
  );
  writeFileSync(
    path.join(ws, 'tiny.palrun.yaml'),
    'name: tiny-sample\nmodel: {base: tiny/hf}\ndata:\n  dialogues: [data/mara.dialogues.jsonl]\n  pairs: [pairs/mara.pairs.jsonl]\n  personas: [personas]\nstage1: {epochs: 1, batch_size: 4, warmup_steps: 0}\nstage2: {epochs: 1, batch_size: 2, warmup_steps: 0, rejected: {max_new_tokens: 6}}\ndevice: cpu\noutput: runs\n',
  );
}
