// The pair annotator's blind order (issue 17): pending pairs show their responses as A and B in a
// seeded left/right order, not "chosen in the file now" on the left; judging A or B leaves the file
// holding the better one as chosen. The default setting.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe } from 'node:test';
import { studio, waitFor } from './harness.mjs';

// Twelve pending pairs whose chosen response says so: a seeded coin per pair puts it left or right.
const PAIRS = Array.from({ length: 12 }, (_, i) =>
  JSON.stringify({
    prompt: `question ${i} ?`,
    chosen: `chosen answer ${i} .`,
    rejected: `rejected answer ${i} .`,
    persona_ids: ['mara-lighthouse'],
    status: 'pending',
  }),
);

const s = studio({
  prepare(ws) {
    writeFileSync(path.join(ws, 'pairs', 'blind.pairs.jsonl'), `${PAIRS.join('\n')}\n`);
  },
});
const { events, quickOpen, scenario, saveArtifacts } = s;
let workspace;

describe('the pair annotator judges blind by default', { timeout: 300_000 }, () => {
  before(async () => {
    await s.open();
    ({ workspace } = s);
  });

  after(() => s.close());

  scenario('pending pairs show A and B in a seeded order, and the better one ends up chosen in the file', async () => {
    const file = path.join(workspace, 'pairs', 'blind.pairs.jsonl');
    await waitFor('the extension to activate', () => events('activated')[0]);
    await quickOpen('blind.pairs.jsonl');
    const view = s.webview();
    const position = view.locator('[data-testid="position"]');
    await waitFor('the first pending pair', async () => /^1 of 12 in this filter/.test((await position.textContent()) ?? ''), 30_000);
    await view.locator('[data-testid="order"]', { hasText: 'A blind judgement' }).waitFor({ timeout: 15_000 });
    assert.deepEqual(
      (await view.locator('.annotator-response h2').allTextContents()).map((t) => t.trim()),
      ['1 Response A', '2 Response B'],
      'no side says which one the file holds as chosen',
    );
    await saveArtifacts('pair annotator, blind (light theme)', false);
    // The blind view in the dark and high-contrast themes too.
    const background = () => view.locator('body').evaluate((b) => getComputedStyle(b).backgroundColor);
    const light = await background();
    await s.setTheme('Dark Modern');
    await waitFor('the dark theme', async () => (await background()) !== light, 30_000);
    await saveArtifacts('pair annotator, blind (dark theme)', false);
    const dark = await background();
    await s.setTheme('Dark High Contrast');
    await waitFor('the high-contrast theme', async () => (await background()) !== dark, 30_000);
    await saveArtifacts('pair annotator, blind (high-contrast theme)', false);

    // Judge every pair "A is better" (key 1) and record which text was A; the file must then hold
    // that text as chosen, wherever the seeded order put it.
    const shownA = [];
    let leftWasRejected = 0;
    for (let i = 0; i < PAIRS.length; i++) {
      await waitFor(`pair ${i + 1} on screen`, async () => new RegExp(`line ${i + 1}$`).test((await position.textContent()) ?? ''), 15_000);
      const left = view.locator('.annotator-response[data-place="left"]');
      shownA.push((await left.locator('.annotator-text').textContent()).trim());
      if ((await left.getAttribute('data-side')) === 'rejected') leftWasRejected++;
      await view.locator('[data-testid="progress"]').click(); // the keys go to the webview
      await s.page.keyboard.press('1');
      if (i < PAIRS.length - 1)
        await waitFor(`pair ${i + 2} after the judgement`, async () => new RegExp(`line ${i + 2}$`).test((await position.textContent()) ?? ''), 15_000);
    }
    // The coin fell both ways (12 pairs: all on one side would be a 1-in-2,048 chance, and this seed is fixed).
    assert.ok(
      leftWasRejected > 0 && leftWasRejected < PAIRS.length,
      `the file's rejected response was on the left ${leftWasRejected} times of ${PAIRS.length}`,
    );
    await s.page.keyboard.press('Control+S');
    const saved = await waitFor(
      'every judgement saved',
      () => {
        const lines = readFileSync(file, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
        return lines.every((l) => l.status === 'chosen') ? lines : undefined;
      },
      30_000,
    );
    saved.forEach((line, i) => assert.equal(line.chosen, shownA[i], `line ${i + 1}: A was judged better, so A is chosen`));
  });
});
