/**
 * A PAL alignment run, end to end, from a `*.palrun.yaml`:
 *
 *   prepare   personas, dialogue sets and pairs read and checked; stage-1 mixture built and
 *             tokenized (TypeScript owns text)
 *   stage1    the trainer's SFT job on the mixture
 *   generate  the stage-1 model answers history-only prompts: persona-blind rejections
 *   stage2    gold vs rejection pairs (+ the writers' annotated pairs) -> the trainer's DPO job
 *             against the stage-1 model
 *   export    ONNX for inference, with the tokenizer and pal.json (prompt version, tasks)
 *   evaluate  select then generate on the held-out examples (valid/test splits), by the base
 *             model (before: BM25 selection, labelled, unless its pal.json says it was trained
 *             on select) and the aligned one (after: its own selection); pal eval's metrics and
 *             report, before vs after, in <run>/eval
 *
 * `method: finetune` runs the paper's baseline instead: plain fine-tuning (persona + history ->
 * response) with stage 1's settings, export, and the same evaluation; no select task, no stage 2.
 *
 * The run folder (`<output>/<name>/`) keeps each stage's output and a state.json of the stages
 * done, so a cancelled or crashed run resumes where it stopped (the trainer resumes mid-stage from
 * its own checkpoints).
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseDialogues } from '../core/formats/dialogues';
import { allProblems, records } from '../core/formats/jsonl';
import { parsePairs } from '../core/formats/pairs';
import { parsePersona } from '../core/formats/persona';
import { formatProblem, hasErrors } from '../core/formats/problems';
import { parseRunConfig } from '../core/formats/runConfig';
import type { Persona, PreferencePair, RunConfig } from '../core/formats/types';
import {
  annotatedPairs,
  finetuneItems,
  rejectionPrompts,
  selectCounts,
  resolveExample,
  sampleExamples,
  stage1Items,
  stage2Candidates,
  stage2Pairs,
  type Rejection,
  type ResolvedExample,
  type TextPair,
} from '../core/mixture';
import { trimHistory, type PromptFormat } from '../core/prompts';
import { parseRunState, RUN_STATE_FILE, type RunStage } from '../core/runFolder';
import { palInfo, promptFormatFor, readPalInfo, trainedTasks, writePalInfo } from './modelInfo';
import { ensureFolder, readTextFile, writeFileSafely } from './data';
import { runEvaluation, writeReports } from './eval';
import { GenerationCancelled, loadModel, respond, type DecodingOptions, type SelectThenGenerateResult } from './inference';
import { fetchModel, isFetched, knownModelNamed, resolveModelSpec } from './baseModels';
import { cacheRoot, embeddedModelDir } from './paths';
import { pythonEnvironment } from './python';
import { transformers } from './transformers';
import { SELECTION_MODES } from './protocol';
import { runTrainerJob, type DpoJob, type GenerateJob, type GeneratedRow, type SftJob, type TrainerEvent } from './trainer';

export interface RunProgress {
  readonly stage: RunStage;
  readonly message: string;
  readonly step?: number;
  readonly total?: number;
  readonly etaSeconds?: number;
  readonly metrics?: Readonly<Record<string, number>>;
}

export interface RunOptions {
  readonly python: string;
  /** A local NLI model folder for C.score in the evaluation (none: C.score is reported as not computed). */
  readonly nli?: string;
  readonly onProgress?: (p: RunProgress) => void;
  readonly onLog?: (line: string) => void;
  readonly signal?: AbortSignal;
  /**
   * The folders a run may read from and write to (the workspace): every path the run config names
   * must lie inside one of them, or be the embedded default model. Absent: no limit (the user
   * allowed it). A run config from someone else's repository then cannot make the trainer read
   * ~/.ssh or write over files elsewhere.
   */
  readonly allowedRoots?: readonly string[];
}

export interface RunResult {
  readonly outcome: 'done' | 'cancelled';
  readonly runDir: string;
  /** The exported model folder (ONNX + tokenizer), when done. */
  readonly model?: string;
  /** The evaluation report (report.json; report.html beside it), when there were held-out examples. */
  readonly report?: string;
  readonly stages: readonly RunStage[];
}

/** state.json as the run writes it (src/core/runFolder.ts reads it back). */
interface WrittenRunState {
  done: RunStage[];
  config: string;
  startedAt: string;
}

/** Everything a run reads, checked: problems in any file stop the run before training starts. */
export interface Prepared {
  readonly config: RunConfig;
  readonly baseDir: string;
  /** The run config's warnings (unknown fields and the like), formatted with file and line. */
  readonly warnings: readonly string[];
  readonly personas: ReadonlyMap<string, Persona>;
  readonly train: readonly ResolvedExample[];
  readonly heldOut: readonly ResolvedExample[];
  readonly pairs: readonly PreferencePair[];
}

async function listFiles(entries: readonly string[], baseDir: string, suffix: RegExp, confine?: (file: string) => Promise<void>): Promise<string[]> {
  const out: string[] = [];
  for (const entry of entries) {
    const p = path.resolve(baseDir, entry);
    const stat = await fs.stat(p).catch(() => undefined);
    if (!stat) throw new Error(`${p}: no such file or folder (named in the run config)`);
    if (stat.isDirectory()) {
      for (const f of (await fs.readdir(p)).sort()) if (suffix.test(f)) out.push(path.join(p, f));
    } else out.push(p);
  }
  if (confine) for (const f of out) await confine(f);
  return out;
}

