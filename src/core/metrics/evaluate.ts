/**
 * One evaluation of a set of predictions: every metric of PAL's evaluation, under the stable keys
 * that `pal eval --json`, report.json and the studio read. Pure: the NLI model of C.score is an
 * injected function, and what is not computed is null with a note saying why (never a stand-in).
 */
import { addBleuCounts, bleuFromCounts, emptyBleuCounts, MAX_BLEU_ORDER } from './bleu';
import { consistencyScores, type NliClassify, type NliLabel } from './consistency';
import { averageLength, distinctN } from './diversity';
import { echoesPartner, IdfTable, personaCover, personaF1, recitesFact } from './persona';
import { ROUGE_L_BETA, rougeL } from './rouge';
import { sameSelection, selectionAccuracy, type SelectionItem } from './selection';
import { DEFAULT_TOKENIZATION, tokenize, Vocabulary, type Tokenization } from './tokenize';
import {
  bootstrapIntervals,
  pairedShareDifference,
  shareInterval,
  subsetReport,
  type BootstrapOptions,
  type Interval,
  type PairedDifference,
  type SubsetReport,
} from './bootstrap';
import { bm25Select } from '../bm25';
import { usesFact } from '../labeller';

/** One line of a predictions file. */
export interface PredictionRecord {
  prediction: string;
  reference: string;
  personas?: string[];
  /** The dialogue before the response (the partner's turn last): BM25's query in the trivial rows. */
  history?: string[];
  /** Index of the persona sentence the model selected, or -1 for none. */
  selected?: number;
  /** Index of the gold persona sentence, or -1 for none. */
  gold_persona?: number;
  id?: string;
}

export const NO_NLI_NOTE = 'C.score not computed: no NLI model configured';

/** The report's metrics; a metric that could not be computed is null and `notes` says why. */
export interface MetricReport {
  bleu1: number;
  bleu2: number;
  bleu3: number;
  bleu4: number;
  rougeL: number;
  distinct1: number;
  distinct2: number;
  avgLength: number;
  selectionAccuracy: number | null;
  selectionAccuracyPersona: number | null;
  selectionAccuracyNone: number | null;
  pF1: number | null;
  pCover: number | null;
  /**
   * Of the replies whose turn selected a fact, the share that use it by the labeller's word-overlap
   * rule (core/labeller.ts): PAL's generate step should say the highlighted fact, and this counts
   * whether it did. A lower bound: a paraphrase sharing fewer words than the rule asks is missed.
   */
  selectedFactUse: number | null;
  /**
   * The share of replies (with personas) that say a persona sentence of 4 words or more word for
   * word (persona.ts recitesFact): P-F1 counts a recital as full persona use, a reader does not.
   */
  factRecital: number | null;
  /**
   * The share of replies (with a dialogue) that echo the partner's last turn, 4 words running
   * (persona.ts echoesPartner): a parroted turn is no reply, whatever BLEU gives it.
   */
  partnerEcho: number | null;
  cScore: number | null;
  cScoreMax: number | null;
  count: number;
  notes: string[];
  tokenization: Tokenization;
  rougeLBeta: number;
  /** Mean reference length, beside avgLength: a short prediction explains a low BLEU. */
  referenceAvgLength: number;
  selectionCount: number;
  personaCount: number;
  cScoreCount: number;
  /** 95% bootstrap intervals (1000 draws of the examples, seed 1) of each metric above. */
  intervals?: Partial<Record<AggregateKey, Interval>>;
  /**
   * The examples whose reference uses a persona sentence (gold_persona >= 0) apart from the rest:
   * a model can only show persona use on the first, and the second are most of PERSONA-CHAT.
   */
  subsets?: { labelled: SubsetReport; unlabelled: SubsetReport };
  /** What selection accuracy trivial selectors reach on these examples, to read the model's against. */
  trivialSelection?: TrivialSelection;
}

/** Selection accuracy of selectors that need no model: every reply says "none"; BM25 over the partner's last turn. */
export interface TrivialSelection {
  readonly count: number;
  readonly alwaysNone: number | null;
  /** Null when the predictions carry no "history". */
  readonly bm25: number | null;
  /** 95% bootstrap intervals of the two rows (the report's draws), when asked for. */
  readonly intervals?: { readonly alwaysNone?: Interval; readonly bm25?: Interval };
  /**
   * The model's selection accuracy minus always "none"'s, paired over the same examples (when
   * every labelled example has a selection): the model beats "none" only where the interval
   * lies above 0. PERSONA-CHAT's replies mostly use no fact, so this is the bar that counts.
   */
  readonly modelOverAlwaysNone?: PairedDifference;
}

