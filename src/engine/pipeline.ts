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
import * as path from 'node:path';
import { parseDialogues } from '../core/formats/dialogues';
import { allProblems, records } from '../core/formats/jsonl';
import { parsePairs } from '../core/formats/pairs';
import { parsePersona } from '../core/formats/persona';
import { formatProblem, hasErrors } from '../core/formats/problems';
import { parseRunConfig, trainerSettings } from '../core/formats/runConfig';
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
import { parseRunState, RUN_STATE_FILE, type RunStage, type TrainingStage } from '../core/runFolder';
import { palInfo, promptFormatFor, readPalInfo, trainedTasks, writePalInfo } from './modelInfo';
import { ensureFolder, readTextFile, writeFileSafely } from './data';
import { runEvaluation, writeReports } from './eval';
import { GenerationCancelled, loadModel, respond, type DecodingOptions, type SelectThenGenerateResult } from './inference';
import { fetchModel, isFetched, knownModel, knownModelNamed, knownModelNames, resolveModelSpec, writeFolderWhole } from './baseModels';
import { acquireRunLock } from './runLock';
import { checkRunPaths, fileConfinement } from './runPaths';
import { pythonEnvironment } from './python';
import { transformers } from './transformers';
import { SELECTION_MODES, type RunProgressParams } from './protocol';
import { runTrainerJob, type DpoJob, type GenerateJob, type GeneratedRow, type SftJob, type TrainerEvent } from './trainer';

/** A run's progress as the protocol carries it (RunProgressNotification), less the run's id. */
export type RunProgress = Omit<RunProgressParams, 'runId'>;

/**
 * A trainer's "warning" event as the run's progress, once a run for each kind (every job of the
 * run measures the same CPU again): undefined for any other event, and for a kind `warned` holds.
 */
export function trainerWarning(stage: RunStage, e: TrainerEvent, warned: Set<string>): RunProgress | undefined {
  if (e.event !== 'warning') return undefined;
  const kind = typeof e.kind === 'string' ? e.kind : String(e.message);
  if (warned.has(kind)) return undefined;
  warned.add(kind);
  return { stage, message: String(e.message), warning: true };
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
  /** Another seed than the run config's (`runWithSeed`): seeds for one config without copies of it. */
  readonly seed?: number;
  /**
   * Another run's folder whose stage-1 model this run takes instead of training its own: stage-2
   * experiments on one stage-1 model, an hour of stage 1 on 2 CPU cores saved each. The run
   * records where its stage 1 came from (stage1/source.json).
   */
  readonly fromStage1?: string;
}

/**
 * The run config with another seed: a run of another seed is named `<name>-seed<seed>`, so that it
 * neither resumes nor overwrites the config's own run (a run folder resumes whatever it holds).
 */
