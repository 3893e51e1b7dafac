// Inference on a real export: a tiny model the test builds (PyTorch), exported to ONNX and run
// through transformers.js with our decoding loop; compared with PyTorch's own greedy decoding.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { bm25Select } from '../../src/core/bm25';
import { usesFact } from '../../src/core/labeller';
import { generatePrompt, selectionText, selectPrompt, selectTarget } from '../../src/core/prompts';
import { embeddedModelDir, trainerDir } from '../../src/engine/paths';
import { pythonEnvironment } from '../../src/engine/python';
import {
  chooseSelection,
  decode,
  partnerBan,
  discourageRepeats,
  encode,
  GenerationCancelled,
  generateText,
  loadModel,
  promptNgrams,
  selectThenGenerate,
  sessionOptions,
  topIndices,
  type LoadedModel,
} from '../../src/engine/inference';
import { hasTorch, python, skipWithoutTorch, wordPieceTokenizer } from './python-torch';
import fc from 'fast-check';

const skip = skipWithoutTorch('inference tests');

const personas = ['i have a dog named rex .', 'i play the trumpet in a jazz band .', 'i live by the sea .'];
const history = ['hello !', 'hi , how are you ?', 'do you play an instrument ?'];
const input = { personas, history };

const dir = mkdtempSync(path.join(os.tmpdir(), 'pal-inference-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let model: LoadedModel;
let pytorchGreedy: number[][];
const prompts = [selectPrompt(input), generatePrompt(input, 1)];

before(async () => {
  if (!hasTorch) return;
  const words = [...new Set(prompts.flatMap((p) => p.split(/\s+/)).filter(Boolean)), 'none', ...'abcdefghijklmnopqrstuvwxyz'.split('')];
  const { tokenizer, config, size } = wordPieceTokenizer(words);
  mkdirSync(path.join(dir, 'hf'), { recursive: true });
  writeFileSync(path.join(dir, 'hf', 'tokenizer.json'), JSON.stringify(tokenizer));
  writeFileSync(path.join(dir, 'hf', 'tokenizer_config.json'), JSON.stringify(config));
  // Token ids as transformers.js gives them, for PyTorch's reference decoding.
  const tf = await import('@huggingface/transformers');
  const tok = await tf.AutoTokenizer.from_pretrained(path.join(dir, 'hf'), { local_files_only: true });
  const ids = prompts.map((p) => Array.from(tok.encode(p, { add_special_tokens: false }) as number[]));
  const out = execFileSync(python, [path.join(trainerDir(), 'tests', 'make_tiny_export.py'), String(size), '2', dir, JSON.stringify(ids), '12'], {
    env: pythonEnvironment(),
    encoding: 'utf8',
  });
  pytorchGreedy = JSON.parse(out.trim().split('\n').pop()!).greedy;
  model = await loadModel(path.join(dir, 'onnx'));
});

test('greedy decoding through transformers.js gives exactly PyTorch’s tokens', { skip }, async () => {
  assert.equal(model.device, 'cpu');
  assert.equal(model.trainedForSelect, false, 'no pal.json: not trained on select');
  for (let i = 0; i < prompts.length; i++) {
    const { tokens } = await generateText(model, prompts[i]!, { maxNewTokens: 12 });
    assert.deepEqual(tokens, pytorchGreedy[i], `prompt ${i}`);
  }
  // A width-1 beam search is greedy.
  const beam1 = await generateText(model, prompts[1]!, { maxNewTokens: 12, numBeams: 1 });
  assert.deepEqual(beam1.tokens, pytorchGreedy[1]);
});

test('beam search is deterministic and returns a continuation', { skip }, async () => {
  const a = await generateText(model, prompts[1]!, { maxNewTokens: 6, numBeams: 3 });
  const b = await generateText(model, prompts[1]!, { maxNewTokens: 6, numBeams: 3 });
  assert.deepEqual(a.tokens, b.tokens);
  assert.ok(a.tokens.length > 0);
});

test('sampling is reproducible with a seed; tokens stream as text; cancelling stops between tokens', { skip }, async () => {
  const s1 = await generateText(model, prompts[1]!, { maxNewTokens: 10, temperature: 1, seed: 3 });
  const s2 = await generateText(model, prompts[1]!, { maxNewTokens: 10, temperature: 1, seed: 3 });
  assert.deepEqual(s1.tokens, s2.tokens);
  const pieces: string[] = [];
  const streamed = await generateText(model, prompts[1]!, { maxNewTokens: 10, onText: (p) => pieces.push(p) });
  assert.ok(pieces.length > 1, 'more than one piece arrived');
  assert.equal(pieces.join('').trim(), streamed.text);
  const controller = new AbortController();
  await assert.rejects(
    generateText(model, prompts[1]!, { maxNewTokens: 10, signal: controller.signal, onText: () => controller.abort() }),
    (err: Error) => err instanceof GenerationCancelled,
  );
});

test('select then generate: the selected persona (retrieval here, labelled) is the one highlighted', { skip }, async () => {
  const r = await selectThenGenerate(model, input, { maxNewTokens: 8 });
  assert.equal(r.selectionSource, 'retrieval');
  assert.equal(r.selected, bm25Select(personas, history.at(-1)!).index);
  assert.equal(r.selected, 1, 'the trumpet sentence answers "do you play an instrument ?"');
  assert.equal(r.generatePrompt, generatePrompt(input, 1));
  assert.match(r.generatePrompt, /Using: 2\. i play the trumpet in a jazz band \./);
  // Asked to use the model's own selection, the prompt highlights whatever the model answered.
  const m = await selectThenGenerate(model, input, { maxNewTokens: 8, selection: 'model' });
  assert.equal(m.selectionSource, 'model');
  assert.equal(typeof m.selectAnswer, 'string');
  assert.ok(m.generatePrompt.includes(`Using: ${selectionText(personas, m.selected)}\n`));
  assert.ok(encode(model, m.generatePrompt).length > 0);
});

test('a missing or damaged model folder is named, with the file and what to do', async () => {
  const source = embeddedModelDir();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pal-damaged-'));
  const folder = (name: string, change: (dir: string) => void) => {
    const dir = path.join(tmp, name);
    mkdirSync(path.join(dir, 'onnx'), { recursive: true });
    for (const f of [
      'config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'generation_config.json',
      'pal.json',
      'model.safetensors',
      path.join('onnx', 'model.onnx'),
    ]) {
      if (existsSync(path.join(source, f))) symlinkSync(path.join(source, f), path.join(dir, f));
    }
    change(dir);
    return dir;
  };
  try {
    await assert.rejects(loadModel(path.join(tmp, 'nowhere')), /nowhere: no such model folder\. A model for inference is a folder with onnx\/model\.onnx/);
    await assert.rejects(
      loadModel(folder('weights-only', (d) => rmSync(path.join(d, 'onnx', 'model.onnx')))),
      /weights-only lacks onnx\/model\.onnx\. It holds PyTorch weights .*use the run's exported model folder/,
    );
    const cut = folder('cut-onnx', (d) => {
      rmSync(path.join(d, 'onnx', 'model.onnx'));
      writeFileSync(path.join(d, 'onnx', 'model.onnx'), readFileSync(path.join(source, 'onnx', 'model.onnx')).subarray(0, 1000));
    });
    await assert.rejects(loadModel(cut), /cut-onnx\/onnx\/model\.onnx could not be read \(.*\): the model folder is damaged\. Export it again/);
    const badTokenizer = folder('bad-tokenizer', (d) => {
      rmSync(path.join(d, 'tokenizer.json'));
      writeFileSync(path.join(d, 'tokenizer.json'), '{"model": ');
    });
    await assert.rejects(loadModel(badTokenizer), /bad-tokenizer\/tokenizer\.json could not be read .*the model folder is damaged/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('a hub id is never fetched unless the user allowed the hub: it is a missing local folder', async () => {
  const cwd = process.cwd();
  const here = mkdtempSync(path.join(os.tmpdir(), 'pal-nohub-'));
  process.chdir(here);
  try {
    await assert.rejects(loadModel('someone/tiny-model'), /someone\/tiny-model: no such model folder/);
  } finally {
    process.chdir(cwd);
    rmSync(here, { recursive: true, force: true });
  }
});

test('a reply with no tokens is the empty text, greedy or beam (a model that ends at once crashed pal demo)', async () => {
  const m = await loadModel(embeddedModelDir());
  const prompt = generatePrompt({ personas: ['i keep a lighthouse .'], history: ['hello !'] }, 0);
  for (const numBeams of [1, 3]) assert.equal((await generateText(m, prompt, { maxNewTokens: 0, numBeams })).text, '', `${numBeams} beams`);
  assert.equal(decode(m, []), '');
});

test('a model folder given by a relative path is read from the current folder', async () => {
  const cwd = process.cwd();
  process.chdir(path.dirname(embeddedModelDir()));
  try {
    const m = await loadModel(path.basename(embeddedModelDir()));
    assert.equal(m.folder, embeddedModelDir());
  } finally {
    process.chdir(cwd);
  }
});

test('select then generate computes the shared persona and dialogue blocks once, and answers exactly as two separate prompts do', async () => {
  const m = await loadModel(embeddedModelDir());
  const personas = ['i keep a lighthouse .', 'my cat is called tern .', 'i bake bread every morning .', 'i write to my sister in lisbon .'];
  for (const history of [['do you have pets ?'], ['hello !', 'hi , who are you ?', 'what do you eat ?'], ['are you scared of storms ?']]) {
    const both = await selectThenGenerate(m, { personas, history }, { maxNewTokens: 24 });
    // The same two prompts, each computed from its first token.
    const choice = await chooseSelection(m, selectPrompt({ personas, history }), personas);
    assert.ok(choice, "the embedded model's answers tokenize apart");
    assert.equal(both.selected, choice.selected, 'the selection');
    assert.deepEqual(both.selectProbabilities, choice.probabilities);
    assert.equal(both.selectAnswer, selectionText(personas, choice.selected));
    assert.equal(both.generatePrompt, generatePrompt({ personas, history }, choice.selected));
    const alone = await generateText(m, both.generatePrompt, { maxNewTokens: 24, stopAtNewline: true });
    assert.equal(both.response, alone.text, `the reply to ${history.at(-1)}`);
    assert.ok(both.response.length > 0);
  }
});

test('a history too long for the model: select and generate keep the same last turns, the reply fits, and it is the reply the prompts alone give', async () => {
  const m = await loadModel(embeddedModelDir());
  const personas = ['i keep a lighthouse .', 'my cat is called tern .', 'i bake bread every morning .', 'i write to my sister in lisbon .'];
  const turns = [
    'hello !',
    'hi , who are you ?',
    'i keep the light on the point .',
    'is it lonely out there ?',
    'my cat keeps me company .',
    'what is its name ?',
  ];
  const history = Array.from({ length: 24 }, (_, i) => turns[i % turns.length]!);
  const both = await selectThenGenerate(m, { personas, history }, { maxNewTokens: 24 });
  // The turns the generate prompt kept: the select prompt must have seen exactly these (one fit
  // for both, so the generate prompt reuses the select prompt's cache up to its last lines).
  const kept = [...Array(history.length).keys()]
    .map((k) => history.slice(k))
    .find((h) => generatePrompt({ personas, history: h }, both.selected) === both.generatePrompt);
  assert.ok(kept && kept.length < history.length, 'the history was trimmed from its start');
  assert.ok(encode(m, both.generatePrompt).length + 24 <= m.maxLength, 'the prompt and the reply fit');
  const choice = await chooseSelection(m, selectPrompt({ personas, history: kept }), personas);
  assert.ok(choice);
  assert.deepEqual(both.selectProbabilities, choice.probabilities, 'the select prompt kept the same turns');
  const alone = await generateText(m, both.generatePrompt, { maxNewTokens: 24, stopAtNewline: true });
  assert.equal(both.response, alone.text);
});

test("a small model's operators run on one CPU thread, a large one's on ONNX Runtime's default, the GPU's untouched", () => {
  assert.deepEqual(sessionOptions(embeddedModelDir(), 'cpu'), { session_options: { intraOpNumThreads: 1 } });
  assert.deepEqual(sessionOptions(embeddedModelDir(), 'cuda'), {});
  const large = mkdtempSync(path.join(os.tmpdir(), 'pal-large-'));
  try {
    mkdirSync(path.join(large, 'onnx'));
    writeFileSync(path.join(large, 'onnx', 'model.onnx'), 'graph');
    // Weights in an external data file count too (a sparse file: nothing is written).
    execFileSync('truncate', ['-s', '64M', path.join(large, 'onnx', 'model.onnx_data')]);
    assert.deepEqual(sessionOptions(large, 'cpu'), {});
  } finally {
    rmSync(large, { recursive: true, force: true });
  }
});

/** log P(answer | prompt) from one forward pass over prompt + answer, no cache: the oracle. */
async function answerLogProb(m: LoadedModel, prompt: string, answer: string): Promise<number> {
  const promptIds = encode(m, prompt);
  const ids = encode(m, prompt + answer);
  const tensor = (row: number[]) => new m.tf.Tensor('int64', BigInt64Array.from(row.map(BigInt)), [1, row.length]);
  const out = await m.model.forward({ input_ids: tensor(ids), attention_mask: tensor(ids.map(() => 1)) });
  const [, , vocab] = out.logits.dims as [number, number, number];
  const logits = out.logits.data as Float32Array;
  let total = 0;
  for (let t = promptIds.length; t < ids.length; t++) {
    const row = logits.subarray((t - 1) * vocab, t * vocab);
    const top = Math.max(...row);
    const logZ = top + Math.log(row.reduce((a, x) => a + Math.exp(x - top), 0));
    total += row[ids[t]!]! - logZ;
  }
  return total;
}

test('the select answer is scored over its closed set of choices exactly as whole-sequence scoring gives them, and names a fact only when facts outweigh "none"', async () => {
  const m = await loadModel(embeddedModelDir());
  const cases: [string[], string[]][] = [
    [['i keep a lighthouse .', 'my cat is called tern .', 'i bake bread every morning .'], ['do you have pets ?']],
    [
      ['i am a nurse .', 'i have two sons .', 'i love jazz music .', 'i live in ohio .', 'i drive a red truck .'],
      ['hi there !', 'hello , what do you do for work ?'],
    ],
    [['i like to ski .'], ['what is your favorite sport ?']],
  ];
  for (const [personas, history] of cases) {
    const prompt = selectPrompt({ personas, history });
    const choice = await chooseSelection(m, prompt, personas);
    assert.ok(choice);
    const { none, facts } = choice.probabilities;
    assert.equal(facts.length, personas.length);
    assert.ok(Math.abs(none + facts.reduce((a, b) => a + b, 0) - 1) < 1e-9, 'the probabilities sum to 1');
    // The oracle: each answer's decisive start ("none", "k.") scored on its own, softmaxed.
    const starts = [-1, ...personas.map((_, k) => k)].map((k) => (k < 0 ? selectTarget(personas, k) : /^\s*\d+\./.exec(selectTarget(personas, k))![0]));
    const scores = await Promise.all(starts.map((a) => answerLogProb(m, prompt, a)));
    const top = Math.max(...scores);
    const expected = scores.map((x) => Math.exp(x - top) / scores.reduce((a, y) => a + Math.exp(y - top), 0));
    [none, ...facts].forEach((p, i) => assert.ok(Math.abs(p - expected[i]!) < 1e-4, `choice ${i}: ${p} vs ${expected[i]}`));
    const named = facts.reduce((a, b) => a + b, 0);
    assert.equal(choice.selected, named > none ? facts.indexOf(Math.max(...facts)) : -1);
  }
});

test('the repetition penalty scales the logits of tokens the response holds; no-repeat n-grams ban the token that would repeat one', () => {
  const logits = Float32Array.from([2, -2, 1, 4, 0.5, 3]);
  discourageRepeats(logits, 0, 6, [0, 1, 0], { repetitionPenalty: 2 });
  // Positive logits are divided, negative ones multiplied (each token once, however often it came).
  assert.deepEqual([...logits], [1, -4, 1, 4, 0.5, 3]);

  // Response 3 5 2 3 5: the last two tokens (3 5) came before, followed by 2, so 2 is banned.
  const row = Float32Array.from([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
  discourageRepeats(row, 7, 6, [3, 5, 2, 3, 5], { noRepeatNgramSize: 3 });
  assert.deepEqual([...row], [0, 0, 0, 0, 0, 0, 0, 1, 1, -Infinity, 1, 1, 1], 'only the second row, and only token 2');
  // Size 1: every token of the response is banned; off (0 or absent) changes nothing.
  const one = Float32Array.from([1, 1, 1, 1]);
  discourageRepeats(one, 0, 4, [1, 3], { noRepeatNgramSize: 1 });
  assert.deepEqual([...one], [1, -Infinity, 1, -Infinity]);
  const off = Float32Array.from([1, 2, 3]);
  discourageRepeats(off, 0, 3, [0, 1, 2, 0, 1], { noRepeatNgramSize: 0, repetitionPenalty: 1 });
  assert.deepEqual([...off], [1, 2, 3]);
});

test('with no_repeat_ngram_size the embedded model never repeats a 3-token run in a reply, greedy and beam alike', async () => {
  const m = await loadModel(embeddedModelDir());
  const prompt = generatePrompt({ personas: ['i keep a lighthouse .', 'i bake bread every morning .'], history: ['what do you do all day ?'] }, 0);
  const repeats = (tokens: number[]) => {
    const seen = new Set<string>();
    let count = 0;
    for (let i = 0; i + 3 <= tokens.length; i++) {
      const key = tokens.slice(i, i + 3).join(',');
      if (seen.has(key)) count++;
      seen.add(key);
    }
    return count;
  };
  // Without the ban this greedy reply loops; the test is only meaningful if it does.
  const plain = await generateText(m, prompt, { maxNewTokens: 60 });
  assert.ok(repeats(plain.tokens) > 0, `the plain greedy reply repeats itself: ${plain.text}`);
  for (const numBeams of [1, 3]) {
    const curbed = await generateText(m, prompt, { maxNewTokens: 60, noRepeatNgramSize: 3, numBeams });
    assert.equal(repeats(curbed.tokens), 0, `beams ${numBeams}: ${curbed.text}`);
    assert.ok(curbed.tokens.length > 0);
  }
  const penalised = await generateText(m, prompt, { maxNewTokens: 60, repetitionPenalty: 1.5 });
  assert.ok(repeats(penalised.tokens) < repeats(plain.tokens), `the penalty repeats less: ${penalised.text}`);
});

test('no-repeat n-grams with the prompt counted ban what Hugging Face bans on the whole sequence, prompt and reply', () => {
  // Hugging Face's NoRepeatNGramLogitsProcessor on a decoder-only model sees prompt + reply as one
  // sequence: the token after every earlier occurrence of its last n-1 tokens is banned.
  const bannedOnWhole = (seq: readonly number[], n: number) => {
    const banned = new Set<number>();
    if (seq.length < n - 1) return banned;
    const last = seq.slice(seq.length - n + 1).join(',');
    for (let i = 0; i + n <= seq.length; i++) if (seq.slice(i, i + n - 1).join(',') === last) banned.add(seq[i + n - 1]!);
    return banned;
  };
  const vocab = 6;
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: vocab - 1 }), { minLength: 1, maxLength: 30 }),
      fc.array(fc.integer({ min: 0, max: vocab - 1 }), { maxLength: 12 }),
      fc.integer({ min: 1, max: 4 }),
      (prompt, reply, n) => {
        const row = new Float32Array(vocab).fill(1);
        discourageRepeats(row, 0, vocab, reply, { noRepeatNgramSize: n }, promptNgrams(prompt, n));
        const got = [...row.keys()].filter((i) => row[i] === -Infinity);
        assert.deepEqual(
          got,
          [...bannedOnWhole([...prompt, ...reply], n)].sort((a, b) => a - b),
        );
      },
    ),
    { numRuns: 1000 },
  );
  // The reply's first token: the prompt ends 4 5, and "4 5 2" is in the prompt, so 2 is banned;
  // without the prompt nothing is (the reply has no tokens yet).
  const first = new Float32Array(6).fill(1);
  discourageRepeats(first, 0, 6, [], { noRepeatNgramSize: 3 }, promptNgrams([4, 5, 2, 0, 4, 5], 3));
  assert.deepEqual([...first], [1, 1, -Infinity, 1, 1, 1]);
  const alone = new Float32Array(6).fill(1);
  discourageRepeats(alone, 0, 6, [], { noRepeatNgramSize: 3 });
  assert.deepEqual([...alone], [1, 1, 1, 1, 1, 1]);
});

test("with noRepeatNgramFrom 'prompt' the embedded model copies no n tokens running from its prompt, greedy and beam alike", async () => {
  const m = await loadModel(embeddedModelDir());
  const prompt = generatePrompt(
    { personas: ['i keep a lighthouse .', 'i bake bread every morning .'], history: ['I love to cook pasta . what do you like to do ?'] },
    -1,
  );
  const promptIds = encode(m, prompt);
  // Pairs of tokens: this small model copies few runs of 3 from its prompt, but many of 2 ("to cook").
  const n = 2;
  const copied = (tokens: number[]) => {
    const whole = [...promptIds, ...tokens];
    const seen = new Set<string>();
    let count = 0;
    for (let i = 0; i + n <= whole.length; i++) {
      const key = whole.slice(i, i + n).join(',');
      if (i + n > promptIds.length && seen.has(key)) count++;
      seen.add(key);
    }
    return count;
  };
  for (const numBeams of [1, 3]) {
    // The test means something only if the reply copies its prompt when the prompt is not counted.
    const replyOnly = await generateText(m, prompt, { maxNewTokens: 30, noRepeatNgramSize: n, numBeams });
    assert.ok(copied(replyOnly.tokens) > 0, `beams ${numBeams}: the reply copies its prompt: ${replyOnly.text}`);
    const counted = await generateText(m, prompt, { maxNewTokens: 30, noRepeatNgramSize: n, noRepeatNgramFrom: 'prompt', numBeams });
    assert.equal(copied(counted.tokens), 0, `beams ${numBeams}: ${counted.text}`);
    assert.ok(counted.tokens.length > 0);
  }
});

test("with noRepeatNgramFrom 'partner' a reply copies no n tokens of the partner's turns; the facts' and its own earlier words are not banned", async () => {
  const m = await loadModel(embeddedModelDir());
  const turn = 'I love to cook pasta . what do you like to do ?';
  const facts = ['i love to cook pasta .', 'i bake bread every morning .'];
  const n = 2;
  const ngrams = (ids: readonly number[]) => new Set(ids.slice(0, ids.length - n + 1).map((_, i) => ids.slice(i, i + n).join(',')));
  const fromTurn = new Set([...ngrams(encode(m, turn)), ...ngrams(encode(m, ` ${turn}`))]);
  const copies = (text: string, from: Set<string>) => [...ngrams(encode(m, text))].filter((g) => from.has(g)).length;
  const reply = async (noRepeatNgramFrom?: 'partner') =>
    (
      await selectThenGenerate(
        m,
        { personas: facts, history: [turn] },
        {
          maxNewTokens: 30,
          noRepeatNgramSize: n,
          selection: { highlight: 0 },
          ...(noRepeatNgramFrom ? { noRepeatNgramFrom } : {}),
        },
      )
    ).response;
  // Only meaningful if the reply parrots the turn when the ban counts the reply alone.
  const plain = await reply();
  assert.ok(copies(plain, fromTurn) > 0, `the reply copies the turn: ${plain}`);
  const banned = await reply('partner');
  assert.equal(copies(banned, fromTurn), 0, banned);
  assert.ok(banned.length > 0);
  // What the ban holds: the partner's pairs, and none of the other fact's (only the prompt has
  // them) nor of the persona's own earlier turn.
  const own = 'i keep a lighthouse by the sea .';
  const ban = partnerBan(m, ['what is your job ?', own, turn], { noRepeatNgramSize: n, noRepeatNgramFrom: 'partner' })!;
  const held = new Set([...ban.next].flatMap(([key, next]) => next.map((id) => `${key},${id}`)));
  assert.deepEqual(
    [...fromTurn].filter((g) => !held.has(g)),
    [],
  );
  const otherFact = ngrams(encode(m, ` ${facts[1]}`));
  assert.deepEqual(
    [...otherFact].filter((g) => held.has(g) && !fromTurn.has(g)),
    [],
  );
  const firstTurn = ngrams(encode(m, ' what is your job ?'));
  assert.ok(
    [...firstTurn].some((g) => held.has(g) && !fromTurn.has(g)),
    "the partner's earlier turn is banned too",
  );
  const ownWords = ngrams(encode(m, ` ${own}`));
  assert.deepEqual(
    [...ownWords].filter((g) => held.has(g) && !fromTurn.has(g) && !firstTurn.has(g)),
    [],
    'its own earlier turn is not',
  );
  assert.equal(partnerBan(m, [turn], { noRepeatNgramSize: n }), undefined, 'reply alone by default');
  // It bans a token that starts a word, never the rest of one: cut mid-word, a copy became a word
  // that is none ("custododian").
  const [, ust] = encode(m, ' custodian');
  assert.equal(decode(m, [ust!]).startsWith(' '), false);
  assert.equal(ban.bans!(ust!), false);
  assert.equal(ban.bans!(encode(m, ' work')[0]!), true);
  assert.equal(ban.bans!(encode(m, ' .')[0]!), true);
  const row = new Float32Array(6).fill(1);
  discourageRepeats(row, 0, 6, [4], { noRepeatNgramSize: 2 }, { ...promptNgrams([4, 2, -1, 4, 3], 2), tail: [], bans: (id) => id !== 2 });
  assert.deepEqual([...row], [1, 1, 1, -Infinity, 1, 1], 'of the followers of 4 (2 and 3), only those it bans');
});

test('topIndices: the k largest, largest first, ties by position, as a full sort gives them', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: -5, max: 5 }), { minLength: 1, maxLength: 60 }), fc.integer({ min: 1, max: 8 }), (xs, k) => {
      const values = Float64Array.from(xs);
      const sorted = Array.from(values.keys())
        .sort((a, b) => values[b]! - values[a]! || a - b)
        .slice(0, k);
      assert.deepEqual(topIndices(values, k), sorted);
    }),
    { numRuns: 500 },
  );
});