/** The trivial rows on these records; with bootstrap options, their intervals and the model's paired difference too. */
export function trivialSelection(records: readonly PredictionRecord[], bootstrap?: BootstrapOptions): TrivialSelection {
  const labelled = records.filter((r) => typeof r.gold_persona === 'number');
  const withHistory = labelled.filter((r) => r.history && r.history.length > 0 && r.personas);
  const mean = (hits: readonly number[]) => (hits.length ? hits.reduce((a, b) => a + b, 0) / hits.length : null);
  const noneHits = labelled.map((r) => +sameSelection(-1, r.gold_persona!));
  const bm25Hits =
    withHistory.length === labelled.length && labelled.length > 0
      ? labelled.map((r) => +sameSelection(bm25Select(r.personas!, r.history!.at(-1)!).index, r.gold_persona!))
      : null;
  const rows: TrivialSelection = { count: labelled.length, alwaysNone: mean(noneHits), bm25: bm25Hits && mean(bm25Hits) };
  if (!bootstrap || labelled.length === 0) return rows;
  const modelHits = labelled.every((r) => typeof r.selected === 'number') ? labelled.map((r) => +sameSelection(r.selected!, r.gold_persona!)) : null;
  const modelOverAlwaysNone = modelHits ? pairedShareDifference(noneHits, modelHits, bootstrap) : undefined;
  return {
    ...rows,
    intervals: { alwaysNone: shareInterval(noneHits, bootstrap), ...(bm25Hits ? { bm25: shareInterval(bm25Hits, bootstrap) } : {}) },
    ...(modelOverAlwaysNone ? { modelOverAlwaysNone } : {}),
  };
}

/** The metric keys a comparison or table shows, in order, with what each means. */
export const METRIC_FIELDS: readonly { key: keyof MetricReport; label: string }[] = [
  { key: 'bleu1', label: 'BLEU-1' },
  { key: 'bleu2', label: 'BLEU-2' },
  { key: 'bleu3', label: 'BLEU-3' },
  { key: 'bleu4', label: 'BLEU-4' },
  { key: 'rougeL', label: 'ROUGE-L (F, beta 1.2)' },
  { key: 'distinct1', label: 'Distinct-1' },
  { key: 'distinct2', label: 'Distinct-2' },
  { key: 'avgLength', label: 'Average length (tokens)' },
  { key: 'selectionAccuracy', label: 'Selection accuracy' },
  { key: 'selectionAccuracyPersona', label: 'Selection accuracy (persona)' },
  { key: 'selectionAccuracyNone', label: 'Selection accuracy (none)' },
  { key: 'pF1', label: 'P-F1' },
  { key: 'pCover', label: 'P-Cover' },
  { key: 'selectedFactUse', label: 'Selected fact used' },
  { key: 'factRecital', label: 'Fact recited word for word' },
  { key: 'partnerEcho', label: "Partner's turn echoed" },
  { key: 'cScore', label: 'C.score (sum, Madotto et al.)' },
  { key: 'cScoreMax', label: 'C.score (max, PAL code)' },
  { key: 'count', label: 'Examples' },
];

export interface ExampleScores {
  /** Sentence BLEU-1..4. */
  bleu: number[];
  rougeL: number;
  pF1: number | null;
  pCover: number | null;
  /** 1 or 0: the reply uses its selected fact (null: none selected); see MetricReport. */
  selectedFactUse: number | null;
  /** 1 or 0: the reply recites a persona sentence (null: no personas); see MetricReport. */
  factRecital: number | null;
  /** 1 or 0: the reply echoes the partner's last turn (null: no history); see MetricReport. */
  partnerEcho: number | null;
  cScore: number | null;
  cScoreMax: number | null;
  /** The NLI label of each persona sentence, when C.score was computed. */
  nli: NliLabel[] | null;
}

/**
 * What one example adds to each corpus metric: the report is these summed over every example, and
 * a bootstrap resample sums them over a draw of examples (bootstrap.ts), by the same function.
 */
