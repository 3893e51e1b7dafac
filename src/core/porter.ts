/**
 * The Porter stemmer (M. F. Porter, "An algorithm for suffix stripping", 1980), as the paper
 * defines it: what NLTK calls PorterStemmer(mode=ORIGINAL_ALGORITHM), which the tests hold it to.
 * The labeller stems so that "hiking" meets "hike" and "played" meets "play"; stems are keys,
 * not words ("hike" -> "hike", "hiking" -> "hike", "ponies" -> "poni").
 *
 * Input: one lower-case word. Words of one or two letters come back unchanged.
 */

const isVowelAt = (w: string, i: number): boolean => {
  const c = w[i]!;
  if ('aeiou'.includes(c)) return true;
  // "y" is a vowel after a consonant ("happy"), a consonant at the start or after a vowel ("yes", "toy").
  return c === 'y' && i > 0 && !isVowelAt(w, i - 1);
};

/** m in [C](VC)^m[V]: the number of vowel-consonant sequences. */
function measure(stem: string): number {
  let m = 0;
  let previousVowel = false;
  for (let i = 0; i < stem.length; i++) {
    const vowel = isVowelAt(stem, i);
    if (!vowel && previousVowel) m++;
    previousVowel = vowel;
  }
  return m;
}

const hasVowel = (stem: string): boolean => [...stem].some((_, i) => isVowelAt(stem, i));

/** *d: ends with a double consonant. */
const endsDoubleConsonant = (w: string): boolean => w.length >= 2 && w.at(-1) === w.at(-2) && !isVowelAt(w, w.length - 1);

/** *o: ends consonant-vowel-consonant, the last not w, x or y. */
function endsCvc(w: string): boolean {
  const n = w.length;
  return n >= 3 && !isVowelAt(w, n - 3) && isVowelAt(w, n - 2) && !isVowelAt(w, n - 1) && !'wxy'.includes(w[n - 1]!);
}

/** Replaces the first matching suffix when the stem left satisfies `when`; only the first suffix that matches is tried. */
function replaceSuffix(w: string, rules: readonly (readonly [string, string])[], when: (stem: string) => boolean): string {
  for (const [suffix, replacement] of rules) {
    if (!w.endsWith(suffix)) continue;
    const stem = w.slice(0, w.length - suffix.length);
    return when(stem) ? stem + replacement : w;
  }
  return w;
}

const STEP2: readonly (readonly [string, string])[] = [
  ['ational', 'ate'],
  ['tional', 'tion'],
  ['enci', 'ence'],
  ['anci', 'ance'],
  ['izer', 'ize'],
  ['abli', 'able'],
  ['alli', 'al'],
  ['entli', 'ent'],
  ['eli', 'e'],
  ['ousli', 'ous'],
  ['ization', 'ize'],
  ['ation', 'ate'],
  ['ator', 'ate'],
  ['alism', 'al'],
  ['iveness', 'ive'],
  ['fulness', 'ful'],
  ['ousness', 'ous'],
  ['aliti', 'al'],
  ['iviti', 'ive'],
  ['biliti', 'ble'],
];
const STEP3: readonly (readonly [string, string])[] = [
  ['icate', 'ic'],
  ['ative', ''],
  ['alize', 'al'],
  ['iciti', 'ic'],
  ['ical', 'ic'],
  ['ful', ''],
  ['ness', ''],
];
const STEP4 = ['al', 'ance', 'ence', 'er', 'ic', 'able', 'ible', 'ant', 'ement', 'ment', 'ent', 'ion', 'ou', 'ism', 'ate', 'iti', 'ous', 'ive', 'ize'];

/** Among suffixes, the longest that `w` ends with (the paper's rule when several match). */
function longestSuffix(w: string, rules: readonly (readonly [string, string])[]): readonly (readonly [string, string])[] {
  const matching = rules.filter(([s]) => w.endsWith(s)).sort((a, b) => b[0].length - a[0].length);
  return matching.slice(0, 1);
}

export function porterStem(word: string): string {
  let w = word;
  if (w.length <= 2) return w;

  // Step 1a
  if (w.endsWith('sses')) w = w.slice(0, -2);
  else if (w.endsWith('ies')) w = w.slice(0, -2);
  else if (w.endsWith('ss')) {
    /* unchanged */
  } else if (w.endsWith('s')) w = w.slice(0, -1);

  // Step 1b
  let cleanUp = false;
  if (w.endsWith('eed')) {
    if (measure(w.slice(0, -3)) > 0) w = w.slice(0, -1);
  } else if (w.endsWith('ed') && hasVowel(w.slice(0, -2))) {
    w = w.slice(0, -2);
    cleanUp = true;
  } else if (w.endsWith('ing') && hasVowel(w.slice(0, -3))) {
    w = w.slice(0, -3);
    cleanUp = true;
  }
  if (cleanUp) {
    if (w.endsWith('at') || w.endsWith('bl') || w.endsWith('iz')) w += 'e';
    else if (endsDoubleConsonant(w) && !'lsz'.includes(w.at(-1)!)) w = w.slice(0, -1);
    else if (measure(w) === 1 && endsCvc(w)) w += 'e';
  }

  // Step 1c
  if (w.endsWith('y') && hasVowel(w.slice(0, -1))) w = `${w.slice(0, -1)}i`;

  // Steps 2 and 3: the longest matching suffix, replaced when the stem's m > 0.
  w = replaceSuffix(w, longestSuffix(w, STEP2), (stem) => measure(stem) > 0);
  w = replaceSuffix(w, longestSuffix(w, STEP3), (stem) => measure(stem) > 0);

  // Step 4: the longest matching suffix, removed when the stem's m > 1 ("ion" after s or t only).
  const suffix4 = STEP4.filter((s) => w.endsWith(s)).sort((a, b) => b.length - a.length)[0];
  if (suffix4) {
    const stem = w.slice(0, w.length - suffix4.length);
    if (measure(stem) > 1 && (suffix4 !== 'ion' || stem.endsWith('s') || stem.endsWith('t'))) w = stem;
  }

  // Step 5a
  if (w.endsWith('e')) {
    const stem = w.slice(0, -1);
    const m = measure(stem);
    if (m > 1 || (m === 1 && !endsCvc(stem))) w = stem;
  }
  // Step 5b
  if (measure(w) > 1 && endsDoubleConsonant(w) && w.endsWith('l')) w = w.slice(0, -1);
  return w;
}