export function runWithSeed(config: RunConfig, seed: number | undefined): RunConfig {
  return seed === undefined || seed === config.seed ? config : { ...config, seed, name: `${config.name}-seed${seed}` };
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
async function loadRunConfig(configFile: string, seed?: number): Promise<{ config: RunConfig; baseDir: string; warnings: string[] }> {
  const text = await readTextFile(configFile);
  const doc = parseRunConfig(text, configFile);
  if (!doc.config || hasErrors(doc.problems)) throw new Error(`${configFile} has problems:\n${doc.problems.map(formatProblem).join('\n')}`);
  return {
    config: runWithSeed(doc.config, seed),
    baseDir: path.dirname(path.resolve(configFile)),
    warnings: doc.problems.filter((p) => p.severity === 'warning').map(formatProblem),
  };
}

/**
 * Reads and checks everything a run trains on. With `allowedRoots`, every path is confined to them
 * before anything is opened (a file outside, read and reported as parse errors, would leak it).
 */
export async function prepareRun(configFile: string, allowedRoots?: readonly string[], seed?: number): Promise<Prepared> {
  const { config, baseDir, warnings } = await loadRunConfig(configFile, seed);
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

/** What every job of a run shares: its seed, device and precision. */
function runtime(config: RunConfig) {
  return { seed: config.seed, device: config.device, precision: config.precision };
}

/** Stage 1's job (and the plain fine-tuning baseline's): every trainer setting of stage1, by name. */
export function sftJob(config: RunConfig, place: JobPlace): SftJob {
  return { stage: 'sft', ...place, ...runtime(config), ...trainerSettings(config, 'stage1') };
}

/** Stage 2's job: DPO against the stage-1 model (`place.model`), every trainer setting of stage2 by name. */
export function dpoJob(config: RunConfig, place: JobPlace): DpoJob {
  return { stage: 'dpo', ...place, ...runtime(config), ...trainerSettings(config, 'stage2') };
}

/** The persona-blind samples stage 2 rejects: the stage-1 model on history-only prompts. */
export function generateJob(config: RunConfig, place: JobPlace): GenerateJob {
  return {
    stage: 'generate',
    ...place,
    batch_size: config.stage2.batch_size,
    max_length: config.stage2.max_length,
    ...runtime(config),
    decoding: config.stage2.rejected,
  };
}

export async function runAlignment(configFile: string, options: RunOptions): Promise<RunResult> {
  options.onProgress?.({ stage: 'prepare', message: `Reading ${configFile}` });
  await fetchNamedModels(configFile, options);
  // Paths are confined before any data file is opened (prepareRun checks them first).
  const prep = await prepareRun(configFile, options.allowedRoots, options.seed);
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
    if (name && knownModel(name)?.kind === 'pip-encoder')
      throw new Error(
        `${configFile}: "${name}" is a sentence-embedding model (the labeller's), not a language model to train; model.base names one of ${knownModelNames()
          .filter((n) => knownModel(n)?.kind !== 'pip-encoder')
          .join(', ')} or a model folder.`,
      );
    if (!name || isFetched(name)) continue;
    await fetchModel(name, {
      python: options.python,
      onProgress: (message) => options.onProgress?.({ stage: 'prepare', message }),
      ...(options.onLog ? { onLog: options.onLog } : {}),
    });
  }
}

/** What every stage of one run needs: the run's settings, its folder and state, and the tokenizer. */
interface RunContext {
  readonly configFile: string;
  readonly options: RunOptions;
  readonly prep: Prepared;
  readonly config: RunConfig;
  readonly runDir: string;
  readonly state: WrittenRunState;
  /** Stage 1 trains the plain fine-tuning baseline (method: finetune): no rejections, no stage 2. */
  readonly finetune: boolean;
  readonly base: string;
  readonly tokenizerDir: string;
  readonly tok: Awaited<ReturnType<typeof loadTokenizer>>;
  /** The token ids every trainer job gets. */
  readonly special: { readonly pad_token_id: number; readonly eos_token_id: number };
  /** Select items per training example (stage1.select_none_max; selectCounts). */
  readonly selects: ReadonlyMap<string, number>;
  /** Stage 2's examples: those that name a persona sentence, all or the config's seeded subset (stage2.examples). */
  readonly stage2Examples: readonly ResolvedExample[];
  readonly progress: (p: RunProgress) => void;
  /** The kinds of trainer warning this run has shown (trainerWarning). */
  readonly warned: Set<string>;
  /** Records a stage as done in state.json (temp file + rename: a crash leaves the previous state). */
  readonly markDone: (stage: RunStage) => Promise<void>;
  /** Where each stage writes, inside the run folder. */
  readonly places: ReturnType<typeof runPlaces>;
}

/** Where each stage writes, inside the run folder. */
function runPlaces(runDir: string) {
  return {
    stage1Data: path.join(runDir, 'stage1.tokens.jsonl'),
    stage1: path.join(runDir, 'stage1'),
    stage1Model: path.join(runDir, 'stage1', 'final'),
    generateData: path.join(runDir, 'generate.tokens.jsonl'),
    generate: path.join(runDir, 'generate'),
    stage2Pairs: path.join(runDir, 'stage2.pairs.jsonl'),
    stage2Data: path.join(runDir, 'stage2.tokens.jsonl'),
    stage2: path.join(runDir, 'stage2'),
    model: path.join(runDir, 'model'),
    baseModel: path.join(runDir, 'base-model'),
    eval: path.join(runDir, 'eval'),
  };
}

async function runLocked(configFile: string, options: RunOptions, prep: Prepared, runDir: string): Promise<RunResult> {
  const { config, baseDir } = prep;
  const statePath = path.join(runDir, RUN_STATE_FILE);
  const state = await readRunState(statePath, configFile);
  const base = resolveModelSpec(baseDir, config.model.base);
  const tokenizerDir = config.model.tokenizer ? resolveModelSpec(baseDir, config.model.tokenizer) : base;
  const tok = await loadTokenizer(tokenizerDir, base);
  const finetune = config.method === 'finetune';
  const ctx: RunContext = {
    configFile,
    options,
    prep,
    config,
    runDir,
    state,
    finetune,
    base,
    tokenizerDir,
    tok,
    special: { pad_token_id: tok.pad, eos_token_id: tok.eos },
    selects: finetune ? new Map<string, number>() : selectCounts(prep.train, config.stage1.select_none_max, config.seed),
    stage2Examples: sampleExamples(stage2Candidates(prep.train), config.stage2.examples, config.seed),
    progress: (p) => options.onProgress?.(p),
    warned: new Set<string>(),
    places: runPlaces(runDir),
    markDone: async (stage) => {
      if (!state.done.includes(stage)) state.done.push(stage);
      await writeFileSafely(statePath, `${JSON.stringify(state, null, 2)}\n`, true);
    },
  };
  // Each stage skips itself when state.json says it is done; a cancelled one ends the run at its checkpoint.
  const stages: readonly ((ctx: RunContext) => Promise<'done' | 'cancelled'>)[] = finetune
    ? [prepareStage, stage1Stage, exportStage, evaluateStage]
    : [prepareStage, stage1Stage, generateStage, stage2Stage, exportStage, evaluateStage];
  for (const stage of stages) if ((await stage(ctx)) === 'cancelled') return cancelled(runDir, state);
  const { places } = ctx;
  return {
    outcome: 'done',
    runDir,
    model: places.model,
    stages: state.done,
    ...(prep.heldOut.length ? { report: path.join(places.eval, 'report.json') } : {}),
  };
}

/** prepare: the stage-1 mixture (or the fine-tuning items), tokenized. */
async function prepareStage(ctx: RunContext): Promise<'done'> {
  const { config, prep, tok, selects, finetune } = ctx;
  const format = tok.format;
  if (!ctx.state.done.includes('prepare')) {
    // Examples whose prompt would not fit max_length lose their oldest turns (never the personas).
    // stage1.select_none_max: how many select items each example gives (selectCounts; 1 without it).
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
        `${tooLong.length} training example${tooLong.length === 1 ? ' does' : 's do'} not fit stage1.max_length (${config.stage1.max_length} tokens) even with only the last turn of the dialogue: the persona facts and the response are too long. Shorten the facts (or the response), or raise stage1.max_length in ${path.basename(ctx.configFile)}:\n` +
          tooLong
            .slice(0, 10)
            .map((ex) => `${ex.source ?? ex.id}: ${ex.personas.length} facts, ${ex.personas.join(' ').split(/\s+/).length} words`)
            .join('\n') +
          (tooLong.length > 10 ? `\n… and ${tooLong.length - 10} more` : ''),
      );
    }
    await writeJsonl(ctx.places.stage1Data, rows);
    await ctx.markDone('prepare');
  }
  ctx.progress({
    stage: 'prepare',
    message: finetune
      ? `${prep.train.length} training examples (plain fine-tuning baseline), ${prep.heldOut.length} held out, ${prep.personas.size} personas`
      : `${prep.train.length} training examples (${prep.train.length * 2} stage-1 items${selectNote(prep.train, selects)}), ${prep.heldOut.length} held out, ${prep.personas.size} personas, ${prep.pairs.length} annotated pairs`,
  });
  return 'done';
}