export interface ExampleStats {
  /** Clipped n-gram matches and n-gram counts of the prediction, n = 1..4. */
  readonly bleuMatches: readonly number[];
  readonly bleuTotals: readonly number[];
  readonly hypothesisLength: number;
  readonly referenceLength: number;
  readonly rougeL: number;
  /** The prediction's token ids (Distinct-n). */
  readonly tokens: Int32Array;
  readonly pF1: number | null;
  readonly pCover: number | null;
  /** 1 when the reply uses its selected fact, 0 when not, null when no fact was selected (see MetricReport). */
  readonly selectedFactUse: number | null;
  /** 1 when the reply recites a persona sentence, 0 when not, null without personas. */
  readonly factRecital: number | null;
  /** 1 when the reply echoes the partner's last turn, 0 when not, null without a history. */
  readonly partnerEcho: number | null;
  readonly selection: SelectionItem | null;
  cScore: number | null;
  cScoreMax: number | null;
}

export interface Evaluation {
  report: MetricReport;
  examples: ExampleScores[];
  /** Per example, in order: what aggregate() sums (not written to report.json). */
  stats: ExampleStats[];
  /** Ids of the tokens in stats (Distinct-n's key space). */
  vocabularySize: number;
}

/** The corpus metrics of a report, as aggregate() computes them from examples. */
export const AGGREGATE_KEYS = [
  'bleu1',
  'bleu2',
  'bleu3',
  'bleu4',
  'rougeL',
  'distinct1',
  'distinct2',
  'avgLength',
  'selectionAccuracy',
  'selectionAccuracyPersona',
  'selectionAccuracyNone',
  'pF1',
  'pCover',
  'selectedFactUse',
  'factRecital',
  'partnerEcho',
  'cScore',
  'cScoreMax',
] as const;
export type AggregateKey = (typeof AGGREGATE_KEYS)[number];
export type Aggregate = Record<AggregateKey, number | null>;

/** The metrics that are means of a per-example value (examples without one are left out). */
const MEAN_KEYS = ['pF1', 'pCover', 'selectedFactUse', 'factRecital', 'partnerEcho', 'cScore', 'cScoreMax'] as const;

/**
 * Every corpus metric over the examples at `indexes` (repeats allowed: a bootstrap draw). Corpus
 * BLEU sums its counts, the means average, Distinct counts the n-grams of the drawn predictions.
 */
export function aggregate(stats: readonly ExampleStats[], indexes: ArrayLike<number>, vocabularySize: number): Aggregate {
  const counts = emptyBleuCounts(MAX_BLEU_ORDER);
  const tokens: Int32Array[] = [];
  const items: SelectionItem[] = [];
  let rouge = 0;
  const mean = Object.fromEntries(MEAN_KEYS.map((key) => [key, [0, 0]])) as Record<(typeof MEAN_KEYS)[number], [number, number]>;
  for (let k = 0; k < indexes.length; k++) {
    const e = stats[indexes[k]!]!;
    for (let n = 0; n < MAX_BLEU_ORDER; n++) {
      counts.matches[n]! += e.bleuMatches[n]!;
      counts.totals[n]! += e.bleuTotals[n]!;
    }
    counts.hypothesisLength += e.hypothesisLength;
    counts.referenceLength += e.referenceLength;
    rouge += e.rougeL;
    tokens.push(e.tokens);
    if (e.selection) items.push(e.selection);
    for (const key of MEAN_KEYS) {
      const v = e[key];
      if (v !== null) {
        mean[key][0]! += v;
        mean[key][1]!++;
      }
    }
  }
  const selection = selectionAccuracy(items);
  const avg = ([sum, n]: number[]) => (n ? sum! / n : null);
  return {
    bleu1: bleuFromCounts(counts, 1),
    bleu2: bleuFromCounts(counts, 2),
    bleu3: bleuFromCounts(counts, 3),
    bleu4: bleuFromCounts(counts, 4),
    rougeL: indexes.length ? rouge / indexes.length : 0,
    distinct1: distinctN(tokens, 1, vocabularySize),
    distinct2: distinctN(tokens, 2, vocabularySize),
    avgLength: averageLength(tokens),
    selectionAccuracy: selection.overall,
    selectionAccuracyPersona: selection.persona,
    selectionAccuracyNone: selection.none,
    pF1: avg(mean.pF1),
    pCover: avg(mean.pCover),
    selectedFactUse: avg(mean.selectedFactUse),
    factRecital: avg(mean.factRecital),
    partnerEcho: avg(mean.partnerEcho),
    cScore: avg(mean.cScore),
    cScoreMax: avg(mean.cScoreMax),
  };
}

