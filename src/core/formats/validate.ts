/**
 * Schema validation with messages a writer understands, placed where the problem is.
 *
 * Ajv checks a value against the format's schema (schemas.ts); each error is turned into a
 * sentence ("'persona_index' should be a whole number, not text") and located in the file through
 * a Locator, which knows where each value sits in the file's text (JSON or YAML).
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { problem } from './problems';
import { SCHEMAS } from './schemas';
import type { Problem } from './types';

export type JsonPath = (string | number)[];

export interface Range {
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

/** Finds the text range of the value (or the key) at a path; falls back to the nearest parent. */
export interface Locator {
  locate(path: JsonPath, which?: 'value' | 'key'): Range;
}

export type FormatName = keyof typeof SCHEMAS;

const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
const withDefaults = new Ajv({ allErrors: true, strict: false, useDefaults: true });
const validators = new Map<string, ValidateFunction>();

function validator(format: FormatName, fill = false): ValidateFunction {
  const key = `${format}:${fill}`;
  let v = validators.get(key);
  if (!v) {
    v = (fill ? withDefaults : ajv).compile(SCHEMAS[format]);
    validators.set(key, v);
  }
  return v;
}

/** Fills the schema's defaults into `value` (mutates it); returns false when it is invalid. */
export function fillDefaults(format: FormatName, value: unknown): boolean {
  return validator(format, true)(value) as boolean;
}

/** Validates `value` against the format's schema and returns located, readable problems. */
export function validateAgainstSchema(format: FormatName, value: unknown, file: string, locator: Locator): Problem[] {
  const validate = validator(format);
  const problems: Problem[] = [];
  if (!validate(value)) {
    for (const err of dedupe(validate.errors ?? [], value)) {
      const path = pointerToPath(err.instancePath);
      const where = err.keyword === 'required' ? locator.locate(path, 'key') : locator.locate(path);
      problems.push(problem(file, where, 'error', `${format}/schema-${err.keyword}`, describeError(err, path, value)));
    }
  }
  problems.push(...unknownFieldWarnings(SCHEMAS[format], value, [], file, locator, format));
  return problems;
}

/** For a type error on a value Ajv may also report the members of a union; keep the first per path. */
const isNonFinite = (v: unknown): boolean => typeof v === 'number' && !Number.isFinite(v);

