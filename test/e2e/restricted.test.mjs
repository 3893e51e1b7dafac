// Restricted Mode: in a workspace the user has not trusted, PAL Studio starts no Python and no
// training, while authoring (the persona editor, its undo, "Try it" on the embedded ONNX model)
// keeps working; trusting the workspace turns training on without a reload.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe } from 'node:test';
import { studio, waitFor } from './harness.mjs';

const s = studio({ workspaceTrust: true, settings: { 'security.workspace.trust.enabled': true } });
const { events, quickOpen, runCommand, scenario } = s;
let page, workspace;

describe('PAL Studio in Restricted Mode (an untrusted workspace)', { timeout: 300_000 }, () => {
  before(async () => {
    await s.open();
    ({ page, workspace } = s);
    // code-server opens an untrusted folder in Restricted Mode straight away (no trust dialog).
    await page.locator('.statusbar-item', { hasText: 'Restricted Mode' }).waitFor({ timeout: 60_000 });
  });

  after(() => s.close());

  scenario('the engine starts but runs no Python, and says why', async () => {
    const info = await waitFor('an engine/info answer', () => events('engine-info')[0]);
    assert.equal(info.info.python.found, false);
    assert.deepEqual(info.info.python.tried, [], 'no interpreter was even probed');
    assert.match(info.info.python.reason, /Restricted Mode/);
  });

  scenario('"PAL: Start Alignment Run" is refused with a clear message, and nothing is written', async () => {
    await runCommand('PAL: Start Alignment Run');
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'trust the workspace first' });
    await toast.first().waitFor({ timeout: 30_000 });
    assert.match(await toast.first().textContent(), /Training runs need Python, which PAL Studio does not start in Restricted Mode/);
    assert.equal(existsSync(path.join(workspace, 'runs')), false, 'no run folder was created');
    await page.keyboard.press('Escape');
  });

  scenario('authoring still works: the persona editor edits, undoes, saves, and "Try it" answers with the embedded model', async () => {
    const file = path.join(workspace, 'personas', 'dev-the-night-courier.persona.yaml');
    const original = readFileSync(file, 'utf8');
    await quickOpen('dev-the-night-courier.persona.yaml');
    const view = s.webview();
    await view.locator('ol.facts > li').first().waitFor({ timeout: 30_000 });
    const fact = view.locator('[data-path="facts.0"] input');
    const first = await fact.inputValue();

    // An edit, then undo from the keyboard (VS Code's own undo on the text document): back to the original.
    await fact.fill(`${first} (edited)`);
    await fact.press('Enter');
    const tab = page.locator('.tab', { hasText: 'dev-the-night-courier.persona.yaml' });
    await page.locator('.tab.dirty', { hasText: 'dev-the-night-courier.persona.yaml' }).waitFor({ timeout: 15_000 });
    await tab.click();
    await page.keyboard.press('Control+Z');
    await waitFor('the form to show the undone fact', async () => (await fact.inputValue()) === first, 15_000);
    await page.keyboard.press('Control+S');
    await waitFor(
      'the tab to be clean',
      async () => (await page.locator('.tab.dirty', { hasText: 'dev-the-night-courier.persona.yaml' }).count()) === 0,
      15_000,
    );
    assert.equal(readFileSync(file, 'utf8'), original, 'edit + undo + save leaves the file exactly as it was');

    // Redo brings the edit back, and saving writes it.
    await page.keyboard.press('Control+Shift+Z');
    await waitFor('the form to show the redone fact', async () => (await fact.inputValue()) === `${first} (edited)`, 15_000);
    await page.keyboard.press('Control+S');
    await waitFor('the saved edit', () => readFileSync(file, 'utf8').includes(`${first} (edited)`), 15_000);

    // No model setting: "Try it" answers with the default model embedded in the extension (ONNX,
    // no Python), and says so by name, not by the extension's folder (issue 17).
    const modelLine = view.locator('[data-testid="try-model"]');
    await modelLine.filter({ hasText: 'Answering:' }).waitFor({ timeout: 30_000 });
    // And how it decodes: by default as the demo does (beam search, a reply that uses the fact preferred).
    assert.match(await modelLine.textContent(), /^Answering: pal-default, embedded; beam search of 3, a reply that uses the fact preferred \(/);
    assert.equal((await view.locator('.try-it vscode-button').textContent()).trim(), 'Ask', 'the button says what it does');
    const message = view.locator('[data-path="try.message"] input');
    await message.fill('where are you going tonight ?');
    await message.press('Enter');
    const used = view.locator('[data-testid="try-selected"]', { hasText: 'Persona fact used:' });
    await used.waitFor({ timeout: 60_000 });
    assert.match(await used.textContent(), /\(selected by the model\)/);
    // The reply is on screen when it is done (it was below the fold), and decoded as a run's
    // evaluation decodes: no 3 words twice (the embedded model looped: "i have a dog , but i have a dog").
    const reply = view.locator('[data-testid="try-reply"]');
    const box = await reply.evaluate((el) => {
      const r = el.getBoundingClientRect();
      return { top: r.top, bottom: r.bottom, height: window.innerHeight };
    });
    // Within a pixel: at the end of the page the scroll stops at a whole pixel while the layout has
    // fractions (seen: bottom 750.34 in a view 750 high).
    assert.ok(box.top >= 0 && box.bottom <= box.height + 1, `the reply is scrolled into view: ${JSON.stringify(box)}`);
    const words = (await reply.textContent()).toLowerCase().split(/\s+/).filter(Boolean);
    const trigrams = words.slice(2).map((w, i) => `${words[i]} ${words[i + 1]} ${w}`);
    assert.equal(new Set(trigrams).size, trigrams.length, `no 3-gram twice: ${words.join(' ')}`);
    // The fact it used is marked in words, not with a second focus ring.
    const marked = view.locator('ol.facts > li.selected');
    if ((await marked.count()) > 0) assert.equal(await marked.locator('[data-testid="fact-used"]').isVisible(), true);
  });

  scenario('trusting the workspace turns Python on without a reload', async () => {
    const before = events('engine-info').length;
    await runCommand('Workspaces: Manage Workspace Trust');
    const trust = page.locator('.workspace-trust-editor .monaco-button', { hasText: /^Trust$/ }).first();
    await trust.waitFor({ timeout: 30_000 });
    await trust.click();
    // This VS Code shows the trust editor in a modal editor over the workbench, and it stays open
    // after the click: while it is there the command palette never shows or takes no typing (the
    // CI failure of issue 18). Its own close action closes it (Escape reaches it only when it has
    // the focus).
    await page.locator('.modal-editor-part a.action-label[aria-label^="Close Modal Editor"]').click();
    await page.locator('.monaco-modal-editor-block').waitFor({ state: 'hidden', timeout: 15_000 });
    // The engine hears the new settings and searches for Python again; ask for its report. Trust
    // also restarts the extension host, and in clean-clone CI runs the workbench stayed inert for
    // a while after it (the palette opened but took no typing): try the palette again until it does.
    await waitFor(
      'the command palette to take "PAL: Show Engine Info" after trust',
      async () => {
        try {
          await runCommand('PAL: Show Engine Info');
          return true;
        } catch {
          await page.keyboard.press('Escape');
          return false;
        }
      },
      90_000,
    );
    const info = await waitFor(
      'Python found after trust',
      () =>
        events('engine-info')
          .slice(before)
          .find((e) => e.info.python.found)?.info,
      60_000,
    );
    assert.ok(info.python.tried.some((t) => t.outcome === 'usable'));
  });
});
