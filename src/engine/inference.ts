/**
 * Inference on exported models: transformers.js (@huggingface/transformers) loads the tokenizer
 * and the ONNX model on onnxruntime-node; the decoding loop is ours, because PAL needs what
 * transformers.js's generate lacks (beam search) and what a studio needs (a token stream to the
 * client, cancellation between tokens, stopping at the end of a turn).
 *
 * Select then generate, as PAL means it: the model first answers the select task, and the persona
 * it selected (not a gold label, which inference never has) is highlighted in the generate prompt.
 * Models that were not trained on the select task get BM25 retrieval instead, labelled as such;
 * a model trained as the plain fine-tuning baseline (pal.json tasks ["plain"]) answers from its own
 * prompt, with no selection at all.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { bm25Select } from '../core/bm25';
import { usesFact } from '../core/labeller';
import { mulberry32 } from '../core/random';
import { transformers } from './transformers';
import {
  generatePrompt,
  NO_PERSONA,
  isPartnerTurn,
  parseSelection,
  plainPrompt,
  selectionText,
  selectPrompt,
  selectTarget,
  trimHistory,
  type PromptFormat,
  type PromptInput,
} from '../core/prompts';
import { promptFormatFor, readPalInfo, trainedTasks } from './modelInfo';
import type { DecodingSettings, SelectionAndResponse, SelectionMode, SelectProbabilities } from './protocol';

/* eslint-disable @typescript-eslint/no-explicit-any -- transformers.js's tensors and models are loosely typed */
type Tf = any;
type OrtTensor = { data: Float32Array | BigInt64Array; dims: number[]; type: string };

/** The decoding settings (protocol.ts's `DecodingSettings`, what a client may send), and the in-process ones. */
export interface DecodingOptions extends DecodingSettings {
  /** Stop at a newline: the end of the persona's turn in PAL's prompts. */
  readonly stopAtNewline?: boolean;
  readonly signal?: AbortSignal;
  /** Called with each piece of text as it is decoded (greedy and sampling; beam search streams at the end). */
  readonly onText?: (piece: string) => void;
  /** Stop as soon as the text so far settles the answer (greedy and sampling). */
  readonly stopWhen?: (text: string) => boolean;
  /** Beam search answers with the best reply that ended and passes this, where one does (preferSelectedFact's rule). */
  readonly prefer?: (text: string) => boolean;
}

/**
 * The key/value cache of a prompt's first tokens, for prompts that start the same: select then
 * generate run two prompts whose persona and dialogue blocks are one and the same, so that part is
 * computed once. Used only when its tokens are exactly the start of the new prompt's tokens.
 */
export interface PrefixCache {
  readonly ids: readonly number[];
  readonly past: Tf;
}

/** How many tokens `a` and `b` start with, each keeping one of its own (its last logits come from its own step). */
function sharedLength(a: readonly number[], b: readonly number[]): number {
  let k = 0;
  while (k < a.length && k < b.length && a[k] === b[k]) k++;
  return Math.min(k, a.length - 1, b.length - 1);
}

/**
 * The first `k` positions of a key/value cache (batch, heads, positions, head size): the select
 * prompt's own cache, cut down to what the generate prompt shares, costs no extra model step.
 */
function truncatePast(tf: Tf, past: Record<string, OrtTensor>, k: number): Record<string, OrtTensor> {
  const out: Record<string, OrtTensor> = {};
  for (const [name, t] of Object.entries(past)) {
    const [b, h, n, d] = t.dims as [number, number, number, number];
    const data = new (t.data.constructor as Float32ArrayConstructor)(b * h * k * d);
    for (let row = 0; row < b * h; row++) data.set((t.data as Float32Array).subarray(row * n * d, row * n * d + k * d), row * k * d);
    out[name] = new tf.Tensor(t.type, data, [b, h, k, d]);
  }
  return out;
}

export interface LoadedModel {
  readonly folder: string;
  readonly device: 'cpu' | 'cuda';
  /** Why the device is what it is (e.g. a GPU provider that failed to load). */
  readonly deviceNote?: string;
  /** The model was trained by PAL Studio on the select task (its pal.json says so). */
  readonly trainedForSelect: boolean;
  /** The model is a plain fine-tuning baseline (pal.json tasks ["plain"]): no select, its own prompt. */
  readonly plainOnly: boolean;
  /** Tokens of context a prompt and its reply must fit in: what the model was trained with (pal.json), else its positions. */
  readonly maxLength: number;
  /** PAL's text template, or the model's chat template (pal.json says which; a chat model not trained by PAL Studio: chat). */
  readonly promptFormat: PromptFormat;
  readonly eosTokenIds: readonly number[];
  readonly tokenizer: Tf;
  readonly model: Tf;
  readonly tf: Tf;
}

