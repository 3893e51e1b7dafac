/**
 * The pair annotator's logic, free of VS Code: an index of a `*.pairs.jsonl` document's lines (for
 * filters, navigation and progress), kept up to date line by line as the document changes, and the
 * new text of one line for each judgement or response edit.
 *
 * The index reads each line with a plain JSON.parse and a few field checks, not the full schema
 * validation: on 100,000 lines the schema costs ~1.7 s, JSON.parse ~0.15 s (bench/annotator_bench.mjs).
 * The pair on screen is validated fully (`parsePairs` on that one line) before it is shown.
 *
 * Line edits touch only the bytes they must (a value, or one property appended), so every other
 * field keeps its exact text: key order, spacing, escapes and number formats stay as written.
 */
import { parseTree, type Node as JsonNode } from 'jsonc-parser';
import { parsePairs } from './formats/pairs';
import { PAIR_STATUSES, type PairStatus } from './formats/types';

/** What the annotator knows about one line: a pair, a line that is not one, or nothing (blank). */
export type IndexEntry =
  | { readonly kind: 'pair'; readonly status: PairStatus; readonly personas: readonly string[]; readonly origin: string }
  | { readonly kind: 'invalid'; readonly problem: string };

export const STATUS_FILTERS = ['pending', 'all', 'chosen', 'tie', 'skipped', 'invalid'] as const;
export type StatusFilter = (typeof STATUS_FILTERS)[number];

/** Which lines the annotator walks through. `persona` / `origin`: null for any, '' for pairs without one. */
export interface PairFilter {
  readonly status: StatusFilter;
  readonly persona: string | null;
  readonly origin: string | null;
}

export const DEFAULT_FILTER: PairFilter = { status: 'pending', persona: null, origin: null };

/** The keys' judgements: `1` keeps the order, `2` swaps chosen and rejected, `t` tie, `s` skip. */
export const JUDGEMENTS = ['first', 'second', 'tie', 'skip'] as const;
export type Judgement = (typeof JUDGEMENTS)[number];

export type ResponseSide = 'chosen' | 'rejected';

/** A document change in the shape VS Code reports it: lines `startLine..endLine` (0-based, before the change) replaced by `text`. */
export interface LineChange {
  readonly startLine: number;
  readonly endLine: number;
  readonly text: string;
}

const BOM = '\uFEFF';
const isStatus = (v: unknown): v is PairStatus => typeof v === 'string' && (PAIR_STATUSES as readonly string[]).includes(v);
const isTextOrMessages = (v: unknown) => typeof v === 'string' || Array.isArray(v);

/** Lines as VS Code numbers them (\r\n, \n and a lone \r all end a line). */
export function documentLines(text: string): string[] {
  // The common case (no \r at all) splits ~10x faster without the regular expression.
  return text.includes('\r') ? text.split(/\r\n|\r|\n/) : text.split('\n');
}

