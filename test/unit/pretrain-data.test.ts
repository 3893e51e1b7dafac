// Pre-training data: the corpora through our tokenizer into a uint16 stream, which the trainer's
// lm job then trains on (the TypeScript side owns text, the trainer memory-maps ids).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { dialogueBlock } from '../../src/core/prompts';
import { BpeTokenizer } from '../../src/core/tokenizer/bpe';
import { trainerDir } from '../../src/engine/paths';
import { encodeCorpora, pretrainText } from '../../src/engine/pretrainData';
import { pythonEnvironment } from '../../src/engine/python';
import { runTrainerJob } from '../../src/engine/trainer';
import { trainTokenizer, corpusFiles, corpusTurns, type CorpusTurn } from '../../src/engine/tokenizerTrain';
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
    const dialogues: CorpusTurn[][] = [];
    for await (const turn of corpusTurns(await corpusFiles(corpora), 40)) (dialogues[turn.dialogue] ??= []).push(turn);
    docs.forEach((d, i) => assert.equal(tok.decode(d), dialogueBlock(dialogues[i]!.map((t) => t.text)), `dialogue ${i}: no personas, the plain block`));
    assert.equal(r.withFacts, 0);

    // A corpus that gives its speakers' personas: each dialogue with one side's facts block.
    const withPersonas = path.join(dir, 'persona-corpus');
    mkdirSync(withPersonas);
    const spcLike = [0, 1, 2].map((k) => ({
      turns: ['hi there', `i walk my ${k + 2} dogs daily`, 'nice , i fish', 'what do you catch ?'].map((text, i) => ({ speaker: i % 2 ? 'b' : 'a', text })),
      persona_a: ['i fish on weekends.'],
      persona_b: [`i have ${k + 2} dogs.`, 'i am a nurse.'],
    }));
    writeFileSync(path.join(withPersonas, 'spc.jsonl'), spcLike.map((d) => JSON.stringify(d)).join('\n'));
    const facts = await encodeCorpora({ tokenizer: tokDir, corpora: withPersonas, out: path.join(dir, 'facts.bin') });
    assert.equal(facts.withFacts, 3);
    const factBytes = readFileSync(path.join(dir, 'facts.bin'));
    const texts: number[][] = [[]];
    for (let i = 0; i < facts.tokens; i++) {
      const id = factBytes.readUInt16LE(i * 2);
      if (id === 0) texts.push([]);
      else texts.at(-1)!.push(id);
    }
    const [first, second] = texts.map((t) => tok.decode(t));
    assert.equal(
      first,
      'Facts:\n1. i fish on weekends.\n\nDialogue:\nPersona: hi there\nUser: i walk my 2 dogs daily\nPersona: nice , i fish\nUser: what do you catch ?',
      "dialogue 0: the first speaker's facts",
    );
    assert.equal(
      second,
      'Facts:\n1. i have 3 dogs.\n2. i am a nurse.\n\nDialogue:\nUser: hi there\nPersona: i walk my 3 dogs daily\nUser: nice , i fish',
      "dialogue 1: the second speaker's, ending on the partner's turn",
    );

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

test("pretrainText: the other speaker's facts when one side has none; the plain block without personas", () => {
  const turns = (personas?: CorpusTurn['personas']): CorpusTurn[] =>
    ['hello', 'hi , i bake', 'what do you bake ?'].map((text, i) => ({ dialogue: 0, text, speaker: i % 2 ? 'b' : 'a', ...(personas ? { personas } : {}) }));
  assert.equal(
    pretrainText(turns({ b: ['i bake bread.'] }), 0),
    'Facts:\n1. i bake bread.\n\nDialogue:\nUser: hello\nPersona: hi , i bake\nUser: what do you bake ?',
    'side a asked, only b has facts',
  );
  assert.equal(pretrainText(turns(), 3), dialogueBlock(['hello', 'hi , i bake', 'what do you bake ?']));
});
