// PAL Studio in a real VS Code: the engine, its crash handling, the Problems panel, alignment runs,
// report comparison and the persona editor, driven through headless Chromium (test/e2e/harness.mjs).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe } from 'node:test';
import { buildTinyBaseModel, repoRoot, sleep, studio, waitFor } from './harness.mjs';

// One warning (chosen equals rejected) and one error (no rejected response), for the Problems panel.
const BROKEN_PAIRS = '{"prompt": "hi", "chosen": "same .", "rejected": "same ."}\n{"prompt": "hi", "chosen": "a"}\n';

/** Two `pal eval` reports in the workspace, for the comparison view. */
function writeEvalReports(ws) {
  const rows = (prediction) => [
    { prediction, reference: 'i have a dog named rex .', personas: ['i have a dog named rex .', 'i like jazz .'], selected: 0, gold_persona: 0 },
    { prediction: 'jazz , mostly .', reference: 'i like jazz a lot .', personas: ['i have a dog named rex .', 'i like jazz .'], selected: -1, gold_persona: 1 },
  ];
  for (const [name, first] of [
    ['before', 'no pets .'],
    ['after', 'i have a dog , rex .'],
  ]) {
    const file = path.join(ws, 'eval', `${name}.jsonl`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(
      file,
      rows(first)
        .map((r) => JSON.stringify(r))
        .join('\n') + '\n',
    );
    execFileSync(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), 'eval', '--predictions', file, '--out', path.join(ws, 'eval', name)], {
      stdio: 'ignore',
    });
  }
}

const s = studio({
  // "Try it" answers with the model the alignment-run scenario exports (a machine-scoped setting),
  // greedily and streamed (the restricted-mode scenario tries the default, beam search).
  machineSettings: (ws) => ({ 'palStudio.models.default': path.join(ws, 'runs', 'tiny-sample', 'model') }),
  settings: { 'palStudio.tryIt.decoding': 'streamed' },
  prepare(ws) {
    writeFileSync(path.join(ws, 'broken.pairs.jsonl'), BROKEN_PAIRS);
    buildTinyBaseModel(ws);
    writeEvalReports(ws);
  },
});
const { events, quickOpen, runCommand, scenario, saveArtifacts, outputChannelLog } = s;
let page, workspace;

/** "PAL: Start Alignment Run", picking the run config by its file name. */
async function startRun(file) {
  // The pair annotator of an earlier scenario may still take the focus once it has rendered, which
  // closes a quick pick opened over it (seen in one clean-clone run: the run-config pick went inert,
  // then away). The workbench takes the focus first, as before Ctrl+Shift+M below.
  await s.page.locator('.monaco-workbench .part.statusbar').click({ position: { x: 5, y: 5 } });
  await runCommand('PAL: Start Alignment Run');
  await s.pick(file.replace(/\.palrun\.yaml$/, ''), file);
}