function dedupe(errors: ErrorObject[], root: unknown): ErrorObject[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    // NaN or an infinity breaks every bound at once: one error says what it is.
    const notFinite = isNonFinite(valueAt(root, pointerToPath(e.instancePath)));
    const key = notFinite
      ? `${e.instancePath}|non-finite`
      : `${e.instancePath}|${e.keyword}|${e.keyword === 'required' ? String(e.params.missingProperty) : ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function pointerToPath(pointer: string): JsonPath {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

export function describePath(path: JsonPath): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'text',
  integer: 'a whole number',
  number: 'a number',
  array: 'a list',
  object: 'a set of fields (an object)',
  boolean: 'true or false',
  null: 'null',
};

export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return v === '' ? 'empty text' : `text (${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)})`;
  if (typeof v === 'number') return Number.isInteger(v) ? `the number ${v}` : `the number ${v}`;
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'object') return 'a set of fields';
  return typeof v;
}

function valueAt(root: unknown, path: JsonPath): unknown {
  let v: unknown = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function describeError(err: ErrorObject, path: JsonPath, root: unknown): string {
  const name = describePath(path);
  const field = name ? `'${name}'` : 'The record';
  const value = valueAt(root, path);
  const p = err.params as Record<string, unknown>;
  if (isNonFinite(value)) return `${field} should be a finite number, not ${String(value)}.`;
  switch (err.keyword) {
    case 'required': {
      const missing = String(p.missingProperty);
      const desc = ((err.parentSchema as { properties?: Record<string, { description?: string }> })?.properties?.[missing]?.description ?? '').replace(
        /\.$/,
        '',
      );
      return `Missing '${describePath([...path, missing])}'${desc ? `: ${lowerFirst(desc)}` : ''}.`;
    }
    case 'type': {
      const types = (Array.isArray(p.type) ? p.type : String(p.type).split(',')).map((t: string) => TYPE_WORDS[t] ?? t);
      return `${field} should be ${types.join(' or ')}, not ${describeValue(value)}.`;
    }
    case 'enum':
      return `${field} should be one of ${(p.allowedValues as unknown[]).map((a) => JSON.stringify(a)).join(', ')}, not ${JSON.stringify(value)}.`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      const words = { minimum: 'at least', maximum: 'at most', exclusiveMinimum: 'more than', exclusiveMaximum: 'less than' }[err.keyword];
      return `${field} should be ${words} ${String(p.limit)}, not ${String(value)}.`;
    }
    case 'minLength':
      return Number(p.limit) === 1 ? `${field} should not be empty.` : `${field} should have at least ${String(p.limit)} characters.`;
    case 'minItems':
      return `${field} needs at least ${String(p.limit)} ${Number(p.limit) === 1 ? 'entry' : 'entries'}.`;
    case 'pattern': {
      const desc = (err.parentSchema as { description?: string })?.description;
      return `${field} is not in the expected form${desc ? ` (${lowerFirst(desc.replace(/\.$/, ''))})` : ''}: ${JSON.stringify(value)}.`;
    }
    default:
      return `${field} ${err.message ?? 'is not valid'}.`;
  }
}

function lowerFirst(s: string): string {
  return s && !/^[A-Z]{2}/.test(s) ? s[0]!.toLowerCase() + s.slice(1) : s;
}

/** Unknown fields are kept; one that looks like a misspelt known field gets a warning. */
function unknownFieldWarnings(schema: Record<string, unknown>, value: unknown, path: JsonPath, file: string, locator: Locator, format: string): Problem[] {
  if (value === null || typeof value !== 'object') return [];
  const out: Problem[] = [];
  if (Array.isArray(value)) {
    const items = schema.items as Record<string, unknown> | undefined;
    if (items) value.forEach((v, i) => out.push(...unknownFieldWarnings(items, v, [...path, i], file, locator, format)));
    return out;
  }
  const props = schema.properties as Record<string, Record<string, unknown>> | undefined;
  if (!props) return out;
  const known = Object.keys(props);
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const sub = props[key];
    if (sub) {
      out.push(...unknownFieldWarnings(sub, v, [...path, key], file, locator, format));
      continue;
    }
    const alias = FIELD_ALIASES[key.toLowerCase()];
    const near =
      (alias && known.includes(alias) ? alias : undefined) ??
      known.find((k) => !(k in (value as object)) && editDistance(k.toLowerCase(), key.toLowerCase()) <= (k.length > 4 ? 2 : 1));
    if (near) {
      out.push(
        problem(
          file,
          locator.locate([...path, key], 'key'),
          'warning',
          `${format}/unknown-field`,
          `Unknown field '${describePath([...path, key])}': did you mean '${near}'? It is kept, but PAL Studio does not use it.`,
        ),
      );
    } else if (format === 'palrun') {
      // A run config holds settings only: a field it does not know changes nothing, and that is
      // never what its writer meant (data files may carry extra fields of their own).
      out.push(
        problem(
          file,
          locator.locate([...path, key], 'key'),
          'warning',
          `${format}/unknown-field`,
          `Unknown field '${describePath([...path, key])}': a run config has no such setting, so it changes nothing. ${path.length ? `'${describePath(path)}' takes` : 'The top level takes'}: ${known.join(', ')}.`,
        ),
      );
    }
  }
  return out;
}

/** Other tools' names for run-config fields (transformers, TRL, PEFT), to suggest ours. */
const FIELD_ALIASES: Readonly<Record<string, string>> = {
  learning_rate: 'lr',
  num_train_epochs: 'epochs',
  num_epochs: 'epochs',
  per_device_train_batch_size: 'batch_size',
  train_batch_size: 'batch_size',
  gradient_accumulation_steps: 'grad_accum',
  max_grad_norm: 'grad_clip',
  lr_scheduler_type: 'schedule',
  scheduler: 'schedule',
  warmup: 'warmup_steps',
  max_seq_length: 'max_length',
  max_len: 'max_length',
  lora_r: 'r',
  lora_alpha: 'alpha',
  lora_dropout: 'dropout',
  target_modules: 'targets',
  output_dir: 'output',
};

export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}
