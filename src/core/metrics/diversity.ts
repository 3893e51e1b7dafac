/**
 * Distinct-n (Li et al. 2016, "A diversity-promoting objective function for neural conversation
 * models"): the number of distinct n-grams over all predictions divided by the total number of
 * n-grams over all predictions (corpus level, not averaged per sentence). 0 when there is no n-gram.
 */

/**
 * Distinct-n over token-id sequences whose ids are all below `vocabularySize`. Unigrams are counted
 * in a flag per id. Longer n-grams are keyed by one number (base-`vocabularySize` digits) while
 * that is exact in a double, and counted in an open-addressing table of doubles (a JS Set of
 * numbers was a third of the metrics' time on 10,000 pairs); else by a string.
 */
export function distinctN(sequences: readonly Int32Array[], n: number, vocabularySize: number): number {
  if (n < 1) throw new RangeError(`Distinct-${n}: n must be at least 1`);
  const base = Math.max(vocabularySize, 1);
  let total = 0;
  for (const s of sequences) total += Math.max(0, s.length - n + 1);
  if (total === 0) return 0;
  if (n === 1) {
    const seen = new Uint8Array(base);
    let distinct = 0;
    for (const s of sequences) {
      for (let i = 0; i < s.length; i++) {
        if (seen[s[i]!] === 0) {
          seen[s[i]!] = 1;
          distinct++;
        }
      }
    }
    return distinct / total;
  }
  if (base ** n >= Number.MAX_SAFE_INTEGER) {
    const seen = new Set<string>();
    for (const s of sequences) for (let i = 0; i + n <= s.length; i++) seen.add(s.subarray(i, i + n).join(','));
    return seen.size / total;
  }
  const table = new NumberSet(total);
  for (const s of sequences) {
    for (let i = 0; i + n <= s.length; i++) {
      let key = 0;
      for (let k = 0; k < n; k++) key = key * base + s[i + k]!;
      table.add(key);
    }
  }
  return table.size / total;
}

/** A set of non-negative integers below 2^53: open addressing with linear probing, -1 for empty. */
class NumberSet {
  size = 0;
  private readonly keys: Float64Array;
  private readonly mask: number;
  private readonly shift: number;

  constructor(expected: number) {
    let bits = 4;
    while (1 << bits < expected * 2) bits++;
    this.keys = new Float64Array(1 << bits).fill(-1);
    this.mask = (1 << bits) - 1;
    this.shift = 32 - bits;
  }

  add(key: number): void {
    // Fibonacci hashing of the key's two 32-bit halves; the high bits of the product are the best mixed.
    const mixed = Math.imul((key >>> 0) ^ Math.imul(Math.floor(key / 4294967296), 0x85ebca77), 0x9e3779b1);
    let slot = mixed >>> this.shift;
    for (;;) {
      const k = this.keys[slot]!;
      if (k === key) return;
      if (k === -1) {
        this.keys[slot] = key;
        this.size++;
        return;
      }
      slot = (slot + 1) & this.mask;
    }
  }
}

/** Mean number of tokens per prediction (0 for no predictions). */
export function averageLength(sequences: readonly ArrayLike<unknown>[]): number {
  if (sequences.length === 0) return 0;
  let sum = 0;
  for (const s of sequences) sum += s.length;
  return sum / sequences.length;
}