export interface LoadOptions {
  readonly device?: 'auto' | 'cpu' | 'cuda';
  /** Fetch from the Hugging Face hub when the folder is a hub id (off unless the user allows it). */
  readonly allowRemote?: boolean;
}

/** Below this much ONNX weight a model runs its operators on one CPU thread (see sessionOptions). */
const ONE_THREAD_BELOW_BYTES = 32 * 1024 * 1024;

/**
 * ONNX Runtime's session options for a model folder. A small model's operators are too small to
 * split: with ONNX Runtime's default, a thread per core, the threads spent more time meeting than
 * working, and the embedded 2.6M model generated in 27 ms what one thread generates in 18 (2 cores,
 * docs/performance.md). A larger model (the 135M base: first token 150 ms on two threads, 235 on
 * one) keeps the default.
 */
export function sessionOptions(folder: string, device: 'cpu' | 'cuda'): { session_options?: { intraOpNumThreads: number } } {
  if (device !== 'cpu' || !existsSync(folder)) return {};
  const onnx = path.join(folder, 'onnx');
  let bytes = 0;
  try {
    for (const name of readdirSync(onnx)) if (name.startsWith('model')) bytes += statSync(path.join(onnx, name)).size;
  } catch {
    return {};
  }
  return bytes > 0 && bytes < ONE_THREAD_BELOW_BYTES ? { session_options: { intraOpNumThreads: 1 } } : {};
}

export async function loadModel(folder: string, options: LoadOptions = {}): Promise<LoadedModel> {
  const tf: Tf = transformers({ allowRemote: options.allowRemote === true });
  const local = { local_files_only: options.allowRemote !== true };
  // A local folder by its absolute path: transformers.js reads a relative one under its own
  // localModelPath ("/models/"), not the current folder.
  if (options.allowRemote !== true || existsSync(folder)) {
    folder = path.resolve(folder);
    await checkModelFiles(folder);
  }
  const damaged = (file: string) => (err: unknown) => {
    throw new Error(
      `${path.join(folder, file)} could not be read (${String((err as Error)?.message ?? err).split('\n')[0]}): the model folder is damaged. Export it again (a run exports to <run>/model) or choose another model.`,
    );
  };
  const tokenizer = await tf.AutoTokenizer.from_pretrained(folder, local).catch(damaged('tokenizer.json'));
  let device: 'cpu' | 'cuda' = options.device === 'cuda' ? 'cuda' : 'cpu';
  let deviceNote: string | undefined;
  let model: Tf;
  try {
    model = await tf.AutoModelForCausalLM.from_pretrained(folder, { ...local, device, dtype: 'fp32', ...sessionOptions(folder, device) });
  } catch (err) {
    if (device === 'cpu') damaged(path.join('onnx', 'model.onnx'))(err);
    deviceNote = `The CUDA provider of onnxruntime-node did not load (${(err as Error).message.split('\n')[0]}); running on the CPU. Installing onnxruntime-node with ONNXRUNTIME_NODE_INSTALL_CUDA=v12 adds it.`;
    device = 'cpu';
    model = await tf.AutoModelForCausalLM.from_pretrained(folder, { ...local, device, dtype: 'fp32' }).catch(damaged(path.join('onnx', 'model.onnx')));
  }
  const info = await readPalInfo(folder);
  const tasks = trainedTasks(info);
  const eos = model.generation_config?.eos_token_id ?? model.config?.eos_token_id ?? tokenizer.eos_token_id;
  return {
    folder,
    device,
    ...(deviceNote ? { deviceNote } : {}),
    trainedForSelect: tasks.includes('select'),
    plainOnly: tasks.includes('plain') && !tasks.includes('generate'),
    maxLength: Number(info.max_length ?? model.config?.max_position_embeddings ?? model.config?.n_positions ?? 2048),
    promptFormat: promptFormatFor(info, tokenizer),
    eosTokenIds: (Array.isArray(eos) ? eos : eos === undefined || eos === null ? [] : [eos]).map(Number),
    tokenizer,
    model,
    tf,
  };
}

/** A local model folder has what inference reads, or the error says which files are missing and why it matters. */
async function checkModelFiles(folder: string): Promise<void> {
  if (!existsSync(folder))
    throw new Error(
      `${folder}: no such model folder. A model for inference is a folder with onnx/model.onnx, config.json and tokenizer.json, as a run exports to <run>/model.`,
    );
  const missing = ['config.json', 'tokenizer.json', path.join('onnx', 'model.onnx')].filter((f) => !existsSync(path.join(folder, f)));
  if (missing.length) {
    const trainingOnly = existsSync(path.join(folder, 'model.safetensors'));
    throw new Error(
      `${folder} lacks ${missing.join(', ')}.${trainingOnly && missing.includes(path.join('onnx', 'model.onnx')) ? " It holds PyTorch weights (a training checkpoint), not an ONNX export: use the run's exported model folder (<run>/model)." : ' Export the model again (a run exports to <run>/model).'}`,
    );
  }
}