/** One of the run's trainer jobs: stopped by the run's signal, logged to its log, its warnings shown once a run. */
function runStageJob(ctx: RunContext, stage: RunStage, job: SftJob | DpoJob | GenerateJob, onEvent: (e: TrainerEvent) => void) {
  const { options } = ctx;
  return runTrainerJob(options.python, job, {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onLog ? { onLog: options.onLog } : {}),
    onEvent: (e) => {
      const warning = trainerWarning(stage, e, ctx.warned);
      if (warning) ctx.progress(warning);
      onEvent(e);
    },
  });
}

/** A training job (stage 1 or 2) with its steps reported as progress, ETA included. */
async function train(ctx: RunContext, stage: TrainingStage, job: SftJob | DpoJob): Promise<'done' | 'cancelled'> {
  const started = Date.now();
  let firstStep: number | undefined;
  let total: number | undefined;
  const run = await runStageJob(ctx, stage, job, (e) => {
    if (e.event === 'start' && typeof e.total_steps === 'number') total = e.total_steps;
    if (e.event !== 'step' || typeof e.step !== 'number') return;
    const metrics = Object.fromEntries(Object.entries(e).filter(([, v]) => typeof v === 'number')) as Record<string, number>;
    // ETA from this process's own pace: a resumed job starts counting at its checkpoint.
    firstStep ??= e.step - 1;
    const done = e.step - firstStep;
    const eta = total ? ((Date.now() - started) / 1000 / done) * (total - e.step) : undefined;
    ctx.progress({
      stage,
      message: `step ${e.step}${total ? ` of ${total}` : ''}`,
      step: e.step,
      ...(total ? { total } : {}),
      ...(eta !== undefined ? { etaSeconds: eta } : {}),
      metrics,
    });
  });
  return run.outcome;
}

