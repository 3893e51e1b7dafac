/**
 * Distinct-n (Li et al. 2016, "A diversity-promoting objective function for neural conversation
 * models"): the number of distinct n-grams over all predictions divided by the total number of
 * n-grams over all predictions (corpus level, not averaged per sentence). 0 when there is no n-gram.
 */

/**
 * Distinct-n over token-id sequences whose ids are all below `vocabularySize`. N-grams are keyed
 * by one number (base-`vocabularySize` digits) while that is exact in a double, else by a string.
 */
export function distinctN(sequences: readonly Int32Array[], n: number, vocabularySize: number): number {
  if (n < 1) throw new RangeError(`Distinct-${n}: n must be at least 1`);
  const base = Math.max(vocabularySize, 1);
  const numeric = base ** n < Number.MAX_SAFE_INTEGER;
  const seen = new Set<number | string>();
  let total = 0;
  for (const s of sequences) {
    for (let i = 0; i + n <= s.length; i++) {
      total++;
      if (numeric) {
        let key = 0;
        for (let k = 0; k < n; k++) key = key * base + s[i + k]!;
        seen.add(key);
      } else {
        seen.add(s.subarray(i, i + n).join(','));
      }
    }
  }
  return total === 0 ? 0 : seen.size / total;
}

/** Mean number of tokens per prediction (0 for no predictions). */
export function averageLength(sequences: readonly ArrayLike<unknown>[]): number {
  if (sequences.length === 0) return 0;
  let sum = 0;
  for (const s of sequences) sum += s.length;
  return sum / sequences.length;
}
