/**
 * Byte-level BPE (GPT-2's scheme): training, the Hugging Face `tokenizer.json` it is saved as, and
 * a reference encoder/decoder of our own that tokenizes exactly as transformers.js (and Python's
 * `tokenizers`) do with that file. Pure TypeScript: no fs, no vscode. See docs/tokenizer.md.
 *
 * Training is the standard efficient algorithm: split the texts with GPT-2's pre-tokenizer regex
 * into words, count the distinct words, map each to GPT-2's byte alphabet, then repeatedly merge
 * the most frequent adjacent pair, keeping a pair -> count map and a pair -> words index and
 * updating only the words that hold the merged pair. The best pair comes from a lazy max-heap
 * (stale entries are re-pushed with their current count when popped). Ties go to the pair whose
 * (left id, right id) is smallest, so the result depends only on the word counts.
 */

/** GPT-2's pre-tokenizer regex, exactly as transformers.js's ByteLevel pre-tokenizer writes it. */
export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export const END_OF_TEXT = '<|endoftext|>';

/** GPT-2's bytes_to_unicode: every byte as a printable character (space is 'Ġ', '\n' is 'Ċ'). */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const table = new Array<string>(256);
  bs.forEach((b, i) => (table[b] = String.fromCharCode(cs[i]!)));
  return table;
})();

const UNICODE_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_UNICODE.map((c, b) => [c, b]));

const utf8 = new TextEncoder();

/** A string's UTF-8 bytes written in the byte alphabet (one character per byte). */
export function toByteLevel(text: string): string {
  let s = '';
  for (const b of utf8.encode(text)) s += BYTE_TO_UNICODE[b]!;
  return s;
}

