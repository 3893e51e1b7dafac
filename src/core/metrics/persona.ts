/**
 * Persona-overlap metrics: how much of the persona a response puts into words. Both work on content
 * words: the response's and persona's tokens (the evaluation's tokenisation) without the
 * stop words below and without tokens that have no letter or digit (punctuation).
 *
 * P-F1, after the knowledge precision/recall/F1 of Lian et al. 2019 ("Learning to select knowledge
 * for response generation in dialog systems", IJCAI) as persona-dialogue work applies it to the
 * persona (the "persona F1" of e.g. Jiang et al. / Wu et al.): with R the set of content words of
 * the response and P the set of content words of all the example's persona sentences,
 *
 *     precision = |R ∩ P| / |R|,  recall = |R ∩ P| / |P|,  P-F1 = 2·precision·recall / (precision + recall)
 *
 * (0 when |R|, |P| or the overlap is 0), averaged over the responses that have a persona.
 *
 * P-Cover, after the persona coverage of Song et al. 2019 ("Exploiting persona information for
 * diverse generation of conversational responses", IJCAI): the best persona sentence's
 * IDF-weighted share of words used by the response,
 *
 *     P-Cover(r) = max_j Σ_{w ∈ R ∩ P_j} idf(w) / |P_j|,   idf(w) = 1 / (1 + ln(1 + tf(w)))
 *
 * with P_j the content words of sentence j and tf(w) the count of w in an IDF corpus (Song et al.
 * estimate word frequencies from GloVe's frequency-ranked vocabulary; no such table ships here, so
 * the evaluation counts words in the reference responses and persona sentences of the evaluated
 * file, which is the same for every system evaluated on those examples). docs/metrics.md gives
 * the full definitions and what of the papers' text could and could not be checked.
 */

import { tokenize } from './tokenize';

/** English function words and contraction forms; fixed here so that metric values never drift. */
export const PERSONA_STOP_WORDS: ReadonlySet<string> = new Set([
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
  'few',
  'for',
  'from',
  'further',
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
  'me',
  'more',
  'most',
  'my',
  'myself',
  'no',
  'nor',
  'not',
  'now',
  'of',
  'off',
  'on',
  'once',
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
  'she',
  'should',
  'so',
  'some',
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
  'this',
  'those',
  'through',
  'to',
  'too',
  'under',
  'until',
  'up',
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
  'you',
  'your',
  'yours',
  'yourself',
  'yourselves',
  // contractions, whole (white-space tokens) and in pieces (the "words" tokeniser keeps "i'm" whole
  // too, but other tokenisers give "n't", "'s")
  "i'm",
  "i've",
  "i'd",
  "i'll",
  "you're",
  "you've",
  "you'd",
  "you'll",
  "he's",
  "she's",
  "it's",
  "we're",
  "we've",
  "we'd",
  "we'll",
  "they're",
  "they've",
  "they'd",
  "they'll",
  "that's",
  "there's",
  "what's",
  "let's",
  "don't",
  "doesn't",
  "didn't",
  "isn't",
  "aren't",
  "wasn't",
  "weren't",
  "haven't",
  "hasn't",
  "hadn't",
  "won't",
  "wouldn't",
  "can't",
  "couldn't",
  "shouldn't",
  "n't",
  "'s",
  "'m",
  "'re",
  "'ve",
  "'d",
  "'ll",
  'im',
  'dont',
  'cant',
  'ive',
  's',
  't',
  'm',
  're',
  've',
  'd',
  'll',
]);

const HAS_LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;

/** The distinct content words of a token list. */
export function contentWords(tokens: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const t of tokens) if (!PERSONA_STOP_WORDS.has(t) && HAS_LETTER_OR_DIGIT.test(t)) out.add(t);
  return out;
}

export interface PersonaF1 {
  precision: number;
  recall: number;
  f1: number;
}

