/**
 * Making a base model from nothing, for machines where no pretrained model can be had: a new
 * model folder initialised from a config.json (`pal model init`), then pre-training on a token
 * stream (`pal pretrain`, the trainer's lm job, which resumes where it stopped). The tokenizer
 * travels with the model folder at every step, so each folder is complete on its own.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pythonEnvironment } from './python';
import { runTrainerJob, type TrainerEvent, type LmJob } from './trainer';

export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'] as const;

export async function copyTokenizer(from: string, to: string): Promise<void> {
  await fs.mkdir(to, { recursive: true });
  let copied = 0;
  for (const f of TOKENIZER_FILES) {
    await fs.copyFile(path.join(from, f), path.join(to, f)).then(
      () => copied++,
      () => undefined,
    );
  }
  if (copied === 0 || !(await fs.stat(path.join(to, 'tokenizer.json')).catch(() => undefined))) throw new Error(`${from}: no tokenizer.json to copy`);
}

/** A randomly initialised model folder (config.json, model.safetensors, tokenizer). */
export async function initModel(options: { python: string; config: string; tokenizer: string; out: string; seed?: number }): Promise<{ parameters: number }> {
  const tokenizer = JSON.parse(await fs.readFile(path.join(options.tokenizer, 'tokenizer.json'), 'utf8')) as {
    model?: { vocab?: Record<string, number> };
    added_tokens?: { id: number }[];
  };
  const config = JSON.parse(await fs.readFile(options.config, 'utf8')) as { vocab_size?: number };
  const ids = [...Object.values(tokenizer.model?.vocab ?? {}), ...(tokenizer.added_tokens ?? []).map((t) => t.id)];
  const needed = Math.max(...ids) + 1;
  if (typeof config.vocab_size === 'number' && config.vocab_size < needed) {
    throw new Error(`${options.config}: vocab_size ${config.vocab_size} is smaller than the tokenizer's ${needed} ids (${options.tokenizer}/tokenizer.json)`);
  }
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(
      options.python,
      ['-m', 'pal_trainer.init_model', options.config, options.out, '--seed', String(options.seed ?? 42)],
      { env: pythonEnvironment() },
      (err, out, stderr) =>
        err ? reject(new Error(`Initialising ${options.out} failed: ${String(stderr).trim().split('\n').slice(-3).join('\n')}`)) : resolve(out),
    ),
  );
  await copyTokenizer(options.tokenizer, options.out);
  const done = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { parameters?: number };
  return { parameters: done.parameters ?? 0 };
}

export interface PretrainOptions {
  readonly python: string;
  /** The model folder to start from (pal model init's output), with its tokenizer. */
  readonly model: string;
  /** The token stream (pal tokenizer encode's output). */
  readonly data: string;
  readonly out: string;
  readonly steps: number;
  readonly batchSize?: number;
  readonly gradAccum?: number;
  readonly maxLength?: number;
  readonly lr?: number;
  readonly warmupSteps?: number;
  readonly weightDecay?: number;
  readonly seed?: number;
  readonly device?: string;
  readonly checkpointEvery?: number;
  readonly onEvent?: (e: TrainerEvent) => void;
  readonly onLog?: (line: string) => void;
  readonly signal?: AbortSignal;
  /** From the model's config.json (pretrain() reads them). */
  readonly eosTokenId?: number;
  readonly padTokenId?: number;
}

/** The lm job the options describe (the same options resume the same run). */
export function pretrainJob(o: PretrainOptions): LmJob {
  return {
    stage: 'lm' as const,
    model: path.resolve(o.model),
    data: path.resolve(o.data),
    out: path.resolve(o.out),
    max_steps: o.steps,
    max_length: o.maxLength ?? 256,
    batch_size: o.batchSize ?? 16,
    grad_accum: o.gradAccum ?? 1,
    lr: o.lr ?? 1.5e-3,
    warmup_steps: o.warmupSteps ?? 100,
    schedule: 'cosine',
    weight_decay: o.weightDecay ?? 0.1,
    grad_clip: 1.0,
    seed: o.seed ?? 42,
    device: o.device ?? 'auto',
    precision: 'auto',
    checkpoint_every: o.checkpointEvery ?? 100,
    keep_checkpoints: 2,
    pad_token_id: o.padTokenId ?? 0,
    eos_token_id: o.eosTokenId ?? null,
  };
}

/** Pre-trains; the finished model is <out>/final, with the tokenizer beside its weights. */
export async function pretrain(o: PretrainOptions): Promise<{ outcome: 'done' | 'cancelled'; model: string }> {
  const final = path.join(path.resolve(o.out), 'final');
  const config = JSON.parse(
    await fs.readFile(path.join(o.model, 'config.json'), 'utf8').catch(() => {
      throw new Error(`${o.model}: no config.json (make the folder with "pal model init")`);
    }),
  ) as { eos_token_id?: number; pad_token_id?: number };
  const ids = {
    ...(typeof config.eos_token_id === 'number' ? { eosTokenId: config.eos_token_id } : {}),
    ...(typeof config.pad_token_id === 'number' ? { padTokenId: config.pad_token_id } : {}),
  };
  const run = await runTrainerJob(o.python, pretrainJob({ ...o, ...ids }), {
    ...(o.onEvent ? { onEvent: o.onEvent } : {}),
    ...(o.onLog ? { onLog: o.onLog } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  if (run.outcome === 'done') await copyTokenizer(o.model, final);
  return { outcome: run.outcome, model: final };
}
