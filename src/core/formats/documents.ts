/**
 * Whole-file documents (YAML and JSON) with locators, and the YAML parsing options every format
 * shares. A YAML file is kept as a yaml Document, so an edit made by the tool keeps the writer's
 * comments and key order.
 */
import { findNodeAtLocation, parseTree, type Node as JsonNode, type ParseError, printParseErrorCode } from 'jsonc-parser';
import { Composer, CST, isMap, isPair, isScalar, LineCounter, parseDocument, Parser, type Document, type Node as YamlNode } from 'yaml';
import { positionAt, problem } from './problems';
import type { Problem } from './types';
import type { JsonPath, Locator, Range } from './validate';

function rangeOf(text: string, start: number, end: number): Range {
  const a = positionAt(text, start);
  const b = positionAt(text, end);
  return { line: a.line, column: a.column, endLine: b.line, endColumn: b.column };
}

export interface ParsedJson {
  value?: unknown;
  locator: Locator;
  problems: Problem[];
}

export function parseJsonText(text: string, file: string, code: string): ParsedJson {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const shift = text.length - body.length;
  const errors: ParseError[] = [];
  const tree = parseTree(body, errors, { allowTrailingComma: false, disallowComments: true });
  const locator: Locator = {
    locate(path, which = 'value') {
      if (!tree) return rangeOf(text, 0, text.length);
      for (let n = path.length; n >= 0; n--) {
        const node: JsonNode | undefined = findNodeAtLocation(tree, path.slice(0, n));
        if (!node) continue;
        const target = which === 'key' && n === path.length && node.parent?.type === 'property' ? (node.parent.children?.[0] ?? node) : node;
        return rangeOf(text, target.offset + shift, target.offset + target.length + shift);
      }
      return rangeOf(text, 0, 0);
    },
  };
  if (errors.length) {
    return {
      locator,
      problems: errors.map((e) =>
        problem(
          file,
          rangeOf(text, e.offset + shift, e.offset + e.length + shift),
          'error',
          code,
          `Not valid JSON here: ${jsonErrorWords(printParseErrorCode(e.error))}.`,
        ),
      ),
    };
  }
  return { value: JSON.parse(body), locator, problems: [] };
}

function jsonErrorWords(code: string): string {
  return code.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

export interface ParsedYaml {
  doc: Document.Parsed;
  /** The concrete syntax tree the document was composed from (its nodes point into it). */
  tokens: CST.Token[];
  value?: unknown;
  locator: Locator;
  problems: Problem[];
}

export function parseYamlText(text: string, file: string, code: string): ParsedYaml {
  const lineCounter = new LineCounter();
  // Parsed in two steps (tokens, then documents) so the tokens are kept: a scalar edit can then
  // change its own token alone and leave every other byte of the file as the writer wrote it.
  const tokens = Array.from(new Parser(lineCounter.addNewLine).parse(text));
  const docs = Array.from(new Composer({ keepSourceTokens: true, prettyErrors: true, uniqueKeys: true }).compose(tokens, true, text.length));
  const doc = docs[0] as Document.Parsed; // forceDoc: there is always one, even for an empty file
  for (const extra of docs.slice(1)) doc.errors.push(...extra.errors);
  for (const e of doc.errors) if (!e.linePos) e.linePos = [lineCounter.linePos(e.pos[0]), lineCounter.linePos(e.pos[1])] as never;
  const toRange = (start: number, end: number): Range => {
    const a = lineCounter.linePos(start);
    const b = lineCounter.linePos(end);
    return { line: a.line, column: a.col, endLine: b.line, endColumn: b.col };
  };
  const locator: Locator = {
    locate(path: JsonPath, which = 'value') {
      for (let n = path.length; n >= 0; n--) {
        const sub = path.slice(0, n);
        if (which === 'key' && n === path.length && n > 0) {
          const parent = n === 1 ? doc.contents : doc.getIn(sub.slice(0, -1), true);
          if (isMap(parent)) {
            const pair = parent.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === sub[n - 1]);
            const key = pair && (pair.key as YamlNode | null);
            if (key?.range) return toRange(key.range[0], key.range[1]);
          }
        }
        const node = (n === 0 ? doc.contents : doc.getIn(sub, true)) as YamlNode | null | undefined;
        if (node && typeof node === 'object' && 'range' in node && node.range) return toRange(node.range[0], node.range[1]);
      }
      return toRange(0, 0);
    },
  };
  const problems: Problem[] = [];
  for (const e of doc.errors) {
    const [a, b] = e.linePos ?? [];
    problems.push(
      problem(
        file,
        { line: a?.line ?? 1, column: a?.col ?? 1, endLine: b?.line ?? a?.line ?? 1, endColumn: b?.col ?? a?.col ?? 1 },
        'error',
        code,
        `YAML error: ${e.message.split('\n')[0]}`,
      ),
    );
  }
  if (docs.length > 1)
    problems.push(
      problem(
        file,
        toRange(docs[1]!.range[0], docs[1]!.range[0]),
        'error',
        code,
        'This file holds more than one YAML document (a "---" line); it should hold one.',
      ),
    );
  if (problems.length) return { doc, tokens, locator, problems };
  try {
    return { doc, tokens, value: doc.toJS({ maxAliasCount: 100 }), locator, problems };
  } catch (err) {
    // Errors only found when building the values: an alias with no anchor, an alias bomb.
    const where = /alias/i.test(String(err)) ? firstAlias(text) : 0;
    problems.push(problem(file, toRange(where, where + 1), 'error', code, `YAML error: ${(err as Error).message}`));
    return { doc, tokens, locator, problems };
  }
}