/** stage 1: persona-aware learning (select + generate, 1:1), or plain fine-tuning. */
async function stage1Stage(ctx: RunContext): Promise<'done' | 'cancelled'> {
  const from = ctx.options.fromStage1;
  if (ctx.state.done.includes('stage1')) {
    if (from !== undefined) await checkStage1Source(ctx, from);
    return 'done';
  }
  const { places } = ctx;
  if (from !== undefined) {
    await copyStage1(ctx, from);
    await ctx.markDone('stage1');
    return 'done';
  }
  ctx.progress({ stage: 'stage1', message: ctx.finetune ? 'Plain fine-tuning (persona + history -> response)' : 'Persona-aware learning (select + generate)' });
  if ((await train(ctx, 'stage1', sftJob(ctx.config, { model: ctx.base, data: places.stage1Data, out: places.stage1, ...ctx.special }))) === 'cancelled')
    return 'cancelled';
  await ctx.markDone('stage1');
  return 'done';
}

/** Where a run's stage-1 model came from, when it was taken from another run (`fromStage1`). */
const STAGE1_SOURCE_FILE = 'source.json';

/**
 * Takes another run's stage-1 model as this run's: that run must have finished stage 1 from the
 * same base (the same tokenizer and weights under its adapter), and this run must have a stage 2.
 */
async function copyStage1(ctx: RunContext, from: string): Promise<void> {
  const source = path.resolve(from);
  const fail = (why: string) => new Error(`--from-stage1 ${from}: ${why}`);
  if (ctx.finetune) throw fail('a plain fine-tuning run (method: finetune) is its stage 1; there is no stage 2 to run on another stage 1.');
  if (source === path.resolve(ctx.runDir)) throw fail('that is this run itself.');
  const stateText = await fs.readFile(path.join(source, RUN_STATE_FILE), 'utf8').catch(() => null);
  if (stateText === null) throw fail(`no ${RUN_STATE_FILE} there: not a run folder (runs live in the run config's output folder, one per run name).`);
  const done = parseRunState(stateText, path.join(source, RUN_STATE_FILE)).done;
  const trained = path.join(source, 'stage1', 'final');
  if (!done.includes('stage1') || !(await fs.stat(trained).catch(() => undefined))?.isDirectory()) throw fail('that run has not finished stage 1.');
  const job = JSON.parse(await fs.readFile(path.join(source, 'stage1', 'job.json'), 'utf8').catch(() => '{}')) as { model?: unknown };
  if (typeof job.model !== 'string' || path.resolve(job.model) !== path.resolve(ctx.base))
    throw fail(
      `its stage 1 was trained from ${String(job.model ?? 'an unknown base')}, and this run's base is ${ctx.base} (model.base in ${path.basename(ctx.configFile)}).`,
    );
  ctx.progress({ stage: 'stage1', message: `Stage 1 taken from ${source} (not trained again)` });
  const { places } = ctx;
  await writeFolderWhole(places.stage1Model, (tmp) => fs.cp(trained, tmp, { recursive: true }));
  await fs.copyFile(path.join(source, 'stage1', 'job.json'), path.join(places.stage1, 'job.json'));
  await writeFileSafely(
    path.join(places.stage1, STAGE1_SOURCE_FILE),
    `${JSON.stringify({ run: source, copied_at: new Date().toISOString() }, null, 2)}\n`,
    true,
  );
}

