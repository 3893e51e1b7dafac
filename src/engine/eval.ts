/**
 * `pal eval` and `pal compare`: reads a predictions file (JSON Lines: `prediction`, `reference`,
 * optional `personas`, `selected`, `gold_persona`), computes PAL's metrics (src/core/metrics),
 * loads an NLI model through transformers.js for C.score when one is configured, and writes a JSON
 * report (stable keys) and a self-contained HTML report. docs/metrics.md defines every number.
 */
import { escapeHtml } from '../core/html';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import {
  evaluate,
  evaluateText,
  idfFromRecords,
  pairedBootstrap,
  type AggregateKey,
  type Interval,
  type PairedDifference,
  type SubsetReport,
  type TrivialSelection,
  METRIC_FIELDS,
  NLI_LABELS,
  type Evaluation,
  type ExampleScores,
  type MetricReport,
  type NliClassify,
  type NliLabel,
  type PredictionRecord,
  type Tokenization,
} from '../core/metrics/index';
import { readTextFile, writeFileSafely } from './data';
import { transformers } from './transformers';
import { PAL_STUDIO_VERSION } from '../core/version';
import { formatChange } from '../core/units';

// ---------------------------------------------------------------------------------------------
// Reading predictions

/** The longest prediction or reference pal eval scores: a dialogue reply is a few hundred characters. */
export const MAX_TEXT_CHARS = 20_000;

/** Reads a predictions file; any malformed line is an error naming its line (nothing is skipped silently). */
export async function readPredictions(file: string): Promise<PredictionRecord[]> {
  const text = await readTextFile(file);
  const records: PredictionRecord[] = [];
  const errors: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    const at = `${file}:${i + 1}:1: error:`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      errors.push(`${at} not valid JSON (${(err as Error).message})`);
      return;
    }
    const problem = checkRecord(value);
    if (problem) errors.push(`${at} ${problem}`);
    else records.push(value as PredictionRecord);
  });
  if (errors.length) {
    const shown = errors.slice(0, 20);
    if (errors.length > shown.length) shown.push(`... and ${errors.length - shown.length} more`);
    throw new Error(`${file} has ${errors.length} line${errors.length === 1 ? '' : 's'} that cannot be evaluated:\n${shown.join('\n')}`);
  }
  return records;
}