export class GenerationCancelled extends Error {
  constructor() {
    super('The generation was cancelled.');
    this.name = 'GenerationCancelled';
  }
}

/** Sampling is reproducible with a seed. */
const rng = mulberry32;

function logSoftmax(logits: Float32Array, offset: number, size: number, temperature = 1): Float64Array {
  const out = new Float64Array(size);
  let max = -Infinity;
  for (let i = 0; i < size; i++) max = Math.max(max, logits[offset + i]! / temperature);
  let sum = 0;
  for (let i = 0; i < size; i++) sum += Math.exp(logits[offset + i]! / temperature - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < size; i++) out[i] = logits[offset + i]! / temperature - lse;
  return out;
}

/**
 * The ids of the `k` largest values, largest first: one pass with a small sorted list, because
 * sorting a 49,152-token vocabulary for every beam at every step took a third of beam search's
 * time with the 135M model.
 */
export function topIndices(values: Float64Array, k: number): number[] {
  const top: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (top.length === k && v <= values[top[k - 1]!]!) continue;
    let at = top.length === k ? k - 1 : top.length;
    while (at > 0 && values[top[at - 1]!]! < v) at--;
    top.splice(at, 0, i);
    if (top.length > k) top.pop();
  }
  return top;
}

/** Log-probabilities below this cannot matter to top-p (e^-30 of the mass): left out before sorting. */
const NEGLIGIBLE_LOGP = -30;

/** Samples from log-probabilities after top-k and top-p filtering. */
function sample(logp: Float64Array, topK: number, topP: number, random: () => number): number {
  let ids: number[];
  if (topK > 0) ids = topIndices(logp, topK);
  else {
    ids = [];
    for (let i = 0; i < logp.length; i++) if (logp[i]! > NEGLIGIBLE_LOGP) ids.push(i);
    ids.sort((x, y) => logp[y]! - logp[x]!);
  }
  if (topP < 1) {
    let mass = 0;
    const kept: number[] = [];
    for (const id of ids) {
      kept.push(id);
      mass += Math.exp(logp[id]!);
      if (mass >= topP) break;
    }
    ids = kept;
  }
  const weights = ids.map((id) => Math.exp(logp[id]!));
  let r = random() * weights.reduce((s, w) => s + w, 0);
  for (let i = 0; i < ids.length; i++) {
    r -= weights[i]!;
    if (r <= 0) return ids[i]!;
  }
  return ids[ids.length - 1]!;
}

/**
 * The repetition controls, applied in place to one row of logits (`offset`, `size`) given the
 * response's tokens so far. Small models decoding greedily loop ("I have a dog , but I have a dog");
 * these are the usual remedies, off unless asked for.
 */
export function discourageRepeats(
  logits: Float32Array,
  offset: number,
  size: number,
  response: readonly number[],
  options: Pick<DecodingOptions, 'repetitionPenalty' | 'noRepeatNgramSize'>,
  prompt?: PromptNgrams,
): void {
  const penalty = options.repetitionPenalty ?? 1;
  if (penalty !== 1) {
    for (const id of new Set(response)) {
      if (id < 0 || id >= size) continue;
      const v = logits[offset + id]!;
      logits[offset + id] = v > 0 ? v / penalty : v * penalty;
    }
  }
  const n = options.noRepeatNgramSize ?? 0;
  if (n <= 0) return;
  // With the prompt counted, the sequence is the prompt's last n-1 tokens and the response (the
  // n-grams that hold a response token), and the prompt's own n-grams are looked up in its index.
  const seq = prompt && prompt.n === n ? [...prompt.tail, ...response] : response;
  if (seq.length < n - 1) return;
  // The last n-1 tokens, and every earlier place they occur: the token that followed there is banned.
  const start = seq.length - n + 1;
  for (let i = 0; i + n <= seq.length; i++) {
    let same = true;
    for (let j = 0; j < n - 1 && same; j++) same = seq[i + j] === seq[start + j];
    if (same) logits[offset + seq[i + n - 1]!] = -Infinity;
  }
  if (seq !== response)
    for (const id of prompt!.next.get(seq.slice(start).join(',')) ?? []) if (!prompt!.bans || prompt!.bans(id)) logits[offset + id] = -Infinity;
}

/**
 * A prompt's n-grams, for a no-repeat ban that counts the prompt as Hugging Face's generate does
 * for a decoder-only model (its sequence is the prompt and the reply): each run of n-1 tokens to
 * the tokens that follow it in the prompt, and the prompt's last n-1 tokens, which start the
 * n-grams that reach into the reply.
 */
