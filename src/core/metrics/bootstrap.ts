/**
 * How sure a number is: percentile bootstrap intervals over examples, and the paired bootstrap
 * test between two systems answering the same examples (Koehn 2004). Each resample draws n
 * examples with replacement and recomputes the corpus metric with the same function the report
 * uses (aggregate), so corpus BLEU is resampled as corpus BLEU, not as a mean of sentence BLEUs.
 *
 * Distinct-n is the one metric a draw shifts by itself: a prediction drawn twice adds its n-grams
 * to the count but none to the distinct ones, so every draw's Distinct is lower than the set's
 * (a system's Distinct-2 of 0.81 had its draws between 0.6 and 0.7, an interval that left out
 * the value itself). Its draws are centred on the value before the quantiles are read (median
 * shifted to the point estimate): the spread is the bootstrap's, the duplicate artefact is not.
 */
import { mulberry32 } from '../random';
import { aggregate, AGGREGATE_KEYS, type Aggregate, type AggregateKey, type Evaluation } from './evaluate';

export interface Interval {
  readonly low: number;
  readonly high: number;
}

export interface BootstrapOptions {
  /** Draws (default 1000). */
  readonly resamples?: number;
  /** The draws' seed (default 1): the same seed gives the same intervals. */
  readonly seed?: number;
  /** Coverage (default 0.95). */
  readonly level?: number;
  /** Resample within these examples only (a subset); default all. */
  readonly indexes?: readonly number[];
}

export const DEFAULT_RESAMPLES = 1000;

type Sample = Pick<Evaluation, 'stats' | 'vocabularySize'>;

