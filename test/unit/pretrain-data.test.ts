// Pre-training data: the corpora through our tokenizer into a uint16 stream, which the trainer's
// lm job then trains on (the TypeScript side owns text, the trainer memory-maps ids).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { dialogueBlock } from '../../src/core/prompts';
import { BpeTokenizer } from '../../src/core/tokenizer/bpe';
import { trainerDir } from '../../src/engine/paths';
import { encodeCorpora } from '../../src/engine/pretrainData';
import { pythonEnvironment } from '../../src/engine/python';
import { runTrainerJob } from '../../src/engine/trainer';
import { trainTokenizer, corpusFiles, corpusTurns } from '../../src/engine/tokenizerTrain';
import { python, skipWithoutTorch } from './python-torch';
import { sharedData, skipWithoutData } from './shared-data';

const corpora = path.join(sharedData, 'corpora');
const noData = skipWithoutData(corpora);
const dir = mkdtempSync(path.join(os.tmpdir(), 'pal-pretrain-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test(
  'the corpora become a uint16 stream of dialogue blocks separated by <|endoftext|>, and an lm job trains on it',
  { skip: noData || skipWithoutTorch('pre-training data test') },
  async () => {
    const tokDir = path.join(dir, 'tok');
    await trainTokenizer({ corpora, out: tokDir, vocabSize: 600, limitDialogues: 300 });
    const out = path.join(dir, 'stream.bin');
    const r = await encodeCorpora({ tokenizer: tokDir, corpora, out, limitDialogues: 40 });
    assert.equal(r.dialogues, 40);
    const bytes = readFileSync(out);
    assert.equal(bytes.length, r.tokens * 2);
    const ids = Array.from({ length: r.tokens }, (_, i) => bytes.readUInt16LE(i * 2));
    const tok = BpeTokenizer.fromJson(JSON.parse(readFileSync(path.join(tokDir, 'tokenizer.json'), 'utf8')));
    // Split on <|endoftext|> (id 0) and compare each document with the dialogue block of its turns.
    const docs: number[][] = [[]];
    for (const id of ids) {
      if (id === 0) docs.push([]);
      else docs.at(-1)!.push(id);
    }
    docs.pop();
    assert.equal(docs.length, 40);
    const dialogues: string[][] = [];
    for await (const { dialogue, text } of corpusTurns(await corpusFiles(corpora), 40)) (dialogues[dialogue] ??= []).push(text);
    docs.forEach((d, i) => assert.equal(tok.decode(d), dialogueBlock(dialogues[i]!), `dialogue ${i}`));

    // The trainer reads the same file: a tiny model with this vocabulary learns from it.
    const base = path.join(dir, 'base');
    execFileSync(python, [path.join(trainerDir(), 'tests', 'make_tiny_export.py'), '600', '0', base, '[]', '0'], { env: pythonEnvironment(), stdio: 'ignore' });
    const run = await runTrainerJob(python, {
      stage: 'lm',
      model: path.join(base, 'hf'),
      data: out,
      out: path.join(dir, 'lm'),
      max_steps: 12,
      max_length: 64,
      batch_size: 4,
      grad_accum: 1,
      lr: 3e-3,
      warmup_steps: 2,
      schedule: 'constant',
      grad_clip: 1,
      weight_decay: 0,
      precision: 'auto',
      seed: 42,
      device: 'cpu',
      checkpoint_every: 100,
      pad_token_id: 0,
      eos_token_id: null,
    });
    assert.equal(run.outcome, 'done');
    const steps = run.events.filter((e) => e.event === 'step') as unknown as { loss: number }[];
    assert.equal(steps.length, 12);
    assert.ok(steps.at(-1)!.loss < steps[0]!.loss, `loss ${steps[0]!.loss} -> ${steps.at(-1)!.loss}`);
  },
);