/** P-F1 of one response against all of its persona sentences (token lists). */
export function personaF1(response: readonly string[], personas: readonly (readonly string[])[]): PersonaF1 {
  const r = contentWords(response);
  const p = new Set<string>();
  for (const sentence of personas) for (const w of contentWords(sentence)) p.add(w);
  let shared = 0;
  for (const w of r) if (p.has(w)) shared++;
  if (shared === 0) return { precision: 0, recall: 0, f1: 0 };
  const precision = shared / r.size;
  const recall = shared / p.size;
  return { precision, recall, f1: (2 * precision * recall) / (precision + recall) };
}

/** Word weights for P-Cover: idf(w) = 1 / (1 + ln(1 + tf(w))); an unseen word weighs 1. */
export class IdfTable {
  private readonly counts = new Map<string, number>();

  /** Counts the content words of one text of the IDF corpus (every occurrence). */
  add(tokens: readonly string[]): void {
    for (const t of tokens) {
      if (PERSONA_STOP_WORDS.has(t) || !HAS_LETTER_OR_DIGIT.test(t)) continue;
      this.counts.set(t, (this.counts.get(t) ?? 0) + 1);
    }
  }

  termFrequency(word: string): number {
    return this.counts.get(word) ?? 0;
  }

  weight(word: string): number {
    return 1 / (1 + Math.log(1 + this.termFrequency(word)));
  }
}

/**
 * P-Cover of one response: the best persona sentence's IDF-weighted covered share. Sentences with
 * no content word are skipped; null when no sentence has one (the response is then left out of
 * the average, as it has nothing to cover).
 */
export function personaCover(response: readonly string[], personas: readonly (readonly string[])[], idf: IdfTable): number | null {
  const r = contentWords(response);
  let best: number | null = null;
  for (const sentence of personas) {
    const p = contentWords(sentence);
    if (p.size === 0) continue;
    let sum = 0;
    for (const w of p) if (r.has(w)) sum += idf.weight(w);
    const cover = sum / p.size;
    if (best === null || cover > best) best = cover;
  }
  return best;
}

/** A fact shorter than this many words ("i ski.") is not counted as recited: a reply can say it in passing. */
export const MIN_RECITED_WORDS = 4;

/**
 * Whether a reply says one of the persona sentences word for word: the sentence's words (the
 * "words" tokenisation, punctuation dropped, so "i hike." matches "I hike!") as one run inside the
 * reply's. Reciting a fact raises P-F1 as much as using it in a reply of one's own, while a reader
 * hears a recital; reports count it apart so that a P-F1 gain can be read for what it is.
 */
export function recitesFact(response: string, personas: readonly string[]): boolean {
  const reply = ` ${spokenWords(response).join(' ')} `;
  return personas.some((p) => {
    const fact = spokenWords(p);
    return fact.length >= MIN_RECITED_WORDS && reply.includes(` ${fact.join(' ')} `);
  });
}

/** The words a reader hears: the "words" tokenisation with punctuation dropped. */
function spokenWords(text: string): string[] {
  return tokenize(text, 'words').filter((t) => HAS_LETTER_OR_DIGIT.test(t));
}

/** How many words running a reply must share with the partner's turn to echo it. */
export const ECHO_WORDS = 4;

/**
 * Whether a reply echoes the partner's last turn: 4 of its words running, as the turn has them
 * ("hi , just got back from riding my horse ! you ?" answered "Hi, just got back from riding
 * my horse."). Small models parrot what they answer; reports count it apart, beside recitals.
 */
export function echoesPartner(response: string, partnerTurn: string): boolean {
  const reply = spokenWords(response);
  const turn = ` ${spokenWords(partnerTurn).join(' ')} `;
  for (let i = 0; i + ECHO_WORDS <= reply.length; i++) if (turn.includes(` ${reply.slice(i, i + ECHO_WORDS).join(' ')} `)) return true;
  return false;
}