/** GPT-2's pre-tokenization: the pieces the regex matches (they cover the whole text). */
export function preTokenize(text: string): string[] {
  return text.match(GPT2_PATTERN) ?? [];
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Splits text on special tokens (kept as their own parts), as transformers.js does with added tokens. */
function splitOnSpecials(text: string, specials: readonly string[]): { text: string; special: boolean }[] {
  if (specials.length === 0 || text === '') return text === '' ? [] : [{ text, special: false }];
  // Longest first, so that a special token that is a prefix of another does not win.
  const re = new RegExp(
    `(${[...specials]
      .sort((a, b) => b.length - a.length)
      .map(escapeRegExp)
      .join('|')})`,
    'g',
  );
  const parts: { text: string; special: boolean }[] = [];
  text.split(re).forEach((p, i) => {
    if (p !== '') parts.push({ text: p, special: i % 2 === 1 });
  });
  return parts;
}

export interface TrainOptions {
  /** Total vocabulary, special tokens and the 256 byte symbols included (default 4096). */
  vocabSize?: number;
  /** A pair seen fewer times than this is never merged (default 2). */
  minFrequency?: number;
  /** Special tokens, given the first ids in this order (default ["<|endoftext|>"]). */
  specialTokens?: readonly string[];
}

export interface BpeModel {
  /** Token (in the byte alphabet, or a special token) -> id. */
  vocab: Map<string, number>;
  /** Merges in rank order. */
  merges: [string, string][];
  /** The special tokens (ids 0..n-1). */
  specialTokens: string[];
}

/** Counts pre-tokenized words; feed it texts as they stream in, then train on `counts`. */
export class WordCounter {
  readonly counts = new Map<string, number>();
  constructor(private readonly specialTokens: readonly string[] = [END_OF_TEXT]) {}

  add(text: string): void {
    for (const part of splitOnSpecials(text, this.specialTokens)) {
      if (part.special) continue;
      for (const w of preTokenize(part.text)) this.counts.set(w, (this.counts.get(w) ?? 0) + 1);
    }
  }
}

/** Trains byte-level BPE on texts. Deterministic: the same texts give the same model. */
export function trainBpe(texts: Iterable<string>, options: TrainOptions = {}): BpeModel {
  const counter = new WordCounter(options.specialTokens ?? [END_OF_TEXT]);
  for (const t of texts) counter.add(t);
  return trainBpeFromCounts(counter.counts, options);
}

// Pair keys: left * 2^21 + right (ids stay below 2^21, so the key is an exact integer).
const SHIFT = 2 ** 21;

/** A max-heap of [count, key], the larger count first and, on equal counts, the smaller key. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number {
    return this.counts.length;
  }
  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }
  private swap(i: number, j: number): void {
    const c = this.counts[i]!;
    this.counts[i] = this.counts[j]!;
    this.counts[j] = c;
    const k = this.keys[i]!;
    this.keys[i] = this.keys[j]!;
    this.keys[j] = k;
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): [number, number] | undefined {
    const n = this.counts.length;
    if (n === 0) return undefined;
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    const lastC = this.counts.pop()!;
    const lastK = this.keys.pop()!;
    if (n > 1) {
      this.counts[0] = lastC;
      this.keys[0] = lastK;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < n - 1 && this.above(l, m)) m = l;
        if (r < n - 1 && this.above(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

/** Trains byte-level BPE on word counts (raw pre-tokenized words, as WordCounter makes them). */
export function trainBpeFromCounts(counts: ReadonlyMap<string, number>, options: TrainOptions = {}): BpeModel {
  const vocabSize = options.vocabSize ?? 4096;
  const minFrequency = Math.max(1, options.minFrequency ?? 2);
  const specialTokens = [...(options.specialTokens ?? [END_OF_TEXT])];
  if (new Set(specialTokens).size !== specialTokens.length) throw new Error('special tokens must be distinct');
  const base = specialTokens.length + 256;
  if (vocabSize < base) throw new Error(`vocabSize ${vocabSize} is below the ${base} special and byte tokens`);
  if (vocabSize >= SHIFT) throw new Error(`vocabSize must be below ${SHIFT}`);

  // id -> token: special tokens, then the 256 bytes in byte order, then merged tokens.
  const tokens: string[] = [...specialTokens, ...BYTE_TO_UNICODE];
  const ids = new Map<string, number>(tokens.map((t, i) => [t, i]));
  if (ids.size !== tokens.length) throw new Error('a special token collides with a byte symbol');

  // Words in a fixed order (sorted), so that nothing depends on the order texts came in.
  const raw = [...counts.keys()].sort();
  const words: number[][] = [];
  const freqs: number[] = [];
  for (const w of raw) {
    const f = counts.get(w)!;
    if (f <= 0) continue;
    const symbols: number[] = [];
    for (const b of utf8.encode(w)) symbols.push(specialTokens.length + b);
    words.push(symbols);
    freqs.push(f);
  }

  const pairCounts = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  for (let w = 0; w < words.length; w++) {
    const s = words[w]!;
    const f = freqs[w]!;
    for (let i = 0; i + 1 < s.length; i++) {
      const key = s[i]! * SHIFT + s[i + 1]!;
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + f);
      let set = where.get(key);
      if (!set) where.set(key, (set = new Set()));
      set.add(w);
    }
  }
  const heap = new PairHeap();
  for (const [key, c] of pairCounts) heap.push(c, key);

  const merges: [string, string][] = [];
  const delta = new Map<number, number>();
  while (tokens.length < vocabSize) {
    // The best pair: pop until an entry's count is current.
    let best: number | undefined;
    for (;;) {
      const top = heap.pop();
      if (!top) break;
      const [c, key] = top;
      const current = pairCounts.get(key) ?? 0;
      if (current === c) {
        best = key;
        break;
      }
      if (current > 0) heap.push(current, key);
    }
    if (best === undefined || pairCounts.get(best)! < minFrequency) break;

    const a = Math.floor(best / SHIFT);
    const b = best - a * SHIFT;
    const merged = tokens[a]! + tokens[b]!;
    merges.push([tokens[a]!, tokens[b]!]);
    // Two merges can make the same string ("ab"+"c", "a"+"bc"): it keeps its first id.
    let newId = ids.get(merged);
    if (newId === undefined) {
      newId = tokens.length;
      tokens.push(merged);
      ids.set(merged, newId);
    }

    for (const w of [...where.get(best)!]) {
      const old = words[w]!;
      const f = freqs[w]!;
      const next: number[] = [];
      for (let i = 0; i < old.length; i++) {
        if (i + 1 < old.length && old[i] === a && old[i + 1] === b) {
          next.push(newId);
          i++;
        } else next.push(old[i]!);
      }
      delta.clear();
      for (let i = 0; i + 1 < old.length; i++) {
        const key = old[i]! * SHIFT + old[i + 1]!;
        delta.set(key, (delta.get(key) ?? 0) - f);
      }
      for (let i = 0; i + 1 < next.length; i++) {
        const key = next[i]! * SHIFT + next[i + 1]!;
        delta.set(key, (delta.get(key) ?? 0) + f);
      }
      // Pairs the new word still holds (for the index).
      const held = new Set<number>();
      for (let i = 0; i + 1 < next.length; i++) held.add(next[i]! * SHIFT + next[i + 1]!);
      for (const [key, d] of delta) {
        if (!held.has(key)) where.get(key)?.delete(w);
        else {
          let set = where.get(key);
          if (!set) where.set(key, (set = new Set()));
          set.add(w);
        }
        if (d === 0) continue;
        const c = (pairCounts.get(key) ?? 0) + d;
        if (c <= 0) pairCounts.delete(key);
        else pairCounts.set(key, c);
        if (d > 0) heap.push(c, key);
      }
      words[w] = next;
    }
    pairCounts.delete(best);
    where.delete(best);
  }

  return { vocab: ids, merges, specialTokens };
}

