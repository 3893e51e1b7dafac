// The run config's TypeScript types are derived from its JSON schema (FromSchema in
// src/core/formats/schemas.ts): these checks hold the derivation to what the code relies on. They
// are checked by the type checker (npm test's typecheck suite); the test below checks at run time
// that the validator fills every setting the types call always present.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRunConfig } from '../../src/core/formats/runConfig';
import type { DecodingConfig, EvaluationDecoding, LoraConfig, RunConfig, Stage1Config, Stage2Config } from '../../src/core/formats/types';

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type Equal<A, B> = (<T>() => T extends Simplify<A> ? 1 : 2) extends <T>() => T extends Simplify<B> ? 1 : 2 ? true : false;
const same = <T extends true>(): T | undefined => undefined;

type Training = {
  epochs: number;
  lr: number;
  warmup_steps: number;
  schedule: 'constant' | 'cosine';
  grad_clip: number;
  batch_size: number;
  grad_accum: number;
  max_length: number;
  weight_decay: number;
  group_by_length: boolean;
  lora: LoraConfig | null;
};
same<Equal<LoraConfig, { r: number; alpha: number; dropout: number; targets: string[] }>>();
same<Equal<DecodingConfig, { temperature: number; top_k: number; top_p: number; max_new_tokens: number }>>();
same<
  Equal<
    EvaluationDecoding,
    {
      max_new_tokens: number;
      num_beams: number;
      repetition_penalty: number;
      no_repeat_ngram_size: number;
      no_repeat_ngram_from: 'reply' | 'partner' | 'prompt';
      prefer_selected_fact: boolean;
    }
  >
>();
same<Equal<Stage1Config, Training & { select_none_max?: number }>>();
same<Equal<Stage2Config, Training & { beta: number; loss: 'sigmoid' | 'ipo'; label_smoothing: number; examples?: number; rejected: DecodingConfig }>>();
same<Equal<RunConfig['model'], { base: string; tokenizer?: string }>>();
same<Equal<RunConfig['data'], { dialogues: string[]; pairs: string[]; personas: string[] }>>();
same<Equal<RunConfig['method'], 'pal' | 'finetune'>>();
same<Equal<RunConfig['precision'], 'auto' | 'fp32' | 'bf16' | 'fp16'>>();
same<Equal<RunConfig['name'], string>>();

test('every setting the run config type calls always present is filled by the validator from a minimal file', () => {
  const { config, problems } = parseRunConfig('model: {base: m}\ndata: {dialogues: [d.dialogues.jsonl]}\n', 'minimal.palrun.yaml');
  assert.deepEqual(problems, []);
  const c = config!;
  const training = ['epochs', 'lr', 'warmup_steps', 'schedule', 'grad_clip', 'batch_size', 'grad_accum', 'max_length', 'weight_decay', 'lora'];
  for (const k of training) {
    assert.ok(k in c.stage1, `stage1.${k}`);
    assert.ok(k in c.stage2, `stage2.${k}`);
  }
  for (const k of ['beta', 'loss', 'label_smoothing', 'rejected']) assert.ok(k in c.stage2, `stage2.${k}`);
  for (const k of ['temperature', 'top_k', 'top_p', 'max_new_tokens']) assert.equal(typeof c.stage2.rejected[k as keyof DecodingConfig], 'number', k);
  for (const k of ['max_new_tokens', 'num_beams', 'repetition_penalty', 'no_repeat_ngram_size'] as const) assert.equal(typeof c.evaluation[k], 'number', k);
  assert.deepEqual([c.name, c.method, c.device, c.precision, c.output, c.seed], ['minimal', 'pal', 'auto', 'auto', 'runs', 42]);
  assert.deepEqual(c.data, { dialogues: ['d.dialogues.jsonl'], pairs: [], personas: [] });
  assert.equal(c.stage1.select_none_max, undefined);
});