/** A run whose stage 1 is done keeps it: --from-stage1 must name where it already came from. */
async function checkStage1Source(ctx: RunContext, from: string): Promise<void> {
  const text = await fs.readFile(path.join(ctx.places.stage1, STAGE1_SOURCE_FILE), 'utf8').catch(() => null);
  const recorded = text === null ? undefined : (JSON.parse(text) as { run?: string }).run;
  if (recorded !== undefined && path.resolve(recorded) === path.resolve(from)) return;
  throw new Error(
    `${ctx.runDir} already has its stage 1 (${recorded ? `taken from ${recorded}` : 'trained in this run'}); --from-stage1 ${from} does not replace it. Give the run config another name for a run on that stage 1.`,
  );
}

/** generate: the stage-1 model's persona-blind responses (history only), stage 2's rejections. */
async function generateStage(ctx: RunContext): Promise<'done' | 'cancelled'> {
  if (ctx.state.done.includes('generate')) return 'done';
  const { config, tok } = ctx;
  const { places } = ctx;
  ctx.progress({ stage: 'generate', message: 'Sampling persona-blind responses (history only)' });
  const d = config.stage2.rejected;
  const encodePrompts = (ex: ResolvedExample) => rejectionPrompts([ex], tok.format).map((p) => ({ id: p.id, prompt: tok.encode(p.prompt) }));
  const prompts = ctx.stage2Examples.flatMap((ex) => fitted(ex, encodePrompts, (r) => r.prompt.length + d.max_new_tokens <= config.stage2.max_length));
  await writeJsonl(places.generateData, prompts);
  const job = generateJob(config, { model: places.stage1Model, data: places.generateData, out: places.generate, ...ctx.special });
  const run = await runStageJob(ctx, 'generate', job, (e) => {
    if (e.event === 'step' && typeof e.done === 'number' && typeof e.total === 'number') {
      ctx.progress({ stage: 'generate', message: `${e.done} of ${e.total} sampled`, step: e.done, total: e.total });
    }
  });
  if (run.outcome === 'cancelled') return 'cancelled';
  await ctx.markDone('generate');
  return 'done';
}

/** stage 2: DPO on (gold, persona-blind rejection) pairs and the writers' annotated pairs, against the stage-1 model. */
async function stage2Stage(ctx: RunContext): Promise<'done' | 'cancelled'> {
  if (ctx.state.done.includes('stage2')) return 'done';
  const { config, tok, prep } = ctx;
  const format = tok.format;
  const { places } = ctx;
  const generated = (await fs.readFile(path.join(places.generate, 'generated.jsonl'), 'utf8'))
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
    ...ctx.stage2Examples.flatMap((ex) =>
      fitted(
        ex,
        (x) => stage2Pairs([x], rejected, format).map(encodePair),
        (r) => r.tokens.prompt.length + Math.max(r.tokens.chosen.length, r.tokens.rejected.length) <= config.stage2.max_length,
      ),
    ),
    ...annotatedPairs(prep.pairs, prep.personas, format).map(encodePair),
  ];
  const pairs: TextPair[] = encoded.map((e) => e.text);
  if (pairs.length === 0) throw new Error('Stage 2 has no pairs: every sampled response was empty or equal to the gold one, and there are no annotated pairs.');
  // The generated pairs, in PAL Studio's pairs format: a writer can read and annotate them.
  await writeJsonl(
    places.stage2Pairs,
    pairs.map((p) => ({ prompt: p.prompt, chosen: p.chosen.trim(), rejected: p.rejected.trim(), origin: p.origin, dialogue: { id: p.id }, status: 'chosen' })),
  );
  await writeJsonl(
    places.stage2Data,
    encoded.map((e) => e.tokens),
  );
  ctx.progress({ stage: 'stage2', message: `Persona alignment (DPO) on ${pairs.length} pairs` });
  const job = dpoJob(config, { model: places.stage1Model, data: places.stage2Data, out: places.stage2, ...ctx.special });
  if ((await train(ctx, 'stage2', job)) === 'cancelled') return 'cancelled';
  await ctx.markDone('stage2');
  return 'done';
}

