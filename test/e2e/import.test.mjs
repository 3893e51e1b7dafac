// "PAL: Import Personas or Dialogues…" in a real VS Code: the palette, the kind of file, the open
// and save dialogs (code-server's own, typed into like a person would), then what the notification
// says and what the file holds. The import labels each response with the persona sentence it uses,
// by shared words and then by meaning (all-MiniLM-L6-v2, which set-up fetches), and says so.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe } from 'node:test';
import { studio, waitFor } from './harness.mjs';

// One ConvAI2 episode: the first reply shares words with a persona sentence, the second uses one
// only in meaning ("hospital" for "nurse"), the third uses none.
const EPISODE = [
  '1 your persona: i have two dogs.',
  '2 your persona: i work as a nurse.',
  '3 your persona: i like to ski.',
  '4 hi ! how are you ?\ti am good , just back from walking my two dogs .',
  '5 nice ! what do you do for a living ?\tmy job keeps me busy at the hospital all night .',
  '6 sounds tiring . i am a teacher .\tthat is great . what grade ?',
].join('\n');
const SOURCE = 'convai2_valid_mini.txt';
const OUT = 'convai2_valid_mini.dialogues.jsonl';

const s = studio({ prepare: (ws) => writeFileSync(path.join(ws, SOURCE), `${EPISODE}\n`) });
const { scenario } = s;

describe('importing dialogues through the palette (code-server)', { timeout: 180_000 }, () => {
  before(async () => {
    await s.open();
    await waitFor('the extension to activate', () => s.events('activated')[0]);
  });
  after(() => s.close());

  scenario('a ConvAI2 file becomes a dialogues file, each reply labelled with the persona sentence it uses', async () => {
    const { page, workspace } = s;
    await page.keyboard.press('F1');
    await s.pick('>PAL: Import Personas', 'Import Personas or Dialogues');
    await s.pick('PERSONA-CHAT', 'PERSONA-CHAT / ConvAI2');
    // The open dialog: a path box (code-server's simple file dialog). It fills in the workspace's
    // folder once it has read it, over anything typed before (seen in CI: the folder was then
    // accepted, "Please select a file."), so the file's path is typed after that, and checked.
    const input = page.locator('.quick-input-widget input[type="text"]');
    const source = path.join(workspace, SOURCE);
    const value = () => input.inputValue().catch(() => '');
    await waitFor('the open dialog showing the workspace', async () => (await value()) === `${workspace}/`, 15_000);
    await input.fill(source);
    await waitFor('the path typed into the open dialog', async () => (await value()) === source, 15_000);
    await page.keyboard.press('Enter');
    // The save dialog offers <name>.dialogues.jsonl beside it, in the workspace: taken as offered.
    await waitFor('the save dialog offering the dialogues file', async () => (await value()).endsWith(OUT), 15_000);
    await page.keyboard.press('Enter');

    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'Imported 3 examples' });
    await toast.waitFor({ timeout: 60_000 });
    const message = await toast.innerText();
    assert.match(message, /split valid, from the file name/);
    assert.match(message, new RegExp(`into ${OUT.replace(/\./g, '\\.')}`));
    assert.match(message, /Persona sentences labelled by shared words, then by meaning \(1 by meaning\)/);

    const file = path.join(workspace, OUT);
    assert.ok(existsSync(file), `${OUT} was written`);
    const examples = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      examples.map((e) => e.persona_index),
      [0, 1, -1],
      'two dogs by shared words, the hospital by meaning, none for the third',
    );
    assert.deepEqual(examples[0].personas, ['i have two dogs.', 'i work as a nurse.', 'i like to ski.']);
    // "Open" shows the file it wrote.
    await toast.getByRole('button', { name: 'Open' }).click();
    await page.locator('.tab.active', { hasText: OUT }).waitFor({ timeout: 15_000 });
  });
});