test('beam search answers with a reply the model ended, and offers a reply the length limit cut only when none ended', async () => {
  const m = await loadModel(embeddedModelDir());
  const turns = ['what do you do all day ?', 'do you have any pets ?', 'where do you live ?', 'hello , how are you ?'];
  let endedSomewhere = 0;
  for (const turn of turns) {
    const prompt = generatePrompt({ personas: ['i keep a lighthouse .', 'i have a cat named tern .'], history: [turn] }, 1);
    const r = await generateText(m, prompt, { maxNewTokens: 40, noRepeatNgramSize: 3, numBeams: 3 });
    const alternatives = r.alternatives!;
    assert.deepEqual(
      alternatives.map((a) => a.score),
      alternatives.map((a) => a.score).sort((x, y) => y - x),
      'best first',
    );
    assert.equal(r.text, alternatives[0]!.text);
    if (alternatives.filter((a) => a.ended).length >= 3) {
      endedSomewhere++;
      assert.deepEqual(
        alternatives.filter((a) => !a.ended),
        [],
        `once three replies ended, no reply cut short competes with them (${turn})`,
      );
    }
    // Cut at 2 tokens, no reply ends: the cut ones are all there is, and the answer is one of them.
    const cut = await generateText(m, prompt, { maxNewTokens: 2, noRepeatNgramSize: 3, numBeams: 3 });
    assert.ok(cut.alternatives!.length > 0 && cut.alternatives!.some((a) => !a.ended), turn);
    assert.ok(cut.text.length > 0);
  }
  assert.ok(endedSomewhere > 0, 'the model ends at least one set of replies: the check above ran');
});

