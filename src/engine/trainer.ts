/**
 * Starting the PyTorch trainer: one job per child process (`python -m pal_trainer.train job.json`),
 * whose stdout is a stream of JSON events. TypeScript prepares the token ids; the trainer owns the
 * tensors. Cancelling sends SIGTERM: the trainer finishes its step, checkpoints and exits 0, and
 * the same job started again resumes from there.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { parsePythonJsonLine } from '../core/runHistory';
import type { TrainerSettings } from '../core/formats/runConfig';
import type { LoraConfig } from '../core/formats/types';
import { pythonEnvironment } from './python';
import JOB_CONTRACT from '../trainer/pal_trainer/job_contract.json';

/*
 * The job contract: what each stage's job holds. The key lists live in one file that the trainer
 * reads too (pal_trainer/job_contract.json); these types say the same in TypeScript, and
 * checkJob holds every job to the list before it is sent, as load_job does on arrival.
 */
export type TrainerStage = keyof typeof JOB_CONTRACT.stages;

interface JobBase {
  readonly model: string;
  readonly data: string;
  readonly out: string;
  readonly seed: number;
  readonly device: string;
  readonly pad_token_id: number;
  readonly eos_token_id: number | null;
  readonly batch_size: number;
  readonly max_length: number;
}

/** LoRA as the trainer takes it (the run config's stage lora block). */
export type LoraJob = Readonly<LoraConfig>;

/** How a job runs: precision, and the trainer's own checkpointing knobs (not run-config settings). */
interface Runtime {
  readonly precision: string;
  readonly checkpoint_every?: number;
  readonly keep_checkpoints?: number;
  readonly max_steps?: number | null;
}

/** Optimisation settings of a job that is not a run stage (pre-training). */
interface Optimisation {
  readonly lr: number;
  readonly warmup_steps: number;
  readonly schedule: 'constant' | 'cosine';
  readonly grad_clip: number;
  readonly grad_accum: number;
  readonly weight_decay: number;
}

/** Stage 1's job: the run config's stage1 block (less the engine's own settings, core's ENGINE_STAGE_SETTINGS) as it is. */
export interface SftJob extends JobBase, Runtime, Readonly<TrainerSettings<'stage1'>> {
  readonly stage: 'sft';
}

/** Stage 2's job: the stage2 block likewise (beta, loss, label_smoothing with the optimisation settings). */
export interface DpoJob extends JobBase, Runtime, Readonly<TrainerSettings<'stage2'>> {
  readonly stage: 'dpo';
}

/** Pre-training on a token stream: steps, not epochs. */
export interface LmJob extends JobBase, Runtime, Optimisation {
  readonly stage: 'lm';
  readonly max_steps: number;
  readonly epochs?: number;
  readonly lora?: LoraJob | null;
}

export interface GenerateJob extends JobBase {
  readonly stage: 'generate';
  readonly precision?: string;
  readonly decoding: { readonly temperature: number; readonly top_k: number; readonly top_p: number; readonly max_new_tokens: number };
}

export type TrainerJob = SftJob | DpoJob | LmJob | GenerateJob;

/** Why a job breaks the contract (unknown or missing keys), or undefined when it keeps it. */
export function checkJob(job: { readonly stage: string }): string | undefined {
  const contract = (JOB_CONTRACT.stages as Record<string, { required: string[]; optional: string[] }>)[job.stage];
  if (!contract) return `unknown stage "${job.stage}"`;
  const keys = Object.keys(job);
  const unknown = keys.filter((k) => !contract.required.includes(k) && !contract.optional.includes(k));
  const missing = contract.required.filter((k) => !keys.includes(k));
  if (!unknown.length && !missing.length) return undefined;
  return `a ${job.stage} job with ${[unknown.length ? `unknown keys ${unknown.join(', ')}` : '', missing.length ? `missing keys ${missing.join(', ')}` : ''].filter(Boolean).join('; ')} (pal_trainer/job_contract.json)`;
}

/** One line of a generate job's generated.jsonl (pal_trainer.train.run_generate writes it). */
export interface GeneratedRow {
  readonly id: string;
  /** The new tokens, eos excluded. */
  readonly tokens: readonly number[];
  /** Whether the sample ended with eos (false: cut at max_new_tokens). Absent in files of older versions. */
  readonly ended?: boolean;
}

export interface TrainerEvent {
  /** 'warning': something the run goes on despite, with its `kind` and a `message` for the writer (kind 'emulated_bf16': bf16 asked for on a CPU that emulates it). */
  readonly event: 'start' | 'warning' | 'step' | 'checkpoint' | 'done' | 'cancelled' | 'error';
  readonly [key: string]: unknown;
}

export interface TrainerRun {
  readonly outcome: 'done' | 'cancelled';
  readonly events: readonly TrainerEvent[];
}

export class TrainerError extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly stderrTail: string,
  ) {
    super(message);
    this.name = 'TrainerError';
  }
}

export async function runTrainerJob(
  python: string,
  job: TrainerJob,
  options: { onEvent?: (e: TrainerEvent) => void; onLog?: (line: string) => void; signal?: AbortSignal } = {},
): Promise<TrainerRun> {
  const broken = checkJob(job);
  if (broken) throw new Error(`The engine built ${broken}: a PAL Studio bug, not something in your files.`);
  await fs.mkdir(job.out, { recursive: true });
  const jobFile = path.join(job.out, 'job.request.json');
  await fs.writeFile(jobFile, `${JSON.stringify(job, null, 2)}\n`);
  const child = spawn(python, ['-m', 'pal_trainer.train', jobFile], { env: pythonEnvironment(), stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
  const events: TrainerEvent[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    let e: TrainerEvent;
    try {
      // A diverged step's loss is NaN, which Python's json writes as a bare word: read it as a number.
      e = parsePythonJsonLine(line) as TrainerEvent;
    } catch {
      options.onLog?.(line); // a stray print: kept for the log, not an event
      return;
    }
    events.push(e);
    options.onEvent?.(e);
  });
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderr.push(line);
    if (stderr.length > 60) stderr.shift();
    options.onLog?.(line);
  });
  const onAbort = () => child.kill('SIGTERM');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', (err) => reject(new TrainerError(`Could not start the trainer with ${python}: ${err.message}`, null, '')));
    child.on('close', (c, s) => resolve([c, s]));
  }).finally(() => options.signal?.removeEventListener('abort', onAbort));
  const last = events.at(-1);
  if (code === 0 && (last?.event === 'done' || last?.event === 'cancelled')) return { outcome: last.event, events };
  const tail = stderr.slice(-15).join('\n');
  const reported = events.find((e) => e.event === 'error')?.message;
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  throw new TrainerError(`The trainer ${how}${reported ? `: ${String(reported)}` : tail ? `:\n${tail}` : '.'}`, code, tail);
}
