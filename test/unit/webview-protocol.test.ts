import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ENGINE_INFO_ACTIONS, parseFromEngineInfoView } from '../../webview/protocol';

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