/** A run config, read and checked: its problems are one error naming the file. */
async function loadRunConfig(configFile: string): Promise<{ config: RunConfig; baseDir: string; warnings: string[] }> {
  const text = await readTextFile(configFile);
  const doc = parseRunConfig(text, configFile);
  if (!doc.config || hasErrors(doc.problems)) throw new Error(`${configFile} has problems:\n${doc.problems.map(formatProblem).join('\n')}`);
  return {
    config: doc.config,
    baseDir: path.dirname(path.resolve(configFile)),
    warnings: doc.problems.filter((p) => p.severity === 'warning').map(formatProblem),
  };
}

/**
 * Reads and checks everything a run trains on. With `allowedRoots`, every path is confined to them
 * before anything is opened (a file outside, read and reported as parse errors, would leak it).
 */
export async function prepareRun(configFile: string, allowedRoots?: readonly string[]): Promise<Prepared> {
  const { config, baseDir, warnings } = await loadRunConfig(configFile);
  if (allowedRoots) await checkRunPaths(configFile, config, baseDir, allowedRoots);
  const confine = fileConfinement(configFile, allowedRoots);
  const confined = (key: string) => (confine ? (f: string) => confine(f, key) : undefined);
  const problems: string[] = [];

  const personas = new Map<string, Persona>();
  for (const f of await listFiles(config.data.personas, baseDir, /\.persona\.(ya?ml|json)$/i, confined('data.personas'))) {
    const p = parsePersona(await readTextFile(f), f);
    problems.push(...p.problems.filter((x) => x.severity === 'error').map(formatProblem));
    if (p.persona) personas.set(p.persona.id, p.persona);
  }
  const train: ResolvedExample[] = [];
  const heldOut: ResolvedExample[] = [];
  for (const f of await listFiles(config.data.dialogues, baseDir, /\.dialogues\.jsonl$/i, confined('data.dialogues'))) {
    const d = parseDialogues(await readTextFile(f), f);
    problems.push(
      ...allProblems(d)
        .filter((x) => x.severity === 'error')
        .map(formatProblem),
    );
    for (const { line, value } of records(d)) {
      try {
        const ex = resolveExample(value, `${path.basename(f)}:${line}`, personas);
        (ex.split === 'train' ? train : heldOut).push(ex);
      } catch (err) {
        problems.push(`${f}:${line}:1: error: ${(err as Error).message}`);
      }
    }
  }
  const pairs: PreferencePair[] = [];
  for (const f of await listFiles(config.data.pairs, baseDir, /\.pairs\.jsonl$/i, confined('data.pairs'))) {
    const d = parsePairs(await readTextFile(f), f);
    problems.push(
      ...allProblems(d)
        .filter((x) => x.severity === 'error')
        .map(formatProblem),
    );
    pairs.push(...records(d).map((r) => r.value));
  }
  // A run trains on what the writer sees: a line the tools cannot read is an error, not a skip.
  if (problems.length) throw new Error(`The run's data has problems (fix them, or run "pal validate"):\n${problems.join('\n')}`);
  await checkModelFolder(
    resolveModelSpec(baseDir, config.model.base),
    configFile,
    config.model.tokenizer ? resolveModelSpec(baseDir, config.model.tokenizer) : undefined,
  );
  if (train.length === 0) throw new Error(`${configFile}: no training examples (split "train") in ${config.data.dialogues.join(', ')}`);
  return { config, baseDir, warnings, personas, train, heldOut, pairs };
}

/**
 * The base model must be a folder the trainer can start from (config.json and safetensors weights)
 * with a tokenizer: said up front, in the run config's terms, before anything is written.
 */
async function checkModelFolder(base: string, configFile: string, tokenizer?: string): Promise<void> {
  const has = (f: string) =>
    fs.stat(f).then(
      () => true,
      () => false,
    );
  const where = `(model.base in ${path.basename(configFile)})`;
  if (!(await has(base))) {
    throw new Error(
      `The base model ${base} does not exist ${where}. Point model.base at a model folder (config.json, model.safetensors, tokenizer.json), or write pal-default for PAL Studio's embedded default model.`,
    );
  }
  const missing = [];
  if (!(await has(path.join(base, 'config.json')))) missing.push('config.json');
  if (!(await has(path.join(base, 'model.safetensors'))) && !(await has(path.join(base, 'model.safetensors.index.json')))) missing.push('model.safetensors');
  if (!(await has(path.join(tokenizer ?? base, 'tokenizer.json'))))
    missing.push(tokenizer ? `${tokenizer}/tokenizer.json (model.tokenizer)` : 'tokenizer.json');
  if (missing.length)
    throw new Error(`The base model folder ${base} ${where} lacks ${missing.join(', ')}: the trainer needs Hugging Face weights and the engine the tokenizer.`);
  const readJson = async (file: string, what: string): Promise<Record<string, unknown>> => {
    const text = await fs.readFile(file, 'utf8');
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
    } catch (err) {
      throw new Error(`${file} ${where} is not valid JSON (${(err as Error).message}): the ${what} is damaged; copy or export the model folder again.`, {
        cause: err,
      });
    }
    throw new Error(`${file} ${where} is not a JSON object: the ${what} is damaged; copy or export the model folder again.`);
  };
  const config = await readJson(path.join(base, 'config.json'), "model's configuration");
  const tokenizerFile = path.join(tokenizer ?? base, 'tokenizer.json');
  const size = tokenizerSize(await readJson(tokenizerFile, 'tokenizer'));
  // A tokenizer with more ids than the model has embeddings makes the trainer fail deep in torch
  // (an index error) on the first rare token: say it here, in the run config's terms.
  if (typeof config.vocab_size === 'number' && size > config.vocab_size) {
    throw new Error(
      `${tokenizerFile} has ${size} token ids but the model in ${base} embeds only ${config.vocab_size} (vocab_size in config.json) ${where}: they do not belong together. Use the tokenizer the model was trained with${tokenizer ? ' (model.tokenizer)' : ''}.`,
    );
  }
}