export interface EvaluateOptions {
  tokenization?: Tokenization;
  /** The NLI model for C.score; without one C.score is null and the report says so. */
  classify?: NliClassify;
  /**
   * P-Cover's word weights. Default: counted over these records' references and persona sentences.
   * Pass the same table to evaluate two systems on the same examples with the same weights.
   */
  idf?: IdfTable;
  /** evaluate()'s intervals, subsets and trivial rows (default 1000 draws, seed 1); false leaves them out. */
  bootstrap?: BootstrapOptions | false;
}

/** 1 or 0 by the labeller's rule applied to the selected sentence alone (other facts the reply also uses do not count against it); null when no fact was selected. */
export function usesSelectedFact(r: PredictionRecord): number | null {
  const fact = typeof r.selected === 'number' && r.selected >= 0 ? r.personas?.[r.selected] : undefined;
  if (fact === undefined) return null;
  return usesFact(fact, r.prediction) ? 1 : 0;
}

/** The IDF corpus of P-Cover: the reference responses and the persona sentences (each once per record). */
export function idfFromRecords(records: readonly PredictionRecord[], tokenization: Tokenization = DEFAULT_TOKENIZATION): IdfTable {
  const idf = new IdfTable();
  for (const r of records) {
    idf.add(tokenize(r.reference, tokenization));
    for (const p of r.personas ?? []) idf.add(tokenize(p, tokenization));
  }
  return idf;
}

/** Everything but C.score (synchronous and fast: 10,000 pairs in well under a second). */
export function evaluateText(records: readonly PredictionRecord[], options: EvaluateOptions = {}): Evaluation {
  const tokenization = options.tokenization ?? DEFAULT_TOKENIZATION;
  const vocabulary = new Vocabulary();
  // P-Cover's word weights are only needed when some example carries persona sentences.
  const hasPersonas = records.some((r) => r.personas && r.personas.length > 0);
  const idf = options.idf ?? (hasPersonas ? idfFromRecords(records, tokenization) : new IdfTable());
  // One pair's counts, reused: allocating them per pair made the garbage collector the hot spot.
  const pair = emptyBleuCounts(MAX_BLEU_ORDER);
  const examples: ExampleScores[] = [];
  const stats: ExampleStats[] = [];
  let referenceLength = 0;
  let personaCount = 0;
  for (const r of records) {
    const predictionTokens = tokenize(r.prediction, tokenization);
    const prediction = vocabulary.encode(predictionTokens);
    const reference = vocabulary.encode(tokenize(r.reference, tokenization));
    referenceLength += reference.length;
    pair.matches.fill(0);
    pair.totals.fill(0);
    pair.hypothesisLength = 0;
    pair.referenceLength = 0;
    addBleuCounts(pair, prediction, reference);
    const rouge = rougeL(prediction, reference);
    let pF1: number | null = null;
    let pCover: number | null = null;
    let factRecital: number | null = null;
    if (r.personas && r.personas.length > 0) {
      const personas = r.personas.map((p) => tokenize(p, tokenization));
      pF1 = personaF1(predictionTokens, personas).f1;
      pCover = personaCover(predictionTokens, personas, idf);
      factRecital = recitesFact(r.prediction, r.personas) ? 1 : 0;
      personaCount++;
    }
    const selectedFactUse = usesSelectedFact(r);
    const partnerTurn = r.history?.at(-1);
    const partnerEcho = partnerTurn === undefined ? null : echoesPartner(r.prediction, partnerTurn) ? 1 : 0;
    examples.push({
      bleu: Array.from({ length: MAX_BLEU_ORDER }, (_, n) => bleuFromCounts(pair, n + 1)),
      rougeL: rouge,
      pF1,
      pCover,
      selectedFactUse,
      factRecital,
      partnerEcho,
      cScore: null,
      cScoreMax: null,
      nli: null,
    });
    stats.push({
      bleuMatches: Array.from(pair.matches),
      bleuTotals: Array.from(pair.totals),
      hypothesisLength: pair.hypothesisLength,
      referenceLength: pair.referenceLength,
      rougeL: rouge,
      tokens: prediction,
      pF1,
      pCover,
      selectedFactUse,
      factRecital,
      partnerEcho,
      selection: typeof r.selected === 'number' && typeof r.gold_persona === 'number' ? { selected: r.selected, gold: r.gold_persona } : null,
      cScore: null,
      cScoreMax: null,
    });
  }

  const notes: string[] = [];
  if (personaCount === 0) notes.push('P-F1 and P-Cover not computed: no example has "personas"');
  else if (personaCount < records.length) notes.push(`P-F1 and P-Cover are over the ${personaCount} of ${records.length} examples that have "personas"`);
  const selection = selectionAccuracy(stats.flatMap((e) => (e.selection ? [e.selection] : [])));
  if (selection.count === 0) notes.push('Selection accuracy not computed: no example has both "selected" and "gold_persona"');
  else {
    if (selection.count < records.length)
      notes.push(`Selection accuracy is over the ${selection.count} of ${records.length} examples that have both "selected" and "gold_persona"`);
    if (selection.personaCount === 0) notes.push('Selection accuracy (persona) not computed: no example has a gold persona sentence');
    if (selection.noneCount === 0) notes.push('Selection accuracy (none) not computed: no example has gold_persona -1');
  }

  const all = aggregate(stats, Int32Array.from(stats.keys()), vocabulary.size);
  if (all.selectedFactUse === null) notes.push('Selected fact used not computed: no example has "personas" and a selected fact ("selected" >= 0)');
  const report: MetricReport = {
    bleu1: all.bleu1!,
    bleu2: all.bleu2!,
    bleu3: all.bleu3!,
    bleu4: all.bleu4!,
    rougeL: all.rougeL!,
    distinct1: all.distinct1!,
    distinct2: all.distinct2!,
    avgLength: all.avgLength!,
    selectionAccuracy: all.selectionAccuracy,
    selectionAccuracyPersona: all.selectionAccuracyPersona,
    selectionAccuracyNone: all.selectionAccuracyNone,
    pF1: all.pF1,
    pCover: all.pCover,
    selectedFactUse: all.selectedFactUse,
    factRecital: all.factRecital,
    partnerEcho: all.partnerEcho,
    cScore: null,
    cScoreMax: null,
    count: records.length,
    notes,
    tokenization,
    rougeLBeta: ROUGE_L_BETA,
    referenceAvgLength: records.length ? referenceLength / records.length : 0,
    selectionCount: selection.count,
    personaCount,
    cScoreCount: 0,
  };
  return { report, examples, stats, vocabularySize: vocabulary.size };
}

