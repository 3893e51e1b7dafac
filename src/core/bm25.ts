/**
 * BM25 over a persona's sentences: the retrieval fallback for models that were not trained on
 * PAL's select task. It picks the sentence that best matches the dialogue's last turn, or none
 * when nothing matches well enough. Labelled as retrieval wherever it is used, never passed off
 * as the model's own selection.
 */
import { contentStems } from './labeller';

export interface Bm25Options {
  readonly k1?: number;
  readonly b?: number;
  /** Scores at or below this are "none". */
  readonly minScore?: number;
}

/** Index of the best persona sentence for `query`, or -1; with the scores for display. */
export function bm25Select(personas: readonly string[], query: string, options: Bm25Options = {}): { index: number; scores: number[] } {
  const { k1 = 1.2, b = 0.75, minScore = 0 } = options;
  const docs = personas.map((p) => contentStems(p));
  const n = docs.length;
  const avg = docs.reduce((s, d) => s + d.length, 0) / Math.max(1, n);
  const df = new Map<string, number>();
  for (const d of docs) for (const w of new Set(d)) df.set(w, (df.get(w) ?? 0) + 1);
  const terms = new Set(contentStems(query));
  const scores = docs.map((d) => {
    const tf = new Map<string, number>();
    for (const w of d) tf.set(w, (tf.get(w) ?? 0) + 1);
    let score = 0;
    for (const t of terms) {
      const f = tf.get(t);
      if (!f) continue;
      const idf = Math.log(1 + (n - (df.get(t) ?? 0) + 0.5) / ((df.get(t) ?? 0) + 0.5));
      score += (idf * f * (k1 + 1)) / (f + k1 * (1 - b + (b * d.length) / Math.max(avg, 1e-9)));
    }
    return score;
  });
  let index = -1;
  scores.forEach((s, i) => {
    if (s > minScore && (index < 0 || s > scores[index]!)) index = i;
  });
  return { index, scores };
}
