/**
 * The relevant-persona labeller.
 *
 * PAL's first stage teaches a model to pick the persona sentence a response relies on, but
 * PERSONA-CHAT and Synthetic-Persona-Chat carry no such label. This module derives one with a
 * transparent word-overlap rule, so that the label is reproducible and a model card can say
 * exactly how it was made (quote `LABELLER_RULE`). It is a heuristic, not an annotation: it sees
 * shared words, not meaning ("i have two dogs" vs. "my puppy is asleep" is missed).
 *
 * Pure and deterministic: the same input always gives the same label.
 */
import type { DialogueExample } from './formats/types';
import { porterStem } from './porter';

/**
 * Words that carry no persona content: English function words, the pieces contractions split
 * into ("don't" → "don"), chat fillers, and the framing verbs persona sentences are written with
 * ("i like ...", "my favorite ... is"). Without the framing verbs, "i like that" would match every
 * "i like <x>" sentence of a persona; with them gone, only what is liked counts.
 */
export const STOP_WORDS: ReadonlySet<string> = new Set([
  // function words
  'a',
  'about',
  'above',
  'after',
  'again',
  'against',
  'all',
  'also',
  'am',
  'an',
  'and',
  'any',
  'are',
  'around',
  'as',
  'at',
  'be',
  'because',
  'been',
  'before',
  'being',
  'below',
  'between',
  'both',
  'but',
  'by',
  'can',
  'cannot',
  'could',
  'did',
  'do',
  'does',
  'doing',
  'down',
  'during',
  'each',
  'else',
  'even',
  'ever',
  'every',
  'few',
  'for',
  'from',
  'further',
  'get',
  'gets',
  'getting',
  'got',
  'had',
  'has',
  'have',
  'having',
  'he',
  'her',
  'here',
  'hers',
  'herself',
  'him',
  'himself',
  'his',
  'how',
  'i',
  'if',
  'in',
  'into',
  'is',
  'it',
  'its',
  'itself',
  'just',
  'let',
  'lot',
  'lots',
  'many',
  'me',
  'more',
  'most',
  'much',
  'must',
  'my',
  'myself',
  'never',
  'no',
  'nor',
  'not',
  'now',
  'of',
  'off',
  'often',
  'on',
  'once',
  'one',
  'only',
  'or',
  'other',
  'our',
  'ours',
  'ourselves',
  'out',
  'over',
  'own',
  'same',
  'shall',
  'she',
  'should',
  'since',
  'so',
  'some',
  'still',
  'such',
  'than',
  'that',
  'the',
  'their',
  'theirs',
  'them',
  'themselves',
  'then',
  'there',
  'these',
  'they',
  'thing',
  'things',
  'this',
  'those',
  'though',
  'through',
  'to',
  'too',
  'under',
  'until',
  'up',
  'upon',
  'us',
  'very',
  'was',
  'we',
  'were',
  'what',
  'when',
  'where',
  'which',
  'while',
  'who',
  'whom',
  'why',
  'will',
  'with',
  'would',
  'yet',
  'you',
  'your',
  'yours',
  'yourself',
  'yourselves',
  // pieces of contractions once apostrophes split them
  'aren',
  'couldn',
  'didn',
  'doesn',
  'don',
  'hadn',
  'hasn',
  'haven',
  'isn',
  'ain',
  'll',
  've',
  're',
  'shouldn',
  'wasn',
  'weren',
  'won',
  'wouldn',
  // chat fillers
  'actually',
  'always',
  'cool',
  'fun',
  'good',
  'great',
  'haha',
  'hello',
  'hey',
  'lol',
  'maybe',
  'nice',
  'okay',
  'pretty',
  'really',
  'sure',
  'thank',
  'thanks',
  'well',
  'wow',
  'yeah',
  'yes',
  // framing verbs of persona sentences
  'enjoy',
  'favorite',
  'favourite',
  'like',
  'likes',
  'love',
  'loves',
  'want',
  'wants',
]);

/** Words of at least this many letters count on their own (see `labelPersona`). */
export const DEFAULT_MIN_SINGLE_WORD_LENGTH = 5;

/** Content words a persona sentence must share with a response, unless one of them is long enough. */
export const DEFAULT_MIN_SHARED = 2;

/** The rule in words, for model cards and `docs/labeller.md`. Keep it in step with the code. */
export const LABELLER_RULE =
  'The relevant persona sentence of a response is labelled by content-word overlap. Text is ' +
  'lower-cased and split on every character that is not a letter or a digit; words in a fixed ' +
  'English stop-word list (function words, contraction pieces, chat fillers and the framing verbs ' +
  '"like", "love", "enjoy", "want", "favorite") and words shorter than 3 characters are dropped ' +
  '(numbers are kept whatever their length); words are reduced to their Porter (1980) stems ' +
  '("dogs" -> "dog", "hiking" -> "hike"). A persona sentence scores the number of ' +
  'distinct content words it shares with the response. The best sentence is the label if it shares ' +
  `at least ${DEFAULT_MIN_SHARED} words, or one word of at least ${DEFAULT_MIN_SINGLE_WORD_LENGTH} ` +
  'characters on both sides or a number; otherwise the label is -1 (none). Ties go to the sentence whose content ' +
  'words are the larger share in common with the response, then to the earlier sentence.';

export interface LabelOptions {
  /** Shared content words that always suffice (default 2). */
  minShared?: number;
  /**
   * A single shared word suffices when it is at least this long, or a number (default 5): one
   * long word ("kosher", "mustang", "disneyland") is specific, one short word ("car", "dog") is
   * as often chance as reference.
   */
  minSingleWordLength?: number;
}