/** How many token ids a tokenizer.json can produce: its vocabulary's and added tokens' largest id + 1. */
export function tokenizerSize(tokenizer: Record<string, unknown>): number {
  let max = -1;
  const vocab = (tokenizer.model as { vocab?: unknown } | undefined)?.vocab;
  if (Array.isArray(vocab))
    max = vocab.length - 1; // Unigram: [piece, score] pairs, ids by position
  else if (typeof vocab === 'object' && vocab !== null) for (const id of Object.values(vocab)) if (typeof id === 'number' && id > max) max = id;
  for (const t of (tokenizer.added_tokens as { id?: unknown }[] | undefined) ?? []) if (typeof t.id === 'number' && t.id > max) max = t.id;
  return max + 1;
}

/** The tokenizer of the base model (or the one the config names), through transformers.js. */
async function loadTokenizer(
  folder: string,
  modelFolder: string,
): Promise<{ encode(text: string): number[]; decode(ids: number[]): string; eos: number; pad: number; format: PromptFormat }> {
  const tf = transformers();
  const tok = await tf.AutoTokenizer.from_pretrained(folder, { local_files_only: true });
  const cfg = JSON.parse(await fs.readFile(path.join(folder, 'config.json'), 'utf8').catch(() => '{}')) as { eos_token_id?: number; pad_token_id?: number };
  const eos = cfg.eos_token_id ?? (tok as unknown as { eos_token_id?: number }).eos_token_id;
  if (eos === undefined) throw new Error(`${folder}: neither config.json nor the tokenizer names an end-of-sequence token`);
  return {
    encode: (t) => Array.from(tok.encode(t, { add_special_tokens: false }) as number[]),
    decode: (ids) => tok.decode(ids, { skip_special_tokens: true }) as string,
    eos,
    pad: cfg.pad_token_id ?? 0,
    // The base's own format: a chat model is trained in its chat template, a model PAL Studio
    // trained goes on in the format its pal.json records.
    format: promptFormatFor(await readPalInfo(modelFolder), tok),
  };
}

/**
 * Every path a run config names, resolved (symbolic links followed, so a link cannot lead out)
 * and checked against the allowed roots; the embedded default model may always be read.
 */
/** A path's real location: its longest existing ancestor's real path, plus the rest (an output folder may not exist yet). */
async function realLocation(p: string): Promise<string> {
  const rest: string[] = [];
  let at = path.resolve(p);
  for (;;) {
    const r = await fs.realpath(at).catch(() => undefined);
    if (r) return path.join(r, ...rest.reverse());
    const parent = path.dirname(at);
    if (parent === at) return path.resolve(p);
    rest.push(path.basename(at));
    at = parent;
  }
}

const isInside = (p: string, root: string) => p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);

function outsideError(configFile: string, key: string, where: string, allowed: readonly string[]): Error {
  return new Error(
    `${configFile}: ${key} points outside the workspace (${where}). A run reads and writes only inside the workspace (${allowed.join(', ')}) unless you allow it: the setting palStudio.runs.allowOutsideWorkspace, or pal train --allow-outside.`,
  );
}

export async function checkRunPaths(configFile: string, config: RunConfig, baseDir: string, roots: readonly string[]): Promise<void> {
  // Each root once (pal train allows the current folder and the config's, often the same one).
  const allowed = [...new Set(await Promise.all(roots.map(realLocation)))];
  // PAL Studio's own models may always be read: the embedded one, and those fetched by name into the cache.
  const ownModels = await Promise.all([embeddedModelDir(), path.join(cacheRoot(), 'models')].map(realLocation));
  const named: [string, string, boolean][] = [
    ['model.base', resolveModelSpec(baseDir, config.model.base), true],
    ...(config.model.tokenizer ? [['model.tokenizer', resolveModelSpec(baseDir, config.model.tokenizer), true] as [string, string, boolean]] : []),
    ...(['dialogues', 'pairs', 'personas'] as const).flatMap((k) =>
      config.data[k].map((e): [string, string, boolean] => [`data.${k}`, path.resolve(baseDir, e), false]),
    ),
    ['output', path.resolve(baseDir, config.output, config.name), false],
  ];
  for (const [key, p, model] of named) {
    const r = await realLocation(p);
    if (allowed.some((root) => isInside(r, root)) || (model && ownModels.some((m) => isInside(r, m)))) continue;
    throw outsideError(configFile, key, r, allowed);
  }
}