export interface PromptNgrams {
  readonly n: number;
  readonly next: ReadonlyMap<string, readonly number[]>;
  readonly tail: readonly number[];
  /** Which of the followers it bans (absent: all of them). */
  readonly bans?: (id: number) => boolean;
}

export function promptNgrams(promptIds: readonly number[], n: number): PromptNgrams {
  const next = new Map<string, number[]>();
  for (let i = 0; i + n <= promptIds.length; i++) {
    const key = promptIds.slice(i, i + n - 1).join(',');
    const followers = next.get(key);
    if (followers) followers.push(promptIds[i + n - 1]!);
    else next.set(key, [promptIds[i + n - 1]!]);
  }
  return { n, next, tail: promptIds.slice(Math.max(0, promptIds.length - n + 1)) };
}

function argmax(logits: Float32Array, offset: number, size: number): number {
  let best = 0;
  for (let i = 1; i < size; i++) if (logits[offset + i]! > logits[offset + best]!) best = i;
  return best;
}

/** Keeps rows `rows` (in that order) of a [batch, ...] tensor: beam search's cache reordering. */
function selectRows(tf: Tf, t: OrtTensor, rows: readonly number[]): OrtTensor {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const data = new (t.data.constructor as Float32ArrayConstructor)(rows.length * per);
  rows.forEach((r, i) => data.set((t.data as Float32Array).subarray(r * per, (r + 1) * per), i * per));
  return new tf.Tensor(t.type, data, [rows.length, ...t.dims.slice(1)]);
}

function int64(tf: Tf, rows: readonly (readonly number[])[]): Tf {
  const width = rows[0]?.length ?? 0;
  return new tf.Tensor('int64', BigInt64Array.from(rows.flat().map((x) => BigInt(x))), [rows.length, width]);
}

/** One forward pass: logits of the last position per row, and the new cache. */
async function step(
  m: LoadedModel,
  ids: readonly (readonly number[])[],
  totalLength: number,
  past: Tf,
): Promise<{ logits: Float32Array; vocab: number; past: Tf }> {
  const rows = ids.length;
  const mask = Array.from({ length: rows }, () => new Array<number>(totalLength).fill(1));
  const out = await m.model.forward({ input_ids: int64(m.tf, ids), attention_mask: int64(m.tf, mask), past_key_values: past });
  const logits = out.logits as OrtTensor;
  const [, seq, vocab] = logits.dims as [number, number, number];
  const last = new Float32Array(rows * vocab);
  for (let r = 0; r < rows; r++) last.set((logits.data as Float32Array).subarray((r * seq + seq - 1) * vocab, (r * seq + seq) * vocab), r * vocab);
  return { logits: last, vocab, past: m.model.getPastKeyValues(out, past) };
}

// The last prompts' token ids, per tokenizer: select then generate checks that each prompt fits,
// finds the prompts' shared start and runs them, tokenizing the same text up to three times.
const recentEncodings = new WeakMap<object, Map<string, readonly number[]>>();

/** Token ids of a prompt, as training tokenized it (no special tokens added). */
export function encode(m: LoadedModel, text: string): number[] {
  let recent = recentEncodings.get(m.tokenizer as object);
  if (!recent) recentEncodings.set(m.tokenizer as object, (recent = new Map()));
  let ids = recent.get(text);
  if (!ids) {
    ids = Array.from(m.tokenizer.encode(text, { add_special_tokens: false }) as number[]);
    if (recent.size >= 8) recent.delete(recent.keys().next().value!);
    recent.set(text, ids);
  }
  return [...ids];
}

/** The text of `ids`; none (a reply that ended at once, or no tokens allowed) is the empty text, where transformers.js throws. */
export function decode(m: LoadedModel, ids: readonly number[]): string {
  return ids.length === 0 ? '' : (m.tokenizer.decode(ids, { skip_special_tokens: true }) as string);
}

/** How a prompt's key/value cache is shared between prompts that start alike (select then generate). */
export interface PromptCaching {
  /** The cache of the prompt's first tokens, when it has one. */
  readonly prefix?: PrefixCache;
  /** Receives the prompt's key/value cache, before any generated token. */
  readonly onPromptPast?: (past: Record<string, OrtTensor>) => void;
  /** The n-grams a no-repeat ban takes from outside the reply (partnerBan's), for a prompt that holds more than the partner's turns. */
  readonly ban?: PromptNgrams;
}

