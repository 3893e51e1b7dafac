// The engine's side of the trainer: real jobs in a real Python with torch (CI installs Debian's).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { trainerDir } from '../../src/engine/paths';
import { pythonEnvironment } from '../../src/engine/python';
import { runTrainerJob, TrainerError, type SftJob, type TrainerEvent } from '../../src/engine/trainer';
import { hasTorch, python, skipWithoutTorch } from './python-torch';

const skip = skipWithoutTorch('trainer tests');

const dir = mkdtempSync(path.join(os.tmpdir(), 'pal-trainer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

before(() => {
  if (!hasTorch) return;
  // A tiny model and data, made by the trainer's own test helpers.
  execFileSync(
    python,
    [
      '-c',
      `import sys; sys.path.insert(0, ${JSON.stringify(trainerDir())}); from tests.test_train import tiny_model, sft_rows, write_rows; tiny_model(${JSON.stringify(path.join(dir, 'base'))}); write_rows(${JSON.stringify(path.join(dir, 'sft.jsonl'))}, sft_rows(64))`,
    ],
    { env: pythonEnvironment(), cwd: trainerDir() },
  );
});

const job = (name: string, extra: Partial<SftJob> = {}): SftJob => ({
  stage: 'sft',
  model: path.join(dir, 'base'),
  data: path.join(dir, 'sft.jsonl'),
  out: path.join(dir, name),
  epochs: 10,
  batch_size: 4,
  grad_accum: 1,
  max_length: 512,
  lr: 1e-3,
  warmup_steps: 100,
  schedule: 'constant',
  grad_clip: 10,
  weight_decay: 0,
  group_by_length: true,
  lora: null,
  precision: 'auto',
  seed: 42,
  checkpoint_every: 1000,
  device: 'cpu',
  pad_token_id: 0,
  eos_token_id: null,
  ...extra,
});

test('a job streams its events and ends with the exported model', { skip }, async () => {
  const seen: TrainerEvent[] = [];
  const run = await runTrainerJob(python, job('plain', { epochs: 1 }), { onEvent: (e) => seen.push(e) });
  assert.equal(run.outcome, 'done');
  assert.deepEqual(
    seen.map((e) => e.event).filter((e) => e !== 'step'),
    ['start', 'checkpoint', 'done'],
  );
  assert.equal(seen.filter((e) => e.event === 'step').length, 16);
  assert.ok(existsSync(path.join(dir, 'plain', 'final', 'model.safetensors')));
});

test('cancelling stops after the current step with a checkpoint; the same job resumes from it', { skip }, async () => {
  const controller = new AbortController();
  const run = await runTrainerJob(python, job('cancel'), {
    signal: controller.signal,
    onEvent: (e) => {
      if (e.event === 'step' && e.step === 3) controller.abort();
    },
  });
  assert.equal(run.outcome, 'cancelled');
  const stoppedAt = run.events.at(-1)!.step as number;
  assert.ok(stoppedAt >= 3 && stoppedAt < 160);
  const resumed = await runTrainerJob(python, job('cancel'));
  assert.equal(resumed.outcome, 'done');
  assert.equal(resumed.events[0]!.resumed_from, stoppedAt);
});

test('a bad data file fails with the trainer’s message, naming the file and line', { skip }, async () => {
  const bad = path.join(dir, 'bad.jsonl');
  writeFileSync(bad, '{"prompt": [1, 2], "target": [3]}\n{"prompt": "hello", "target": [3]}\n');
  await assert.rejects(runTrainerJob(python, job('bad', { data: bad })), (err: TrainerError) => {
    assert.match(err.message, /exited with code 1: ValueError: .*bad\.jsonl:2: 'prompt' must be a list of token ids/);
    return true;
  });
});

test("a diverged step's NaN loss (a bare word in Python's JSON) arrives as a number, not as a log line", async () => {
  // A stand-in for Python that prints what the trainer prints when a step diverges.
  const fake = path.join(dir, 'fake-python.sh');
  writeFileSync(
    fake,
    `#!/bin/sh\necho '{"event": "start", "total_steps": 2}'\necho '{"event": "step", "step": 1, "loss": NaN, "grad_norm": Infinity}'\necho 'a stray print'\necho '{"event": "done"}'\n`,
    { mode: 0o755 },
  );
  const events: TrainerEvent[] = [];
  const logs: string[] = [];
  const run = await runTrainerJob(fake, job('nan'), { onEvent: (e) => events.push(e), onLog: (l) => logs.push(l) });
  assert.equal(run.outcome, 'done');
  const step = events.find((e) => e.event === 'step')!;
  assert.ok(Number.isNaN(step.loss), `loss is NaN: ${String(step.loss)}`);
  assert.equal(step.grad_norm, Infinity);
  assert.deepEqual(logs, ['a stray print']);
});
