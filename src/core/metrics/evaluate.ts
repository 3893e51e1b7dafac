/**
 * One evaluation of a set of predictions: every metric of PAL's evaluation, under the stable keys
 * that `pal eval --json`, report.json and the studio read. Pure: the NLI model of C.score is an
 * injected function, and what is not computed is null with a note saying why (never a stand-in).
 */
import { addBleuCounts, bleuFromCounts, emptyBleuCounts, MAX_BLEU_ORDER } from './bleu';
import { consistencyScores, type NliClassify, type NliLabel } from './consistency';
import { averageLength, distinctN } from './diversity';
import { IdfTable, personaCover, personaF1 } from './persona';
import { ROUGE_L_BETA, rougeL } from './rouge';
import { selectionAccuracy, type SelectionItem } from './selection';
import { DEFAULT_TOKENIZATION, tokenize, Vocabulary, type Tokenization } from './tokenize';

/** One line of a predictions file. */
export interface PredictionRecord {
  prediction: string;
  reference: string;
  personas?: string[];
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
  cScore: number | null;
  cScoreMax: number | null;
  /** The NLI label of each persona sentence, when C.score was computed. */
  nli: NliLabel[] | null;
}

export interface Evaluation {
  report: MetricReport;
  examples: ExampleScores[];
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
  const predictionTokens: string[][] = [];
  const predictions: Int32Array[] = [];
  const references: Int32Array[] = [];
  for (const r of records) {
    const tokens = tokenize(r.prediction, tokenization);
    predictionTokens.push(tokens);
    predictions.push(vocabulary.encode(tokens));
    references.push(vocabulary.encode(tokenize(r.reference, tokenization)));
  }

  const corpus = emptyBleuCounts(MAX_BLEU_ORDER);
  // One pair's counts, reused: allocating them per pair made the garbage collector the hot spot.
  const pair = emptyBleuCounts(MAX_BLEU_ORDER);
  const examples: ExampleScores[] = [];
  let rougeSum = 0;
  for (let i = 0; i < records.length; i++) {
    pair.matches.fill(0);
    pair.totals.fill(0);
    pair.hypothesisLength = 0;
    pair.referenceLength = 0;
    addBleuCounts(pair, predictions[i]!, references[i]!);
    for (let n = 0; n < MAX_BLEU_ORDER; n++) {
      corpus.matches[n]! += pair.matches[n]!;
      corpus.totals[n]! += pair.totals[n]!;
    }
    corpus.hypothesisLength += pair.hypothesisLength;
    corpus.referenceLength += pair.referenceLength;
    const rouge = rougeL(predictions[i]!, references[i]!);
    rougeSum += rouge;
    examples.push({
      bleu: Array.from({ length: MAX_BLEU_ORDER }, (_, n) => bleuFromCounts(pair, n + 1)),
      rougeL: rouge,
      pF1: null,
      pCover: null,
      cScore: null,
      cScoreMax: null,
      nli: null,
    });
  }

  const notes: string[] = [];

  // Persona overlap, over the examples that carry persona sentences (the IDF table is only needed then).
  const hasPersonas = records.some((r) => r.personas && r.personas.length > 0);
  const idf = options.idf ?? (hasPersonas ? idfFromRecords(records, tokenization) : new IdfTable());
  let pF1Sum = 0;
  let pCoverSum = 0;
  let personaCount = 0;
  let coverCount = 0;
  records.forEach((r, i) => {
    if (!r.personas || r.personas.length === 0) return;
    const personas = r.personas.map((p) => tokenize(p, tokenization));
    const f1 = personaF1(predictionTokens[i]!, personas).f1;
    const cover = personaCover(predictionTokens[i]!, personas, idf);
    examples[i]!.pF1 = f1;
    examples[i]!.pCover = cover;
    pF1Sum += f1;
    personaCount++;
    if (cover !== null) {
      pCoverSum += cover;
      coverCount++;
    }
  });
  if (personaCount === 0) notes.push('P-F1 and P-Cover not computed: no example has "personas"');
  else if (personaCount < records.length) notes.push(`P-F1 and P-Cover are over the ${personaCount} of ${records.length} examples that have "personas"`);

  const selectionItems: SelectionItem[] = [];
  for (const r of records) {
    if (typeof r.selected === 'number' && typeof r.gold_persona === 'number') selectionItems.push({ selected: r.selected, gold: r.gold_persona });
  }
  const selection = selectionAccuracy(selectionItems);
  if (selectionItems.length === 0) notes.push('Selection accuracy not computed: no example has both "selected" and "gold_persona"');
  else {
    if (selectionItems.length < records.length) notes.push(`Selection accuracy is over the ${selectionItems.length} of ${records.length} examples that have both "selected" and "gold_persona"`);
    if (selection.personaCount === 0) notes.push('Selection accuracy (persona) not computed: no example has a gold persona sentence');
    if (selection.noneCount === 0) notes.push('Selection accuracy (none) not computed: no example has gold_persona -1');
  }

  const bleu = Array.from({ length: MAX_BLEU_ORDER }, (_, n) => bleuFromCounts(corpus, n + 1));
  const report: MetricReport = {
    bleu1: bleu[0]!,
    bleu2: bleu[1]!,
    bleu3: bleu[2]!,
    bleu4: bleu[3]!,
    rougeL: records.length ? rougeSum / records.length : 0,
    distinct1: distinctN(predictions, 1, vocabulary.size),
    distinct2: distinctN(predictions, 2, vocabulary.size),
    avgLength: averageLength(predictions),
    selectionAccuracy: selection.overall,
    selectionAccuracyPersona: selection.persona,
    selectionAccuracyNone: selection.none,
    pF1: personaCount ? pF1Sum / personaCount : null,
    pCover: coverCount ? pCoverSum / coverCount : null,
    cScore: null,
    cScoreMax: null,
    count: records.length,
    notes,
    tokenization,
    rougeLBeta: ROUGE_L_BETA,
    referenceAvgLength: averageLength(references),
    selectionCount: selectionItems.length,
    personaCount,
    cScoreCount: 0,
  };
  return { report, examples };
}

/** Every metric, C.score included when a classifier is given. */
export async function evaluate(records: readonly PredictionRecord[], options: EvaluateOptions = {}): Promise<Evaluation> {
  const evaluation = evaluateText(records, options);
  const { report, examples } = evaluation;
  if (!options.classify) {
    report.notes.unshift(NO_NLI_NOTE);
    return evaluation;
  }
  const consistency = await consistencyScores(
    records.map((r) => ({ response: r.prediction, personas: r.personas ?? [] })),
    options.classify,
  );
  consistency.examples.forEach((c, i) => {
    if (!c) return;
    examples[i]!.cScore = c.sum;
    examples[i]!.cScoreMax = c.max;
    examples[i]!.nli = c.labels;
  });
  report.cScore = consistency.cScore;
  report.cScoreMax = consistency.cScoreMax;
  report.cScoreCount = consistency.count;
  if (consistency.count === 0) report.notes.unshift('C.score not computed: no example has "personas"');
  return evaluation;
}
