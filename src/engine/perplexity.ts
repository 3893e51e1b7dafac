/**
 * Perplexity of a model on dialogue responses: how surprised it is by each gold response given the
 * dialogue before it, in the base model's own format (the dialogue block it was pre-trained on, no
 * personas, no task line). exp(mean negative log-likelihood per response token), over all tokens.
 */
import { dialogueBlock, PERSONA_TAG, responseTarget } from '../core/prompts';
import { encode, type LoadedModel } from './inference';

/* eslint-disable @typescript-eslint/no-explicit-any -- transformers.js's tensors are loosely typed */
type OrtTensor = { data: Float32Array; dims: number[] };

export interface PerplexityResult {
  readonly perplexity: number;
  /** Mean negative log-likelihood per token (nats). */
  readonly nll: number;
  readonly tokens: number;
  readonly examples: number;
}

/** Sum of -log p(target | context) over the target tokens, in one forward pass. */
export async function targetNll(m: LoadedModel, context: readonly number[], target: readonly number[], maxLength: number): Promise<number> {
  const ids = [...context, ...target].slice(-maxLength);
  const start = ids.length - target.length; // index in `ids` of the first target token
  if (start < 1) throw new Error(`a response of ${target.length} tokens does not fit the model's ${maxLength} positions with any context`);
  const tensor = (rows: number[]) => new m.tf.Tensor('int64', BigInt64Array.from(rows.map((x) => BigInt(x))), [1, rows.length]);
  const out = await m.model.forward({ input_ids: tensor(ids), attention_mask: tensor(ids.map(() => 1)) });
  const logits = out.logits as OrtTensor;
  const vocab = logits.dims[2]!;
  let nll = 0;
  for (let pos = start; pos < ids.length; pos++) {
    const offset = (pos - 1) * vocab; // the logits at pos-1 predict the token at pos
    let max = -Infinity;
    for (let i = 0; i < vocab; i++) max = Math.max(max, logits.data[offset + i]!);
    let sum = 0;
    for (let i = 0; i < vocab; i++) sum += Math.exp(logits.data[offset + i]! - max);
    nll += max + Math.log(sum) - logits.data[offset + ids[pos]!]!;
  }
  return nll;
}

export async function responsePerplexity(
  m: LoadedModel,
  examples: readonly { history: readonly string[]; response: string }[],
  options: { maxLength?: number; signal?: AbortSignal; onProgress?: (done: number) => void } = {},
): Promise<PerplexityResult> {
  const maxLength = options.maxLength ?? Number((m.model as any).config?.max_position_embeddings ?? 512);
  let nll = 0;
  let tokens = 0;
  let done = 0;
  for (const ex of examples) {
    if (options.signal?.aborted) throw new Error('cancelled');
    const context = encode(m, `${dialogueBlock(ex.history)}\n${PERSONA_TAG}:`);
    const target = encode(m, responseTarget(ex.response));
    if (target.length === 0) continue;
    nll += await targetNll(m, context, target, maxLength);
    tokens += target.length;
    done++;
    options.onProgress?.(done);
  }
  if (tokens === 0) throw new Error('no response tokens to score');
  return { perplexity: Math.exp(nll / tokens), nll: nll / tokens, tokens, examples: done };
}
