/**
 * Messages between the extension and its webviews, shared by both sides (as vscode-hexeditor does
 * with its shared protocol). A webview is untrusted territory: every message from it is checked by
 * `parseFromWebview` before the extension acts on it.
 */
import type { EngineInfo } from '../src/engine/protocol';

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

/** The comparison view to the extension: only that it is ready for the comparison. */
export function parseFromCompareView(message: unknown): { readonly type: 'ready' } | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  return (message as { type?: unknown }).type === 'ready' && Object.keys(message).length === 1 ? { type: 'ready' } : undefined;
}

// ---------------------------------------------------------------------------------------------
// The persona editor (a custom text editor on *.persona.yaml): the webview shows a form over the
// file and asks for edits; the extension makes them in the text document (so undo, save and the
// text view all work) and posts the document back after every change, whoever made it.

/** A problem, for the form: where it is in the text and what it says. */
export interface PersonaProblem {
  readonly line: number;
  readonly column: number;
  readonly severity: 'error' | 'warning' | 'info';
  readonly code: string;
  readonly message: string;
}

export type ToPersonaEditor =
  | {
      readonly type: 'document';
      /** The persona as parsed, or null when the text cannot be read as one (then `error` says why). */
      readonly persona: Readonly<Record<string, unknown>> | null;
      readonly problems: readonly PersonaProblem[];
      readonly error?: string;
    }
  /** "Try it": the reply streaming in, then the persona fact the model selected. */
  | { readonly type: 'tryIt'; readonly state: 'started'; readonly model: string }
  | { readonly type: 'tryIt'; readonly state: 'text'; readonly piece: string }
  | {
      readonly type: 'tryIt';
      readonly state: 'done';
      readonly selected: number;
      readonly selectedText: string;
      readonly selectionSource: string;
      readonly response: string;
    }
  | { readonly type: 'tryIt'; readonly state: 'error'; readonly message: string };

export const PERSONA_FIELDS = ['id', 'name', 'description', 'style', 'facts', 'tags', 'examples'] as const;
export type PersonaField = (typeof PERSONA_FIELDS)[number];

/** A JSON path into the persona: a field, or one item of `facts` / `tags`. */
export type PersonaPath = readonly [PersonaField] | readonly ['facts' | 'tags', number];

export type FromPersonaEditor =
  | { readonly type: 'ready' }
  /** Set a field (null removes an optional one) or one fact/tag. */
  | { readonly type: 'edit'; readonly path: PersonaPath; readonly value: unknown }
  | { readonly type: 'openText' }
  /** "Try it": select then generate with this persona's facts, answering `message`. */
  | { readonly type: 'tryIt'; readonly message: string };

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
const isExamples = (v: unknown): boolean =>
  Array.isArray(v) &&
  v.every(
    (e) =>
      typeof e === 'object' &&
      e !== null &&
      Array.isArray((e as { turns?: unknown }).turns) &&
      (e as { turns: unknown[] }).turns.every(
        (t) =>
          typeof t === 'object' && t !== null && typeof (t as { speaker?: unknown }).speaker === 'string' && typeof (t as { text?: unknown }).text === 'string',
      ),
  );

export function parseFromPersonaEditor(message: unknown): FromPersonaEditor | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const m = message as Record<string, unknown>;
  const keys = Object.keys(m);
  if ((m.type === 'ready' || m.type === 'openText') && keys.length === 1) return { type: m.type };
  if (m.type === 'tryIt' && keys.length === 2 && typeof m.message === 'string' && m.message.trim() !== '' && m.message.length <= 2000)
    return { type: 'tryIt', message: m.message };
  if (m.type !== 'edit' || keys.length !== 3 || !Array.isArray(m.path)) return undefined;
  const [field, index] = m.path as unknown[];
  if (typeof field !== 'string' || !(PERSONA_FIELDS as readonly string[]).includes(field)) return undefined;
  const value = m.value;
  if (m.path.length === 2) {
    if ((field !== 'facts' && field !== 'tags') || !Number.isInteger(index) || (index as number) < 0 || typeof value !== 'string') return undefined;
    return { type: 'edit', path: [field, index as number], value };
  }
  if (m.path.length !== 1) return undefined;
  const ok =
    field === 'id' || field === 'name'
      ? typeof value === 'string'
      : field === 'description' || field === 'style'
        ? typeof value === 'string' || value === null
        : field === 'facts'
          ? isStringList(value)
          : field === 'tags'
            ? isStringList(value) || value === null
            : isExamples(value) || value === null;
  return ok ? { type: 'edit', path: [field as PersonaField], value } : undefined;
}
