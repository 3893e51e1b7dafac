#!/usr/bin/env node
// The recipe of the embedded default model (models/pal-default), end to end, with `pal` commands
// only: tokenizer -> token stream -> new model -> pre-training -> persona data -> PAL (both
// stages) and the plain fine-tuning baseline -> evaluation -> export -> model card.
//
//   npm run make-model                    # everything; each step resumes or is skipped when done
//   npm run make-model -- --until pretrain
//
// Work goes to .pal-studio/default-model (ignored by git); the result to models/pal-default.
// The data is ../shared/data (PAL_SHARED_DATA overrides): its README says what may be used how.
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { data, pal, readJson, recipe, root } from '../lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const work = path.join(root, '.pal-studio', 'default-model');
const corpora = path.join(data, 'corpora');
const ship = path.join(root, 'models', 'pal-default');

// Pre-training: sized for 2 CPU cores in under an hour (measured: ~2,300 tokens/s). The same
// numbers must be given to resume a stopped run.
const PRETRAIN = { steps: 1400, batchSize: 16, maxLength: 256, lr: 0.0015, warmup: 100, weightDecay: 0.1, seed: 42 };
const TRAIN_EXAMPLES = 4000; // Synthetic-Persona-Chat examples for stage 1 (and the baseline)
const EVAL_EXAMPLES = 1000; // drawn from ConvAI2's dev file, spanning all its episodes

if (!existsSync(corpora)) throw new Error(`${corpora}: the corpora are not there (set PAL_SHARED_DATA to the shared data folder).`);
const { step } = await recipe(work);

const tokenizer = path.join(work, 'tokenizer');
const stream = path.join(work, 'corpora.bin');
const init = path.join(work, 'init');
const pretrained = path.join(work, 'pretrain', 'final');
const trainSet = path.join(work, 'data', 'spc-train.dialogues.jsonl');
const evalSet = path.join(work, 'data', 'convai2-dev.dialogues.jsonl');
const runs = path.join(work, 'runs');
const isDone = (run) => existsSync(path.join(runs, run, 'eval', 'report.json'));

await step(
  'tokenizer',
  () => existsSync(path.join(tokenizer, 'tokenizer.json')),
  () => pal(['tokenizer', 'train', '--corpora', corpora, '--out', tokenizer]),
);
await step(
  'encode',
  () => existsSync(stream),
  () => pal(['tokenizer', 'encode', '--tokenizer', tokenizer, '--corpora', corpora, '--out', stream]),
);
await step(
  'init',
  () => existsSync(path.join(init, 'model.safetensors')),
  () => pal(['model', 'init', '--config', path.join(here, 'model.config.json'), '--tokenizer', tokenizer, '--out', init, '--seed', '42']),
);
await step(
  'pretrain',
  () => existsSync(path.join(pretrained, 'model.safetensors')) && existsSync(path.join(pretrained, 'tokenizer.json')),
  () =>
    pal([
      'pretrain',
      '--model',
      init,
      '--data',
      stream,
      '--out',
      path.join(work, 'pretrain'),
      '--steps',
      String(PRETRAIN.steps),
      '--batch-size',
      String(PRETRAIN.batchSize),
      '--max-length',
      String(PRETRAIN.maxLength),
      '--lr',
      String(PRETRAIN.lr),
      '--warmup',
      String(PRETRAIN.warmup),
      '--weight-decay',
      String(PRETRAIN.weightDecay),
      '--seed',
      String(PRETRAIN.seed),
    ]),
);
await step(
  'data',
  () => existsSync(trainSet) && existsSync(evalSet),
  async () => {
    // Synthetic-Persona-Chat's training dialogues (persona_a/persona_b) for the persona stages; the
    // ConvAI2 dev file only for evaluation (the corpora's README: its personas were removed from them).
    await pal([
      'import',
      path.join(corpora, 'synthetic_persona_chat_train_newspc.jsonl.gz'),
      '--from',
      'corpus',
      '--split',
      'train',
      '--limit',
      String(TRAIN_EXAMPLES),
      '--out',
      trainSet,
      '--force',
    ]);
    await pal([
      'import',
      path.join(data, 'persona-chat', 'convai2_valid_dev.txt'),
      '--from',
      'persona-chat',
      '--split',
      'valid',
      '--sample',
      String(EVAL_EXAMPLES),
      '--seed',
      '42',
      '--out',
      evalSet,
      '--force',
    ]);
  },
);
await step(
  'pal',
  () => isDone('pal'),
  () => pal(['train', path.join(here, 'pal-default.palrun.yaml')]),
);
await step(
  'baseline',
  () => isDone('baseline'),
  () => pal(['train', path.join(here, 'baseline.palrun.yaml')]),
);

const results = path.join(work, 'results.json');
await step(
  'measure',
  () => existsSync(results),
  async () => {
    const perplexity = async (model) => JSON.parse(await pal(['perplexity', '--model', model, evalSet, '--json'], { capture: true }));
    const pl = await readJson(path.join(runs, 'pal', 'eval', 'report.json'));
    const bl = await readJson(path.join(runs, 'baseline', 'eval', 'report.json'));
    const out = {
      perplexity: {
        base: await perplexity(path.join(runs, 'pal', 'base-model')),
        baseline: await perplexity(path.join(runs, 'baseline', 'model')),
        pal: await perplexity(path.join(runs, 'pal', 'model')),
      },
      reports: { base: pl.baseline, baseline: bl, pal: pl },
      timing: {
        pal: await readJson(path.join(runs, 'pal', 'eval', 'timing.json'), {}),
        baseline: await readJson(path.join(runs, 'baseline', 'eval', 'timing.json'), {}),
      },
    };
    for (const r of Object.values(out.reports)) delete r.examples;
    await fs.writeFile(results, `${JSON.stringify(out, null, 2)}\n`);
    await pal(['compare', path.join(runs, 'baseline', 'eval', 'report.json'), path.join(runs, 'pal', 'eval', 'report.json')]);
  },
);

await step(
  'ship',
  () => false,
  async () => {
    // As the studio ships models (pal model export): int8 ONNX for inference, fp16 safetensors so
    // that a run can start from this folder too.
    const tmp = `${ship}.tmp`;
    await pal(['model', 'export', path.join(runs, 'pal', 'stage2', 'final'), '--tokenizer', path.join(runs, 'pal', 'model'), '--out', tmp, '--force']);
    await fs.copyFile(path.join(runs, 'pal', 'model', 'pal.json'), path.join(tmp, 'pal.json'));
    // The card is written by hand from results.json (numbers, and what they mean); keep it.
    await fs.copyFile(path.join(ship, 'README.md'), path.join(tmp, 'README.md')).catch(() => undefined);
    await fs.rm(ship, { recursive: true, force: true });
    await fs.rename(tmp, ship);
    const perplexity = JSON.parse(await pal(['perplexity', '--model', ship, evalSet, '--json'], { capture: true }));
    const sizes = {};
    for (const f of ['onnx/model.onnx', 'model.safetensors', 'tokenizer.json']) sizes[f] = (await fs.stat(path.join(ship, f))).size;
    const r = await readJson(results, {});
    r.shipped = { perplexity, sizes };
    await fs.writeFile(results, `${JSON.stringify(r, null, 2)}\n`);
    console.error(`Shipped ${path.relative(root, ship)}: ${JSON.stringify(sizes)}; perplexity ${perplexity.perplexity.toFixed(3)} (int8 weights)`);
  },
);
console.error(`\nDone. Results: ${path.relative(root, results)}; the model: ${path.relative(root, ship)}`);
