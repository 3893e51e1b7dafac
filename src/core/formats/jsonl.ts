/**
 * JSON Lines documents that lose nothing. Each line keeps its exact text and line ending; a line
 * the tool changed is re-serialised, every other line (including ones that do not parse, blank
 * lines and a missing final newline) is written back byte for byte. One bad line never hides the
 * good ones: each line carries its own value and problems.
 */
import { findNodeAtLocation, parseTree, type Node as JsonNode, type ParseError } from 'jsonc-parser';
import { problem } from './problems';
import type { Problem } from './types';
import type { Locator } from './validate';

export type Eol = '' | '\n' | '\r\n';

export interface JsonlLine<T> {
  /** 1-based line number in the file as parsed (new lines appended later get the next numbers). */
  readonly number: number;
  /** The line's exact text, without its line ending. */
  text: string;
  eol: Eol;
  /** The record, when the line is valid JSON of the right shape (it may still carry warnings). */
  value?: T;
  problems: Problem[];
}

export interface JsonlDocument<T> {
  readonly file: string;
  lines: JsonlLine<T>[];
}

/** Checks one parsed line: its record when valid, and its problems (errors make it invalid). */
export type LineChecker<T> = (value: unknown, at: { file: string; line: number; locator: Locator }) => { value?: T; problems: Problem[] };

const BOM = '\uFEFF';

export function splitLines(text: string): { text: string; eol: Eol }[] {
  const out: { text: string; eol: Eol }[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) {
      // The last line: present unless the file ended with a newline.
      if (start < text.length || out.length === 0) out.push({ text: text.slice(start), eol: '' });
      return out;
    }
    const cr = nl > start && text.charCodeAt(nl - 1) === 13;
    out.push({ text: text.slice(start, cr ? nl - 1 : nl), eol: cr ? '\r\n' : '\n' });
    start = nl + 1;
  }
}

export function parseJsonl<T>(text: string, file: string, check: LineChecker<T>): JsonlDocument<T> {
  const lines = splitLines(text).map(({ text: lineText, eol }, i): JsonlLine<T> => {
    const line: JsonlLine<T> = { number: i + 1, text: lineText, eol, problems: [] };
    Object.assign(line, checkLine(lineText, file, i + 1, check));
    return line;
  });
  return { file, lines };
}

function checkLine<T>(text: string, file: string, lineNumber: number, check: LineChecker<T>): { value?: T; problems: Problem[] } {
  const body = lineNumber === 1 && text.startsWith(BOM) ? text.slice(1) : text;
  const offset = text.length - body.length;
  if (body.trim() === '') return { problems: [] };
  const errors: ParseError[] = [];
  const tree = parseTree(body, errors, { allowTrailingComma: false, disallowComments: true });
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    const first = errors[0];
    const column = (first ? first.offset : 0) + offset + 1;
    return {
      problems: [
        problem(
          file,
          { line: lineNumber, column, endColumn: text.length + 1 },
          'error',
          'jsonl/invalid-json',
          `This line is not valid JSON (${jsonErrorText(err, first)}). It is kept as it is and skipped until fixed.`,
        ),
      ],
    };
  }
  const locator = lineLocator(tree, lineNumber, offset, text.length);
  return check(parsed, { file, line: lineNumber, locator });
}

function jsonErrorText(err: unknown, first: ParseError | undefined): string {
  const message = err instanceof Error ? err.message : String(err);
  // Node's message is precise but technical; keep its first clause.
  return first ? `${message.split(/ in JSON| at position/)[0]}` : message;
}

/** A locator over a jsonc-parser tree of one line (columns are 1-based, in the line's text). */
export function lineLocator(tree: JsonNode | undefined, line: number, offset: number, lineLength: number): Locator {
  return {
    locate(path, which = 'value') {
      const at = (column: number, endColumn: number) => ({ line, column, endLine: line, endColumn });
      if (!tree) return at(1, lineLength + 1);
      for (let n = path.length; n >= 0; n--) {
        const node = findNodeAtLocation(tree, path.slice(0, n));
        if (!node) continue;
        const target = which === 'key' && n === path.length && node.parent?.type === 'property' ? (node.parent.children?.[0] ?? node) : node;
        return at(target.offset + offset + 1, target.offset + target.length + offset + 1);
      }
      return at(1, lineLength + 1);
    },
  };
}

export function serializeJsonl(doc: JsonlDocument<unknown>): string {
  let out = '';
  for (const line of doc.lines) out += line.text + line.eol;
  return out;
}

/** The valid records with their line numbers. */
export function records<T>(doc: JsonlDocument<T>): { line: number; value: T }[] {
  const out: { line: number; value: T }[] = [];
  for (const l of doc.lines) if (l.value !== undefined) out.push({ line: l.number, value: l.value });
  return out;
}

export function allProblems(doc: JsonlDocument<unknown>): Problem[] {
  return doc.lines.flatMap((l) => l.problems);
}

/** The line ending most used in the document (new lines get it), '\n' when there is none. */
export function dominantEol(doc: JsonlDocument<unknown>): '\n' | '\r\n' {
  let crlf = 0;
  let lf = 0;
  for (const l of doc.lines) {
    if (l.eol === '\r\n') crlf++;
    else if (l.eol === '\n') lf++;
  }
  return crlf > lf ? '\r\n' : '\n';
}

/** Replaces the record on line `index` (0-based position in `lines`); only that line's text changes. */
export function setRecord<T>(doc: JsonlDocument<T>, index: number, value: T): void {
  const line = doc.lines[index];
  if (!line) throw new RangeError(`No line ${index + 1} in ${doc.file}`);
  line.text = JSON.stringify(value);
  line.value = value;
  line.problems = [];
}

/**
 * Appends a record with the file's line ending. A file that ended without a final newline still
 * does: the previous last line gets the line ending, the new one goes without.
 */
export function appendRecord<T>(doc: JsonlDocument<T>, value: T): void {
  const eol = dominantEol(doc);
  let last = doc.lines.at(-1);
  if (last && last.text === '' && last.eol === '' && doc.lines.length === 1) {
    doc.lines.pop(); // an empty file: nothing to keep
    last = undefined;
  }
  const finalNewline = !last || last.eol !== '';
  if (last && !finalNewline) last.eol = eol;
  const number = (last?.number ?? 0) + 1;
  doc.lines.push({ number, text: JSON.stringify(value), eol: finalNewline ? eol : '', value, problems: [] });
}
