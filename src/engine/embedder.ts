/**
 * Sentence embeddings for the labeller's semantic match: a BERT encoder exported by the trainer
 * (pal_trainer.encoder_import: onnx/model.onnx, tokenizer.json, pooling.json), run through
 * transformers.js, mean-pooled over the real tokens and normalised, as sentence-transformers'
 * all-MiniLM-L6-v2 is used. Cosine similarity is then a dot product.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { DialogueExample } from '../core/formats/types';
import { DEFAULT_MIN_SIMILARITY, labelWithSimilarity } from '../core/labeller';
import { transformers } from './transformers';

/** Sentences embedded per forward pass: sorted by length first, so a batch pads little. */
const BATCH = 64;
/** all-MiniLM-L6-v2 was trained on 128 word pieces; persona turns are far shorter. */
const MAX_TOKENS = 128;

export interface Embedder {
  readonly folder: string;
  /** One unit-length vector per text, in order. */
  embed(texts: readonly string[]): Promise<Float32Array[]>;
  dispose(): Promise<void>;
}

interface Tensor {
  readonly data: Float32Array | BigInt64Array;
  readonly dims: readonly number[];
}

export async function loadEmbedder(folder: string): Promise<Embedder> {
  folder = path.resolve(folder);
  for (const f of ['config.json', 'tokenizer.json', path.join('onnx', 'model.onnx')])
    if (!existsSync(path.join(folder, f))) throw new Error(`${path.join(folder, f)} is missing: ${folder} is not a sentence-embedding model folder.`);
  const tf = transformers();
  const local = { local_files_only: true };
  const tokenizer = await tf.AutoTokenizer.from_pretrained(folder, local);
  const model = await tf.AutoModel.from_pretrained(folder, { ...local, device: 'cpu', dtype: 'fp32' });

  async function embedBatch(texts: readonly string[]): Promise<Float32Array[]> {
    const inputs = tokenizer([...texts], { padding: true, truncation: true, max_length: MAX_TOKENS }) as Record<string, Tensor>;
    const { last_hidden_state: hidden } = (await model(inputs)) as { last_hidden_state: Tensor };
    const [rows, seq, dim] = hidden.dims as [number, number, number];
    const data = hidden.data as Float32Array;
    const mask = inputs.attention_mask!.data as BigInt64Array;
    const out: Float32Array[] = [];
    for (let r = 0; r < rows; r++) {
      const v = new Float32Array(dim);
      let n = 0;
      for (let t = 0; t < seq; t++) {
        if (mask[r * seq + t] === 0n) continue;
        n++;
        const at = (r * seq + t) * dim;
        for (let d = 0; d < dim; d++) v[d]! += data[at + d]!;
      }
      let norm = 0;
      for (let d = 0; d < dim; d++) norm += (v[d]! /= Math.max(1, n)) ** 2;
      norm = Math.sqrt(norm) || 1;
      for (let d = 0; d < dim; d++) v[d]! /= norm;
      out.push(v);
    }
    return out;
  }

  return {
    folder,
    async embed(texts) {
      const order = texts.map((_, i) => i).sort((a, b) => texts[a]!.length - texts[b]!.length);
      const out = new Array<Float32Array>(texts.length);
      for (let i = 0; i < order.length; i += BATCH) {
        const idx = order.slice(i, i + BATCH);
        const vectors = await embedBatch(idx.map((k) => texts[k]!));
        idx.forEach((k, j) => (out[k] = vectors[j]!));
      }
      return out;
    },
    async dispose() {
      await (model as { dispose?: () => Promise<unknown> }).dispose?.();
    },
  };
}

export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * The examples with the semantic match applied where the word-overlap labeller found no persona
 * sentence (core/labeller.ts `labelWithSimilarity`). Each distinct sentence is embedded once: a
 * persona is shared by every turn of its dialogue.
 */
export async function labelSemantically(
  examples: readonly DialogueExample[],
  embedder: Embedder,
  minSimilarity = DEFAULT_MIN_SIMILARITY,
): Promise<DialogueExample[]> {
  const open = examples.filter((e) => e.persona_index < 0 && (e.personas?.length ?? 0) > 0);
  const texts = [...new Set(open.flatMap((e) => [e.response, ...(e.personas ?? [])]))];
  const vectors = await embedder.embed(texts);
  const byText = new Map(texts.map((t, i) => [t, vectors[i]!]));
  return examples.map((e) => {
    const personas = e.personas ?? [];
    if (e.persona_index >= 0 || personas.length === 0) return e;
    const response = byText.get(e.response)!;
    const label = labelWithSimilarity(
      -1,
      personas.map((p) => dot(response, byText.get(p)!)),
      minSimilarity,
    );
    return label === e.persona_index ? e : { ...e, persona_index: label };
  });
}