function firstAlias(text: string): number {
  const m = /(^|[\s[{,:-])\*/m.exec(text);
  return m ? m.index + m[1]!.length : 0;
}

/**
 * Sets the value at `path` in a YAML document, as minimally as possible: an existing scalar
 * replaced by another scalar changes only its own token; anything else (a new key, a removed list
 * item, a list value) goes through the document model, which keeps comments and key order but may
 * re-space the file. Returns the new text.
 */
export function editYaml(parsed: { doc: Document.Parsed; tokens: CST.Token[] }, path: JsonPath, value: unknown): string {
  const node = parsed.doc.getIn(path, true);
  const scalarValue = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
  if (scalarValue && isScalar(node) && node.srcToken && CST.isScalar(node.srcToken)) {
    // A string keeps its quoting, unless it was quoted because it had to be ("a: b") and no longer
    // needs it: then it is written plain, as a writer would (issue 17: a fixed fact stayed quoted).
    const unquote =
      typeof value === 'string' && node.srcToken.type !== 'scalar' && typeof node.value === 'string' && !plainReadsAs(node.value) && plainReadsAs(value);
    CST.setScalarValue(node.srcToken, String(value), typeof value === 'string' && !unquote ? {} : { type: 'PLAIN' });
    return parsed.tokens.map((t) => CST.stringify(t)).join('');
  }
  const before = parsed.tokens.map((t) => CST.stringify(t)).join('');
  if (value === undefined) parsed.doc.deleteIn(path);
  else parsed.doc.setIn(path, value);
  return keepCommentSpacing(before, parsed.doc.toString({ lineWidth: 0, flowCollectionPadding: false }));
}

/** Whether `text` written as a plain YAML scalar reads back as that same string ("true", "123", "a: b" do not). */
function plainReadsAs(text: string): boolean {
  if (text === '' || text !== text.trim() || /[\n\r]/.test(text)) return false;
  try {
    return parseDocument(`x: ${text}\n`).get('x') === text;
  } catch {
    return false;
  }
}

/**
 * The document model writes one space before a trailing comment: a line the edit did not touch
 * gets its own spacing back ("name: Inês Lobo   # keep the accent" was collapsed by an edit
 * elsewhere in the file).
 */
function keepCommentSpacing(before: string, after: string): string {
  const key = (line: string) => line.replace(/\s+#/, ' #');
  const original = new Map<string, string>();
  for (const line of before.split(/\r?\n/)) if (/\s#/.test(line) && !original.has(key(line))) original.set(key(line), line);
  if (original.size === 0) return after;
  return after
    .split('\n')
    .map((line) => {
      const cr = line.endsWith('\r') ? '\r' : '';
      const body = cr ? line.slice(0, -1) : line;
      return /\s#/.test(body) ? (original.get(key(body)) ?? body) + cr : line;
    })
    .join('\n');
}
