/**
 * Persona files (`*.persona.yaml`, `*.persona.json`): parse, lint, edit, save.
 *
 * Saving a file the tool did not change gives back its exact bytes. An edit goes through the YAML
 * document (comments and key order survive) or, for JSON, through minimal text edits (the rest of
 * the formatting survives).
 */
import { applyEdits, modify } from 'jsonc-parser';
import type { CST, Document } from 'yaml';
import { editYaml, parseJsonText, parseYamlText, type ParsedYaml } from './documents';
import { problem } from './problems';
import type { Persona, Problem } from './types';
import { validateAgainstSchema, type JsonPath, type Locator } from './validate';

export interface PersonaLintOptions {
  /** Facts longer than this many words are flagged (the model's context is small). */
  readonly maxFactWords: number;
  /** The model's context in tokens; all facts together should take at most half of it. */
  readonly contextTokens: number;
}

/** Defaults sized for the embedded default model (256-token context); settings can change them. */
export const DEFAULT_PERSONA_LINT: PersonaLintOptions = { maxFactWords: 25, contextTokens: 256 };

export interface PersonaDocument {
  readonly file: string;
  readonly format: 'yaml' | 'json';
  /** The text as parsed (or as last saved); returned unchanged when nothing was edited. */
  text: string;
  yaml?: { doc: Document.Parsed; tokens: CST.Token[] };
  persona?: Persona;
  problems: Problem[];
  dirty: boolean;
}

export function isPersonaFile(file: string): boolean {
  return /\.persona\.(ya?ml|json)$/i.test(file);
}

export function parsePersona(text: string, file: string, lint: PersonaLintOptions = DEFAULT_PERSONA_LINT): PersonaDocument {
  const format = /\.json$/i.test(file) ? 'json' : 'yaml';
  const parsed = format === 'json' ? parseJsonText(text, file, 'persona/syntax') : parseYamlText(text, file, 'persona/syntax');
  const doc: PersonaDocument = { file, format, text, problems: parsed.problems, dirty: false };
  if (format === 'yaml') {
    const y = parsed as ParsedYaml;
    doc.yaml = { doc: y.doc, tokens: y.tokens };
  }
  if (parsed.value === undefined) return doc;
  if (parsed.value === null || typeof parsed.value !== 'object' || Array.isArray(parsed.value)) {
    doc.problems.push(
      problem(
        file,
        { line: 1, column: 1 },
        'error',
        'persona/not-a-persona',
        'A persona file holds one persona: fields such as id, name and facts (see samples/studio/personas).',
      ),
    );
    return doc;
  }
  const schemaProblems = validateAgainstSchema('persona', parsed.value, file, parsed.locator);
  doc.problems.push(...schemaProblems);
  if (!schemaProblems.some((p) => p.severity === 'error')) {
    doc.persona = parsed.value as Persona;
    doc.problems.push(...lintPersona(doc.persona, file, parsed.locator, lint));
  }
  return doc;
}

/** Approximate tokens of a text for a small sub-word vocabulary (the real tokenizer may differ). */
export function estimateTokens(text: string): number {
  const words = text.trim().split(/\s+/).filter(Boolean).length;
  return Math.ceil(words * 1.3);
}

export function normaliseFact(fact: string): string {
  return fact
    .toLowerCase()
    .replace(/[\s.!?,;:'"]+/g, ' ')
    .trim();
}

export function lintPersona(persona: Persona, file: string, locator: Locator, lint: PersonaLintOptions = DEFAULT_PERSONA_LINT): Problem[] {
  const out: Problem[] = [];
  if (persona.facts.length === 0) {
    out.push(
      problem(
        file,
        locator.locate(['facts']),
        'warning',
        'persona/empty',
        `${persona.name} has no facts yet: PAL learns to select among a persona's facts, so add a few short first-person sentences.`,
      ),
    );
  }
  const seen = new Map<string, number>();
  persona.facts.forEach((fact, i) => {
    const key = normaliseFact(fact);
    const first = seen.get(key);
    if (first !== undefined) {
      const firstLine = locator.locate(['facts', first]).line;
      out.push(
        problem(
          file,
          locator.locate(['facts', i]),
          'warning',
          'persona/duplicate-fact',
          `The same fact as line ${firstLine} ("${persona.facts[first]}"): a duplicate makes selection ambiguous.`,
        ),
      );
    } else {
      seen.set(key, i);
    }
    const words = fact.trim().split(/\s+/).length;
    if (words > lint.maxFactWords) {
      out.push(
        problem(
          file,
          locator.locate(['facts', i]),
          'warning',
          'persona/fact-too-long',
          `This fact is ${words} words long; keep facts under ${lint.maxFactWords} words: every fact, the dialogue and the response must fit in the model's ${lint.contextTokens}-token context.`,
        ),
      );
    }
  });
  const total = persona.facts.reduce((n, f) => n + estimateTokens(f), 0);
  if (total > lint.contextTokens / 2) {
    out.push(
      problem(
        file,
        locator.locate(['facts'], 'key'),
        'warning',
        'persona/facts-too-long',
        `All facts together take about ${total} tokens, more than half of the model's ${lint.contextTokens}-token context: the dialogue history will be cut short. Shorten or remove some facts.`,
      ),
    );
  }
  return out;
}

/**
 * Sets (or, with `undefined`, removes) the value at `path` and re-reads the persona. YAML keeps its
 * comments and key order; JSON gets a minimal text edit.
 */
export function editPersona(doc: PersonaDocument, path: JsonPath, value: unknown, lint: PersonaLintOptions = DEFAULT_PERSONA_LINT): PersonaDocument {
  let text: string;
  if (doc.format === 'yaml') {
    if (!doc.yaml || doc.yaml.doc.errors.length) throw new Error(`${doc.file} has YAML errors; fix them before editing it here.`);
    text = editYaml(doc.yaml, path, value);
  } else {
    const eol = doc.text.includes('\r\n') ? '\r\n' : '\n';
    const indent = /\n(\s+)"/.exec(doc.text)?.[1] ?? '  ';
    const edits = modify(doc.text, path, value, { formattingOptions: { insertSpaces: !indent.includes('\t'), tabSize: indent.length, eol } });
    text = applyEdits(doc.text, edits);
  }
  const next = parsePersona(text, doc.file, lint);
  next.dirty = true;
  return next;
}

/** The text to save: the original bytes when nothing was edited. */
export function serializePersona(doc: PersonaDocument): string {
  return doc.text;
}