/** The longest sequence the run trained on: the exported models are made for it. */
function exportLength(ctx: RunContext): number {
  return Math.max(ctx.config.stage1.max_length, ctx.finetune ? 0 : ctx.config.stage2.max_length);
}

/** export: the trained model as ONNX with its tokenizer, for the engine's inference. */
async function exportStage(ctx: RunContext): Promise<'done'> {
  if (ctx.state.done.includes('export')) return 'done';
  const { places } = ctx;
  ctx.progress({ stage: 'export', message: 'Exporting for inference (ONNX)' });
  const trained = ctx.finetune ? places.stage1Model : path.join(places.stage2, 'final');
  await exportForInference(
    ctx.options.python,
    trained,
    places.model,
    ctx.tokenizerDir,
    ctx.tok.format.kind,
    ctx.finetune ? ['plain'] : ['select', 'generate'],
    exportLength(ctx),
  );
  await ctx.markDone('export');
  return 'done';
}

/** evaluate: select then generate on the held-out examples with the base and the aligned model, and the report. */
async function evaluateStage(ctx: RunContext): Promise<'done' | 'cancelled'> {
  const { prep, config, options } = ctx;
  if (prep.heldOut.length === 0) {
    ctx.progress({ stage: 'evaluate', message: 'No held-out examples (split "valid" or "test"): nothing to evaluate on.' });
    return 'done';
  }
  if (ctx.state.done.includes('evaluate')) return 'done';
  const { places } = ctx;
  ctx.progress({ stage: 'evaluate', message: `Select then generate on ${prep.heldOut.length} held-out examples, before and after alignment` });
  // The base model has not learnt the select task: its selection is BM25's, labelled in the report.
  // The same context as the aligned model, so both see the same (trimmed) dialogues. A base that
  // PAL Studio trained on select (its pal.json says so, e.g. the default model) selects by itself.
  const baseTasks = trainedTasks(await readPalInfo(ctx.base));
  await exportForInference(options.python, ctx.base, places.baseModel, ctx.tokenizerDir, ctx.tok.format.kind, baseTasks, exportLength(ctx));
  const timing: Record<string, { examples: number; seconds: number; msPerExample: number; device: string }> = {};
  const e = config.evaluation;
  const evaluationDecoding = {
    maxNewTokens: e.max_new_tokens,
    numBeams: e.num_beams,
    repetitionPenalty: e.repetition_penalty,
    noRepeatNgramSize: e.no_repeat_ngram_size,
    noRepeatNgramFrom: e.no_repeat_ngram_from,
    preferSelectedFact: e.prefer_selected_fact,
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
  const before = path.join(places.eval, 'predictions-before.jsonl');
  const after = path.join(places.eval, 'predictions-after.jsonl');
  try {
    if (!(await predict(places.baseModel, before)) || !(await predict(places.model, after))) return 'cancelled';
  } catch (err) {
    if (err instanceof GenerationCancelled) return 'cancelled';
    throw err;
  }
  const result = await runEvaluation({ predictions: after, baseline: before, ...(options.nli ? { nli: options.nli } : {}) });
  await writeReports(places.eval, result, options.nli);
  // How long select then generate took per example (the evaluation decoding, this machine): for model cards and ETAs.
  await fs.writeFile(path.join(places.eval, 'timing.json'), `${JSON.stringify(timing, null, 2)}\n`);
  const a = result.run.evaluation.report;
  const b = result.baseline!.evaluation.report;
  ctx.progress({
    stage: 'evaluate',
    message: `BLEU-1 ${b.bleu1.toFixed(4)} -> ${a.bleu1.toFixed(4)}, ROUGE-L ${b.rougeL.toFixed(4)} -> ${a.rougeL.toFixed(4)}, selection accuracy ${fmt(b.selectionAccuracy)} -> ${fmt(a.selectionAccuracy)}`,
  });
  await ctx.markDone('evaluate');
  return 'done';
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