describe('PAL Studio in a real VS Code (code-server)', { timeout: 300_000 }, () => {
  before(async () => {
    await s.open();
    ({ page, workspace } = s);
  });

  after(() => s.close());

  scenario('the extension activates and its engine answers engine/info inside the extension host', async () => {
    const activated = await waitFor('the extension to activate', () => events('activated')[0]);
    const info = await waitFor('an engine/info answer', () => events('engine-info')[0]);
    const ready = events('engine-ready');
    assert.equal(ready.length, 1, 'one engine started');
    assert.equal(info.info.engine.pid, ready[0].pid, 'the answer came from the engine that started');
    // The engine is a child of this very extension host, talking over its stdio.
    assert.equal(info.extensionHostPid, activated.extensionHostPid);
    assert.equal(info.info.engine.ppid, activated.extensionHostPid, "the engine process is the extension host's child");
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
    const view = s.webview();
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
    const view = s.webview();
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
    // The file opens in the pair annotator, whose webview may hold the focus and keep the key from
    // VS Code (seen in CI): the workbench takes the focus back first.
    await page.locator('.monaco-workbench .part.statusbar').click({ position: { x: 5, y: 5 } });
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
    await startRun('tiny.palrun.yaml');
    // The training dashboard follows the run (test/e2e/run-dashboard.test.mjs tests it).
    await s.webview().locator('h1', { hasText: 'Training: tiny-sample' }).waitFor({ timeout: 30_000 });
    const done = page.locator('.notifications-toasts .notification-toast', { hasText: 'PAL run tiny.palrun.yaml finished' });
    await done.first().waitFor({ timeout: 180_000 });
    const runDir = path.join(workspace, 'runs', 'tiny-sample');
    assert.ok(existsSync(path.join(runDir, 'model', 'onnx', 'model.onnx')), 'the exported model is on disk');
    assert.deepEqual(JSON.parse(readFileSync(path.join(runDir, 'state.json'), 'utf8')).done, ['prepare', 'stage1', 'generate', 'stage2', 'export', 'evaluate']);
    assert.ok(existsSync(path.join(runDir, 'eval', 'report.html')), 'the before/after report is written');
    assert.ok(events('command').some((e) => e.id === 'palStudio.startRun'));
  });

  scenario('a run config that points outside the workspace is refused, and nothing is written there', async () => {
    const outside = mkdtempSync(path.join(os.tmpdir(), 'pal-outside-'));
    const config = path.join(workspace, 'escape.palrun.yaml');
    writeFileSync(
      config,
      readFileSync(path.join(workspace, 'tiny.palrun.yaml'), 'utf8').replace('name: tiny-sample', 'name: escape').replace('output: runs', `output: ${outside}`),
    );
    try {
      await startRun('escape.palrun.yaml');
      const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'PAL run escape.palrun.yaml failed' });
      await toast.first().waitFor({ timeout: 60_000 });
      assert.match(await toast.first().textContent(), /output points outside the workspace .*palStudio\.runs\.allowOutsideWorkspace/);
      // Its dashboard says the same (and has finished opening before the next scenario types).
      const dashboard = s.webview();
      await dashboard.locator('[data-testid="run-status"]', { hasText: 'failed' }).waitFor({ timeout: 30_000 });
      assert.match(await dashboard.locator('.problem[role="alert"]').textContent(), /output points outside the workspace/);
      assert.deepEqual(readdirSync(outside), [], 'nothing was written outside the workspace');
    } finally {
      rmSync(config, { force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  });

  scenario('"PAL: Compare Evaluation Reports" shows two runs side by side', async () => {
    await runCommand('PAL: Compare Evaluation Reports');
    const input = page.locator('.quick-input-widget input[type="text"]');
    for (const name of ['before', 'after']) {
      await page.locator('.quick-input-widget', { hasText: name === 'before' ? 'the baseline' : 'the run to compare' }).waitFor({ timeout: 15_000 });
      await input.fill(`eval/${name}/report.json`);
      await page
        .locator('.quick-input-list .monaco-list-row', { hasText: `eval/${name}/report.json` })
        .first()
        .waitFor({ timeout: 15_000 });
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
    const log = await waitFor(
      'the output channel log',
      () => {
        const text = outputChannelLog();
        return /Engine \d+\.\d+\.\d+ \(pid \d+/.test(text) && /stopped unexpectedly/.test(text) ? text : undefined;
      },
      30_000,
    );
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
    // Facts carry their numbers on screen, as "fact 4" elsewhere in the studio (issue 17).
    assert.deepEqual(await view.locator('ol.facts > li .fact-number').allTextContents(), ['1.', '2.', '3.', '4.', '5.']);
    // The description box shows the whole description (it was two rows and clipped).
    assert.ok(Number(await view.locator('[data-path="description"]').getAttribute('rows')) >= 4);
    await saveArtifacts('persona editor (light theme)', false); // code-server's default theme is light

    // An edit in the form changes that one line of the document, and saving writes exactly that.
    const fact = view.locator('[data-path="facts.1"] input');
    await fact.fill('i bake rye bread every morning before the lamp goes out .');
    await fact.press('Enter');
    await page.locator('.tab.dirty', { hasText: 'mara-the-lighthouse-keeper.persona.yaml' }).waitFor({ timeout: 15_000 });
    await page.keyboard.press('Control+S');
    const expected = original.replace(
      '  - i bake bread every morning before the lamp goes out .',
      '  - i bake rye bread every morning before the lamp goes out .',
    );
    assert.notEqual(expected, original);
    await waitFor('the saved file', () => readFileSync(file, 'utf8') === expected, 15_000);

    // A fact that needs quotes in YAML gets them; fixed so that it no longer does, it is written
    // plain again at once (it stayed quoted until the next structural edit; issue 17).
    await fact.fill('i bake: rye bread every morning .');
    await fact.press('Enter');
    await page.keyboard.press('Control+S');
    await waitFor('the quoted fact', () => /\n {2}- (["'])i bake: rye bread every morning \.\1\n/.test(readFileSync(file, 'utf8')), 15_000);
    await fact.fill('i bake rye bread every morning .');
    await fact.press('Enter');
    await page.keyboard.press('Control+S');
    await waitFor('the fact written plain', () => readFileSync(file, 'utf8').includes('\n  - i bake rye bread every morning .\n'), 15_000);

    // The document changing under the form: the form follows.
    writeFileSync(file, readFileSync(file, 'utf8').replace('name: Mara Quell', 'name: Mara Quell-Ross   # keep the hyphen'));
    await view.locator('h1', { hasText: 'Mara Quell-Ross' }).waitFor({ timeout: 30_000 });
    // The file watcher may report the outside write more than once; an edit saved before VS Code
    // has taken the last report was refused as "the content of the file is newer" (seen once in
    // CI). A writer does not type within a second of a change on disk.
    await sleep(1500);
    // Adding a fact from the keyboard (an edit of the list, not of one line): the spaces before
    // the comment of a line it did not touch stay as written (they were collapsed; issue 17).
    const add = view.locator('[data-path="facts.new"] input');
    await add.fill('i whistle sea shanties to the gulls .');
    await add.press('Enter');
    await view.locator('ol.facts > li').nth(5).waitFor({ timeout: 15_000 });
    await page.keyboard.press('Control+S');
    await waitFor('the saved fact', () => readFileSync(file, 'utf8').includes('  - i whistle sea shanties to the gulls .\n'), 15_000);
    assert.ok(readFileSync(file, 'utf8').includes('\nname: Mara Quell-Ross   # keep the hyphen\n'), 'the comment keeps its spacing');
    // The comment at the top and the untouched fields are exactly as written.
    assert.ok(readFileSync(file, 'utf8').startsWith('# A persona written for the PAL Studio sample project.\n'));

    // Ctrl+A then typing at once replaces the text with all that was typed (the first letter was
    // lost: VS Code's own select-all reached the webview after it; issue 17).
    const message = view.locator('[data-path="try.message"] input');
    await message.fill('some old words');
    await message.press('Control+A');
    await page.keyboard.type('xyz');
    assert.equal(await message.inputValue(), 'xyz');

    // "Try it": select then generate with these facts on the model the settings name, streamed in.
    const modelLine = view.locator('[data-testid="try-model"]').filter({ hasText: 'Answering:' });
    await modelLine.waitFor({ timeout: 30_000 });
    assert.match(await modelLine.textContent(), /; greedy, streamed \(/);
    await message.fill('do you have a cat ?');
    await message.press('Enter');
    const used = view.locator('[data-testid="try-selected"]', { hasText: 'Persona fact used:' });
    await used.waitFor({ timeout: 60_000 });
    assert.match(await used.textContent(), /Persona fact used: (\d\. .+|none) \(selected by the model\)/);

    // The dark theme: the form follows VS Code's colours (--vscode-* variables).
    const background = () => view.locator('body').evaluate((b) => getComputedStyle(b).backgroundColor);
    const light = await background();
    await s.setTheme('Dark Modern');
    await waitFor('the dark theme', async () => (await background()) !== light, 30_000);
    await saveArtifacts('persona editor (dark theme)', false);
    const dark = await background();
    await s.setTheme('Dark High Contrast');
    await waitFor('the high contrast theme', async () => (await background()) !== dark, 30_000);
    await saveArtifacts('persona editor (high contrast)', false);
  });
});
