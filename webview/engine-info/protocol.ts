/**
 * Messages between the engine-info panel (src/extension/engineInfoPanel.ts) and its webview. A
 * webview is untrusted territory: every message from it is checked by `parseFromEngineInfoView`
 * before the extension acts on it.
 */
import type { EngineInfo } from '../../src/engine/protocol';

export type EngineInfoPanelState = 'loading' | 'ready' | 'error';

/** Extension to the engine-info webview. */
export type ToEngineInfoView =
  | { readonly type: 'info'; readonly info: EngineInfo; readonly engineState: string }
  | { readonly type: 'loading'; readonly what: string }
  | { readonly type: 'error'; readonly message: string };

export const ENGINE_INFO_ACTIONS = ['refresh', 'selectPython', 'showLog', 'restartEngine', 'copy'] as const;
export type EngineInfoAction = (typeof ENGINE_INFO_ACTIONS)[number];

/** Engine-info webview to the extension. */
export type FromEngineInfoView = { readonly type: 'ready' } | { readonly type: 'action'; readonly action: EngineInfoAction };

export function parseFromEngineInfoView(message: unknown): FromEngineInfoView | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const m = message as Record<string, unknown>;
  const keys = Object.keys(m);
  if (m.type === 'ready' && keys.length === 1) return { type: 'ready' };
  if (m.type === 'action' && keys.length === 2 && typeof m.action === 'string' && (ENGINE_INFO_ACTIONS as readonly string[]).includes(m.action)) {
    return { type: 'action', action: m.action as EngineInfoAction };
  }
  return undefined;
}
