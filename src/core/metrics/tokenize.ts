/**
 * Tokenisation for the metrics. Every metric (BLEU, ROUGE-L, Distinct, length, P-F1, P-Cover) sees
 * the same tokens, so a number in a report means one thing.
 *
 * The default is "whitespace": lower-case, then split on white space. PERSONA-CHAT / ConvAI2 text
 * is already tokenised ("i am good , i just got off work ."), and this is what the PAL code and
 * coco-caption's ROUGE-L do, so scores stay comparable with published ones. "words" is for text
 * that is not tokenised (a chat model's raw output, "I'm good, thanks!"): it splits punctuation
 * off, keeping a word's inner apostrophes ("i'm", "good", ",", "thanks", "!").
 */

export const TOKENIZATIONS = ['whitespace', 'words'] as const;
export type Tokenization = (typeof TOKENIZATIONS)[number];

export const DEFAULT_TOKENIZATION: Tokenization = 'whitespace';

/** The rule in words, for reports and docs/metrics.md. */
export const TOKENIZATION_RULES: Readonly<Record<Tokenization, string>> = {
  whitespace: 'lower-cased, split on white space (the text is taken as already tokenised, as PERSONA-CHAT is)',
  words: 'lower-cased; a token is a run of letters, digits and marks (with inner apostrophes, as in "i\'m"), or any other single non-space character',
};

const WHITESPACE = /\s+/u;
// A word is letters/digits/marks, optionally joined by apostrophes; anything else that is not
// space is a token of its own (so "work." gives "work" and ".").
const WORD_OR_SYMBOL = /[\p{L}\p{N}\p{M}]+(?:['\u2019][\p{L}\p{N}\p{M}]+)*|[^\s\p{L}\p{N}\p{M}]/gu;

export function tokenize(text: string, tokenization: Tokenization = DEFAULT_TOKENIZATION): string[] {
  const lower = text.toLowerCase();
  if (tokenization === 'whitespace') {
    const tokens = lower.split(WHITESPACE);
    // split gives '' for leading/trailing white space; an empty text has no tokens.
    return tokens.filter((t) => t !== '');
  }
  return lower.match(WORD_OR_SYMBOL) ?? [];
}

export function isTokenization(value: string): value is Tokenization {
  return (TOKENIZATIONS as readonly string[]).includes(value);
}

/**
 * Token strings to dense integer ids, shared by every text of one evaluation: n-grams then compare
 * as integers, never as joined strings, which is what makes 10,000 pairs take milliseconds.
 */
export class Vocabulary {
  private readonly ids = new Map<string, number>();

  get size(): number {
    return this.ids.size;
  }

  id(token: string): number {
    let id = this.ids.get(token);
    if (id === undefined) {
      id = this.ids.size;
      this.ids.set(token, id);
    }
    return id;
  }

  encode(tokens: readonly string[]): Int32Array {
    const out = new Int32Array(tokens.length);
    for (let i = 0; i < tokens.length; i++) out[i] = this.id(tokens[i]!);
    return out;
  }
}
