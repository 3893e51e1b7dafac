// The generation panel in a real VS Code: pick a persona, write a turn, sample two responses on the
// embedded default model (the model setting is empty), judge them in one gesture and save the pair
// into a pairs file as one appended, undoable line (test/e2e/harness.mjs).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe } from 'node:test';
import { studio, waitFor } from './harness.mjs';

// Desktop VS Code's default (code-server, a web build, saves after a delay): so that an unsaved edit stays unsaved.
const s = studio({
  settings: { 'files.autoSave': 'off' },
  // A finished run's own pairs (beside its state.json): not a file a writer saves pairs into.
  prepare(ws) {
    mkdirSync(path.join(ws, 'runs', 'old-run'), { recursive: true });
    writeFileSync(path.join(ws, 'runs', 'old-run', 'state.json'), '{"done": ["prepare"]}\n');
    writeFileSync(path.join(ws, 'runs', 'old-run', 'stage2.pairs.jsonl'), '');
  },
});
const { events, runCommand, scenario, saveArtifacts } = s;
let page, workspace;

describe('the generation panel in a real VS Code (code-server)', { timeout: 300_000 }, () => {
  before(async () => {
    await s.open();
    ({ page, workspace } = s);
  });

  after(() => s.close());

  // The save picker's own title: the palette's quick input can still be on screen for a moment
  // after a command runs, and its rows are not the pairs files.
  async function savePickerShown() {
    await page.locator('.quick-input-widget .quick-input-title', { hasText: 'Save the preference pair to' }).waitFor({ timeout: 15_000 });
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'pairs/' }).first().waitFor({ timeout: 15_000 });
  }

  scenario('the generation panel samples responses side by side and saves a judged pair as one appended line', async () => {
    const pairsFile = path.join(workspace, 'pairs', 'mara.pairs.jsonl');
    const original = readFileSync(pairsFile, 'utf8');
    // The palette lists the extension's commands once code-server has loaded it.
    await waitFor('the extension to activate', () => events('activated')[0]);
    await runCommand('PAL: Open Generation Panel');
    const view = s.webview();
    await view.locator('h1', { hasText: 'Generation' }).waitFor({ timeout: 30_000 });
    // The model setting is empty: the embedded default model answers.
    await view.locator('[data-testid="model"]', { hasText: /^Model: pal-default, embedded/ }).waitFor({ timeout: 30_000 });
    assert.ok(events('command').some((e) => e.id === 'palStudio.openGenerationPanel'));

    // Nothing to generate with yet: the panel says why.
    const generate = view.locator('vscode-button', { hasText: 'Generate' });
    assert.equal(await view.locator('[data-testid="problem"]').textContent(), 'Pick at least one persona.');
    assert.equal(await generate.getAttribute('disabled'), '');

    // Mara's persona: her five facts, numbered as the model sees them.
    await view.locator('vscode-checkbox', { hasText: 'Mara Quell (mara-lighthouse)' }).click();
    await waitFor("Mara's facts", async () => (await view.locator('[data-testid="facts"] li').count()) === 5, 15_000);
    assert.equal(await view.locator('[data-testid="facts"] li').nth(2).textContent(), 'my only company most weeks is a one-eyed cat named tern .');
    const turn = view.locator('[data-turn="0"] textarea');
    // The User box has room for a real turn: three rows at least (it had one; issue 17).
    assert.ok((await turn.evaluate((t) => t.rows)) >= 3, 'three rows');
    const lineHeight = await turn.evaluate((t) => parseFloat(getComputedStyle(t).lineHeight) || 0);
    assert.ok((await turn.evaluate((t) => t.clientHeight)) >= 3 * lineHeight, 'three rows on screen');
    await turn.fill('do you have a cat ?');
    await waitFor('Generate to be enabled', async () => (await generate.getAttribute('disabled')) === null, 15_000);
    await page.keyboard.press('Control+Enter');

    // Two cards (the default: 2 samples, seeds 1 and 2), streamed, each with the fact it used.
    const cards = view.locator('.sample');
    const used = view.locator('.sample [data-testid="selected"]', { hasText: 'Persona fact used:' });
    await waitFor('two finished samples', async () => (await used.count()) === 2, 120_000);
    assert.equal(await cards.count(), 2);
    const replies = [await cards.nth(0).locator('[data-testid="reply"]').textContent(), await cards.nth(1).locator('[data-testid="reply"]').textContent()];
    for (const r of replies) assert.ok(r.trim().length > 0, 'each sample has text');
    for (let i = 0; i < 2; i++) assert.match(await used.nth(i).textContent(), /^Persona fact used: (\d\. .+|none) \(selected by the model\)$/);
    assert.match(await cards.nth(1).getAttribute('aria-label'), /^Sample 2, seed 2$/);

    // One gesture from the keyboard: c on the second card prefers it and rejects the first.
    await cards.nth(1).focus();
    await page.keyboard.press('c');
    await view.locator('.sample.chosen[data-index="1"]').waitFor({ timeout: 10_000 });
    assert.equal(await view.locator('.sample.rejected[data-index="0"] [data-testid="mark"]').textContent(), 'Rejected');
    assert.equal(await view.locator('[data-testid="judgement"]').textContent(), 'Chosen: sample 2 · Rejected: sample 1');
    await view.locator('[data-testid="judgement"]').scrollIntoViewIfNeeded();
    await saveArtifacts('generation panel (light theme)', false); // code-server's default theme is light

    // Save: a quick pick of the workspace's pairs files.
    await view.locator('vscode-button', { hasText: 'Save as preference pair' }).click();
    const input = page.locator('.quick-input-widget input[type="text"]');
    await input.waitFor({ state: 'visible', timeout: 15_000 });
    await savePickerShown();
    const offered = await page.locator('.quick-input-list .monaco-list-row').allTextContents();
    assert.ok(!offered.some((row) => row.includes('runs/old-run')), `a run's own pairs file is not offered: ${offered.join(' | ')}`);
    await input.fill('mara.pairs');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'pairs/mara.pairs.jsonl' }).first().waitFor({ timeout: 15_000 });
    await page.keyboard.press('Enter');

    // Exactly one line appended; every earlier byte as it was.
    const saved = await waitFor(
      'the appended pair on disk',
      () => {
        const now = readFileSync(pairsFile, 'utf8');
        return now !== original ? now : undefined;
      },
      30_000,
    );
    assert.ok(saved.startsWith(original), 'the earlier bytes are untouched');
    const added = saved.slice(original.length);
    assert.equal(added.split('\n').length, 2, 'one line, ending with a newline');
    assert.ok(added.endsWith('\n'));
    const pair = JSON.parse(added);
    assert.equal(pair.prompt, 'do you have a cat ?');
    assert.equal(pair.chosen, replies[1]);
    assert.equal(pair.rejected, replies[0]);
    assert.deepEqual(pair.persona_ids, ['mara-lighthouse']);
    assert.equal(pair.origin, 'annotated');
    assert.equal(pair.status, 'chosen');
    assert.ok(Math.abs(Date.parse(pair.time) - Date.now()) < 10 * 60_000, 'judged just now');
    // Decoded as Try it decodes (no 3-gram twice nor from the partner's turns, a repetition
    // penalty), and with the fact each reply was generated with, as its card showed it (issue 17).
    const { selected, ...sampling } = pair.sampling;
    assert.deepEqual(sampling, {
      model: 'pal-default',
      temperature: 0.8,
      top_k: 50,
      top_p: 0.95,
      max_new_tokens: 40,
      repetition_penalty: 1.2,
      no_repeat_ngram_size: 3,
      no_repeat_ngram_from: 'partner',
      seeds: [2, 1],
    });
    const shown = [await used.nth(1).textContent(), await used.nth(0).textContent()];
    assert.equal(selected.length, 2);
    selected.forEach((s, i) => {
      assert.ok(Number.isInteger(s.index) && s.index >= -1 && s.index < 5, JSON.stringify(s));
      assert.ok(shown[i].startsWith(`Persona fact used: ${s.text} (`), `${shown[i]} vs ${s.text}`);
    });
    await view.locator('[data-testid="saved"]', { hasText: 'Saved to pairs/mara.pairs.jsonl, line 4.' }).waitFor({ timeout: 10_000 });
    assert.equal(
      await view.locator('vscode-button', { hasText: 'Save as preference pair' }).getAttribute('disabled'),
      '',
      'the same pair is not saved twice by accident',
    );

    // The message names the file and line; "Open" shows that line in a text editor, where Ctrl+Z undoes the append.
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'Added the preference pair to pairs/mara.pairs.jsonl, line 4.' });
    await toast.first().waitFor({ timeout: 15_000 });
    await toast.first().locator('.monaco-button', { hasText: 'Open' }).click();
    const editor = page.locator('.editor-instance .monaco-editor').first();
    await page.locator('.tab.active', { hasText: 'mara.pairs.jsonl' }).waitFor({ timeout: 15_000 });
    await editor.locator('.view-line', { hasText: '"origin":"annotated"' }).waitFor({ timeout: 15_000 });
    await editor.click();
    await page.keyboard.press('Control+Z');
    await page.locator('.tab.dirty', { hasText: 'mara.pairs.jsonl' }).waitFor({ timeout: 15_000 });
    await waitFor(
      'the appended line to be undone',
      async () => (await editor.locator('.view-line', { hasText: '"origin":"annotated"' }).count()) === 0,
      15_000,
    );
    await page.keyboard.press('Control+S');
    await waitFor('the undone file on disk', () => readFileSync(pairsFile, 'utf8') === original, 15_000);

    // An unsaved edit in the open file survives a second save (the judgement the other way round):
    // the pair joins it in the document, and the file stays unsaved, as the writer left it.
    // The edit breaks the first line, so its error squiggle shows that the extension host has the
    // edit too: a dirty tab alone is the window's view, and the extension may not have seen it yet.
    await page.keyboard.press('Control+Home');
    await page.keyboard.type('x');
    await page.locator('.tab.dirty', { hasText: 'mara.pairs.jsonl' }).waitFor({ timeout: 15_000 });
    await editor.locator('.squiggly-error').first().waitFor({ timeout: 15_000 });
    await runCommand('PAL: Open Generation Panel');
    await cards.nth(0).focus();
    await page.keyboard.press('c');
    await view.locator('.sample.chosen[data-index="0"]').waitFor({ timeout: 10_000 });
    await view.locator('vscode-button', { hasText: 'Save as preference pair' }).click();
    await savePickerShown();
    const first = page.locator('.quick-input-list .monaco-list-row').first();
    assert.match(await first.textContent(), /pairs\/mara\.pairs\.jsonl.*last used/, 'the last file used comes first');
    await page.keyboard.press('Enter');
    await page
      .locator('.notifications-toasts .notification-toast', { hasText: 'line 4. The file had unsaved changes, so it is left unsaved.' })
      .first()
      .waitFor({ timeout: 15_000 });
    await page.locator('.tab', { hasText: 'mara.pairs.jsonl' }).click();
    await editor.locator('.view-line', { hasText: '"origin":"annotated"' }).waitFor({ timeout: 15_000 });
    assert.equal(readFileSync(pairsFile, 'utf8'), original, "nothing written behind the writer's back");
    await page.locator('.tab.dirty', { hasText: 'mara.pairs.jsonl' }).waitFor({ timeout: 5_000 });
    await editor.click();
    await page.keyboard.press('Control+S');
    const both = await waitFor(
      'the saved file',
      () => {
        const now = readFileSync(pairsFile, 'utf8');
        return now !== original ? now : undefined;
      },
      15_000,
    );
    assert.ok(both.startsWith(`x${original}`), "the writer's edit is kept");
    const second = JSON.parse(both.slice(original.length + 1));
    assert.equal(second.chosen, replies[0]);
    assert.equal(second.rejected, replies[1]);
    assert.deepEqual(second.sampling.seeds, [1, 2]);

    // The dark theme: the panel (brought back by its command) follows VS Code's colours.
    await runCommand('PAL: Open Generation Panel');
    const panel = s.webview();
    await panel.locator('.sample.chosen').waitFor({ timeout: 15_000 });
    await panel.locator('.sample').first().scrollIntoViewIfNeeded();
    const background = () => panel.locator('body').evaluate((b) => getComputedStyle(b).backgroundColor);
    const light = await background();
    await s.setTheme('Dark Modern');
    await waitFor('the dark theme', async () => (await background()) !== light, 30_000);
    await saveArtifacts('generation panel (dark theme)', false);
    const dark = await background();
    await s.setTheme('Dark High Contrast');
    await waitFor('the high-contrast theme', async () => (await background()) !== dark, 30_000);
    await saveArtifacts('generation panel (high-contrast theme)', false);
    await s.setTheme('Light Modern'); // the next scenario's screenshots start from the default
  });

  scenario("a persona file's editor title opens the panel with that persona picked", async () => {
    await s.quickOpen('dev-the-night-courier.persona.yaml');
    const action = page.locator(
      '.editor-actions .action-label[aria-label^="PAL: Open Generation Panel"], .editor-actions .action-label[aria-label^="Open Generation Panel"]',
    );
    await action.first().click({ timeout: 30_000 });
    // The persona editor is a webview too: find the panel's among them.
    const view = await waitFor(
      'the generation panel',
      async () => {
        for (let i = 0; i < (await page.locator('iframe.webview.ready').count()); i++) {
          if ((await s.webview(i).locator('h1', { hasText: 'Generation' }).count()) === 1) return s.webview(i);
        }
        return undefined;
      },
      30_000,
    );
    const dev = view.locator('vscode-checkbox', { hasText: 'Dev Anand Okafor (dev-courier)' });
    await waitFor(
      'Dev to be picked instead of Mara',
      async () => (await dev.evaluate((el) => el.checked)) && !(await view.locator('vscode-checkbox', { hasText: 'Mara Quell' }).evaluate((el) => el.checked)),
      15_000,
    );
    assert.equal(
      await view.locator('[data-testid="facts"] li').first().textContent(),
      readFileSync(path.join(workspace, 'personas', 'dev-the-night-courier.persona.yaml'), 'utf8').match(/facts:\n\s+- (.+)/)[1],
    );
  });
});
