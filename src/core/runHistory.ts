/**
 * A run folder read back for the training dashboard: state.json (the stages done), each training
 * stage's metrics.jsonl (one trainer record per step) and eval/report.json (before vs after).
 * Pure: the caller reads the files and passes their text. A bad metrics line is skipped with a
 * warning naming its file and line, so one torn or corrupt line never hides the rest of a run.
 */
import { METRIC_FIELDS } from './metrics/evaluate';
import { RUN_STAGES, type RunStage } from './runFolder';

/** One trainer step: `step` plus numeric metrics (loss, learning_rate, rewards/…); NaN where the trainer wrote NaN. */
export type MetricRecord = Readonly<Record<string, number>> & { readonly step: number };

/**
 * Python's json.dumps writes NaN and ±Infinity as bare words, which JSON.parse refuses: they are
 * exactly the values the dashboard must show (a diverged loss), so they are read as numbers.
 */
export function parsePythonJsonLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch (err) {
    // Marked with a NUL (escaped in the JSON text), which no metric name or value contains.
    const quoted = line.replace(/([:,[]\s*)(-?Infinity|NaN)(?=\s*[,}\]])/g, '$1"\\u0000$2"');
    if (quoted === line) throw err;
    return JSON.parse(quoted, (_k, v: unknown) => (typeof v === 'string' && v.startsWith('\u0000') ? Number(v.slice(1)) : v));
  }
}

/** A stage's metrics.jsonl: records in step order (a repeated step keeps its last line, as a resumed trainer rewrites them). */
export function parseMetrics(text: string, file: string): { records: MetricRecord[]; warnings: string[] } {
  const byStep = new Map<number, MetricRecord>();
  const warnings: string[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const at = `${file}:${i + 1}`;
    let value: unknown;
    try {
      value = parsePythonJsonLine(line);
    } catch {
      const torn = i === lines.length - 1;
      warnings.push(`${at}: skipped, not a JSON line${torn ? ' (cut off: the trainer may still be writing it)' : ''}`);
      return;
    }
    const record = toMetricRecord(value);
    if (!record) warnings.push(`${at}: skipped, not a metrics record (it needs a whole "step" number of at least 1)`);
    else byStep.set(record.step, record);
  });
  return { records: [...byStep.values()].sort((a, b) => a.step - b.step), warnings };
}

/** The numeric fields of a trainer step (null stands for a non-finite number JSON could not carry). */
export function toMetricRecord(value: unknown): MetricRecord | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.step !== 'number' || !Number.isInteger(v.step) || v.step < 1) return undefined;
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x === 'number') out[k] = x;
    else if (x === null) out[k] = Number.NaN;
  }
  return out as MetricRecord;
}

/**
 * Adds a live step to a stage's records. A step at or before the last one means the trainer
 * resumed from a checkpoint and is repeating steps: the old ones after the checkpoint go, as the
 * trainer drops them from metrics.jsonl.
 */
export function appendRecord(records: MetricRecord[], record: MetricRecord): void {
  while (records.length && records[records.length - 1]!.step >= record.step) records.pop();
  records.push(record);
}

/** The values of one metric as [step, value] points (steps without it are left out). */
export function series(records: readonly MetricRecord[], key: string): [number, number][] {
  const out: [number, number][] = [];
  for (const r of records) if (key in r) out.push([r.step, r[key]!]);
  return out;
}

export type StageStatus = 'done' | 'running' | 'stopped' | 'failed' | 'skipped' | 'pending';

/**
 * Each stage's status. `current` is the stage a live run reports (or the one it ended in);
 * without one, the first stage not done is where a run that is not finished stopped. A stage
 * left undone behind a later stage that is done was skipped (method: finetune skips generate
 * and stage 2; no held-out examples skip evaluate).
 */
export function stageStatuses(
  done: readonly RunStage[],
  current: { stage: RunStage; outcome: 'running' | 'stopped' | 'failed' } | null,
): Record<RunStage, StageStatus> {
  const finished = done.includes('export');
  const lastDone = Math.max(-1, ...done.map((s) => RUN_STAGES.indexOf(s)));
  const stoppedAt = current ? RUN_STAGES.indexOf(current.stage) : finished ? -1 : RUN_STAGES.findIndex((s) => !done.includes(s));
  const out = {} as Record<RunStage, StageStatus>;
  RUN_STAGES.forEach((s, i) => {
    if (done.includes(s) && !(current?.outcome === 'running' && i === stoppedAt)) out[s] = 'done';
    else if (i === stoppedAt) out[s] = current ? current.outcome : 'stopped';
    else if (i < lastDone || (finished && i > lastDone)) out[s] = 'skipped';
    else out[s] = 'pending';
  });
  return out;
}

export interface EvalRow {
  readonly key: string;
  readonly label: string;
  readonly before: number | null;
  readonly after: number | null;
}

/** eval/report.json as before/after rows (pal eval's metric list, in its order). */
export function evaluationRows(text: string, file: string): EvalRow[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}:1: not JSON (${(err as Error).message})`, { cause: err });
  }
  const report = value as Record<string, unknown> | null;
  if (typeof report !== 'object' || report === null || typeof report.bleu1 !== 'number') throw new Error(`${file}:1: not a PAL evaluation report (no "bleu1")`);
  const baseline = (typeof report.baseline === 'object' && report.baseline !== null ? report.baseline : {}) as Record<string, unknown>;
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  return METRIC_FIELDS.map(({ key, label }) => ({ key, label, before: num(baseline[key]), after: num(report[key]) }));
}

/** "40 s", "12 min", "2.5 h". */
export function formatEta(seconds: number): string {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
