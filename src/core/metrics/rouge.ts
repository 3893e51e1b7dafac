/**
 * ROUGE-L (Lin 2004) as coco-caption computes it (pycocoevalcap/rouge/rouge.py), the variant the
 * PAL evaluation uses, with one reference per prediction:
 *
 *     P = LCS / |prediction|,  R = LCS / |reference|
 *     F = (1 + β²) · P · R / (R + β² · P)   with β = 1.2, and F = 0 when P or R is 0
 *
 * β > 1 weighs recall more than precision. The corpus score is the mean of the per-pair F.
 */

export const ROUGE_L_BETA = 1.2;

let row = new Int32Array(64);

/** Length of the longest common subsequence, with one row of the dynamic programme. */
export function lcsLength(a: Int32Array, b: Int32Array): number {
  // The row runs over the shorter sequence: memory O(min), time O(|a|·|b|).
  if (b.length > a.length) [a, b] = [b, a];
  const m = b.length;
  if (m === 0) return 0;
  if (row.length < m + 1) row = new Int32Array((m + 1) * 2);
  row.fill(0, 0, m + 1);
  for (let i = 0; i < a.length; i++) {
    const ai = a[i];
    // `diagonal` is the previous row's value at j - 1 (LCS of a[..i-1], b[..j-1]).
    let diagonal = 0;
    for (let j = 1; j <= m; j++) {
      const up = row[j]!;
      if (b[j - 1] === ai) row[j] = diagonal + 1;
      else if (row[j - 1]! > up) row[j] = row[j - 1]!;
      diagonal = up;
    }
  }
  return row[m]!;
}

/** ROUGE-L F-measure of one prediction against its reference. */
export function rougeL(prediction: Int32Array, reference: Int32Array, beta = ROUGE_L_BETA): number {
  if (prediction.length === 0 || reference.length === 0) return 0;
  const lcs = lcsLength(prediction, reference);
  if (lcs === 0) return 0;
  const precision = lcs / prediction.length;
  const recall = lcs / reference.length;
  const b2 = beta * beta;
  return ((1 + b2) * precision * recall) / (recall + b2 * precision);
}