/**
 * A check for each data file a run is about to read (a file in a data folder may itself be a link
 * out of the workspace): it throws before the file is opened. Undefined when runs are not confined.
 */
function fileConfinement(configFile: string, roots: readonly string[] | undefined): ((file: string, key: string) => Promise<void>) | undefined {
  if (!roots) return undefined;
  const allowed = Promise.all(roots.map(realLocation)).then((r) => [...new Set(r)]);
  return async (file, key) => {
    const r = await realLocation(file);
    const inside = await allowed;
    if (!inside.some((root) => isInside(r, root))) throw outsideError(configFile, `${key} (${file})`, r, inside);
  };
}

/** A run folder's state.json, or a new one; an unreadable one is an error that says what to do. */
async function readRunState(statePath: string, configFile: string): Promise<WrittenRunState> {
  const text = await fs.readFile(statePath, 'utf8').catch(() => null);
  if (text === null) return { done: [], config: path.resolve(configFile), startedAt: new Date().toISOString() };
  const state = parseRunState(text, statePath);
  return { done: [...state.done], config: state.config ?? path.resolve(configFile), startedAt: state.startedAt ?? new Date().toISOString() };
}

async function writeJsonl(file: string, rows: readonly unknown[]): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  await fs.writeFile(tmp, rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
  await fs.rename(tmp, file);
}

/** Where a job reads and writes, and the tokenizer's ids it needs. */
export interface JobPlace {
  readonly model: string;
  readonly data: string;
  readonly out: string;
  readonly pad_token_id: number;
  readonly eos_token_id: number;
}

/** A stage's optimisation settings, from the run config's stage block: each of its training keys, by the same name. */
function optimisation(config: RunConfig, stage: 'stage1' | 'stage2') {
  const s = config[stage];
  return {
    epochs: s.epochs,
    lr: s.lr,
    warmup_steps: s.warmup_steps,
    schedule: s.schedule,
    grad_clip: s.grad_clip,
    weight_decay: s.weight_decay,
    batch_size: s.batch_size,
    grad_accum: s.grad_accum,
    max_length: s.max_length,
    lora: s.lora,
    seed: config.seed,
    device: config.device,
    precision: config.precision,
  };
}

/** Stage 1's job (and the plain fine-tuning baseline's). */
export function sftJob(config: RunConfig, place: JobPlace): SftJob {
  return { stage: 'sft', ...place, ...optimisation(config, 'stage1') };
}

/** Stage 2's job: DPO against the stage-1 model (`place.model`). */
export function dpoJob(config: RunConfig, place: JobPlace): DpoJob {
  return {
    stage: 'dpo',
    ...place,
    ...optimisation(config, 'stage2'),
    beta: config.stage2.beta,
    loss: config.stage2.loss,
    label_smoothing: config.stage2.label_smoothing,
  };
}

/** The persona-blind samples stage 2 rejects: the stage-1 model on history-only prompts. */
export function generateJob(config: RunConfig, place: JobPlace): GenerateJob {
  return {
    stage: 'generate',
    ...place,
    batch_size: config.stage2.batch_size,
    max_length: config.stage2.max_length,
    seed: config.seed,
    device: config.device,
    precision: config.precision,
    decoding: config.stage2.rejected,
  };
}

export async function runAlignment(configFile: string, options: RunOptions): Promise<RunResult> {
  options.onProgress?.({ stage: 'prepare', message: `Reading ${configFile}` });
  await fetchNamedModels(configFile, options);
  // Paths are confined before any data file is opened (prepareRun checks them first).
  const prep = await prepareRun(configFile, options.allowedRoots);
  const { config, baseDir } = prep;
  for (const warning of prep.warnings) options.onProgress?.({ stage: 'prepare', message: warning });
  const runDir = path.resolve(baseDir, config.output, config.name);
  await ensureFolder(runDir, `the run folder (output: ${config.output}, name: ${config.name})`);
  // One process per run folder: a second VS Code window (its own engine) or a pal train on the
  // same run would race the first for the same checkpoints.
  const release = await acquireRunLock(runDir);
  try {
    return await runLocked(configFile, options, prep, runDir);
  } finally {
    await release();
  }
}

/**
 * A base the run config names (smollm2-135m, pal-smollm2-135m) is fetched into the cache first,
 * with progress, as a package manager would: the config then trains wherever it is copied.
 */
async function fetchNamedModels(configFile: string, options: RunOptions): Promise<void> {
  const { config, baseDir } = await loadRunConfig(configFile);
  for (const spec of [config.model.base, config.model.tokenizer]) {
    const name = spec ? knownModelNamed(baseDir, spec) : undefined;
    if (!name || isFetched(name)) continue;
    await fetchModel(name, {
      python: options.python,
      onProgress: (message) => options.onProgress?.({ stage: 'prepare', message }),
      ...(options.onLog ? { onLog: options.onLog } : {}),
    });
  }
}