test('prefer: beam search answers with the best reply that ended and passes it; preferSelectedFact prefers one that uses the selected fact', async () => {
  const m = await loadModel(embeddedModelDir());
  const prompt = generatePrompt({ personas: ['i keep a lighthouse .', 'i have a cat named tern .'], history: ['do you have any pets ?'] }, 1);
  const options = { maxNewTokens: 40, noRepeatNgramSize: 3, numBeams: 3 };
  const plain = await generateText(m, prompt, options);
  const ended = plain.alternatives!.filter((a) => a.ended);
  assert.ok(ended.length >= 2, 'two replies ended');
  // Refusing the best reply gives the next one that ended, and its tokens.
  const streamed: string[] = [];
  const second = await generateText(m, prompt, { ...options, prefer: (t) => t !== plain.text, onText: (p) => streamed.push(p) });
  assert.equal(second.text, ended.find((a) => a.text !== plain.text)!.text);
  assert.equal(decode(m, second.tokens).trim(), second.text);
  assert.deepEqual(streamed, [second.text], 'the reply streamed is the one answered');
  // A preference no reply meets leaves the best one.
  assert.equal((await generateText(m, prompt, { ...options, prefer: () => false })).text, plain.text);

  // Select then generate: the first reply that ended and uses the selected fact, by pal eval's rule
  // ("do you like to cook ?", Italian food highlighted: "… but my favorite is pizza." without the
  // preference, "… but my favorite is Italian food." with it).
  const personas = ['i love italian food .', 'my favorite color is red .', 'i have a golden retriever named charlie .'];
  let differs = 0;
  for (const [turn, highlight] of [
    ['do you like to cook ?', 0],
    ['do you have any pets ?', 2],
    ['do you have any pets ?', -1],
  ] as const) {
    const input = { personas, history: [turn] };
    const top = await selectThenGenerate(m, input, { ...options, selection: { highlight } });
    const preferred = await selectThenGenerate(m, input, { ...options, selection: { highlight }, preferSelectedFact: true });
    assert.equal(preferred.selected, top.selected);
    const fact = personas[top.selected];
    const using = fact === undefined ? undefined : top.alternatives!.find((a) => a.ended && usesFact(fact, a.text));
    assert.equal(preferred.response, (using ?? top.alternatives![0]!).text, turn);
    if (preferred.response !== top.response) differs++;
  }
  assert.ok(differs > 0, 'on some turn the best reply does not use the fact and another does: the preference changed the answer');
});
