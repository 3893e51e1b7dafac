// The job contract between the engine and the trainer (src/trainer/pal_trainer/job_contract.json):
// every job the engine builds keeps it, every run-config setting of a stage reaches that stage's
// job (stage1.weight_decay once did not), and the trainer refuses what the contract does not name.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { ENGINE_STAGE_SETTINGS, parseRunConfig } from '../../src/core/formats/runConfig';
import { runConfigSchema } from '../../src/core/formats/schemas';
import { trainerDir } from '../../src/engine/paths';
import { dpoJob, generateJob, sftJob } from '../../src/engine/pipeline';
import { pretrainJob } from '../../src/engine/pretrain';
import { pythonEnvironment } from '../../src/engine/python';
import { checkJob } from '../../src/engine/trainer';
import { python, skipWithoutTorch } from './python-torch';

// Every stage setting set away from its default, so that a value that did not travel shows.
const CONFIG = `name: contract
model: {base: m}
data: {dialogues: [d.dialogues.jsonl]}
stage1: {epochs: 7, lr: 0.00031, warmup_steps: 13, schedule: cosine, grad_clip: 2.5, batch_size: 3, grad_accum: 5, max_length: 99, weight_decay: 0.07, group_by_length: false, lora: {r: 5, alpha: 11, dropout: 0.02, targets: [q_proj]}, select_none_max: 0.4}
stage2: {epochs: 4, lr: 0.0000021, warmup_steps: 9, schedule: cosine, grad_clip: 3.5, batch_size: 6, grad_accum: 2, max_length: 77, weight_decay: 0.03, group_by_length: false, lora: {r: 3, alpha: 7, dropout: 0.01, targets: [v_proj]}, beta: 0.25, loss: ipo, label_smoothing: 0.1, examples: 12, rejected: {temperature: 0.7, top_k: 5, top_p: 0.9, max_new_tokens: 17}}
device: cpu
precision: bf16
seed: 17
`;
const place = { model: '/m', data: '/d', out: '/o', pad_token_id: 4, eos_token_id: 5 };

test('every job the engine builds keeps the contract, and every stage setting reaches its job by name', () => {
  const doc = parseRunConfig(CONFIG, 'contract.palrun.yaml');
  assert.deepEqual(doc.problems, []);
  const config = doc.config!;
  const jobs = { sft: sftJob(config, place), dpo: dpoJob(config, place), generate: generateJob(config, place) };
  for (const job of Object.values(jobs)) assert.equal(checkJob(job), undefined, job.stage);
  assert.equal(checkJob(pretrainJob({ python: 'python3', model: '/m', data: '/d', out: '/o', steps: 10 })), undefined, 'lm');
  const properties = (stage: 'stage1' | 'stage2') => Object.keys(runConfigSchema.properties[stage].properties);
  for (const [stage, job] of [
    ['stage1', jobs.sft],
    ['stage2', jobs.dpo],
  ] as const) {
    for (const key of properties(stage)) {
      if ((ENGINE_STAGE_SETTINGS[stage] as readonly string[]).includes(key)) continue;
      assert.ok(key in job, `${stage}.${key} is not in the ${job.stage} job`);
      assert.deepEqual((job as unknown as Record<string, unknown>)[key], (config[stage] as unknown as Record<string, unknown>)[key], `${stage}.${key}`);
    }
  }
  assert.deepEqual(jobs.generate.decoding, config.stage2.rejected);
  for (const job of Object.values(jobs)) assert.deepEqual([job.seed, job.device, job.precision], [17, 'cpu', 'bf16']);
});

test('a stage key the schema does not name (warned about as a typo) stays out of the job, so the trainer is not refused it', () => {
  const doc = parseRunConfig(CONFIG.replace('stage1: {epochs: 7,', 'stage1: {learning_rate: 0.1, epochs: 7,'), 'contract.palrun.yaml');
  assert.ok(doc.config);
  assert.ok(doc.problems.some((p) => p.severity === 'warning' && /learning_rate/.test(p.message)));
  assert.equal((doc.config.stage1 as unknown as Record<string, unknown>).learning_rate, 0.1, 'the config keeps what the file says');
  const job = sftJob(doc.config, place);
  assert.equal('learning_rate' in job, false);
  assert.equal(checkJob(job), undefined);
});

test('checkJob names unknown and missing keys', () => {
  const config = parseRunConfig(CONFIG, 'contract.palrun.yaml').config!;
  const { weight_decay: _, ...missing } = sftJob(config, place);
  assert.match(checkJob(missing)!, /a sft job with missing keys weight_decay/);
  const extra: { stage: string; learning_rate?: number } = { ...sftJob(config, place), learning_rate: 1 };
  assert.match(checkJob(extra)!, /a sft job with unknown keys learning_rate/);
  assert.match(checkJob({ stage: 'rlhf' })!, /unknown stage "rlhf"/);
});

test('the trainer refuses a job with a key the contract does not name, or without one it requires', { skip: skipWithoutTorch('the trainer') }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pal-contract-'));
  try {
    const config = parseRunConfig(CONFIG, 'contract.palrun.yaml').config!;
    const load = (job: object) => {
      const file = path.join(dir, 'job.json');
      writeFileSync(file, JSON.stringify(job));
      return spawnSync(python, ['-c', `from pal_trainer.train import load_job; load_job(${JSON.stringify(file)})`], {
        cwd: trainerDir(),
        env: pythonEnvironment(),
        encoding: 'utf8',
      });
    };
    const good = sftJob(config, { ...place, out: dir });
    assert.equal(load(good).status, 0, load(good).stderr);
    const unknown = load({ ...good, optimizer: 'adamw' });
    assert.notEqual(unknown.status, 0);
    assert.match(unknown.stderr, /does not take a sft job with unknown keys \['optimizer'\]/);
    const { weight_decay: _, ...without } = good;
    assert.match(load(without).stderr, /missing keys \['weight_decay'\]/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