/** Continues `prompt` and returns the generated text (without the prompt). */
export async function generateText(
  m: LoadedModel,
  prompt: string,
  options: DecodingOptions = {},
  caching: PromptCaching = {},
): Promise<{ text: string; tokens: number[]; alternatives?: BeamHypothesis[] }> {
  const { prefix, onPromptPast } = caching;
  const promptIds = encode(m, prompt);
  if (promptIds.length === 0) throw new Error('The prompt is empty after tokenization.');
  const maxNew = options.maxNewTokens ?? 40;
  const eos = new Set(m.eosTokenIds);
  const cancelled = () => options.signal?.aborted === true;
  const seen = caching.ban ?? promptBan(promptIds, options);
  if ((options.numBeams ?? 1) > 1) return beamSearch(m, promptIds, maxNew, options, seen);

  const random = rng(options.seed ?? 0);
  const out: number[] = [];
  let text = '';
  const cached = prefix !== undefined && prefix.ids.length < promptIds.length && prefix.ids.every((id, i) => promptIds[i] === id);
  let res = cached
    ? await step(m, [promptIds.slice(prefix.ids.length)], promptIds.length, prefix.past)
    : await step(m, [promptIds], promptIds.length, undefined);
  onPromptPast?.(res.past as Record<string, OrtTensor>);
  for (let i = 0; i < maxNew; i++) {
    if (cancelled()) throw new GenerationCancelled();
    discourageRepeats(res.logits, 0, res.vocab, out, options, seen);
    const t = options.temperature ?? 0;
    const next = t > 0 ? sample(logSoftmax(res.logits, 0, res.vocab, t), options.topK ?? 0, options.topP ?? 1, random) : argmax(res.logits, 0, res.vocab);
    if (eos.has(next)) break;
    out.push(next);
    const decoded = decode(m, out);
    const cut = options.stopAtNewline ? decoded.indexOf('\n') : -1;
    const visible = cut >= 0 ? decoded.slice(0, cut) : decoded;
    if (visible.length > text.length && visible.startsWith(text)) options.onText?.(visible.slice(text.length));
    text = visible;
    if (cut >= 0 || options.stopWhen?.(text)) break;
    res = await step(m, [[next]], promptIds.length + out.length, res.past);
  }
  return { text: text.trim(), tokens: out };
}

/**
 * The partner's n-grams for a ban from 'partner': each of the partner's turns (the last turn, and
 * every second one back from it) as its tokens open a message (the chat format) and after a space
 * (a tagged line of the text format, and a reply that begins with a space), no n-gram across two
 * turns; its words mid-turn tokenize alike either way. The persona's own turns are left out: barred
 * from its own words, a model wrote "gasstation" for a "gas station" it had said before.
 */
export function partnerBan(m: LoadedModel, history: readonly string[], options: DecodingOptions): PromptNgrams | undefined {
  const n = options.noRepeatNgramSize ?? 0;
  if (n <= 0 || options.noRepeatNgramFrom !== 'partner') return undefined;
  const ids: number[] = [];
  for (const turn of history.filter((_, i) => isPartnerTurn(history, i))) {
    const text = turn.replace(/\s+/g, ' ').trim();
    ids.push(...encode(m, text), -1, ...encode(m, ` ${text}`), -1);
  }
  // Only a token that starts a word is banned: banning the rest of a copied word mid-word gave
  // words that are none ("custododian" for "custodian"); the copy stops at the next word instead.
  const starts = new Map<number, boolean>();
  const bans = (id: number) => {
    let s = starts.get(id);
    if (s === undefined) starts.set(id, (s = !/^[\p{L}\p{N}]/u.test(decode(m, [id]))));
    return s;
  };
  return { ...promptNgrams(ids, n), tail: [], bans };
}

/** The prompt's n-grams for a ban from 'prompt'. */
function promptBan(promptIds: readonly number[], options: DecodingOptions): PromptNgrams | undefined {
  const n = options.noRepeatNgramSize ?? 0;
  return n > 0 && options.noRepeatNgramFrom === 'prompt' ? promptNgrams(promptIds, n) : undefined;
}

