// The pair annotator in a real VS Code: judge pairs with the keys, see each judgement become one
// changed line of the document (the others byte for byte), undo with z and Ctrl+Z, edit a
// response, filter; and open a 100,000-pair file, printing the open and key-press times the
// extension measured (test/e2e/harness.mjs). No assertion on time.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe } from 'node:test';
import { studio, waitFor } from './harness.mjs';

const pair = (prompt, chosen, rejected, extra) => JSON.stringify({ prompt, chosen, rejected, ...extra });
// A file written on Windows (CRLF: VS Code keeps a file's one line ending, and makes a mixed file's
// lines all alike on load, whoever edits it), a blank line, an invalid line, an unknown field, a
// judged pair and no final newline.
const REVIEW = [
  `${pair('do you ever get lonely out there ?', 'tern keeps me company .', 'yes , very lonely .', { persona_ids: ['mara-lighthouse'], origin: 'annotated', status: 'pending' })}\n`,
  `${pair('where are you headed tonight ?', 'no questions , no names .', 'to the harbour , with the blue parcel .', { persona_ids: ['dev-courier'], origin: 'pal-stage2', status: 'pending' })}\n`,
  '\n',
  '{"prompt": "a line that was cut off\n',
  `{"prompt": "are you scared of storms ?", "chosen": "i am terrified .", "rejected": "storms i can handle .", "persona_ids": ["mara-lighthouse"], "origin": "pal-stage2", "status": "pending", "x-batch": 7}\n`,
  `${pair('what do you eat ?', 'bread i bake myself .', 'fast food , mostly .', { persona_ids: ['mara-lighthouse'], origin: 'imported', status: 'pending' })}\n`,
  pair('hello !', 'hello , stranger .', 'go away .', { persona_ids: ['mara-lighthouse'], origin: 'annotated', status: 'chosen' }),
].map((line) => line.replace(/\n$/, '\r\n'));
const LARGE_PAIRS = 100_000;

const s = studio({
  // The large file is over the web editor's 10 MB confirmation; a person would click "Open Anyway".
  // The file's order on screen (chosen left): these scenarios judge by it. The blind order has its
  // own scenario (pair-annotator-blind.test.mjs). Who judges: written on every judged line.
  settings: { 'workbench.editorLargeFileConfirmation': 1024, 'palStudio.annotator.blind': false, 'palStudio.annotator.name': 'e2e writer' },
  prepare(ws) {
    writeFileSync(path.join(ws, 'pairs', 'review.pairs.jsonl'), REVIEW.join(''));
    const lines = [];
    for (let i = 0; i < LARGE_PAIRS; i++) {
      lines.push(
        pair(`what happened on day ${i} ?`, `i lit the lamp and fed tern . (${i})`, `i went to the city . (${i})`, {
          persona_ids: [i % 3 ? 'mara-lighthouse' : 'dev-courier'],
          origin: 'pal-stage2',
          status: 'pending',
        }),
      );
    }
    writeFileSync(path.join(ws, 'pairs', 'large.pairs.jsonl'), `${lines.join('\n')}\n`);
  },
});
const { events, quickOpen, scenario, saveArtifacts } = s;
let page, workspace;

/** The file's lines with their endings (the last one may have none); none while VS Code is writing it. */
const linesOf = (text) => text.match(/[^\n]*\n|[^\n]+$/g) ?? [];

