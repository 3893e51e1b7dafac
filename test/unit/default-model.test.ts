// The default model's recipe, in miniature, through the `pal` commands a user runs: tokenizer,
// token stream, a new model, pre-training (and its resume), perplexity before and after, and the
// demo (npm start's main job) on the sample project with the model just made.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { packageRoot, trainerDir } from '../../src/engine/paths';
import { pythonEnvironment } from '../../src/engine/python';
import { python, skipWithoutTorch } from './python-torch';

const skip = skipWithoutTorch('default-model recipe tests');
const cli = path.join(packageRoot(), 'dist', 'cli.js');
const pal = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 300_000 });
const dir = mkdtempSync(path.join(os.tmpdir(), 'pal-recipe-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// A corpus with patterns a tiny model learns in a few dozen steps.
const corpora = path.join(dir, 'corpora');
const names = ['rex', 'tom', 'ana', 'lee'];
const pets = ['dog', 'cat', 'bird', 'fish'];
const dialogues = Array.from({ length: 80 }, (_, i) => ({
  id: `d${i}`,
  source: 'test',
  persona_a: [`i have a ${pets[i % 4]} named ${names[i % 4]} .`],
  persona_b: ['i like tea .'],
  turns: [
    { speaker: 'a', text: 'hello , do you have pets ?' },
    { speaker: 'b', text: `yes , a ${pets[(i + 1) % 4]} . and you ?` },
    { speaker: 'a', text: `i have a ${pets[i % 4]} named ${names[i % 4]} .` },
  ],
}));

function exportOnnx(model: string, out: string): void {
  execFileSync(python, ['-m', 'pal_trainer.export_onnx', model, out], { env: { ...pythonEnvironment(), PYTHONPATH: trainerDir() }, stdio: 'ignore' });
}

test('the recipe in miniature: tokenizer, stream, init, pre-training that resumes, perplexity that drops', { skip, timeout: 600_000 }, () => {
  mkdirSync(corpora, { recursive: true });
  writeFileSync(path.join(corpora, 'pets.jsonl.gz'), gzipSync(dialogues.map((d) => JSON.stringify(d)).join('\n') + '\n'));
  const tok = path.join(dir, 'tokenizer');
  let r = pal('tokenizer', 'train', '--corpora', corpora, '--out', tok, '--vocab-size', '300');
  assert.equal(r.status, 0, r.stderr);
  r = pal('tokenizer', 'encode', '--tokenizer', tok, '--corpora', corpora, '--out', path.join(dir, 'stream.bin'));
  assert.equal(r.status, 0, r.stderr);

  const config = path.join(dir, 'config.json');
  const arch = {
    model_type: 'llama',
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    max_position_embeddings: 128,
    tie_word_embeddings: true,
    bos_token_id: 0,
    eos_token_id: 0,
    pad_token_id: 0,
  };
  writeFileSync(config, JSON.stringify({ ...arch, vocab_size: 100 }));
  r = pal('model', 'init', '--config', config, '--tokenizer', tok, '--out', path.join(dir, 'bad'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /vocab_size 100 is smaller than the tokenizer's 300 ids/);

  writeFileSync(config, JSON.stringify({ ...arch, vocab_size: 300 }));
  const init = path.join(dir, 'init');
  r = pal('model', 'init', '--config', config, '--tokenizer', tok, '--out', init, '--seed', '3');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /Initialised .*: [\d,]+ parameters/);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) assert.ok(existsSync(path.join(init, f)), f);

  const args = [
    'pretrain',
    '--model',
    init,
    '--data',
    path.join(dir, 'stream.bin'),
    '--out',
    path.join(dir, 'pre'),
    '--steps',
    '40',
    '--batch-size',
    '8',
    '--max-length',
    '32',
    '--lr',
    '0.005',
    '--warmup',
    '4',
  ];
  r = pal(...args);
  assert.equal(r.status, 0, r.stderr);
  const final = r.stdout.trim();
  assert.equal(final, path.join(dir, 'pre', 'final'));
  assert.ok(existsSync(path.join(final, 'tokenizer.json')), 'the tokenizer travels with the weights');
  const weights = readFileSync(path.join(final, 'model.safetensors'));
  // The same command again finds the run finished at its last checkpoint: same weights.
  r = pal(...args);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /resuming at step 40/);
  assert.ok(readFileSync(path.join(final, 'model.safetensors')).equals(weights));

  const set = path.join(dir, 'held.dialogues.jsonl');
  r = pal('import', path.join(corpora, 'pets.jsonl.gz'), '--out', set, '--split', 'valid', '--sample', '20', '--seed', '1');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(set, 'utf8').trim().split('\n').length, 20);
  exportOnnx(init, path.join(dir, 'init-onnx'));
  exportOnnx(final, path.join(dir, 'final-onnx'));
  const ppl = (m: string) => {
    const out = pal('perplexity', '--model', m, set, '--json');
    assert.equal(out.status, 0, out.stderr);
    return JSON.parse(out.stdout) as { perplexity: number; tokens: number; examples: number };
  };
  const before = ppl(path.join(dir, 'init-onnx'));
  const afterTraining = ppl(path.join(dir, 'final-onnx'));
  assert.equal(before.examples, 20);
  assert.equal(afterTraining.tokens, before.tokens);
  assert.ok(before.perplexity > 150 && before.perplexity < 450, `an untrained model is near uniform over 300 ids: ${before.perplexity}`);
  assert.ok(afterTraining.perplexity < before.perplexity / 5, `${before.perplexity} -> ${afterTraining.perplexity}`);
});

