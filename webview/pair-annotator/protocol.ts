/**
 * Messages between the extension and the pair annotator's webview. The extension holds the
 * document, its index and where the writer is; the webview shows one pair and asks for actions.
 * Only the pair on screen and counts cross over, never the file, so a 100,000-pair file costs the
 * webview nothing. Every message from the webview is checked by `parseFromPairAnnotator`.
 */
import { JUDGEMENTS, STATUS_FILTERS, type IndexCounts, type Judgement, type LineView, type PairFilter, type ResponseSide } from '../../src/core/annotator';

export type { AnnotatorPersona, IndexCounts, Judgement, LineView, PairFilter, ResponseSide, StatusFilter } from '../../src/core/annotator';

export type ToPairAnnotator = {
  readonly type: 'view';
  /** Numbers each view, so the webview can say when it has shown it. */
  readonly seq: number;
  readonly file: string;
  /** The line on screen; null when nothing matches the filter. */
  readonly item: LineView | null;
  readonly filter: PairFilter;
  /** The item's 0-based place among the filter's lines (-1: it does not match the filter), and how many match. */
  readonly position: { readonly index: number; readonly count: number };
  readonly counts: IndexCounts;
  /** What just happened, for the status line (read out by screen readers). */
  readonly note: string;
  /** A pending pair's responses in a seeded left/right order (palStudio.annotator.blind); null: the file's order. */
  readonly blind: { readonly seed: number } | null;
};

export const MOVES = ['next', 'previous', 'first', 'last'] as const;
export type Move = (typeof MOVES)[number];

export type FromPairAnnotator =
  | { readonly type: 'ready' }
  /** View `seq` is on screen; `keyMs`: milliseconds since the key press it answers, when there was one (for the test report). */
  | { readonly type: 'rendered'; readonly seq: number; readonly keyMs: number | null }
  /** `line`: the 1-based line the writer saw; a judgement for any other line is stale and ignored. */
  | { readonly type: 'judge'; readonly line: number; readonly judgement: Judgement }
  | { readonly type: 'edit'; readonly line: number; readonly side: ResponseSide; readonly text: string }
  | { readonly type: 'undo' }
  | { readonly type: 'redo' }
  | { readonly type: 'move'; readonly to: Move }
  | { readonly type: 'filter'; readonly filter: PairFilter }
  | { readonly type: 'openText'; readonly line: number };

/** A response longer than this is not a response (it keeps one line edit reasonable). */
export const MAX_RESPONSE_LENGTH = 100_000;

const isLine = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 1;
const isOneOf = <T extends string>(list: readonly T[], v: unknown): v is T => typeof v === 'string' && (list as readonly string[]).includes(v);
const isChoice = (v: unknown): v is string | null => v === null || (typeof v === 'string' && v.length <= 200);
const hasKeys = (m: Record<string, unknown>, ...keys: string[]) => {
  const own = Object.keys(m);
  return own.length === keys.length + 1 && keys.every((k) => own.includes(k));
};

function parseFilter(v: unknown): PairFilter | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const f = v as Record<string, unknown>;
  if (Object.keys(f).length !== 3 || !isOneOf(STATUS_FILTERS, f.status) || !isChoice(f.persona) || !isChoice(f.origin)) return undefined;
  return { status: f.status, persona: f.persona, origin: f.origin };
}

export function parseFromPairAnnotator(message: unknown): FromPairAnnotator | undefined {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return undefined;
  const m = message as Record<string, unknown>;
  switch (m.type) {
    case 'ready':
    case 'undo':
    case 'redo':
      return hasKeys(m) ? { type: m.type } : undefined;
    case 'rendered':
      return hasKeys(m, 'seq', 'keyMs') &&
        Number.isSafeInteger(m.seq) &&
        (m.seq as number) >= 0 &&
        (m.keyMs === null || (typeof m.keyMs === 'number' && Number.isFinite(m.keyMs) && m.keyMs >= 0))
        ? { type: 'rendered', seq: m.seq as number, keyMs: m.keyMs as number | null }
        : undefined;
    case 'judge':
      return hasKeys(m, 'line', 'judgement') && isLine(m.line) && isOneOf(JUDGEMENTS, m.judgement)
        ? { type: 'judge', line: m.line, judgement: m.judgement }
        : undefined;
    case 'edit':
      return hasKeys(m, 'line', 'side', 'text') &&
        isLine(m.line) &&
        isOneOf(['chosen', 'rejected'] as const, m.side) &&
        typeof m.text === 'string' &&
        m.text.length <= MAX_RESPONSE_LENGTH
        ? { type: 'edit', line: m.line, side: m.side, text: m.text }
        : undefined;
    case 'move':
      return hasKeys(m, 'to') && isOneOf(MOVES, m.to) ? { type: 'move', to: m.to } : undefined;
    case 'filter': {
      const filter = hasKeys(m, 'filter') ? parseFilter(m.filter) : undefined;
      return filter ? { type: 'filter', filter } : undefined;
    }
    case 'openText':
      return hasKeys(m, 'line') && isLine(m.line) ? { type: 'openText', line: m.line } : undefined;
    default:
      return undefined;
  }
}
