/**
 * Messages between the persona editor (a custom text editor on *.persona.yaml,
 * src/extension/personaEditor.ts) and its webview: the webview shows a form over the file and asks
 * for edits; the extension makes them in the text document (so undo, save and the text view all
 * work) and posts the document back after every change, whoever made it. Every message from the
 * webview is checked by `parseFromPersonaEditor` first.
 */

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
  /** "Try it": which model answers and how it decodes (sent when the view opens and when a setting changes). */
  | { readonly type: 'tryIt'; readonly state: 'model'; readonly model: string; readonly decoding: string }
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