describe('the pair annotator in a real VS Code (code-server)', { timeout: 600_000 }, () => {
  before(async () => {
    await s.open();
    ({ page, workspace } = s);
  });

  after(() => s.close());

  scenario('the pair annotator: keys judge pairs as one-line edits of the document; undo, save, edit and filters', async () => {
    const file = path.join(workspace, 'pairs', 'review.pairs.jsonl');
    const original = linesOf(readFileSync(file, 'utf8'));
    assert.equal(original.length, 7);
    await waitFor('the extension to activate', () => events('activated')[0]);
    await quickOpen('review.pairs.jsonl');
    const view = s.webview();
    const position = view.locator('[data-testid="position"]');
    const status = view.locator('[data-testid="status"]');
    await view.locator('h1', { hasText: 'Pair annotator' }).waitFor({ timeout: 30_000 });
    await waitFor('the first pending pair', async () => (await position.textContent()) === '1 of 4 in this filter · line 1', 30_000);
    assert.equal(await view.locator('[data-testid="progress"]').textContent(), '1 of 5 judged · 4 pending · 1 chosen · 0 tie · 0 skipped · 1 invalid line');
    assert.equal(await view.locator('[data-testid="response-chosen"]').textContent(), 'tern keeps me company .');
    assert.equal(await view.locator('[data-testid="response-rejected"]').textContent(), 'yes , very lonely .');
    // Mara's persona file gives her name and facts beside the pair.
    await view.locator('.annotator-personas summary', { hasText: 'Mara Quell (mara-lighthouse)' }).waitFor({ timeout: 15_000 });
    assert.equal(await view.locator('vscode-progress-bar').getAttribute('aria-label'), '1 of 5 pairs judged');
    await saveArtifacts('pair annotator (light theme)', false);

    // 1, 2, s, t from the keyboard: each judges the pair on screen and moves to the next pending one.
    await position.click();
    const press = async (key, expectedPosition) => {
      await page.keyboard.press(key);
      await waitFor(`"${key}" to be answered`, async () => (await position.textContent()) === expectedPosition, 15_000);
    };
    await press('1', '1 of 3 in this filter · line 2');
    assert.match(await status.textContent(), /^Line 1: chosen as given/);
    await press('2', '1 of 2 in this filter · line 5');
    await press('s', '1 of 1 in this filter · line 6');
    await page.keyboard.press('t');
    await waitFor('the last pending pair judged', async () => /^Line 6: a tie\. No pending pair is left/.test(await status.textContent()), 15_000);
    assert.equal(await view.locator('[data-testid="progress"]').textContent(), '5 of 5 judged · 0 pending · 3 chosen · 1 tie · 1 skipped · 1 invalid line');
    await page.locator('.tab.dirty', { hasText: 'review.pairs.jsonl' }).waitFor({ timeout: 15_000 });

    // Saved: the judged lines changed as asked, every other line byte for byte (CRLF, blank, invalid, no final newline).
    await page.keyboard.press('Control+S');
    await page.locator('.tab.dirty', { hasText: 'review.pairs.jsonl' }).waitFor({ state: 'detached', timeout: 15_000 });
    let saved = linesOf(readFileSync(file, 'utf8'));
    assert.equal(saved.length, 7);
    for (const i of [2, 3, 6]) assert.equal(saved[i], original[i], `line ${i + 1} is byte for byte the same`);
    for (const i of [0, 1, 4, 5]) assert.ok(saved[i].endsWith('}\r\n'), `line ${i + 1} keeps its CRLF`);
    assert.ok(!saved[6].endsWith('\n'), 'still no final newline');
    const before = original.map((l) => (l.trim() && !l.includes('cut off') ? JSON.parse(l) : undefined));
    const after = saved.map((l) => (l.trim() && !l.includes('cut off') ? JSON.parse(l) : undefined));
    const rest = ({ status: _status, time: _time, annotator: _annotator, ...fields }) => fields;
    assert.deepEqual([after[0].status, rest(after[0])], ['chosen', rest(before[0])]);
    assert.deepEqual([after[1].status, after[1].chosen, after[1].rejected], ['chosen', before[1].rejected, before[1].chosen], 'key 2 swapped the responses');
    assert.deepEqual([after[4].status, after[4]['x-batch'], after[4].chosen], ['skipped', 7, before[4].chosen]);
    assert.deepEqual([after[5].status, rest(after[5])], ['tie', rest(before[5])]);
    for (const i of [0, 1, 4, 5]) {
      // The time as the generation panel writes it (to the second, UTC), and who judged (issue 17).
      assert.match(after[i].time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, `line ${i + 1} has the time of its judgement`);
      assert.equal(after[i].annotator, 'e2e writer', `line ${i + 1} names its annotator`);
    }

    // z undoes through VS Code (the view follows to the line), and so does Ctrl+Z: back to the original bytes.
    await view.locator('[data-testid="progress"]').click(); // the keys go to the webview
    await page.keyboard.press('z');
    await waitFor('z to undo the tie', async () => (await status.textContent()) === 'Undone: line 6.', 15_000);
    assert.match(await position.textContent(), /line 6$/);
    await page.keyboard.press('Control+Z');
    await waitFor('Ctrl+Z to undo the skip', async () => (await status.textContent()) === 'Undone: line 5.', 15_000);
    assert.match(await position.textContent(), /line 5$/);
    await page.keyboard.press('Control+S');
    await waitFor(
      'the undone lines saved',
      () => {
        saved = linesOf(readFileSync(file, 'utf8'));
        return saved[4] === original[4] && saved[5] === original[5];
      },
      15_000,
    );

    // e edits the focused response: the right one here, as one more line edit.
    await view.locator('[data-side="rejected"]').focus();
    await page.keyboard.press('e');
    const field = view.locator('[data-testid="edit-rejected"] textarea');
    await field.waitFor({ timeout: 10_000 });
    assert.equal(await field.inputValue(), 'storms i can handle .');
    await field.fill('storms ? i sleep through them .');
    await field.press('Enter');
    await waitFor(
      'the edited response',
      async () => (await view.locator('[data-testid="response-rejected"]').textContent()) === 'storms ? i sleep through them .',
      15_000,
    );
    await page.keyboard.press('Control+S');
    await waitFor(
      'the edit saved',
      () => linesOf(readFileSync(file, 'utf8'))[4] === original[4].replace('"storms i can handle ."', '"storms ? i sleep through them ."'),
      15_000,
    );

    // Filters: the invalid line is shown as such, with its line number and problem; then one persona.
    await view.locator('#filter-status').click();
    await view.locator('#filter-status').getByRole('option', { name: 'Invalid lines' }).click();
    const invalid = view.locator('[data-testid="invalid"]');
    await invalid.waitFor({ timeout: 15_000 });
    assert.match(await invalid.textContent(), /Line 4 of pairs\/review\.pairs\.jsonl is not a pair.*Line 4, column \d+: This line is not valid JSON/);
    await view.locator('#filter-status').click();
    await view.locator('#filter-status').getByRole('option', { name: 'All lines' }).click();
    await waitFor('all lines', async () => /^\d of 6 in this filter/.test(await position.textContent()), 15_000);
    await view.locator('#filter-persona').click();
    await view.locator('#filter-persona').getByRole('option', { name: 'dev-courier · 1' }).click();
    await waitFor('the dev-courier filter', async () => (await position.textContent()) === '1 of 1 in this filter · line 2', 15_000);
    assert.equal(await view.locator('[data-testid="response-chosen"]').textContent(), 'to the harbour , with the blue parcel .');

    // The palette's commands act on the annotator in front, like its keys.
    assert.match(linesOf(readFileSync(file, 'utf8'))[1], /"status": ?"chosen"/);
    await s.runCommand('PAL: Annotator: Skip (s)');
    await page.locator('.tab.dirty', { hasText: 'review.pairs.jsonl' }).waitFor({ timeout: 15_000 });
    // Browsing all lines, a judgement is not followed by "No pending pair is left in this filter."
    // (it was, at every key; issue 17): that note is for the pending filter.
    await waitFor('the skip noted', async () => /^Line 2: skipped\./.test((await status.textContent()) ?? ''), 15_000);
    assert.equal((await status.textContent()).trim(), 'Line 2: skipped.');
    await page.keyboard.press('Control+S');
    await waitFor('the skip saved', () => /"status": ?"skipped"/.test(linesOf(readFileSync(file, 'utf8'))[1]), 15_000);

    const background = () => view.locator('body').evaluate((b) => getComputedStyle(b).backgroundColor);
    const light = await background();
    await s.setTheme('Dark Modern');
    await waitFor('the dark theme', async () => (await background()) !== light, 30_000);
    await saveArtifacts('pair annotator (dark theme)', false);
    // High contrast: VS Code marks the webview's body, and the panel's borders come from its contrast colour.
    const dark = await background();
    await s.setTheme('Dark High Contrast');
    await waitFor('the high-contrast theme', async () => (await background()) !== dark, 30_000);
    assert.ok(await view.locator('body.vscode-high-contrast').count(), 'the webview knows the theme is high contrast');
    await saveArtifacts('pair annotator (high-contrast theme)', false);
    // Every key press and the open were answered in the extension (the times are printed, not judged).
    const keys = events('pair-annotator-key').filter((e) => e.lines === 7);
    assert.ok(keys.some((e) => e.action === 'judge-second') && keys.some((e) => e.action === 'undo') && keys.some((e) => e.action === 'edit'));
  });

  scenario(`the pair annotator on a ${LARGE_PAIRS.toLocaleString('en')}-pair file: open and key-press times from the extension`, async () => {
    await quickOpen('large.pairs.jsonl');
    const view = s.webview();
    const position = view.locator('[data-testid="position"]');
    await waitFor(
      'the large file in the annotator',
      async () => (await position.textContent().catch(() => '')) === `1 of ${LARGE_PAIRS} in this filter · line 1`,
      120_000,
    );
    const open = await waitFor('the open event', () => events('pair-annotator-open').find((e) => e.lines >= LARGE_PAIRS));
    assert.equal(open.pairs, LARGE_PAIRS);
    await position.click();
    for (let i = 0; i < 10; i++) {
      await page.keyboard.press(i % 2 ? 'ArrowRight' : '1');
      await waitFor(`key ${i + 1} answered`, () => events('pair-annotator-key').filter((e) => e.lines >= LARGE_PAIRS).length === i + 1, 30_000);
    }
    assert.equal(
      await view.locator('[data-testid="progress"]').textContent(),
      `5 of ${LARGE_PAIRS} judged · ${LARGE_PAIRS - 5} pending · 5 chosen · 0 tie · 0 skipped`,
    );
    const keys = events('pair-annotator-key').filter((e) => e.lines >= LARGE_PAIRS);
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(
      `pair annotator, ${open.lines} lines in real VS Code: index ${open.indexMs.toFixed(0)} ms, first view posted ${open.firstViewMs.toFixed(0)} ms, shown ${open.renderedMs.toFixed(0)} ms after the editor opened`,
    );
    for (const action of new Set(keys.map((k) => k.action))) {
      const of = keys.filter((k) => k.action === action);
      console.log(
        `pair annotator, ${action} key (${of.length}x, medians): key press to view on screen ${median(of.map((k) => k.keyMs)).toFixed(1)} ms (webview); in the extension ${median(of.map((k) => k.handledMs)).toFixed(1)} ms, and ${median(of.map((k) => k.renderedMs)).toFixed(1)} ms until the webview acknowledged`,
      );
    }
  });
});