/** The light check of one line (see the file comment): null for a blank line. */
export function indexLine(text: string): IndexEntry | null {
  const body = text.startsWith(BOM) ? text.slice(1) : text;
  if (body.trim() === '') return null;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (err) {
    return { kind: 'invalid', problem: `not valid JSON (${(err as Error).message.split(/ in JSON| at position/)[0]})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { kind: 'invalid', problem: 'not a JSON object' };
  const pair = value as Record<string, unknown>;
  for (const field of ['prompt', 'chosen', 'rejected']) {
    if (pair[field] === undefined) return { kind: 'invalid', problem: `no '${field}'` };
    if (!isTextOrMessages(pair[field])) return { kind: 'invalid', problem: `'${field}' is neither text nor a list of messages` };
  }
  if (pair.status !== undefined && !isStatus(pair.status))
    return { kind: 'invalid', problem: `'status' is ${JSON.stringify(pair.status)}, not one of ${PAIR_STATUSES.join(', ')}` };
  const ids = pair.persona_ids;
  if (ids !== undefined && !(Array.isArray(ids) && ids.every((id) => typeof id === 'string')))
    return { kind: 'invalid', problem: "'persona_ids' is not a list of ids" };
  if (pair.origin !== undefined && typeof pair.origin !== 'string') return { kind: 'invalid', problem: "'origin' is not text" };
  return {
    kind: 'pair',
    // A pair without a status is training data as given (docs/formats.md): it counts as chosen.
    status: (pair.status as PairStatus | undefined) ?? 'chosen',
    personas: (ids as string[] | undefined) ?? [],
    origin: (pair.origin as string | undefined) ?? '',
  };
}

export function matchesFilter(entry: IndexEntry | null, filter: PairFilter): boolean {
  if (!entry) return false;
  if (entry.kind === 'invalid') return (filter.status === 'all' || filter.status === 'invalid') && filter.persona === null && filter.origin === null;
  if (filter.status !== 'all' && filter.status !== entry.status) return false;
  if (filter.persona !== null && (filter.persona === '' ? entry.personas.length > 0 : !entry.personas.includes(filter.persona))) return false;
  return filter.origin === null || filter.origin === entry.origin;
}

export interface IndexCounts {
  /** Valid pairs, by status. */
  readonly pairs: number;
  readonly byStatus: Readonly<Record<PairStatus, number>>;
  readonly invalid: number;
  /** Pairs per persona id ('' for pairs without one) and per origin, sorted by name. */
  readonly personas: readonly { readonly id: string; readonly count: number }[];
  readonly origins: readonly { readonly id: string; readonly count: number }[];
}

/** One entry per document line, with counts kept as lines come and go. */
export class PairIndex {
  private entries: (IndexEntry | null)[] = [];
  private readonly byStatus: Record<PairStatus, number> = { pending: 0, chosen: 0, skipped: 0, tie: 0 };
  private readonly personaCounts = new Map<string, number>();
  private readonly originCounts = new Map<string, number>();
  private invalid = 0;

  constructor(lines: readonly string[] = []) {
    this.replaceLines(0, 0, lines);
  }

  static fromText(text: string): PairIndex {
    return new PairIndex(documentLines(text));
  }

  get lineCount(): number {
    return this.entries.length;
  }

  entry(line: number): IndexEntry | null {
    return this.entries[line] ?? null;
  }

  /** Replaces `removed` entries from `start` with the entries of `lines`. */
  replaceLines(start: number, removed: number, lines: readonly string[]): void {
    const added = lines.map(indexLine);
    for (let i = start; i < start + removed && i < this.entries.length; i++) this.count(this.entries[i]!, -1);
    for (const e of added) this.count(e, 1);
    // splice(...added) passes every entry as an argument: fine for an edit, too many for a whole file.
    if (added.length <= 1000) this.entries.splice(start, removed, ...added);
    else this.entries = this.entries.slice(0, start).concat(added, this.entries.slice(start + removed));
  }

  setLine(line: number, text: string): void {
    this.replaceLines(line, 1, [text]);
  }

  /** Marks a line invalid that the light check let through but the full validation rejects. */
  markInvalid(line: number, problem: string): void {
    const old = this.entries[line];
    if (old === undefined || old?.kind === 'invalid') return;
    this.count(old, -1);
    this.entries[line] = { kind: 'invalid', problem };
    this.count(this.entries[line]!, 1);
  }

  /** Applies one document change event; `lineAt` reads a line of the document after all of it. */
  applyChanges(changes: readonly LineChange[], lineAt: (line: number) => string): void {
    let delta = 0;
    for (const c of sortedChanges(changes)) {
      const start = c.startLine + delta;
      const added = documentLines(c.text).length;
      const lines: string[] = [];
      for (let i = 0; i < added; i++) lines.push(lineAt(start + i));
      this.replaceLines(start, c.endLine - c.startLine + 1, lines);
      delta += added - (c.endLine - c.startLine + 1);
    }
  }

  /** The next (or previous) matching line after `from`, without wrapping; undefined at the end. */
  step(from: number, filter: PairFilter, direction: 1 | -1): number | undefined {
    for (let i = from + direction; i >= 0 && i < this.entries.length; i += direction) if (matchesFilter(this.entries[i]!, filter)) return i;
    return undefined;
  }

  first(filter: PairFilter): number | undefined {
    return this.step(-1, filter, 1);
  }

  last(filter: PairFilter): number | undefined {
    return this.step(this.entries.length, filter, -1);
  }

  /**
   * Where to go after a judgement: the next pending pair after `from` with the filter's persona and
   * origin, wrapping around to the start; undefined when none is left.
   */
  nextPending(from: number, filter: PairFilter): number | undefined {
    const pending: PairFilter = { status: 'pending', persona: filter.persona, origin: filter.origin };
    return this.step(from, pending, 1) ?? this.step(-1, pending, 1);
  }

  /** The 0-based position of `line` among the filter's lines (-1 when it does not match), and how many there are. */
  position(line: number, filter: PairFilter): { index: number; count: number } {
    let count = 0;
    let index = -1;
    for (let i = 0; i < this.entries.length; i++) {
      if (!matchesFilter(this.entries[i]!, filter)) continue;
      if (i === line) index = count;
      count++;
    }
    return { index, count };
  }

  counts(): IndexCounts {
    const sorted = (m: Map<string, number>) =>
      [...m]
        .filter(([, n]) => n > 0)
        .map(([id, count]) => ({ id, count }))
        .sort((a, b) => a.id.localeCompare(b.id));
    const pairs = Object.values(this.byStatus).reduce((a, b) => a + b, 0);
    return { pairs, byStatus: { ...this.byStatus }, invalid: this.invalid, personas: sorted(this.personaCounts), origins: sorted(this.originCounts) };
  }

  private count(entry: IndexEntry | null, by: 1 | -1): void {
    if (!entry) return;
    if (entry.kind === 'invalid') {
      this.invalid += by;
      return;
    }
    this.byStatus[entry.status] += by;
    const bump = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + by);
    if (entry.personas.length <= 1) bump(this.personaCounts, entry.personas[0] ?? '');
    else for (const id of new Set(entry.personas)) bump(this.personaCounts, id);
    bump(this.originCounts, entry.origin);
  }
}

function sortedChanges(changes: readonly LineChange[]): LineChange[] {
  return [...changes].sort((a, b) => a.startLine - b.startLine || a.endLine - b.endLine);
}

/** Where a line (0-based, before the changes) is after them; a line inside a replaced range stays in it. */
export function mapLine(line: number, changes: readonly LineChange[]): number {
  let delta = 0;
  for (const c of sortedChanges(changes)) {
    const added = documentLines(c.text).length;
    if (line < c.startLine) break;
    if (line <= c.endLine) return c.startLine + delta + Math.min(line - c.startLine, added - 1);
    delta += added - (c.endLine - c.startLine + 1);
  }
  return line + delta;
}

// ---------------------------------------------------------------------------------------------
// Line edits

/** The line's JSON object as a tree, or an error naming what is wrong. */
function objectTree(body: string): JsonNode {
  const tree = parseTree(body, [], { disallowComments: true, allowTrailingComma: false });
  let valid = true;
  try {
    JSON.parse(body);
  } catch {
    valid = false;
  }
  if (!valid || !tree || tree.type !== 'object') throw new Error('The line is not a JSON object; it is left as it is.');
  return tree;
}

/** The value node of a property (the last one, as JSON.parse reads duplicate keys). */
function propertyValue(tree: JsonNode, key: string): JsonNode | undefined {
  let found: JsonNode | undefined;
  for (const p of tree.children ?? []) if (p.children?.[0]?.value === key) found = p.children[1];
  return found;
}

interface TextEdit {
  offset: number;
  length: number;
  content: string;
}

/** A property set to `value`: its value replaced in place, or appended in the line's own spacing. */
function setProperty(body: string, tree: JsonNode, key: string, value: unknown): TextEdit {
  const content = JSON.stringify(value);
  const existing = propertyValue(tree, key);
  if (existing) return { offset: existing.offset, length: existing.length, content };
  const props = tree.children ?? [];
  const first = props[0];
  const colon =
    first?.children?.[1] && /:\s/.test(body.slice(first.children[0]!.offset + first.children[0]!.length, first.children[1].offset)) ? ': ' : first ? ':' : ': ';
  const comma = props.length > 1 && /,\s/.test(body.slice(props[0]!.offset + props[0]!.length, props[1]!.offset)) ? ', ' : props.length > 1 ? ',' : ', ';
  const close = tree.offset + tree.length - 1; // the closing brace
  return { offset: close, length: 0, content: `${first ? comma : ''}${JSON.stringify(key)}${colon}${content}` };
}

function applyEdits(body: string, edits: TextEdit[]): string {
  let out = body;
  // From the end backwards; two insertions at one offset (two new properties) keep their order.
  const order = edits.map((e, i) => ({ e, i })).sort((a, b) => b.e.offset - a.e.offset || b.i - a.i);
  for (const { e } of order) out = out.slice(0, e.offset) + e.content + out.slice(e.offset + e.length);
  return out;
}

/** Runs `edit` on the line without its byte-order mark (line 1 may carry one) and puts it back. */
function editLine(text: string, edit: (body: string, tree: JsonNode) => TextEdit[]): string {
  const bom = text.startsWith(BOM) ? BOM : '';
  const body = text.slice(bom.length);
  return bom + applyEdits(body, edit(body, objectTree(body)));
}

/**
 * The line after a judgement: `first` keeps chosen > rejected, `second` swaps them (the second
 * response is the better one), both set status "chosen"; `tie` and `skip` set that status. `time`
 * (ISO 8601, `judgementTime`) and `annotator` (when given) are set; every other field keeps its
 * exact text.
 */
export function judgedLine(text: string, judgement: Judgement, time: string, annotator?: string): string {
  return editLine(text, (body, tree) => {
    const edits: TextEdit[] = [];
    if (judgement === 'second') {
      const chosen = propertyValue(tree, 'chosen');
      const rejected = propertyValue(tree, 'rejected');
      if (!chosen || !rejected) throw new Error("The line has no 'chosen' and 'rejected' to swap.");
      edits.push({ offset: chosen.offset, length: chosen.length, content: body.slice(rejected.offset, rejected.offset + rejected.length) });
      edits.push({ offset: rejected.offset, length: rejected.length, content: body.slice(chosen.offset, chosen.offset + chosen.length) });
    }
    const status: PairStatus = judgement === 'tie' ? 'tie' : judgement === 'skip' ? 'skipped' : 'chosen';
    edits.push(setProperty(body, tree, 'status', status));
    edits.push(setProperty(body, tree, 'time', time));
    // The judgement is this annotator's now (a re-judged line kept the first annotator's name).
    if (annotator) edits.push(setProperty(body, tree, 'annotator', annotator));
    return edits;
  });
}

/**
 * The line with one response's text replaced: a text response as a whole, a conversational one in
 * its last message's `content` (the reply; earlier messages are kept).
 */
export function editedResponseLine(text: string, side: ResponseSide, newText: string): string {
  return editLine(text, (_body, tree) => {
    const value = propertyValue(tree, side);
    if (!value) throw new Error(`The line has no '${side}'.`);
    if (value.type === 'string') return [{ offset: value.offset, length: value.length, content: JSON.stringify(newText) }];
    const last = value.type === 'array' ? value.children?.at(-1) : undefined;
    const content = last?.type === 'object' ? propertyValue(last, 'content') : undefined;
    if (!last || !content) throw new Error(`'${side}' has no message whose content could be edited.`);
    return [{ offset: content.offset, length: content.length, content: JSON.stringify(newText) }];
  });
}

/** The text shown for a response: the text, or the last message's content for a conversational one. */
export function editableText(response: unknown): string {
  if (typeof response === 'string') return response;
  if (Array.isArray(response)) {
    const last = response.at(-1) as { content?: unknown } | undefined;
    return typeof last?.content === 'string' ? last.content : '';
  }
  return '';
}

// ---------------------------------------------------------------------------------------------
// What the annotator shows of one line

export interface AnnotatorPersona {
  readonly id: string;
  /** From the workspace's persona file with this id; null when there is none. */
  readonly name: string | null;
  readonly facts: readonly string[];
}

export type LineView =
  | {
      readonly kind: 'pair';
      /** 1-based line in the file. */
      readonly line: number;
      /** Text (standard format) or the messages (conversational). */
      readonly prompt: string | readonly { readonly role: string; readonly content: string }[];
      /** Left: the response the file holds as chosen; right: as rejected (conversational: the last message). */
      readonly chosen: string;
      readonly rejected: string;
      readonly conversational: boolean;
      readonly personas: readonly AnnotatorPersona[];
      readonly status: PairStatus;
      /** False when the line has no `status` (then it counts as chosen). */
      readonly statusGiven: boolean;
      readonly origin: string | null;
      readonly annotator: string | null;
      readonly time: string | null;
      readonly rationale: string | null;
      readonly warnings: readonly string[];
    }
  | { readonly kind: 'invalid'; readonly line: number; readonly text: string; readonly problems: readonly string[] };

/** How much of an invalid line is shown (the text editor has all of it). */
const SHOWN_INVALID_CHARS = 2000;

/**
 * One line, validated fully (the schema and the pair checks), as the annotator shows it; null for
 * a blank line. `line` is 0-based; what is shown is 1-based, as in the file.
 */
export function lineView(
  text: string,
  line: number,
  file: string,
  persona: (id: string) => { name: string; facts: readonly string[] } | undefined,
): LineView | null {
  const parsed = parsePairs(text, file).lines[0];
  if (!parsed || text.trim() === '' || text === BOM) return null;
  const where = (p: { column: number; message: string }) => `column ${p.column}: ${p.message}`;
  const pair = parsed.value;
  if (!pair) {
    const shown = text.length > SHOWN_INVALID_CHARS ? `${text.slice(0, SHOWN_INVALID_CHARS)}…` : text;
    return { kind: 'invalid', line: line + 1, text: shown, problems: parsed.problems.filter((p) => p.severity === 'error').map(where) };
  }
  const optional = (v: unknown) => (typeof v === 'string' ? v : null);
  return {
    kind: 'pair',
    line: line + 1,
    prompt: typeof pair.prompt === 'string' ? pair.prompt : pair.prompt.map((m) => ({ role: m.role, content: m.content })),
    chosen: editableText(pair.chosen),
    rejected: editableText(pair.rejected),
    conversational: Array.isArray(pair.prompt),
    personas: (pair.persona_ids ?? []).map((id) => {
      const p = persona(id);
      return { id, name: p?.name ?? null, facts: p?.facts ?? [] };
    }),
    status: pair.status ?? 'chosen',
    statusGiven: pair.status !== undefined,
    origin: optional(pair.origin),
    annotator: optional(pair.annotator),
    time: optional(pair.time),
    rationale: optional(pair.rationale),
    warnings: parsed.problems.map(where),
  };
}

/**
 * Whether a pending pair is shown blind with its rejected response on the left: a seeded coin
 * per line (FNV-1a over the seed, the line number and the prompt), so that the file's order
 * (chosen left) does not tell the annotator which response was chosen, and the same pair keeps its
 * order whenever it is shown.
 */
export function blindFlip(line: number, prompt: string | readonly { readonly role: string; readonly content: string }[], seed: number): boolean {
  const text = `${seed}\n${line}\n${typeof prompt === 'string' ? prompt : JSON.stringify(prompt)}`;
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  // The high bits mix best in FNV-1a.
  return hash >>> 31 === 1;
}