// A stop word's stem is a stop word too ("enjoyed" -> "enjoi", the stem of "enjoy").
const STOP_STEMS: ReadonlySet<string> = new Set([...STOP_WORDS].map(porterStem));

/**
 * The content words of a text as the rule defines them, stemmed: each stem (distinct, in
 * first-seen order) with the length of the shortest word of the text that gave it.
 */
export function contentWordForms(text: string): Map<string, number> {
  const words = new Map<string, number>();
  for (const raw of text.toLowerCase().split(/[^\p{L}\p{N}]+/u)) {
    if (raw === '') continue;
    const isNumber = /^\p{N}+$/u.test(raw);
    if (!isNumber && raw.length < 3) continue;
    if (STOP_WORDS.has(raw)) continue;
    const stem = isNumber ? raw : porterStem(raw);
    if (STOP_STEMS.has(stem)) continue;
    words.set(stem, Math.min(words.get(stem) ?? Infinity, raw.length));
  }
  return words;
}

/**
 * The content words of a text, stemmed (distinct, in first-seen order): what the labeller and BM25
 * match on. P-F1's content words (metrics/persona.ts `contentWords`) are PAL's definition, without
 * stemming, so that the metric stays comparable with the paper's.
 */
export function contentStems(text: string): string[] {
  return [...contentWordForms(text).keys()];
}

/**
 * Whether `reply` uses `fact` by the labeller's rule applied to that sentence alone: what \`pal
 * eval\`'s "selected fact used" counts and what decoding's preferSelectedFact prefers.
 */
export function usesFact(fact: string, reply: string): boolean {
  return labelPersona([fact], reply) === 0;
}

/**
 * The 0-based index of the persona sentence `response` relies on, or -1 for none (see
 * `LABELLER_RULE`).
 */
export function labelPersona(personas: readonly string[], response: string, options: LabelOptions = {}): number {
  const minShared = options.minShared ?? DEFAULT_MIN_SHARED;
  const minSingleWordLength = options.minSingleWordLength ?? DEFAULT_MIN_SINGLE_WORD_LENGTH;
  const responseWords = contentWordForms(response);

  let best = -1;
  let bestShared = 0;
  let bestShare = 0;
  personas.forEach((sentence, index) => {
    const sentenceForms = contentWordForms(sentence);
    const sentenceWords = [...sentenceForms.keys()];
    const shared = sentenceWords.filter((w) => responseWords.has(w));
    // A single word counts when it is long on both sides ("hiking" and "hike" are a 4-letter match).
    const enough =
      shared.length >= minShared || shared.some((w) => Math.min(sentenceForms.get(w)!, responseWords.get(w)!) >= minSingleWordLength || /^\p{N}+$/u.test(w));
    if (!enough) return;
    const share = shared.length / sentenceWords.length;
    // Strictly better only: an equal score and share keeps the earlier sentence.
    if (shared.length > bestShared || (shared.length === bestShared && share > bestShare)) {
      best = index;
      bestShared = shared.length;
      bestShare = share;
    }
  });
  return best;
}

/**
 * The semantic match's threshold: the cosine similarity of the sentence embeddings
 * (all-MiniLM-L6-v2, mean-pooled, normalised) at which a persona sentence counts as used. Chosen on
 * the first 100 of 200 hand-labelled ConvAI2 dev responses (0.30-0.45 tried; 0.35 agreed best)
 * and checked on the other 100 (docs/labeller.md).
 */
export const DEFAULT_MIN_SIMILARITY = 0.35;

/** The semantic labeller's rule in words, for model cards (after `LABELLER_RULE`). */
export const SEMANTIC_LABELLER_RULE =
  'Where no sentence shares enough words, a semantic match decides: the response and each persona ' +
  'sentence are embedded with all-MiniLM-L6-v2 (mean-pooled, normalised), and the most similar ' +
  `sentence is the label if its cosine similarity is at least ${DEFAULT_MIN_SIMILARITY}; otherwise the label is -1 (none).`;

/**
 * The label given the word-overlap label and the cosine similarity of the response to each persona
 * sentence: the overlap's label where it names one (two shared content words are rarely chance), else
 * the most similar sentence at or above `minSimilarity` (paraphrases: "my puppy" for "i have two
 * dogs"), else -1. Ties go to the earlier sentence.
 */
export function labelWithSimilarity(overlapLabel: number, similarities: readonly number[], minSimilarity = DEFAULT_MIN_SIMILARITY): number {
  if (overlapLabel >= 0) return overlapLabel;
  let best = -1;
  similarities.forEach((s, i) => {
    if (s >= minSimilarity && (best < 0 || s > similarities[best]!)) best = i;
  });
  return best;
}

export interface LabelDistribution {
  total: number;
  /** Examples labelled -1. */
  none: number;
  /** How many examples carry each persona index (byIndex[2]: examples labelled 2). */
  byIndex: number[];
}

/** How the labels of `examples` are spread, to judge the labeller on a data set. */
export function labelDistribution(examples: readonly DialogueExample[]): LabelDistribution {
  const byIndex: number[] = [];
  let none = 0;
  for (const example of examples) {
    const index = example.persona_index;
    if (index < 0) {
      none++;
      continue;
    }
    while (byIndex.length <= index) byIndex.push(0);
    byIndex[index] = (byIndex[index] ?? 0) + 1;
  }
  return { total: examples.length, none, byIndex };
}