test('pal demo: a short PAL run of a model on the sample project, a before/after table and a report', { skip, timeout: 600_000 }, () => {
  const model = path.join(dir, 'pre', 'final');
  assert.ok(existsSync(model), 'the previous test made the model');
  const sample = path.join(packageRoot(), 'samples', 'studio');
  const before = readFileSync(path.join(sample, 'sample.palrun.yaml'), 'utf8');
  const out = path.join(dir, 'demo');
  const missing = pal('demo', '--model', path.join(dir, 'nothing-here'), '--out', out);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nothing-here: no model there \(no config\.json\)\. The default model ships in models\/pal-default; "npm run make-model"/);
  // This model's 300-token vocabulary spends ~4 tokens a word: the sample's prompts need more than 256.
  const r = pal('demo', '--model', model, '--out', out, '--max-length', '512');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Before \(\S+ as shipped\) and after PAL on the sample personas, 12 held-out examples/);
  for (const metric of ['BLEU-1', 'BLEU-4', 'ROUGE-L', 'Distinct-2', 'Selection accuracy', 'P-F1'])
    assert.match(r.stdout, new RegExp(`\\n${metric}[^\\n]*\\d`), metric);
  assert.match(r.stdout, /\nC\.score \(sum[^\n]*n\/a/, 'no NLI model: C.score is shown as not computed');
  assert.match(r.stdout, /Note: C.score not computed: no NLI model configured/);
  assert.match(r.stdout, /\n {4}after {3}\[[^\]]+\] /, 'examples show the persona the aligned model selected');
  const html = /Report: (.*\.html)/.exec(r.stdout)![1]!;
  assert.ok(existsSync(html));
  assert.match(r.stdout, /Done in \d+ s/);
  // The sample project is never written to; the demo's copy points at the model it was given.
  assert.equal(readFileSync(path.join(sample, 'sample.palrun.yaml'), 'utf8'), before);
  assert.ok(!existsSync(path.join(sample, 'runs')));
  assert.match(readFileSync(path.join(out, 'project', 'sample.palrun.yaml'), 'utf8'), new RegExp(`base: ${model.replace(/[/.]/g, '\\$&')}`));
});