/** The Hugging Face `tokenizers` JSON (GPT-2's layout) for a trained model. */
export function toTokenizerJson(model: BpeModel): object {
  const vocab: Record<string, number> = {};
  for (const [t, id] of [...model.vocab].sort((x, y) => x[1] - y[1])) vocab[t] = id;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: model.specialTokens.map((content) => ({
      id: model.vocab.get(content)!,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      // "left right" strings, as GPT-2's file has them: byte-level tokens never hold a space.
      merges: model.merges.map(([l, r]) => `${l} ${r}`),
    },
  };
}

/** tokenizer_config.json for transformers / transformers.js: GPT-2's tokenizer class, one special token. */
export function toTokenizerConfig(model: BpeModel, modelMaxLength = 1024): object {
  const eos = model.specialTokens[0] ?? END_OF_TEXT;
  const addedTokensDecoder: Record<string, object> = {};
  for (const content of model.specialTokens) {
    addedTokensDecoder[String(model.vocab.get(content))] = { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  }
  return {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: addedTokensDecoder,
    bos_token: eos,
    // Decoding must give the text back exactly: no " ." -> "." clean-up.
    clean_up_tokenization_spaces: false,
    eos_token: eos,
    model_max_length: modelMaxLength,
    pad_token: eos,
    tokenizer_class: 'GPT2Tokenizer',
    unk_token: eos,
  };
}

/** Our own encoder/decoder for a trained model: what transformers.js must agree with. */
export class BpeTokenizer {
  private readonly ranks = new Map<number, { rank: number; id: number }>();
  private readonly idToToken: string[] = [];
  private readonly cache = new Map<string, number[]>();
  private readonly specials: Set<string>;

  constructor(readonly model: BpeModel) {
    for (const [t, id] of model.vocab) this.idToToken[id] = t;
    this.specials = new Set(model.specialTokens);
    model.merges.forEach(([l, r], rank) => {
      const a = model.vocab.get(l);
      const b = model.vocab.get(r);
      const id = model.vocab.get(l + r);
      if (a === undefined || b === undefined || id === undefined) throw new Error(`merge ${rank} ("${l} ${r}") uses a token missing from the vocabulary`);
      const key = a * SHIFT + b;
      if (!this.ranks.has(key)) this.ranks.set(key, { rank, id });
    });
  }

  /** Reads a tokenizer.json written by toTokenizerJson. */
  static fromJson(json: unknown): BpeTokenizer {
    const j = json as { added_tokens: { id: number; content: string }[]; model: { vocab: Record<string, number>; merges: (string | [string, string])[] } };
    const vocab = new Map(Object.entries(j.model.vocab));
    const merges = j.model.merges.map((m) => (typeof m === 'string' ? (m.split(' ', 2) as [string, string]) : m));
    const specialTokens = [...j.added_tokens].sort((a, b) => a.id - b.id).map((t) => t.content);
    return new BpeTokenizer({ vocab, merges, specialTokens });
  }

  get vocabSize(): number {
    return this.idToToken.length;
  }

  /** Token ids of a text; special tokens in the text become their ids (as in transformers.js). */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const part of splitOnSpecials(text, this.model.specialTokens)) {
      if (part.special) out.push(this.model.vocab.get(part.text)!);
      else for (const w of preTokenize(part.text)) out.push(...this.encodeWord(w));
    }
    return out;
  }

  /** The tokens (byte-alphabet strings) of a text. */
  tokenize(text: string): string[] {
    return this.encode(text).map((id) => this.idToToken[id]!);
  }

  private encodeWord(word: string): number[] {
    const hit = this.cache.get(word);
    if (hit) return hit;
    const base = this.model.specialTokens.length;
    const s: number[] = [];
    for (const b of utf8.encode(word)) s.push(this.model.vocab.get(BYTE_TO_UNICODE[b]!) ?? base + b);
    // Lowest rank first; its occurrences left to right (what GPT-2, tokenizers and transformers.js do).
    for (;;) {
      let best: { rank: number; id: number } | undefined;
      let bestKey = -1;
      for (let i = 0; i + 1 < s.length; i++) {
        const key = s[i]! * SHIFT + s[i + 1]!;
        const r = this.ranks.get(key);
        if (r && (!best || r.rank < best.rank)) {
          best = r;
          bestKey = key;
        }
      }
      if (!best) break;
      const a = Math.floor(bestKey / SHIFT);
      const b = bestKey - a * SHIFT;
      let j = 0;
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          s[j++] = best.id;
          i++;
        } else s[j++] = s[i]!;
      }
      s.length = j;
    }
    if (this.cache.size < 100_000) this.cache.set(word, s);
    return s;
  }

  /** The text of token ids (special tokens as their text unless skipSpecial). */
  decode(ids: readonly number[], options: { skipSpecial?: boolean } = {}): string {
    let text = '';
    let bytes: number[] = [];
    const flush = () => {
      if (bytes.length) text += new TextDecoder('utf-8').decode(new Uint8Array(bytes));
      bytes = [];
    };
    for (const id of ids) {
      const t = this.idToToken[id];
      if (t === undefined) throw new Error(`token id ${id} is not in the vocabulary`);
      if (this.specials.has(t)) {
        flush();
        if (!options.skipSpecial) text += t;
        continue;
      }
      for (const c of t) bytes.push(UNICODE_TO_BYTE.get(c)!);
    }
    flush();
    return text;
  }
}