/** Beam search over `numBeams` hypotheses, scored by summed log-probability / length (HF's default length penalty 1). */
async function beamSearch(
  m: LoadedModel,
  promptIds: number[],
  maxNew: number,
  options: DecodingOptions,
  seen: PromptNgrams | undefined,
): Promise<{ text: string; tokens: number[]; alternatives: BeamHypothesis[] }> {
  const width = options.numBeams!;
  const eos = new Set(m.eosTokenIds);
  let beams: { tokens: number[]; score: number }[] = [{ tokens: [], score: 0 }];
  const finished: { tokens: number[]; score: number; ended: boolean }[] = [];
  let enough = false;
  let res = await step(m, [promptIds], promptIds.length, undefined);
  for (let i = 0; i < maxNew && beams.length > 0; i++) {
    if (options.signal?.aborted) throw new GenerationCancelled();
    const candidates: { parent: number; token: number; score: number }[] = [];
    beams.forEach((b, row) => {
      discourageRepeats(res.logits, row * res.vocab, res.vocab, b.tokens, options, seen);
      const logp = logSoftmax(res.logits, row * res.vocab, res.vocab);
      const top = topIndices(logp, 2 * width);
      for (const token of top) candidates.push({ parent: row, token, score: b.score + logp[token]! });
    });
    candidates.sort((x, y) => y.score - x.score);
    const next: { parent: number; token: number; score: number }[] = [];
    for (const c of candidates) {
      const tokens = [...beams[c.parent]!.tokens, c.token];
      const ended = eos.has(c.token) || (options.stopAtNewline === true && decode(m, tokens).includes('\n'));
      if (ended) finished.push({ tokens: beams[c.parent]!.tokens, score: c.score / Math.max(1, tokens.length), ended });
      else next.push(c);
      if (next.length === width) break;
    }
    if (finished.length >= width) {
      enough = true;
      break;
    }
    if (next.length === 0) break;
    const parents = next.map((c) => c.parent);
    const past: Record<string, OrtTensor> = {};
    for (const [name, t] of Object.entries(res.past as Record<string, OrtTensor>)) past[name] = selectRows(m.tf, t, parents);
    beams = next.map((c) => ({ tokens: [...beams[c.parent]!.tokens, c.token], score: c.score }));
    res = await step(
      m,
      beams.map((b) => [b.tokens.at(-1)!]),
      promptIds.length + beams[0]!.tokens.length,
      past,
    );
  }
  // Beams still open are replies cut short: they count only where the length limit cut them (HF's
  // finalize), not once enough replies have ended, where a cut one scored by its mean log-probability
  // could outrank every reply that ended ("i am 28 years old , and i am married to a super").
  if (!enough) for (const b of beams) finished.push({ tokens: b.tokens, score: b.score / Math.max(1, b.tokens.length), ended: false });
  finished.sort((x, y) => y.score - x.score);
  const alternatives = finished.map((h) => ({ text: decode(m, h.tokens).split('\n')[0]!.trim(), score: h.score, ended: h.ended }));
  const preferred = options.prefer ? alternatives.findIndex((h) => h.ended && options.prefer!(h.text)) : -1;
  const pick = Math.max(0, preferred);
  const text = alternatives[pick]?.text ?? '';
  options.onText?.(text);
  return { text, tokens: finished[pick]?.tokens ?? [], alternatives };
}

/** Per tokenizer: the prompt's last line and an answer, to the answer's tokens after that line. */
const answerTokens = new WeakMap<object, Map<string, readonly number[] | null>>();

/**
 * The tokens `answer` adds after the select prompt, or undefined when the prompt and the answer do
 * not tokenize apart. A tokenizer's merges do not reach past the prompt's last line (every
 * pre-tokenizer here splits at a newline), so the tokens depend on that line and the answer alone:
 * worked out once from the whole text, checked against the line alone, and kept. Tokenizing the
 * whole prompt again for each of the answers was a third of select's cost over plain generation.
 */
function answerIds(m: LoadedModel, prompt: string, promptIds: readonly number[], answer: string): number[] | undefined {
  let known = answerTokens.get(m.tokenizer as object);
  if (!known) answerTokens.set(m.tokenizer as object, (known = new Map()));
  const line = prompt.slice(prompt.lastIndexOf('\n') + 1);
  const key = `${line}\u0000${answer}`;
  let ids = known.get(key);
  if (ids === undefined) {
    const whole = encode(m, prompt + answer);
    const fromLine = encode(m, line + answer).slice(encode(m, line).length);
    const apart = whole.length > promptIds.length && promptIds.every((id, i) => whole[i] === id);
    const suffix = whole.slice(promptIds.length);
    ids = apart && suffix.length === fromLine.length && suffix.every((id, i) => fromLine[i] === id) ? suffix : null;
    if (known.size < 256) known.set(key, ids);
  }
  return ids ? [...ids] : undefined;
}

/**
 * The select task as the closed choice it is: the model scores each answer it was taught to give
 * ("k." for each fact, "none") in one batched step over the prompt's cache, instead of decoding
 * one greedily.
 *
 * The rule: a fact is named when the model puts more probability on naming some fact than on
 * "none", and then the likeliest fact. Decoding greedily compares "none" with each fact alone;
 * trained on as many named examples as "none" ones, a model that is unsure which of five facts
 * gives each about a tenth, so "none" won nearly every turn (pal-smollm2-135m named a fact in 27
 * of 500 ConvAI2 turns where the labels name one in 208). Selection accuracy against the
 * always-"none" row is reported beside it, so this rule is judged on the same scale.
 *
 * Undefined when the answers do not tokenize as the prompt followed by their own tokens (then the
 * caller decodes greedily).
 */