/**
 * Takes `<runDir>/run.lock` for this process, or says who holds it. A lock left by a process that
 * is gone (killed, crashed) is taken over; one from another machine (a shared folder) is not
 * judged from here, so the message says how to clear it.
 */
export async function acquireRunLock(runDir: string): Promise<() => Promise<void>> {
  const file = path.join(runDir, 'run.lock');
  const mine = { pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.writeFile(file, `${JSON.stringify(mine)}\n`, { flag: 'wx' });
      return () => fs.rm(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    const held = parseLock(text);
    if (held && typeof held.pid === 'number' && held.host !== mine.host) {
      throw new Error(
        `${runDir} is being run on ${String(held.host)} (pid ${held.pid}, since ${String(held.startedAt)}). If that run is over, delete ${file}.`,
      );
    }
    if (held && typeof held.pid === 'number' && processAlive(held.pid)) {
      throw new Error(
        `${runDir} is already being run by another PAL Studio process (pid ${held.pid}, since ${String(held.startedAt)}): another VS Code window or a pal train. Stop it there or wait for it to finish.`,
      );
    }
    await fs.rm(file, { force: true }); // stale: its process is gone
  }
  throw new Error(`${file}: could not take the run's lock (it keeps changing); is another process starting this run?`);
}

/** A lock file's holder; null when it is not readable (half written by a process killed while writing it). */
function parseLock(text: string): { pid?: unknown; host?: unknown; startedAt?: unknown } | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as { pid?: unknown }) : null;
  } catch {
    return null;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, someone else's
  }
}