/** Every metric, C.score included when a classifier is given. */
export async function evaluate(records: readonly PredictionRecord[], options: EvaluateOptions = {}): Promise<Evaluation> {
  const evaluation = evaluateText(records, options);
  const { report, examples, stats } = evaluation;
  if (!options.classify) {
    report.notes.unshift(NO_NLI_NOTE);
    return withUncertainty(evaluation, records, options);
  }
  const consistency = await consistencyScores(
    records.map((r) => ({ response: r.prediction, personas: r.personas ?? [] })),
    options.classify,
  );
  consistency.examples.forEach((c, i) => {
    if (!c) return;
    examples[i]!.cScore = stats[i]!.cScore = c.sum;
    examples[i]!.cScoreMax = stats[i]!.cScoreMax = c.max;
    examples[i]!.nli = c.labels;
  });
  report.cScore = consistency.cScore;
  report.cScoreMax = consistency.cScoreMax;
  report.cScoreCount = consistency.count;
  if (consistency.count === 0) report.notes.unshift('C.score not computed: no example has "personas"');
  return withUncertainty(evaluation, records, options);
}

/** The report's intervals, labelled/unlabelled subsets and trivial selection rows (see MetricReport). */
function withUncertainty(evaluation: Evaluation, records: readonly PredictionRecord[], options: EvaluateOptions): Evaluation {
  if (options.bootstrap === false) return evaluation;
  const bootstrap = options.bootstrap ?? {};
  const { report } = evaluation;
  report.intervals = bootstrapIntervals(evaluation, bootstrap);
  const labelled: number[] = [];
  const unlabelled: number[] = [];
  records.forEach((r, i) => {
    if (typeof r.gold_persona === 'number') (r.gold_persona >= 0 ? labelled : unlabelled).push(i);
  });
  if (labelled.length + unlabelled.length > 0) {
    report.subsets = { labelled: subsetReport(evaluation, labelled, bootstrap), unlabelled: subsetReport(evaluation, unlabelled, bootstrap) };
    report.trivialSelection = trivialSelection(records, bootstrap);
  }
  return evaluation;
}