export async function chooseSelection(
  m: LoadedModel,
  select: string,
  personas: readonly string[],
  onPromptPast?: (past: Record<string, OrtTensor>) => void,
): Promise<{ selected: number; probabilities: SelectProbabilities } | undefined> {
  const promptIds = encode(m, select);
  // The decisive start of each answer: "none", or "k." (the sentence after it changes nothing).
  const answers = [-1, ...personas.map((_, k) => k)].map((k) => {
    const target = selectTarget(personas, k, m.promptFormat);
    return k < 0 ? target : /^\s*\d+\./.exec(target)![0];
  });
  const suffixes: number[][] = [];
  for (const answer of answers) {
    const ids = answerIds(m, select, promptIds, answer);
    if (!ids) return undefined;
    suffixes.push(ids);
  }
  const first = await step(m, [promptIds], promptIds.length, undefined);
  onPromptPast?.(first.past as Record<string, OrtTensor>);
  const firstLogp = logSoftmax(first.logits, 0, first.vocab);
  // Every answer's tokens after its first, teacher-forced in one batch over copies of the prompt's
  // cache (right-padded: a causal model's real positions never see the padding after them).
  const width = Math.max(...suffixes.map((s) => s.length));
  const scores = suffixes.map((s) => firstLogp[s[0]!]!);
  if (width > 1) {
    const rows = suffixes.map((s) => [...s, ...new Array<number>(width - s.length).fill(s.at(-1)!)].slice(0, width - 1));
    const past: Record<string, OrtTensor> = {};
    for (const [name, t] of Object.entries(first.past as Record<string, OrtTensor>))
      past[name] = selectRows(
        m.tf,
        t,
        rows.map(() => 0),
      );
    const total = promptIds.length + width - 1;
    const mask = rows.map(() => new Array<number>(total).fill(1));
    const out = await m.model.forward({ input_ids: int64(m.tf, rows), attention_mask: int64(m.tf, mask), past_key_values: past });
    const logits = out.logits as OrtTensor;
    const [, seq, vocab] = logits.dims as [number, number, number];
    suffixes.forEach((s, r) => {
      for (let j = 1; j < s.length; j++) scores[r]! += logSoftmax(logits.data as Float32Array, (r * seq + j - 1) * vocab, vocab)[s[j]!]!;
    });
  }
  const top = Math.max(...scores);
  const weights = scores.map((x) => Math.exp(x - top));
  const sum = weights.reduce((a, b) => a + b, 0);
  const [none, ...facts] = weights.map((w) => w / sum) as [number, ...number[]];
  const named = facts.reduce((a, b) => a + b, 0);
  const selected = named > none ? facts.indexOf(Math.max(...facts)) : -1;
  return { selected, probabilities: { none, facts } };
}

/**
 * A selection mode, or the sentence to highlight given outright (-1: none): the evaluation's
 * trivial rows, "the gold persona highlighted" and "none highlighted", which skip the select task.
 */
export type Selection = SelectionMode | { readonly highlight: number };

/** The selection and the reply (protocol.ts's `SelectionAndResponse`), with the prompt that gave the reply. */
export interface SelectThenGenerateResult extends SelectionAndResponse {
  /** The generate prompt that was used: it highlights the selected persona. */
  readonly generatePrompt: string;
  /** Beam search's replies, best score first: the response is the first, or with preferSelectedFact the first that ended and uses the fact. */
  readonly alternatives?: readonly BeamHypothesis[];
}

/** A beam search reply: its text, its score (summed log-probability / length), and whether the model ended it (false: the length limit cut it). */
export interface BeamHypothesis {
  readonly text: string;
  readonly score: number;
  readonly ended: boolean;
}

/**
 * How many more tokens the generate prompt takes than the select prompt of the same turns, at most
 * (the longest fact highlighted): the two differ only after their shared start, so their ends alone
 * are tokenized. Off by a token at most, where a merge crosses the place they part.
 */
function generateExtra(m: LoadedModel, x: PromptInput): number {
  const longest = x.personas.reduce((best, p, i) => (best < 0 || p.length > x.personas[best]!.length ? i : best), -1);
  const select = selectPrompt(x, m.promptFormat);
  const generate = generatePrompt(x, longest, m.promptFormat);
  let k = 0;
  while (k < select.length && k < generate.length && select[k] === generate[k]) k++;
  const start = Math.max(0, select.lastIndexOf('\n', k - 1) + 1);
  return encode(m, generate.slice(start)).length - encode(m, select.slice(start)).length;
}

