import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseFromCompareView } from '../../webview/compare/protocol';
import { ENGINE_INFO_ACTIONS, parseFromEngineInfoView } from '../../webview/engine-info/protocol';
import { parseFromPersonaEditor } from '../../webview/persona-editor/protocol';

test('well-formed messages from the engine-info view are accepted', () => {
  assert.deepEqual(parseFromEngineInfoView({ type: 'ready' }), { type: 'ready' });
  for (const action of ENGINE_INFO_ACTIONS) {
    assert.deepEqual(parseFromEngineInfoView({ type: 'action', action }), { type: 'action', action });
  }
});

test('anything else from a webview is rejected, not acted on', () => {
  const bad: unknown[] = [
    null,
    undefined,
    'ready',
    42,
    [],
    {},
    { type: 'action' },
    { type: 'action', action: 'runShell' },
    { type: 'action', action: 'refresh', command: 'rm -rf /' },
    { type: 'ready', extra: 1 },
    { type: 'action', action: ['refresh'] },
    { type: 'Ready' },
  ];
  for (const message of bad) assert.equal(parseFromEngineInfoView(message), undefined, JSON.stringify(message));
});

test('persona editor messages: only edits of known fields with values of the right type get through', () => {
  assert.deepEqual(parseFromPersonaEditor({ type: 'ready' }), { type: 'ready' });
  assert.deepEqual(parseFromPersonaEditor({ type: 'openText' }), { type: 'openText' });
  assert.deepEqual(parseFromPersonaEditor({ type: 'edit', path: ['name'], value: 'Mara' }), { type: 'edit', path: ['name'], value: 'Mara' });
  assert.deepEqual(parseFromPersonaEditor({ type: 'edit', path: ['facts', 2], value: 'i bake .' }), { type: 'edit', path: ['facts', 2], value: 'i bake .' });
  assert.deepEqual(parseFromPersonaEditor({ type: 'edit', path: ['description'], value: null }), { type: 'edit', path: ['description'], value: null });
  assert.deepEqual(parseFromPersonaEditor({ type: 'edit', path: ['facts'], value: ['a', 'b'] }), { type: 'edit', path: ['facts'], value: ['a', 'b'] });
  const examples = [{ turns: [{ speaker: 'user', text: 'hi' }] }];
  assert.deepEqual(parseFromPersonaEditor({ type: 'edit', path: ['examples'], value: examples }), { type: 'edit', path: ['examples'], value: examples });
  for (const bad of [
    null,
    'edit',
    { type: 'ready', extra: 1 },
    { type: 'edit', path: ['__proto__'], value: 'x' },
    { type: 'edit', path: ['extensions'], value: {} },
    { type: 'edit', path: ['extensions'], value: null },
    { type: 'edit', path: ['__proto__'], value: [] },
    { type: 'edit', path: ['name'], value: 3 },
    { type: 'edit', path: ['name'], value: null },
    { type: 'edit', path: ['facts'], value: 'one fact' },
    { type: 'edit', path: ['facts', -1], value: 'x' },
    { type: 'edit', path: ['facts', 1.5], value: 'x' },
    { type: 'edit', path: ['name', 0], value: 'x' },
    { type: 'edit', path: ['facts', 0, 'x'], value: 'x' },
    { type: 'edit', path: ['examples'], value: [{ turns: [{ speaker: 1, text: 'hi' }] }] },
    { type: 'edit', path: ['facts'], value: ['a'], more: true },
  ]) {
    assert.equal(parseFromPersonaEditor(bad), undefined, JSON.stringify(bad));
  }
});

test('the comparison view may only say it is ready', () => {
  assert.deepEqual(parseFromCompareView({ type: 'ready' }), { type: 'ready' });
  for (const bad of [null, 'ready', {}, { type: 'ready', extra: 1 }, { type: 'compare' }, []])
    assert.equal(parseFromCompareView(bad), undefined, JSON.stringify(bad));
});
