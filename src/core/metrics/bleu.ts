/**
 * BLEU (Papineni et al. 2002) exactly as nltk 3.8 defines `corpus_bleu` and `sentence_bleu` with one
 * reference per hypothesis, uniform weights and no smoothing, so our numbers can be checked against
 * nltk to 1e-9 (test/unit/metrics.test.ts does, on ConvAI2):
 *
 * - p_n = Σ clipped n-gram matches / Σ max(1, hypothesis n-grams), summed over the corpus before
 *   dividing (nltk counts at least 1 in the denominator for a hypothesis shorter than n).
 * - BLEU-N = BP · exp(Σ_{n≤N} (1/N) · log p_n), cumulative; BP = 1 if c > r, 0 if c = 0, else
 *   exp(1 - r/c), with c and r the total hypothesis and reference lengths.
 * - No matching unigram at all: BLEU = 0. A higher order with no match: nltk's "method0" puts
 *   sys.float_info.min (2.2250738585072014e-308) in its place, so the score is tiny (~1e-77 for
 *   BLEU-4) rather than 0. We do the same, since agreeing with nltk is the point.
 *
 * The hypothesis is the model's prediction and the reference is the gold response; the official
 * PAL code passes them the other way round, which changes the clipping and the brevity penalty.
 */

export const MAX_BLEU_ORDER = 4;

/** Python's sys.float_info.min, nltk's stand-in for a zero precision. */
const NLTK_ZERO_PRECISION = 2.2250738585072014e-308;

/** Sufficient statistics of BLEU; corpus BLEU is computed from their sum over all pairs. */
export interface BleuCounts {
  /** Clipped matches per order (index 0 is unigrams). */
  matches: number[];
  /** max(1, hypothesis n-grams) per order, summed as nltk sums them. */
  totals: number[];
  hypothesisLength: number;
  referenceLength: number;
}

export function emptyBleuCounts(order = MAX_BLEU_ORDER): BleuCounts {
  return { matches: new Array<number>(order).fill(0), totals: new Array<number>(order).fill(0), hypothesisLength: 0, referenceLength: 0 };
}

// Pairs whose lengths multiply to more than this use a hash map; below it a direct O(|h|·|r|)
// comparison is faster than building maps (a PERSONA-CHAT response has about 12 tokens).
const QUADRATIC_LIMIT = 4096;
let used = new Uint8Array(64);

function sameGram(a: Int32Array, i: number, b: Int32Array, j: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (a[i + k] !== b[j + k]) return false;
  return true;
}

/** Σ over distinct n-grams g of min(count in hypothesis, count in reference). */
export function clippedMatches(hypothesis: Int32Array, reference: Int32Array, n: number): number {
  const hn = hypothesis.length - n + 1;
  const rn = reference.length - n + 1;
  if (hn <= 0 || rn <= 0) return 0;
  if (hn * rn <= QUADRATIC_LIMIT) {
    // Each hypothesis n-gram takes the first unused equal reference n-gram: a gram seen ch times
    // in the hypothesis and cr times in the reference matches min(ch, cr) times, which is clipping.
    if (used.length < rn) used = new Uint8Array(rn * 2);
    used.fill(0, 0, rn);
    let matches = 0;
    for (let i = 0; i < hn; i++) {
      for (let j = 0; j < rn; j++) {
        if (used[j] === 0 && sameGram(hypothesis, i, reference, j, n)) {
          used[j] = 1;
          matches++;
          break;
        }
      }
    }
    return matches;
  }
  const available = new Map<string, number>();
  for (let j = 0; j < rn; j++) {
    const key = reference.subarray(j, j + n).join(',');
    available.set(key, (available.get(key) ?? 0) + 1);
  }
  let matches = 0;
  for (let i = 0; i < hn; i++) {
    const key = hypothesis.subarray(i, i + n).join(',');
    const left = available.get(key);
    if (left) {
      available.set(key, left - 1);
      matches++;
    }
  }
  return matches;
}

/** Adds one (hypothesis, reference) pair to `counts`. */
export function addBleuCounts(counts: BleuCounts, hypothesis: Int32Array, reference: Int32Array): void {
  for (let n = 1; n <= counts.matches.length; n++) {
    counts.matches[n - 1]! += clippedMatches(hypothesis, reference, n);
    counts.totals[n - 1]! += Math.max(1, hypothesis.length - n + 1);
  }
  counts.hypothesisLength += hypothesis.length;
  counts.referenceLength += reference.length;
}

export function brevityPenalty(hypothesisLength: number, referenceLength: number): number {
  if (hypothesisLength > referenceLength) return 1;
  if (hypothesisLength === 0) return 0;
  return Math.exp(1 - referenceLength / hypothesisLength);
}

/** Cumulative BLEU-`order` (uniform weights 1/order) from summed counts. */
export function bleuFromCounts(counts: BleuCounts, order: number): number {
  if (order < 1 || order > counts.matches.length) throw new RangeError(`BLEU order ${order} is outside 1..${counts.matches.length}`);
  if (counts.matches[0] === 0) return 0;
  const weight = 1 / order;
  let logSum = 0;
  for (let n = 0; n < order; n++) {
    const m = counts.matches[n]!;
    const p = m === 0 ? NLTK_ZERO_PRECISION : m / counts.totals[n]!;
    logSum += weight * Math.log(p);
  }
  return brevityPenalty(counts.hypothesisLength, counts.referenceLength) * Math.exp(logSum);
}

/** Corpus BLEU-1..`maxOrder` of hypotheses against their one reference each. */
export function corpusBleu(hypotheses: readonly Int32Array[], references: readonly Int32Array[], maxOrder = MAX_BLEU_ORDER): number[] {
  if (hypotheses.length !== references.length) throw new RangeError(`${hypotheses.length} hypotheses but ${references.length} references`);
  const counts = emptyBleuCounts(maxOrder);
  for (let i = 0; i < hypotheses.length; i++) addBleuCounts(counts, hypotheses[i]!, references[i]!);
  return Array.from({ length: maxOrder }, (_, n) => bleuFromCounts(counts, n + 1));
}

/** Sentence BLEU-1..`maxOrder`: nltk's sentence_bleu, which is corpus_bleu over one pair. */
export function sentenceBleu(hypothesis: Int32Array, reference: Int32Array, maxOrder = MAX_BLEU_ORDER): number[] {
  return corpusBleu([hypothesis], [reference], maxOrder);
}