export async function selectThenGenerate(
  m: LoadedModel,
  input: PromptInput,
  options: DecodingOptions & { readonly selection?: Selection } = {},
): Promise<SelectThenGenerateResult> {
  const how = options.selection ?? 'auto';
  const given = typeof how === 'object' ? how.highlight : undefined;
  const useModel = given === undefined && (how === 'model' || (how === 'auto' && m.trainedForSelect));
  const fitsWith = (prompt: (x: PromptInput) => string, newTokens: number) => (x: PromptInput) => encode(m, prompt(x)).length + newTokens <= m.maxLength;
  const f = m.promptFormat;
  const maxNew = options.maxNewTokens ?? 40;
  let selected: number;
  let selectAnswer: string | undefined;
  let selectPast: { ids: readonly number[]; past: Record<string, OrtTensor> } | undefined;
  let selectProbabilities: SelectProbabilities | undefined;
  let fitted = input;
  if (useModel) {
    fitted = trimHistory(input, (x) => {
      const select = encode(m, selectPrompt(x, f)).length;
      return select + 8 <= m.maxLength && select + generateExtra(m, x) + maxNew <= m.maxLength;
    });
    // The persona and dialogue blocks open both prompts: their keys and values are computed once.
    // Both prompts keep the same turns (fitted above for the longer of the two budgets), so the
    // generate prompt shares all but its last lines; its own fit below trims more only when the
    // estimate was short by a token.
    const select = selectPrompt(fitted, f);
    // On the CPU the model never frees a cache it was given, so the generate prompt may reuse it.
    const keep = m.device === 'cpu' && (options.numBeams ?? 1) <= 1;
    const onPromptPast = (past: Record<string, OrtTensor>) => {
      if (keep) selectPast = { ids: encode(m, select), past };
    };
    const choice = await chooseSelection(m, select, fitted.personas, onPromptPast);
    if (choice) {
      selected = choice.selected;
      selectProbabilities = choice.probabilities;
      selectAnswer = selectionText(input.personas, selected);
    } else {
      // Answers that do not tokenize apart (see chooseSelection): decoded greedily, stopping once
      // "k." or "none" is out, since the number decides (parseSelection).
      const { text } = await generateText(
        m,
        select,
        { maxNewTokens: 48, stopAtNewline: true, stopWhen: selectionSettled, ...(options.signal ? { signal: options.signal } : {}) },
        { onPromptPast },
      );
      selectAnswer = text;
      selected = parseSelection(text, input.personas);
    }
  } else if (given !== undefined) {
    selected = given >= 0 && given < input.personas.length ? given : -1;
  } else {
    selected = bm25Select(input.personas, input.history.at(-1) ?? '').index;
  }
  const prompt = generatePrompt(
    trimHistory(
      fitted,
      fitsWith((x) => generatePrompt(x, selected, f), maxNew),
    ),
    selected,
    f,
  );
  let prefix: PrefixCache | undefined;
  if (selectPast) {
    const shared = sharedLength(selectPast.ids, encode(m, prompt));
    if (shared >= 16) prefix = { ids: selectPast.ids.slice(0, shared), past: truncatePast(m.tf, selectPast.past, shared) };
  }
  const ban = partnerBan(m, fitted.history, options);
  const fact = selected >= 0 ? input.personas[selected] : undefined;
  const prefer = options.preferSelectedFact && fact !== undefined ? (text: string) => usesFact(fact, text) : undefined;
  const { text, alternatives } = await generateText(
    m,
    prompt,
    { stopAtNewline: true, ...options, ...(prefer ? { prefer } : {}) },
    { ...(prefix ? { prefix } : {}), ...(ban ? { ban } : {}) },
  );
  return {
    selected,
    selectedText: selectionText(input.personas, selected),
    selectionSource: useModel ? 'model' : given !== undefined ? 'given' : 'retrieval',
    ...(selectAnswer !== undefined ? { selectAnswer } : {}),
    ...(selectProbabilities ? { selectProbabilities } : {}),
    generatePrompt: prompt,
    response: text,
    ...(alternatives ? { alternatives } : {}),
  };
}

/** A select answer is settled once it reads "k." (or "k)") or "none". */
export function selectionSettled(text: string): boolean {
  return /^\s*(\d+\s*[.)]|none\b)/i.test(text) || text.trim().toLowerCase() === NO_PERSONA;
}

/**
 * How a model answers: select then generate for PAL models (or BM25 for models without the select
 * task), and the plain prompt for a plain fine-tuning baseline, which selects nothing.
 */
export async function respond(
  m: LoadedModel,
  input: PromptInput,
  options: DecodingOptions & { readonly selection?: Selection } = {},
): Promise<SelectThenGenerateResult> {
  if (!m.plainOnly || (options.selection !== undefined && options.selection !== 'auto')) return selectThenGenerate(m, input, options);
  const f = m.promptFormat;
  const fitted = trimHistory(input, (x) => encode(m, plainPrompt(x, f)).length + (options.maxNewTokens ?? 40) <= m.maxLength);
  const prompt = plainPrompt(fitted, f);
  const ban = partnerBan(m, fitted.history, options);
  const { text } = await generateText(m, prompt, { stopAtNewline: true, ...options }, ban ? { ban } : {});
  return { selected: -1, selectedText: NO_PERSONA, selectionSource: 'none', generatePrompt: prompt, response: text };
}