/** The q-quantile of sorted values (linear between order statistics, R's type 7). */
function quantile(sorted: readonly number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

function draws(n: number, options: BootstrapOptions, each: (indexes: Int32Array) => void): void {
  const pool = options.indexes ?? Array.from({ length: n }, (_, i) => i);
  if (pool.length === 0) return;
  const random = mulberry32(options.seed ?? 1);
  const indexes = new Int32Array(pool.length);
  for (let r = 0; r < (options.resamples ?? DEFAULT_RESAMPLES); r++) {
    for (let i = 0; i < pool.length; i++) indexes[i] = pool[Math.floor(random() * pool.length)]!;
    each(indexes);
  }
}

/** Metrics whose draws are shifted by repeated draws (see above): centred on the point estimate. */
const CENTRED: ReadonlySet<AggregateKey> = new Set<AggregateKey>(['distinct1', 'distinct2']);

/** The draws moved so that their median is `point` (for CENTRED metrics). */
function centre(values: number[], point: number): number[] {
  if (values.length === 0) return values;
  const median = quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
  return values.map((v) => v - median + point);
}

function interval(values: number[], level: number): Interval | undefined {
  if (values.length === 0) return undefined;
  values.sort((a, b) => a - b);
  return { low: quantile(values, (1 - level) / 2), high: quantile(values, 1 - (1 - level) / 2) };
}

/** A 95% (or `level`) interval for every metric the examples give. */
export function bootstrapIntervals(sample: Sample, options: BootstrapOptions = {}): Partial<Record<AggregateKey, Interval>> {
  const values = Object.fromEntries(AGGREGATE_KEYS.map((k) => [k, [] as number[]])) as Record<AggregateKey, number[]>;
  draws(sample.stats.length, options, (indexes) => {
    const a = aggregate(sample.stats, indexes, sample.vocabularySize);
    for (const k of AGGREGATE_KEYS) if (a[k] !== null) values[k].push(a[k]);
  });
  const point = aggregate(sample.stats, options.indexes ?? Int32Array.from(sample.stats.keys()), sample.vocabularySize);
  const out: Partial<Record<AggregateKey, Interval>> = {};
  for (const k of AGGREGATE_KEYS) {
    const p = point[k];
    const centred = CENTRED.has(k) && p !== null;
    const i = interval(centred ? centre(values[k], p) : values[k], options.level ?? 0.95);
    // A ratio stays within 0..1 however its draws were moved.
    if (i) out[k] = centred ? { low: Math.max(0, i.low), high: Math.min(1, i.high) } : i;
  }
  return out;
}

export interface PairedDifference {
  /** b - a on all examples. */
  readonly delta: number;
  /** The interval of b - a over paired draws. */
  readonly interval: Interval;
  /**
   * Two-sided p: twice the share of draws on the other side of zero from the observed
   * difference (at most 1). Below 0.05 exactly when the 95% interval leaves out zero, up to ties.
   */
  readonly p: number;
}

/**
 * b against a on the same examples (stats[i] of both answer example i): each draw takes the same
 * examples from both, so what the examples share cancels out of the difference.
 */
export function pairedBootstrap(a: Sample, b: Sample, options: BootstrapOptions = {}): Partial<Record<AggregateKey, PairedDifference>> {
  if (a.stats.length !== b.stats.length) throw new Error(`a paired test needs the same examples in both systems (${a.stats.length} vs ${b.stats.length})`);
  const all = Int32Array.from(a.stats.keys());
  const pointA = aggregate(a.stats, options.indexes ?? all, a.vocabularySize);
  const pointB = aggregate(b.stats, options.indexes ?? all, b.vocabularySize);
  const deltas = Object.fromEntries(AGGREGATE_KEYS.map((k) => [k, [] as number[]])) as Record<AggregateKey, number[]>;
  draws(a.stats.length, options, (indexes) => {
    const x = aggregate(a.stats, indexes, a.vocabularySize);
    const y = aggregate(b.stats, indexes, b.vocabularySize);
    for (const k of AGGREGATE_KEYS) if (x[k] !== null && y[k] !== null) deltas[k].push(y[k] - x[k]);
  });
  const out: Partial<Record<AggregateKey, PairedDifference>> = {};
  for (const k of AGGREGATE_KEYS) {
    const x = pointA[k];
    const y = pointB[k];
    if (x === null || y === null || deltas[k].length === 0) continue;
    const delta = y - x;
    out[k] = difference(delta, CENTRED.has(k) ? centre(deltas[k], delta) : deltas[k], options);
  }
  return out;
}

/** The observed difference with the interval and two-sided p of its draws. */
function difference(delta: number, drawn: number[], options: BootstrapOptions): PairedDifference {
  const against = drawn.filter((v) => (delta >= 0 ? v <= 0 : v >= 0)).length;
  return { delta, interval: interval(drawn, options.level ?? 0.95)!, p: Math.min(1, (2 * against) / drawn.length) };
}

/** The mean of `values` over the drawn examples. */
function drawnMean(values: ArrayLike<number>, indexes: Int32Array): number {
  let sum = 0;
  for (const i of indexes) sum += values[i]!;
  return sum / indexes.length;
}

/**
 * The interval of a share (hits: 1 or 0 per example), drawn as the metrics are: the trivial
 * selectors' accuracy (always "none", BM25), which are not a model's metrics.
 */
export function shareInterval(hits: ArrayLike<number>, options: BootstrapOptions = {}): Interval | undefined {
  const values: number[] = [];
  draws(hits.length, options, (indexes) => values.push(drawnMean(hits, indexes)));
  return interval(values, options.level ?? 0.95);
}

/** b - a for two shares over the same examples (hits[i] of both answer example i), paired as pairedBootstrap. */
export function pairedShareDifference(a: ArrayLike<number>, b: ArrayLike<number>, options: BootstrapOptions = {}): PairedDifference | undefined {
  if (a.length !== b.length) throw new Error(`a paired test needs the same examples in both (${a.length} vs ${b.length})`);
  const deltas: number[] = [];
  draws(a.length, options, (indexes) => deltas.push(drawnMean(b, indexes) - drawnMean(a, indexes)));
  if (deltas.length === 0) return undefined;
  const examples = Int32Array.from(options.indexes ?? Array.from({ length: a.length }, (_, i) => i));
  return difference(drawnMean(b, examples) - drawnMean(a, examples), deltas, options);
}

/** The metrics of a subset of the examples (the labelled ones, say), with their intervals. */
export interface SubsetReport {
  readonly count: number;
  readonly metrics: Aggregate;
  readonly intervals: Partial<Record<AggregateKey, Interval>>;
}

export function subsetReport(sample: Sample, indexes: readonly number[], options: BootstrapOptions = {}): SubsetReport {
  return {
    count: indexes.length,
    metrics: aggregate(sample.stats, indexes, sample.vocabularySize),
    intervals: bootstrapIntervals(sample, { ...options, indexes }),
  };
}