async function runLocked(configFile: string, options: RunOptions, prep: Prepared, runDir: string): Promise<RunResult> {
  const progress = (p: RunProgress) => options.onProgress?.(p);
  const { config, baseDir } = prep;
  const statePath = path.join(runDir, RUN_STATE_FILE);
  const state = await readRunState(statePath, configFile);
  const markDone = async (stage: RunStage) => {
    if (!state.done.includes(stage)) state.done.push(stage);
    // Temp file + rename: a crash while writing leaves the previous state, never half of one.
    await writeFileSafely(statePath, `${JSON.stringify(state, null, 2)}\n`, true);
  };
  const base = resolveModelSpec(baseDir, config.model.base);
  const tokenizerDir = config.model.tokenizer ? resolveModelSpec(baseDir, config.model.tokenizer) : base;
  const tok = await loadTokenizer(tokenizerDir, base);
  const format = tok.format;
  const common = { pad_token_id: tok.pad, eos_token_id: tok.eos };

  const totals = new Map<string, number>();
  const train = async (stage: 'stage1' | 'stage2', job: SftJob | DpoJob): Promise<'done' | 'cancelled'> => {
    const started = Date.now();
    let firstStep: number | undefined;
    const run = await runTrainerJob(options.python, job, {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onLog ? { onLog: options.onLog } : {}),
      onEvent: (e: TrainerEvent) => {
        if (e.event === 'start' && typeof e.total_steps === 'number') totals.set(stage, e.total_steps);
        if (e.event !== 'step' || typeof e.step !== 'number') return;
        const total = totals.get(stage);
        const metrics = Object.fromEntries(Object.entries(e).filter(([, v]) => typeof v === 'number')) as Record<string, number>;
        // ETA from this process's own pace: a resumed job starts counting at its checkpoint.
        firstStep ??= e.step - 1;
        const done = e.step - firstStep;
        const eta = total ? ((Date.now() - started) / 1000 / done) * (total - e.step) : undefined;
        progress({
          stage,
          message: `step ${e.step}${total ? ` of ${total}` : ''}`,
          step: e.step,
          ...(total ? { total } : {}),
          ...(eta !== undefined ? { etaSeconds: eta } : {}),
          metrics,
        });
      },
    });
    return run.outcome;
  };

  // prepare: the stage-1 mixture, tokenized
  const stage1Data = path.join(runDir, 'stage1.tokens.jsonl');
  const finetune = config.method === 'finetune';
  // Examples whose prompt would not fit max_length lose their oldest turns (never the personas).
  // stage1.select_none_max: how many select items each example gives (selectCounts; 1 without it).
  const selects = finetune ? new Map<string, number>() : selectCounts(prep.train, config.stage1.select_none_max, config.seed);
  if (!state.done.includes('prepare')) {
    const encodeItems = (ex: ResolvedExample) =>
      (finetune
        ? finetuneItems([ex], format)
        : stage1Items([ex], format).flatMap((it) => (it.kind === 'select' ? new Array<typeof it>(selects.get(ex.id) ?? 1).fill(it) : [it]))
      ).map((it) => ({ kind: it.kind, id: it.exampleId, prompt: tok.encode(it.prompt), target: [...tok.encode(it.target), tok.eos] }));
    const fits = (r: { prompt: number[]; target: number[] }) => r.prompt.length + r.target.length <= config.stage1.max_length;
    const rows: ReturnType<typeof encodeItems> = [];
    // Even with only the partner's last turn left, the personas and the response must fit: else the
    // trainer would have to cut the persona block, which is what PAL learns from.
    const tooLong: ResolvedExample[] = [];
    for (const ex of prep.train) {
      const fittedRows = fitted(ex, encodeItems, fits);
      if (!fittedRows.every(fits)) tooLong.push(ex);
      rows.push(...fittedRows);
    }
    if (tooLong.length) {
      throw new Error(
        `${tooLong.length} training example${tooLong.length === 1 ? ' does' : 's do'} not fit stage1.max_length (${config.stage1.max_length} tokens) even with only the last turn of the dialogue: the persona facts and the response are too long. Shorten the facts (or the response), or raise stage1.max_length in ${path.basename(configFile)}:\n` +
          tooLong
            .slice(0, 10)
            .map((ex) => `${ex.source ?? ex.id}: ${ex.personas.length} facts, ${ex.personas.join(' ').split(/\s+/).length} words`)
            .join('\n') +
          (tooLong.length > 10 ? `\n… and ${tooLong.length - 10} more` : ''),
      );
    }
    await writeJsonl(stage1Data, rows);
    await markDone('prepare');
  }
  progress({
    stage: 'prepare',
    message: finetune
      ? `${prep.train.length} training examples (plain fine-tuning baseline), ${prep.heldOut.length} held out, ${prep.personas.size} personas`
      : `${prep.train.length} training examples (${prep.train.length * 2} stage-1 items${selectNote(prep.train, selects)}), ${prep.heldOut.length} held out, ${prep.personas.size} personas, ${prep.pairs.length} annotated pairs`,
  });

  const stage1Dir = path.join(runDir, 'stage1');
  if (!state.done.includes('stage1')) {
    progress({ stage: 'stage1', message: finetune ? 'Plain fine-tuning (persona + history -> response)' : 'Persona-aware learning (select + generate)' });
    if ((await train('stage1', sftJob(config, { model: base, data: stage1Data, out: stage1Dir, ...common }))) === 'cancelled') return cancelled(runDir, state);
    await markDone('stage1');
  }
  const stage1Model = path.join(stage1Dir, 'final');

  // Stage 2's examples: those that name a persona sentence (stage2Candidates), all of them or the
  // run config's seeded subset (stage2.examples).
  const stage2Examples = sampleExamples(stage2Candidates(prep.train), config.stage2.examples, config.seed);
  const generateDir = path.join(runDir, 'generate');
  if (!finetune && !state.done.includes('generate')) {
    progress({ stage: 'generate', message: 'Sampling persona-blind responses (history only)' });
    const d = config.stage2.rejected;
    const encodePrompts = (ex: ResolvedExample) => rejectionPrompts([ex], format).map((p) => ({ id: p.id, prompt: tok.encode(p.prompt) }));
    const prompts = stage2Examples.flatMap((ex) => fitted(ex, encodePrompts, (r) => r.prompt.length + d.max_new_tokens <= config.stage2.max_length));
    const data = path.join(runDir, 'generate.tokens.jsonl');
    await writeJsonl(data, prompts);
    const job = generateJob(config, { model: stage1Model, data, out: generateDir, ...common });
    const run = await runTrainerJob(options.python, job, {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onLog ? { onLog: options.onLog } : {}),
      onEvent: (e) => {
        if (e.event === 'step' && typeof e.done === 'number' && typeof e.total === 'number') {
          progress({ stage: 'generate', message: `${e.done} of ${e.total} sampled`, step: e.done, total: e.total });
        }
      },
    });
    if (run.outcome === 'cancelled') return cancelled(runDir, state);
    await markDone('generate');
  }

  const stage2Dir = path.join(runDir, 'stage2');
  if (!finetune && !state.done.includes('stage2')) {
    const generated = (await fs.readFile(path.join(generateDir, 'generated.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as GeneratedRow);
    // The end of a turn ends the response: a sample that runs on into the partner's line is cut
    // there, which ends it as the model chose to. One that hit max_new_tokens first was cut.
    const rejected = new Map<string, Rejection>(
      generated.map((g) => {
        const text = tok.decode([...g.tokens]);
        const turn = text.indexOf('\n');
        return [String(g.id), { text: (turn >= 0 ? text.slice(0, turn) : text).trim(), ended: turn >= 0 || g.ended !== false }];
      }),
    );
    // A cut rejection gets no eos: the model never chose to end it there.
    const encodePair = (p: TextPair) => ({
      text: p,
      tokens: {
        prompt: tok.encode(p.prompt),
        chosen: [...tok.encode(p.chosen), tok.eos],
        rejected: [...tok.encode(p.rejected), ...(p.rejectedCut ? [] : [tok.eos])],
      },
    });
    const encoded = [
      ...stage2Examples.flatMap((ex) =>
        fitted(
          ex,
          (x) => stage2Pairs([x], rejected, format).map(encodePair),
          (r) => r.tokens.prompt.length + Math.max(r.tokens.chosen.length, r.tokens.rejected.length) <= config.stage2.max_length,
        ),
      ),
      ...annotatedPairs(prep.pairs, prep.personas, format).map(encodePair),
    ];
    const pairs: TextPair[] = encoded.map((e) => e.text);
    if (pairs.length === 0)
      throw new Error('Stage 2 has no pairs: every sampled response was empty or equal to the gold one, and there are no annotated pairs.');
    // The generated pairs, in PAL Studio's pairs format: a writer can read and annotate them.
    await writeJsonl(
      path.join(runDir, 'stage2.pairs.jsonl'),
      pairs.map((p) => ({
        prompt: p.prompt,
        chosen: p.chosen.trim(),
        rejected: p.rejected.trim(),
        origin: p.origin,
        dialogue: { id: p.id },
        status: 'chosen',
      })),
    );
    const data = path.join(runDir, 'stage2.tokens.jsonl');
    await writeJsonl(
      data,
      encoded.map((e) => e.tokens),
    );
    progress({ stage: 'stage2', message: `Persona alignment (DPO) on ${pairs.length} pairs` });
    const job = dpoJob(config, { model: stage1Model, data, out: stage2Dir, ...common });
    if ((await train('stage2', job)) === 'cancelled') return cancelled(runDir, state);
    await markDone('stage2');
  }

  const modelDir = path.join(runDir, 'model');
  if (!state.done.includes('export')) {
    progress({ stage: 'export', message: 'Exporting for inference (ONNX)' });
    const trained = path.join(finetune ? stage1Dir : stage2Dir, 'final');
    await exportForInference(
      options.python,
      trained,
      modelDir,
      tokenizerDir,
      format.kind,
      finetune ? ['plain'] : ['select', 'generate'],
      Math.max(config.stage1.max_length, finetune ? 0 : config.stage2.max_length),
    );
    await markDone('export');
  }

  const evalDir = path.join(runDir, 'eval');
  if (prep.heldOut.length === 0) {
    progress({ stage: 'evaluate', message: 'No held-out examples (split "valid" or "test"): nothing to evaluate on.' });
  } else if (!state.done.includes('evaluate')) {
    const baseOnnx = path.join(runDir, 'base-model');
    progress({ stage: 'evaluate', message: `Select then generate on ${prep.heldOut.length} held-out examples, before and after alignment` });
    // The base model has not learnt the select task: its selection is BM25's, labelled in the report.
    // The same context as the aligned model, so both see the same (trimmed) dialogues. A base that
    // PAL Studio trained on select (its pal.json says so, e.g. the default model) selects by itself.
    const baseTasks = trainedTasks(await readPalInfo(base));
    await exportForInference(
      options.python,
      base,
      baseOnnx,
      tokenizerDir,
      format.kind,
      baseTasks,
      Math.max(config.stage1.max_length, finetune ? 0 : config.stage2.max_length),
    );
    const timing: Record<string, { examples: number; seconds: number; msPerExample: number; device: string }> = {};
    const e = config.evaluation;
    const evaluationDecoding = {
      maxNewTokens: e.max_new_tokens,
      numBeams: e.num_beams,
      repetitionPenalty: e.repetition_penalty,
      noRepeatNgramSize: e.no_repeat_ngram_size,
    };
    const predict = async (folder: string, file: string) => {
      const r = await predictExamples(folder, prep.heldOut, {
        ...evaluationDecoding,
        seed: config.seed,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (!r) return false;
      await writeJsonl(file, r.rows);
      timing[path.basename(file, '.jsonl')] = {
        examples: r.rows.length,
        seconds: r.seconds,
        msPerExample: (r.seconds * 1000) / Math.max(1, r.rows.length),
        device: r.device,
      };
      return true;
    };
    const before = path.join(evalDir, 'predictions-before.jsonl');
    const after = path.join(evalDir, 'predictions-after.jsonl');
    try {
      if (!(await predict(baseOnnx, before)) || !(await predict(modelDir, after))) return cancelled(runDir, state);
    } catch (err) {
      if (err instanceof GenerationCancelled) return cancelled(runDir, state);
      throw err;
    }
    const result = await runEvaluation({ predictions: after, baseline: before, ...(options.nli ? { nli: options.nli } : {}) });
    await writeReports(evalDir, result, options.nli);
    // How long select then generate took per example (the evaluation decoding, this machine): for model cards and ETAs.
    await fs.writeFile(path.join(evalDir, 'timing.json'), `${JSON.stringify(timing, null, 2)}\n`);
    const a = result.run.evaluation.report;
    const b = result.baseline!.evaluation.report;
    progress({
      stage: 'evaluate',
      message: `BLEU-1 ${b.bleu1.toFixed(4)} -> ${a.bleu1.toFixed(4)}, ROUGE-L ${b.rougeL.toFixed(4)} -> ${a.rougeL.toFixed(4)}, selection accuracy ${fmt(b.selectionAccuracy)} -> ${fmt(a.selectionAccuracy)}`,
    });
    await markDone('evaluate');
  }
  return { outcome: 'done', runDir, model: modelDir, stages: state.done, ...(prep.heldOut.length ? { report: path.join(evalDir, 'report.json') } : {}) };
}

/** What stage1.select_none_max did to the select items, for the prepare message ('' when nothing). */
function selectNote(examples: readonly ResolvedExample[], selects: ReadonlyMap<string, number>): string {
  const dropped = examples.filter((ex) => selects.get(ex.id) === 0).length;
  if (dropped === 0) return '';
  const repeats = examples.reduce((n, ex) => n + Math.max(0, (selects.get(ex.id) ?? 1) - 1), 0);
  return `; stage1.select_none_max: ${dropped} select items answering "none" replaced by ${repeats} repeats of ones naming a fact`;
}

/** One line of a predictions file, as `pal eval` reads it. */
export interface PredictionRow {
  readonly id: string;
  readonly prediction: string;
  readonly reference: string;
  readonly personas: readonly string[];
  /** The dialogue the reply answers (pal eval's BM25 row reads the partner's last turn). */
  readonly history: readonly string[];
  readonly gold_persona: number;
  readonly selection_source: SelectThenGenerateResult['selectionSource'];
  readonly selected?: number;
  /** The model's select answer as probabilities: "none", then each fact (see chooseSelection). */
  readonly select_probabilities?: SelectThenGenerateResult['selectProbabilities'];
}

/**
 * A model's answers to examples (select then generate, or its plain prompt), as predictions for
 * `pal eval`: what a run's evaluation and `pal predict` write. Null when cancelled.
 */
/** How `pal predict` picks the highlighted sentence: a selection mode, or the evaluation's trivial rows (the gold label, or none). */
export const PREDICT_SELECTIONS = [...SELECTION_MODES, 'gold', 'none'] as const;
export type PredictSelection = (typeof PREDICT_SELECTIONS)[number];

export async function predictExamples(
  folder: string,
  examples: readonly ResolvedExample[],
  decoding: DecodingOptions,
  onExample?: (done: number) => void,
  selection: PredictSelection = 'auto',
): Promise<{ rows: PredictionRow[]; seconds: number; device: string } | null> {
  const m = await loadModel(folder);
  const t0 = performance.now();
  const rows: PredictionRow[] = [];
  for (const ex of examples) {
    if (decoding.signal?.aborted) return null;
    const how = selection === 'gold' ? { highlight: ex.personaIndex } : selection === 'none' ? { highlight: -1 } : selection;
    const r = await respond(m, ex, { ...decoding, selection: how });
    rows.push({
      id: ex.id,
      prediction: r.response,
      reference: ex.response,
      personas: ex.personas,
      history: ex.history,
      gold_persona: ex.personaIndex,
      selection_source: r.selectionSource,
      ...(r.selectionSource !== 'none' ? { selected: r.selected } : {}),
      ...(r.selectProbabilities ? { select_probabilities: r.selectProbabilities } : {}),
    });
    onExample?.(rows.length);
  }
  return { rows, seconds: (performance.now() - t0) / 1000, device: m.device };
}

/**
 * The rows an example gives (`encode`: tokenized items, prompts or pairs), with the example's
 * oldest turns dropped until every row `fits` (trimHistory), tokenized once: the rows of the last
 * check are the ones returned.
 */
export function fitted<R>(ex: ResolvedExample, encode: (ex: ResolvedExample) => R[], fits: (row: R) => boolean): R[] {
  let last: { turns: number; rows: R[] } | undefined;
  const trimmed = trimHistory(ex, (x) => {
    last = { turns: x.history.length, rows: encode(x) };
    return last.rows.every(fits);
  });
  return last?.turns === trimmed.history.length ? last.rows : encode(trimmed);
}

function fmt(v: number | null | undefined): string {
  return typeof v === 'number' ? v.toFixed(4) : 'n/a';
}

function cancelled(runDir: string, state: WrittenRunState): RunResult {
  return { outcome: 'cancelled', runDir, stages: state.done };
}

/** ONNX export of a trained folder, with the tokenizer and pal.json that inference reads. */
export async function exportForInference(
  python: string,
  trained: string,
  out: string,
  tokenizerFrom: string,
  format: PromptFormat['kind'],
  tasks: readonly string[] = ['select', 'generate'],
  maxLength?: number,
): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    execFile(python, ['-m', 'pal_trainer.export_onnx', trained, out], { env: pythonEnvironment(), maxBuffer: 1 << 24 }, (err, _o, stderr) =>
      err ? reject(new Error(`ONNX export of ${trained} failed: ${String(stderr).trim().split('\n').slice(-5).join('\n')}`)) : resolve(),
    ),
  );
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja']) {
    await fs.copyFile(path.join(tokenizerFrom, f), path.join(out, f)).catch(() => undefined);
  }
  await writePalInfo(out, palInfo(format, tasks, maxLength));
}

/** Runs under a folder, with their state (for "several runs are listed with their state"). */
export async function listRuns(outputDir: string): Promise<{ name: string; dir: string; done: readonly RunStage[]; finished: boolean }[]> {
  const names = await fs.readdir(outputDir).catch(() => [] as string[]);
  const out = [];
  for (const name of names.sort()) {
    const dir = path.join(outputDir, name);
    const file = path.join(dir, RUN_STATE_FILE);
    const text = await fs.readFile(file, 'utf8').catch(() => null);
    if (text === null) continue; // not a run folder
    const { done } = parseRunState(text, file);
    out.push({ name, dir, done, finished: done.includes('export') });
  }
  return out;
}
