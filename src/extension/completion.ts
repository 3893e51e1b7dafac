/**
 * Field-name and value completion for PAL Studio files in the plain text editor, driven by the
 * formats' JSON Schemas (the same ones the validators use). JSON persona files get this from VS
 * Code itself (jsonValidation); YAML gets it from the Red Hat YAML extension when installed
 * (yamlValidation), and from here otherwise; JSON Lines files only from here.
 */
import * as vscode from 'vscode';
import { fileKind, type FileKind } from '../core/formats/index';
import { SCHEMAS } from '../core/formats/schemas';

type Schema = { properties?: Record<string, Schema>; description?: string; enum?: unknown[]; type?: string | string[]; default?: unknown; required?: string[] };

const SCHEMA_OF: Record<FileKind, Schema> = {
  persona: SCHEMAS.persona as Schema,
  dialogues: SCHEMAS.dialogue as Schema,
  pairs: SCHEMAS.pair as Schema,
  palrun: SCHEMAS.palrun as unknown as Schema,
};

export function registerCompletion(): vscode.Disposable {
  const selector: vscode.DocumentSelector = [
    { scheme: 'file', pattern: '**/*.{persona.yaml,persona.yml,palrun.yaml,palrun.yml,dialogues.jsonl,pairs.jsonl}' },
    { scheme: 'untitled', pattern: '**/*.{persona.yaml,persona.yml,palrun.yaml,palrun.yml,dialogues.jsonl,pairs.jsonl}' },
  ];
  return vscode.languages.registerCompletionItemProvider(selector, { provideCompletionItems: complete }, '"', ':', ' ');
}

function complete(doc: vscode.TextDocument, pos: vscode.Position): vscode.CompletionItem[] | undefined {
  const kind = fileKind(doc.fileName);
  if (!kind) return undefined;
  const schema = SCHEMA_OF[kind];
  return kind === 'dialogues' || kind === 'pairs' ? completeJsonLine(doc, pos, schema) : completeYaml(doc, pos, schema);
}

function item(key: string, s: Schema, required: boolean, insert: string): vscode.CompletionItem {
  const it = new vscode.CompletionItem(key, vscode.CompletionItemKind.Property);
  it.insertText = insert;
  it.detail = `${Array.isArray(s.type) ? s.type.join(' | ') : (s.type ?? (s.enum ? 'one of' : ''))}${required ? ' (required)' : ''}`;
  const doc = [
    s.description ?? '',
    s.enum ? `One of: ${s.enum.map((e) => `\`${String(e)}\``).join(', ')}` : '',
    s.default !== undefined ? `Default: \`${JSON.stringify(s.default)}\`` : '',
  ]
    .filter(Boolean)
    .join('\n\n');
  it.documentation = new vscode.MarkdownString(doc);
  it.sortText = `${required ? '0' : '1'}${key}`;
  return it;
}

/** JSON Lines: a record's field names, after `{` or `,`. */
function completeJsonLine(doc: vscode.TextDocument, pos: vscode.Position, schema: Schema): vscode.CompletionItem[] | undefined {
  const line = doc.lineAt(pos.line).text;
  const before = line.slice(0, pos.character);
  if (!/(^\s*|[{,]\s*)"?[\w]*$/.test(before)) return undefined;
  const present = new Set(Array.from(line.matchAll(/"([\w]+)"\s*:/g), (m) => m[1]));
  const quoted = /"[\w]*$/.test(before);
  const start = before.length - (/"?[\w]*$/.exec(before)?.[0].length ?? 0);
  const range = new vscode.Range(pos.line, start, pos.line, pos.character);
  return Object.entries(schema.properties ?? {})
    .filter(([k]) => !present.has(k))
    .map(([k, s]) => {
      const it = item(k, s, schema.required?.includes(k) ?? false, `"${k}": `);
      it.range = range;
      it.filterText = quoted ? `"${k}` : k;
      return it;
    });
}

/** YAML: field names at a key position (under the parent found by indentation), values of enums. */
function completeYaml(doc: vscode.TextDocument, pos: vscode.Position, schema: Schema): vscode.CompletionItem[] | undefined {
  const before = doc.lineAt(pos.line).text.slice(0, pos.character);
  const valueMatch = /^(\s*)(?:- )?([\w-]+):\s+([\w.-]*)$/.exec(before);
  const keyMatch = /^(\s*)([\w-]*)$/.exec(before);
  const indent = (valueMatch ?? keyMatch)?.[1]?.length;
  if (indent === undefined) return undefined;
  const parents = parentKeys(doc, pos.line, indent);
  let node: Schema | undefined = schema;
  for (const k of parents) node = node?.properties?.[k];
  if (!node) return undefined;
  if (valueMatch) {
    const s = node.properties?.[valueMatch[2]!];
    const values = s?.enum ?? (s?.type === 'boolean' ? [true, false] : undefined);
    return values?.map((v) => {
      const it = new vscode.CompletionItem(String(v), vscode.CompletionItemKind.EnumMember);
      if (s?.default === v) it.detail = 'default';
      return it;
    });
  }
  const siblings = siblingKeys(doc, pos.line, indent);
  return Object.entries(node.properties ?? {})
    .filter(([k]) => !siblings.has(k))
    .map(([k, s]) => item(k, s, node!.required?.includes(k) ?? false, `${k}: `));
}

const KEY_LINE = /^(\s*)([\w-]+):(.*)$/;

/** The chain of keys that encloses a line at `indent` (nearest lines above with less indentation). */
function parentKeys(doc: vscode.TextDocument, line: number, indent: number): string[] {
  const keys: string[] = [];
  let limit = indent;
  for (let l = line - 1; l >= 0 && limit > 0; l--) {
    const m = KEY_LINE.exec(doc.lineAt(l).text);
    if (m && m[1]!.length < limit && /^\s*(#.*)?$/.test(m[3]!)) {
      keys.unshift(m[2]!);
      limit = m[1]!.length;
    }
  }
  return keys;
}

/** Keys already present at `indent` in the block around `line`. */
function siblingKeys(doc: vscode.TextDocument, line: number, indent: number): Set<string> {
  const out = new Set<string>();
  const scan = (from: number, step: number) => {
    for (let l = from; l >= 0 && l < doc.lineCount; l += step) {
      const text = doc.lineAt(l).text;
      if (/^\s*(#.*)?$/.test(text)) continue;
      const lead = /^\s*/.exec(text)![0].length;
      if (lead < indent) return;
      const m = KEY_LINE.exec(text);
      if (m && lead === indent) out.add(m[2]!);
    }
  };
  scan(line - 1, -1);
  scan(line + 1, 1);
  return out;
}
