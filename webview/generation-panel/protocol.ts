/**
 * Messages between the extension and the generation panel. The extension keeps what was generated:
 * the panel names samples by index when it saves a pair, so a pair holds only text the model wrote.
 * Every message from the panel is checked field by field by `parseFromGenerationPanel`.
 */
import { INTERACTIVE_DECODING } from '../../src/core/decoding';

/** A persona file of the workspace, as the panel lists it. */
export interface PanelPersona {
  /** The file's URI: how the panel names it back. */
  readonly key: string;
  /** Workspace-relative path. */
  readonly file: string;
  readonly id?: string;
  readonly name?: string;
  readonly facts: readonly string[];
  /** Why it cannot be used (the file does not read as a persona). */
  readonly error?: string;
}

export interface Decoding {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly maxNewTokens: number;
  /** 1: off; above 1, tokens the response already holds are less likely. */
  readonly repetitionPenalty: number;
  /** 0: off; above 0, no n-gram of this size occurs twice in a response. */
  readonly noRepeatNgramSize: number;
  /** How many responses to sample (1–8), with seeds seed, seed + 1, … */
  readonly samples: number;
  readonly seed: number;
}

export const DECODING_LIMITS = {
  temperature: { min: 0, max: 2, integer: false },
  topK: { min: 0, max: 1000, integer: true },
  topP: { min: 0.01, max: 1, integer: false },
  maxNewTokens: { min: 1, max: 256, integer: true },
  repetitionPenalty: { min: 1, max: 3, integer: false },
  noRepeatNgramSize: { min: 0, max: 10, integer: true },
  samples: { min: 1, max: 8, integer: true },
  seed: { min: 0, max: 2 ** 31 - 1, integer: true },
} as const satisfies Record<keyof Decoding, { min: number; max: number; integer: boolean }>;

export const DEFAULT_DECODING: Decoding = {
  temperature: 0.8,
  topK: 50,
  topP: 0.95,
  maxNewTokens: 40,
  // As Try it and the recipes' evaluations decode (core/decoding.ts), so a small model does not loop.
  repetitionPenalty: INTERACTIVE_DECODING.repetitionPenalty,
  noRepeatNgramSize: INTERACTIVE_DECODING.noRepeatNgramSize,
  samples: 2,
  seed: 1,
};

export const MAX_TURNS = 40;
export const MAX_TURN_LENGTH = 2000;

export type ToGenerationPanel =
  /** The workspace's persona files; `select` picks these (by key) in the list. */
  | {
      readonly type: 'personas';
      readonly personas: readonly PanelPersona[];
      readonly model: string;
      readonly modelLabel: string;
      readonly select?: readonly string[];
    }
  | {
      readonly type: 'generation';
      readonly state: 'started';
      readonly generation: number;
      readonly seeds: readonly number[];
      readonly facts: readonly string[];
    }
  | { readonly type: 'generation'; readonly state: 'finished'; readonly generation: number; readonly stopped: boolean }
  | { readonly type: 'sample'; readonly generation: number; readonly index: number; readonly state: 'text'; readonly piece: string }
  | {
      readonly type: 'sample';
      readonly generation: number;
      readonly index: number;
      readonly state: 'done';
      readonly response: string;
      readonly selected: number;
      readonly selectedText: string;
      readonly selectionSource: string;
    }
  | { readonly type: 'sample'; readonly generation: number; readonly index: number; readonly state: 'error'; readonly message: string }
  | { readonly type: 'saved'; readonly file: string; readonly line: number }
  /** Something the writer asked for could not be done, and why. */
  | { readonly type: 'problem'; readonly message: string };

export type FromGenerationPanel =
  | { readonly type: 'ready' }
  | { readonly type: 'stop' }
  | { readonly type: 'generate'; readonly personas: readonly string[]; readonly history: readonly string[]; readonly decoding: Decoding }
  /** Save samples `chosen` and `rejected` of generation `generation` as a preference pair. */
  | { readonly type: 'save'; readonly generation: number; readonly chosen: number; readonly rejected: number };

const hasKeys = (m: Record<string, unknown>, keys: readonly string[]) => {
  const own = Object.keys(m);
  return own.length === keys.length && keys.every((k) => own.includes(k));
};
const isIndex = (v: unknown, below: number): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) < below;

function parseDecoding(v: unknown): Decoding | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const d = v as Record<string, unknown>;
  const fields = Object.keys(DECODING_LIMITS) as (keyof Decoding)[];
  if (!hasKeys(d, fields)) return undefined;
  for (const k of fields) {
    const x = d[k];
    const { min, max, integer } = DECODING_LIMITS[k];
    if (typeof x !== 'number' || !Number.isFinite(x) || x < min || x > max || (integer && !Number.isInteger(x))) return undefined;
  }
  return Object.fromEntries(fields.map((k) => [k, d[k]])) as unknown as Decoding;
}

export function parseFromGenerationPanel(message: unknown): FromGenerationPanel | undefined {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return undefined;
  const m = message as Record<string, unknown>;
  if ((m.type === 'ready' || m.type === 'stop') && hasKeys(m, ['type'])) return { type: m.type };
  if (m.type === 'save' && hasKeys(m, ['type', 'generation', 'chosen', 'rejected'])) {
    if (
      !isIndex(m.generation, Number.MAX_SAFE_INTEGER) ||
      !isIndex(m.chosen, DECODING_LIMITS.samples.max) ||
      !isIndex(m.rejected, DECODING_LIMITS.samples.max) ||
      m.chosen === m.rejected
    )
      return undefined;
    return { type: 'save', generation: m.generation, chosen: m.chosen, rejected: m.rejected };
  }
  if (m.type !== 'generate' || !hasKeys(m, ['type', 'personas', 'history', 'decoding'])) return undefined;
  const { personas, history } = m;
  if (!Array.isArray(personas) || personas.length === 0 || personas.length > 20) return undefined;
  if (!personas.every((p) => typeof p === 'string' && p.length > 0 && p.length <= 2000) || new Set(personas).size !== personas.length) return undefined;
  // The turns alternate from the user's first one, and the character answers the user's last one.
  if (!Array.isArray(history) || history.length % 2 !== 1 || history.length > MAX_TURNS) return undefined;
  if (!history.every((t) => typeof t === 'string' && t.trim() !== '' && t.length <= MAX_TURN_LENGTH)) return undefined;
  const decoding = parseDecoding(m.decoding);
  return decoding ? { type: 'generate', personas: [...personas], history: [...history], decoding } : undefined;
}
