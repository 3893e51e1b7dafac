/** Messages between the run comparison panel (src/extension/comparePanel.ts) and its webview. */
import type { ComparisonResult } from '../../src/engine/protocol';

/** The extension to the comparison view: the two reports, compared. */
export type ToCompareView = { readonly type: 'comparison'; readonly comparison: ComparisonResult };

/** The comparison view to the extension: only that it is ready for the comparison. */
export function parseFromCompareView(message: unknown): { readonly type: 'ready' } | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  return (message as { type?: unknown }).type === 'ready' && Object.keys(message).length === 1 ? { type: 'ready' } : undefined;
}