function checkRecord(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'each line must be a JSON object';
  const r = value as Record<string, unknown>;
  if (typeof r.prediction !== 'string') return '"prediction" must be a string';
  if (typeof r.reference !== 'string') return '"reference" must be a string';
  for (const key of ['prediction', 'reference'] as const) {
    const length = (r[key] as string).length;
    if (length > MAX_TEXT_CHARS)
      return `"${key}" is ${length.toLocaleString('en')} characters long; pal eval scores replies, and above ${MAX_TEXT_CHARS.toLocaleString('en')} characters ROUGE-L (every word against every word) would take minutes: cut it, or leave the line out`;
  }
  if (r.personas !== undefined && !(Array.isArray(r.personas) && r.personas.every((p) => typeof p === 'string')))
    return '"personas" must be an array of strings';
  if (r.history !== undefined && !(Array.isArray(r.history) && r.history.every((p) => typeof p === 'string'))) return '"history" must be an array of strings';
  for (const key of ['selected', 'gold_persona'] as const) {
    const v = r[key];
    if (v === undefined || v === null) continue;
    if (!Number.isInteger(v) || (v as number) < -1) return `"${key}" must be a persona index (0, 1, ...) or -1 for none`;
    if (Array.isArray(r.personas) && (v as number) >= r.personas.length)
      return `"${key}" is ${String(v)} but there are only ${r.personas.length} persona sentences`;
  }
  if (r.selected === null) delete r.selected;
  if (r.gold_persona === null) delete r.gold_persona;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The NLI model of C.score

export interface NliModel {
  readonly folder: string;
  /** id → label, as read from config.json's id2label. */
  readonly labels: readonly NliLabel[];
  readonly classify: NliClassify;
  dispose(): Promise<void>;
}

/**
 * Maps a model's id2label onto entailment/neutral/contradiction by a case-insensitive match of
 * "entail", "neutral" and "contradict" ("ENTAILMENT", "Contradiction", "LABEL_entails"...). Every
 * label must map to exactly one class and every class must appear: a guess would bias C.score.
 */
export function nliLabelMap(id2label: unknown): NliLabel[] {
  if (typeof id2label !== 'object' || id2label === null)
    throw new Error('config.json has no "id2label"; an NLI model needs one naming entailment, neutral and contradiction.');
  const entries = Object.entries(id2label as Record<string, unknown>);
  const out: NliLabel[] = [];
  for (const [id, raw] of entries) {
    const index = Number(id);
    if (!Number.isInteger(index) || index < 0) throw new Error(`config.json id2label has the id "${id}", which is not a class index.`);
    const name = String(raw).toLowerCase();
    const matches = (['entail', 'neutral', 'contradict'] as const).filter((k) => name.includes(k));
    if (matches.length !== 1) throw new Error(`config.json id2label[${id}] = "${String(raw)}" is not one of entailment, neutral or contradiction.`);
    out[index] = NLI_LABELS[['entail', 'neutral', 'contradict'].indexOf(matches[0]!)]!;
  }
  for (const label of NLI_LABELS) {
    if (out.filter((l) => l === label).length !== 1)
      throw new Error(`config.json id2label must name "${label}" exactly once (it has: ${entries.map(([, v]) => String(v)).join(', ')}).`);
  }
  if (out.length !== entries.length) throw new Error('config.json id2label must number its classes 0, 1, 2.');
  return out;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- transformers.js's models and tensors are loosely typed */
type Tf = any;

const NLI_BATCH = 16;

/**
 * Loads a local transformers.js text-classification model (a folder with config.json, a tokenizer
 * and onnx/model.onnx) as the NLI classifier: premise and hypothesis go in as a sentence pair, the
 * arg-max class is the label. Calls are gathered into batches of up to 16 pairs.
 */
export async function loadNliModel(folder: string): Promise<NliModel> {
  const absolute = path.resolve(folder);
  let config: { id2label?: unknown };
  try {
    config = JSON.parse(await fs.readFile(path.join(absolute, 'config.json'), 'utf8'));
  } catch (err) {
    throw new Error(`${absolute} is not a model folder: cannot read its config.json (${(err as Error).message}).`, { cause: err });
  }
  const labels = nliLabelMap(config.id2label);
  // Local folders only: an evaluation never downloads anything.
  const tf: Tf = transformers();
  const options = { local_files_only: true };
  const tokenizer = await tf.AutoTokenizer.from_pretrained(absolute, options);
  const model = await tf.AutoModelForSequenceClassification.from_pretrained(absolute, { ...options, dtype: 'fp32' });

  type Job = { premise: string; hypothesis: string; resolve: (l: NliLabel) => void; reject: (e: unknown) => void };
  let queue: Job[] = [];
  let running: Promise<void> = Promise.resolve();
  let scheduled = false;
  const runBatch = async (jobs: Job[]) => {
    try {
      const inputs = tokenizer(
        jobs.map((j) => j.premise),
        { text_pair: jobs.map((j) => j.hypothesis), padding: true, truncation: true },
      );
      const { logits } = await model(inputs);
      const [rows, classes] = logits.dims as [number, number];
      if (classes !== labels.length) throw new Error(`the NLI model gives ${classes} logits per pair but its config.json names ${labels.length} labels`);
      const data = logits.data as Float32Array;
      for (let r = 0; r < rows; r++) {
        let best = 0;
        for (let c = 1; c < classes; c++) if (data[r * classes + c]! > data[r * classes + best]!) best = c;
        jobs[r]!.resolve(labels[best]!);
      }
    } catch (err) {
      for (const j of jobs) j.reject(err);
    }
  };
  const flush = () => {
    scheduled = false;
    while (queue.length) {
      const jobs = queue.slice(0, NLI_BATCH);
      queue = queue.slice(NLI_BATCH);
      running = running.then(() => runBatch(jobs));
    }
  };
  const classify: NliClassify = (premise, hypothesis) =>
    new Promise<NliLabel>((resolve, reject) => {
      queue.push({ premise, hypothesis, resolve, reject });
      // Calls made in the same turn of the event loop share batches.
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
  return {
    folder: absolute,
    labels,
    classify,
    dispose: async () => {
      await running;
      await model.dispose?.();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Running an evaluation

export interface EvalOptions {
  predictions: string;
  baseline?: string;
  tokenization?: Tokenization;
  /** A local NLI model folder for C.score. */
  nli?: string;
}

export interface EvalRun {
  file: string;
  evaluation: Evaluation;
  records: PredictionRecord[];
}

export interface EvalResult {
  /** The evaluated predictions ("after" alignment when there is a baseline). */
  run: EvalRun;
  /** The baseline ("before"), when given. */
  baseline?: EvalRun;
}

export async function runEvaluation(options: EvalOptions): Promise<EvalResult> {
  const tokenization = options.tokenization ?? 'whitespace';
  const records = await readPredictions(options.predictions);
  if (records.length === 0) throw new Error(`${options.predictions} has no predictions.`);
  const baselineRecords = options.baseline ? await readPredictions(options.baseline) : undefined;
  if (baselineRecords && baselineRecords.length === 0) throw new Error(`${options.baseline} has no predictions.`);
  // One IDF table for both runs, so that their P-Cover weighs words alike.
  const idf = idfFromRecords(records, tokenization);
  const nli = options.nli ? await loadNliModel(options.nli) : undefined;
  try {
    const common = { tokenization, idf, ...(nli ? { classify: nli.classify } : {}) };
    const run: EvalRun = { file: options.predictions, records, evaluation: await evaluate(records, common) };
    if (!baselineRecords) return { run };
    const baseline: EvalRun = { file: options.baseline!, records: baselineRecords, evaluation: await evaluate(baselineRecords, common) };
    return { run, baseline };
  } finally {
    await nli?.dispose();
  }
}

/** Why two predictions files do not answer the same examples in the same order, or undefined when they do. */
export function differentExamples(a: readonly PredictionRecord[], b: readonly PredictionRecord[]): string | undefined {
  if (a.length !== b.length) return `they hold different numbers of examples (${a.length} vs ${b.length})`;
  const i = a.findIndex((x, k) => x.reference !== b[k]!.reference || (x.id !== undefined && b[k]!.id !== undefined && x.id !== b[k]!.id));
  return i < 0 ? undefined : `example ${i + 1} differs (${a[i]!.id ?? a[i]!.reference} vs ${b[i]!.id ?? b[i]!.reference})`;
}

/** The JSON report: the metrics under their stable keys, then where they came from. */
export interface JsonReport extends MetricReport {
  predictions: string;
  nliModel: string | null;
  palStudioVersion: string;
  baseline?: MetricReport & { predictions: string };
  /** After minus before, paired over the same examples (when there is a baseline with as many). */
  change?: Partial<Record<AggregateKey, PairedDifference>>;
}

export function jsonReport(result: EvalResult, nli?: string): JsonReport {
  const report: JsonReport = {
    ...result.run.evaluation.report,
    predictions: result.run.file,
    nliModel: nli ? path.resolve(nli) : null,
    palStudioVersion: PAL_STUDIO_VERSION,
  };
  if (result.baseline) {
    report.baseline = { ...result.baseline.evaluation.report, predictions: result.baseline.file };
    if (!differentExamples(result.baseline.records, result.run.records)) report.change = pairedBootstrap(result.baseline.evaluation, result.run.evaluation);
  }
  return report;
}

/** report.json (the report plus per-example scores) and report.html, written into `dir`. */
export async function writeReports(dir: string, result: EvalResult, nli?: string): Promise<string[]> {
  const json = { ...jsonReport(result, nli), examples: result.run.evaluation.examples };
  const files = [path.join(dir, 'report.json'), path.join(dir, 'report.html')];
  // Reports are generated output, written afresh on each run (atomically, never half a file).
  await writeFileSafely(files[0]!, `${JSON.stringify(json, null, 2)}\n`, true);
  await writeFileSafely(files[1]!, htmlReport(result), true);
  return files;
}

// ---------------------------------------------------------------------------------------------
// Tables and comparison

type Numeric = number | null | undefined;

function formatValue(v: Numeric, key?: string): string {
  if (v === null || v === undefined) return 'n/a';
  if (key === 'count') return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(4);
}

function formatDelta(a: Numeric, b: Numeric, key?: string): string {
  if (typeof a !== 'number' || typeof b !== 'number') return '';
  return formatChange(b - a, key === 'count');
}

function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function formatInterval(i: Interval | undefined): string {
  return i ? `${i.low.toFixed(4)}–${i.high.toFixed(4)}` : '';
}

function formatPaired(d: PairedDifference | undefined): string {
  return d ? `${formatInterval(d.interval)}, p ${d.p < 0.001 ? '< 0.001' : d.p.toFixed(3)}` : '';
}

/** The labelled/unlabelled subsets and the trivial selectors, below a table (when the report has them). */
function formatBreakdown(report: MetricReport): string {
  const out: string[] = [];
  if (report.subsets) {
    const { labelled, unlabelled } = report.subsets;
    const keys = ['bleu1', 'rougeL', 'distinct2', 'pF1', 'selectionAccuracy'] as const;
    const cell = (s: SubsetReport, k: (typeof keys)[number]) =>
      s.metrics[k] === null ? 'n/a' : `${formatValue(s.metrics[k])} (${formatInterval(s.intervals[k])})`;
    out.push(
      `\nBy whether the written reply uses a persona sentence (95% intervals):\n${textTable(
        ['Metric', `uses one (${labelled.count})`, `uses none (${unlabelled.count})`],
        keys.map((k) => [METRIC_FIELDS.find((f) => f.key === k)!.label, cell(labelled, k), cell(unlabelled, k)]),
      )}`,
    );
  }
  const trivial = trivialSelectionLines(report.trivialSelection);
  if (trivial.length) out.push(`\n${trivial.join('\n')}`);
  return out.length ? `${out.join('\n')}\n` : '';
}

/**
 * The trivial selectors' accuracy with their intervals, and the model's paired difference from
 * always "none" (the bar PERSONA-CHAT sets: most replies use no fact), a line each; none when
 * there are no trivial rows.
 */
function trivialSelectionLines(t: TrivialSelection | undefined): string[] {
  if (!t || t.count === 0) return [];
  const row = (value: number | null, i: Interval | undefined) => `${formatValue(value)}${i ? ` (${formatInterval(i)})` : ''}`;
  const bm25 = t.bm25 === null ? 'n/a (the predictions carry no history)' : row(t.bm25, t.intervals?.bm25);
  const lines = [
    `Selection accuracy without a model, on the same ${t.count} examples: always "none" ${row(t.alwaysNone, t.intervals?.alwaysNone)}; BM25 over the partner's last turn ${bm25}.`,
  ];
  const d = t.modelOverAlwaysNone;
  if (d) {
    const verdict = d.interval.low > 0 ? 'above always "none"' : d.interval.high < 0 ? 'below always "none"' : 'not told apart from always "none"';
    lines.push(`The model's selection accuracy minus always "none": ${formatChange(d.delta, false)} (${formatPaired(d)}): ${verdict}.`);
  }
  return lines;
}

/** The metric table `pal eval` prints (with before/after columns when there is a baseline). */
export function formatEvalTable(report: JsonReport): string {
  const b = report.baseline;
  const rows = METRIC_FIELDS.map(({ key, label }) => {
    const after = report[key] as Numeric;
    const interval = formatInterval(report.intervals?.[key as AggregateKey]);
    return b
      ? [
          label,
          formatValue(b[key] as Numeric, key),
          formatValue(after, key),
          formatDelta(b[key] as Numeric, after, key),
          formatPaired(report.change?.[key as AggregateKey]),
        ]
      : [label, formatValue(after, key), interval];
  });
  const header = b ? ['Metric', 'Before', 'After', 'Change', 'Change: 95% interval, paired p'] : ['Metric', 'Value', '95% interval'];
  const notes = [...report.notes, ...(b ? b.notes.filter((n) => !report.notes.includes(n)).map((n) => `baseline: ${n}`) : [])];
  return `${textTable(header, rows)}\n${formatBreakdown(report)}\nTokenisation: ${report.tokenization}.\n${notes.map((n) => `Note: ${n}.\n`).join('')}`;
}

export interface ComparisonRow {
  key: string;
  label: string;
  a: number | null;
  b: number | null;
  /** b - a, or null when either is missing. */
  delta: number | null;
  /** The paired bootstrap's interval of b - a and its p, when both predictions files could be read. */
  paired?: PairedDifference;
}

export interface Comparison {
  a: string;
  b: string;
  rows: ComparisonRow[];
  /** Why the two runs may not be comparable (different tokenisation, examples, NLI model). */
  warnings: string[];
}

function asReport(value: unknown, name: string): Partial<JsonReport> {
  if (typeof value !== 'object' || value === null || typeof (value as Record<string, unknown>).bleu1 !== 'number') {
    throw new Error(`${name} is not a PAL evaluation report (no "bleu1"); make one with pal eval --out <dir>.`);
  }
  return value as Partial<JsonReport>;
}

/** Two reports side by side: every metric of a, of b, and the change from a to b. */
export function compareRuns(
  aReport: unknown,
  bReport: unknown,
  names: { a: string; b: string } = { a: 'a', b: 'b' },
  paired?: Partial<Record<AggregateKey, PairedDifference>>,
): Comparison {
  const a = asReport(aReport, names.a);
  const b = asReport(bReport, names.b);
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  const rows = METRIC_FIELDS.map(({ key, label }) => {
    const av = num(a[key]);
    const bv = num(b[key]);
    const difference = paired?.[key as AggregateKey];
    return { key, label, a: av, b: bv, delta: av !== null && bv !== null ? bv - av : null, ...(difference ? { paired: difference } : {}) };
  });
  const warnings: string[] = [];
  if (a.tokenization !== b.tokenization)
    warnings.push(
      `the runs use different tokenisations (${String(a.tokenization)} vs ${String(b.tokenization)}): BLEU, ROUGE-L and Distinct are not comparable`,
    );
  if (a.count !== b.count) warnings.push(`the runs have different numbers of examples (${String(a.count)} vs ${String(b.count)})`);
  if ((a.nliModel ?? null) !== (b.nliModel ?? null))
    warnings.push(`C.score comes from different NLI models (${a.nliModel ?? 'none'} vs ${b.nliModel ?? 'none'})`);
  return { a: names.a, b: names.b, rows, warnings };
}

/**
 * The paired bootstrap of two reports over their predictions files (each report names its own;
 * a relative name is tried from the current folder, then from the report's), or why there is none.
 * C.score comes from the reports' per-example scores, where both have them.
 */
export async function pairReports(
  a: { file: string; report: unknown },
  b: { file: string; report: unknown },
): Promise<{ paired?: Partial<Record<AggregateKey, PairedDifference>>; why?: string }> {
  type Side = {
    records: PredictionRecord[];
    examples: { cScore?: number | null; cScoreMax?: number | null }[] | undefined;
    tokenization: Tokenization | undefined;
  };
  const load = async ({ file, report }: { file: string; report: unknown }): Promise<Side | { why: string }> => {
    const r = report as Partial<JsonReport> & { examples?: { cScore?: number | null; cScoreMax?: number | null }[] };
    if (typeof r.predictions !== 'string') return { why: `${file} names no predictions file` };
    const candidates = [path.resolve(r.predictions), path.resolve(path.dirname(file), r.predictions)];
    const found = (
      await Promise.all(
        candidates.map((c) =>
          fs.stat(c).then(
            (st) => (st.isFile() ? c : undefined),
            () => undefined,
          ),
        ),
      )
    ).find(Boolean);
    if (!found) return { why: `${r.predictions} (the predictions ${file} was made from) is not there` };
    return { records: await readPredictions(found), examples: r.examples, tokenization: r.tokenization };
  };
  const [x, y] = [await load(a), await load(b)];
  if (!('records' in x)) return { why: x.why };
  if (!('records' in y)) return { why: y.why };
  const different = differentExamples(x.records, y.records);
  if (different) return { why: `the two predictions files do not answer the same examples: ${different}` };
  if (x.tokenization !== y.tokenization) return { why: 'the reports use different tokenisations' };
  const tokenization = x.tokenization ?? 'whitespace';
  const idf = idfFromRecords(x.records, tokenization);
  const evaluate = (side: Side) => {
    const ev = evaluateText(side.records, { tokenization, idf });
    if (side.examples?.length === ev.stats.length) {
      side.examples.forEach((e, i) => {
        ev.stats[i]!.cScore = typeof e.cScore === 'number' ? e.cScore : null;
        ev.stats[i]!.cScoreMax = typeof e.cScoreMax === 'number' ? e.cScoreMax : null;
      });
    }
    return ev;
  };
  return { paired: pairedBootstrap(evaluate(x), evaluate(y)) };
}

export function formatComparison(c: Comparison): string {
  const paired = c.rows.some((r) => r.paired);
  const table = textTable(
    ['Metric', c.a, c.b, 'Change', ...(paired ? ['Change: 95% interval, paired p'] : [])],
    c.rows.map((r) => [r.label, formatValue(r.a, r.key), formatValue(r.b, r.key), formatDelta(r.a, r.b, r.key), ...(paired ? [formatPaired(r.paired)] : [])]),
  );
  return `${table}\n${c.warnings.map((w) => `\nWarning: ${w}.`).join('')}\n`;
}

// ---------------------------------------------------------------------------------------------
// The HTML report

const MAX_EXAMPLE_ROWS = 500;
const WORST_ROWS = 10;

/** Metrics on a 0..1 scale, drawn as bars. */
const CHART_KEYS = ['bleu1', 'bleu2', 'bleu3', 'bleu4', 'rougeL', 'distinct1', 'distinct2', 'selectionAccuracy', 'pF1', 'pCover'] as const;

function metricBars(after: MetricReport, before?: MetricReport): string {
  const fields = CHART_KEYS.map((k) => METRIC_FIELDS.find((f) => f.key === k)!);
  const rowHeight = before ? 30 : 20;
  const labelWidth = 190;
  const barWidth = 420;
  const height = fields.length * rowHeight + 30;
  const parts: string[] = [];
  fields.forEach((f, i) => {
    const y = 10 + i * rowHeight;
    parts.push(`<text x="${labelWidth - 8}" y="${y + 12}" text-anchor="end">${escapeHtml(f.label)}</text>`);
    const bar = (v: Numeric, dy: number, cls: string) => {
      if (typeof v !== 'number') return `<text x="${labelWidth + 4}" y="${y + dy + 11}" class="na">n/a</text>`;
      const w = Math.max(0, Math.min(1, v)) * barWidth;
      return `<rect x="${labelWidth}" y="${y + dy}" width="${w.toFixed(1)}" height="12" class="${cls}"/><text x="${(labelWidth + w + 4).toFixed(1)}" y="${y + dy + 11}">${formatValue(v)}</text>`;
    };
    if (before) {
      parts.push(bar(before[f.key] as Numeric, 0, 'before'));
      parts.push(bar(after[f.key] as Numeric, 13, 'after'));
    } else {
      parts.push(bar(after[f.key] as Numeric, 0, 'after'));
    }
  });
  const legend = before
    ? `<rect x="${labelWidth}" y="${height - 14}" width="12" height="10" class="before"/><text x="${labelWidth + 16}" y="${height - 5}">before</text><rect x="${labelWidth + 80}" y="${height - 14}" width="12" height="10" class="after"/><text x="${labelWidth + 96}" y="${height - 5}">after</text>`
    : '';
  return `<svg class="chart" role="img" aria-label="Metrics, 0 to 1" width="${labelWidth + barWidth + 80}" height="${height}" viewBox="0 0 ${labelWidth + barWidth + 80} ${height}">${parts.join('')}${legend}</svg>`;
}

function histogram(values: readonly number[], label: string): string {
  const bins = 10;
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.max(0, Math.floor(v * bins)))]!++;
  const max = Math.max(1, ...counts);
  const w = 40;
  const h = 120;
  const bars = counts
    .map((c, i) => {
      const bh = (c / max) * h;
      return `<rect x="${30 + i * w}" y="${(10 + h - bh).toFixed(1)}" width="${w - 4}" height="${bh.toFixed(1)}" class="after"><title>${(i / bins).toFixed(1)}–${((i + 1) / bins).toFixed(1)}: ${c}</title></rect><text x="${30 + i * w + (w - 4) / 2}" y="${h + 24}" text-anchor="middle">${(i / bins).toFixed(1)}</text>`;
    })
    .join('');
  return `<svg class="chart" role="img" aria-label="${escapeHtml(label)}" width="${30 + bins * w + 10}" height="${h + 34}" viewBox="0 0 ${30 + bins * w + 10} ${h + 34}"><text x="0" y="10">${max}</text>${bars}</svg>`;
}

function personaList(record: PredictionRecord): string {
  if (!record.personas?.length) return '<span class="na">no personas</span>';
  const items = record.personas
    .map((p, i) => {
      const selected = record.selected === i;
      const gold = record.gold_persona === i;
      const marks = `${selected ? ' <span class="tag">selected</span>' : ''}${gold ? ' <span class="tag gold">gold</span>' : ''}`;
      return `<li${selected ? ' class="selected"' : ''}>${selected ? `<mark>${escapeHtml(p)}</mark>` : escapeHtml(p)}${marks}</li>`;
    })
    .join('');
  const none =
    record.selected === -1
      ? '<div><mark>no persona</mark> <span class="tag">selected</span>' + (record.gold_persona === -1 ? ' <span class="tag gold">gold</span>' : '') + '</div>'
      : '';
  return `<ol start="0">${items}</ol>${none}`;
}

function exampleRow(index: number, record: PredictionRecord, scores: ExampleScores, before?: PredictionRecord): string {
  const num = (v: number | null) => (v === null ? '<span class="na">n/a</span>' : v.toFixed(3));
  const nli = scores.nli ? `<div class="nli">${scores.nli.map((l, j) => `${j}: ${l}`).join(', ')}</div>` : '';
  return `<tr><td>${index + 1}</td><td>${personaList(record)}</td><td>${escapeHtml(record.reference)}</td><td>${before ? `<div class="before-text">${escapeHtml(before.prediction)}</div>` : ''}<div>${escapeHtml(record.prediction)}</div></td><td>${num(scores.bleu[0]!)}</td><td>${num(scores.rougeL)}</td><td>${num(scores.pF1)}</td><td>${num(scores.cScore)}${nli}</td></tr>`;
}

const EXAMPLE_HEADER =
  '<tr><th>#</th><th>Personas (selected highlighted)</th><th>Reference</th><th>Response</th><th>BLEU-1</th><th>ROUGE-L</th><th>P-F1</th><th>C.score</th></tr>';

/** The worst examples: by C.score when it was computed, else by P-F1, else by ROUGE-L. */
function worstExamples(run: EvalRun): { by: string; indexes: number[] } {
  const ex = run.evaluation.examples;
  const all = ex.map((_, i) => i);
  const pick = (key: 'cScore' | 'pF1' | 'rougeL') =>
    all.filter((i) => ex[i]![key] !== null).sort((x, y) => (ex[x]![key] as number) - (ex[y]![key] as number) || x - y);
  if (run.evaluation.report.cScore !== null) return { by: 'C.score', indexes: pick('cScore').slice(0, WORST_ROWS) };
  if (run.evaluation.report.pF1 !== null) return { by: 'P-F1', indexes: pick('pF1').slice(0, WORST_ROWS) };
  return { by: 'ROUGE-L', indexes: pick('rougeL').slice(0, WORST_ROWS) };
}

export function htmlReport(result: EvalResult): string {
  const { run, baseline } = result;
  const report = run.evaluation.report;
  const before = baseline?.evaluation.report;
  // Rows line up with the baseline's only when both files hold the same examples in the same order.
  const alignedBaseline =
    baseline && baseline.records.length === run.records.length && baseline.records.every((r, i) => r.reference === run.records[i]!.reference)
      ? baseline
      : undefined;
  const metricRows = METRIC_FIELDS.map(({ key, label }) => {
    const after = report[key] as Numeric;
    return before
      ? `<tr><td>${escapeHtml(label)}</td><td>${formatValue(before[key] as Numeric, key)}</td><td>${formatValue(after, key)}</td><td>${formatDelta(before[key] as Numeric, after, key)}</td></tr>`
      : `<tr><td>${escapeHtml(label)}</td><td>${formatValue(after, key)}</td></tr>`;
  }).join('');
  const metricHeader = before
    ? '<tr><th>Metric</th><th>Before alignment</th><th>After alignment</th><th>Change</th></tr>'
    : '<tr><th>Metric</th><th>Value</th></tr>';
  const notes = [...report.notes, ...(before ? before.notes.map((n) => `baseline: ${n}`) : [])];
  const worst = worstExamples(run);
  const shown = Math.min(run.records.length, MAX_EXAMPLE_ROWS);
  const rows = (indexes: number[]) => indexes.map((i) => exampleRow(i, run.records[i]!, run.evaluation.examples[i]!, alignedBaseline?.records[i])).join('');
  const files = `${escapeHtml(run.file)}${baseline ? ` (after), against ${escapeHtml(baseline.file)} (before)` : ''}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>PAL evaluation: ${escapeHtml(path.basename(run.file))}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #1e1e1e; background: #fff; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; text-align: left; }
.metrics td:not(:first-child) { text-align: right; font-variant-numeric: tabular-nums; }
.examples td { max-width: 28em; } ol { margin: 0; padding-left: 1.6em; }
mark { background: #ffe08a; } .tag { font-size: 0.75em; background: #e8e8e8; border-radius: 3px; padding: 0 4px; }
.tag.gold { background: #cde8c8; } .na { color: #888; } .nli { font-size: 0.8em; color: #555; }
.before-text { color: #777; font-style: italic; margin-bottom: 4px; } .before-text::before { content: "before: "; font-style: normal; }
svg.chart text { font-size: 11px; fill: #1e1e1e; } svg.chart .before { fill: #b0b0b0; } svg.chart .after { fill: #3a7bd5; }
.notes li { color: #8a4b00; }
</style>
</head>
<body>
<h1>PAL evaluation</h1>
<p>${files}<br>${report.count} examples; tokenisation: ${escapeHtml(report.tokenization)}; PAL Studio ${escapeHtml(PAL_STUDIO_VERSION)}. Definitions: docs/metrics.md.</p>
${notes.length ? `<ul class="notes">${notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` : ''}
<h2>Metrics</h2>
<table class="metrics">${metricHeader}${metricRows}</table>
${trivialSelectionLines(report.trivialSelection)
  .map((line) => `<p>${escapeHtml(line)}</p>`)
  .join('\n')}
<h2>Charts</h2>
${metricBars(report, before)}
<p>Per-example ROUGE-L (number of examples per bin):</p>
${histogram(
  run.evaluation.examples.map((e) => e.rougeL),
  'Histogram of per-example ROUGE-L',
)}
<h2>Worst examples by ${escapeHtml(worst.by)}</h2>
<table class="examples">${EXAMPLE_HEADER}${rows(worst.indexes)}</table>
<h2>Examples${shown < run.records.length ? ` (the first ${shown} of ${run.records.length})` : ''}</h2>
${alignedBaseline ? '<p>Grey italic text ("before:") is the baseline\'s response to the same example, before alignment.</p>' : ''}
<table class="examples">${EXAMPLE_HEADER}${rows(Array.from({ length: shown }, (_, i) => i))}</table>
</body>
</html>
`;
}
