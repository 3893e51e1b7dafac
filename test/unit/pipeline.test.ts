// A whole PAL run through the engine on a tiny model the test builds: both stages, the export,
// select then generate on the result, and cancel + resume.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { records } from '../../src/core/formats/jsonl';
import { parsePairs } from '../../src/core/formats/pairs';
import { historyOnlyPrompt, selectPrompt, generatePrompt, PROMPT_TEMPLATE_VERSION, selectTarget, responseTarget } from '../../src/core/prompts';
import { loadModel, respond, selectThenGenerate } from '../../src/engine/inference';
import { knownModelNamed, resolveModelSpec } from '../../src/engine/baseModels';
import { cacheRoot, embeddedModelDir, packageRoot, trainerDir } from '../../src/engine/paths';
import type { ResolvedExample } from '../../src/core/mixture';
import { fitted, listRuns, prepareRun, runAlignment, runWithSeed, trainerWarning, type RunProgress } from '../../src/engine/pipeline';
import { acquireRunLock } from '../../src/engine/runLock';
import { checkRunPaths } from '../../src/engine/runPaths';
import { parseRunConfig } from '../../src/core/formats/runConfig';
import { pythonEnvironment } from '../../src/engine/python';
import { hasTorch, python, skipWithoutTorch, wordPieceTokenizer } from './python-torch';

const skip = skipWithoutTorch('pipeline tests');

const facts = ['i have a dog named rex .', 'i play the trumpet .', 'i live by the sea .'];
const train = [
  ['do you have pets ?', 'yes , a dog named rex .', 0],
  ['what music do you like ?', 'i play the trumpet , so jazz .', 1],
  ['where do you live ?', 'by the sea , i love it .', 2],
  ['how are you ?', 'good , thanks .', -1],
  ['is rex a good dog ?', 'the best dog .', 0],
  ['any hobbies ?', 'trumpet every evening .', 1],
  ['do you swim ?', 'yes , the sea is close .', 2],
  ['what time is it ?', 'late , i think .', -1],
] as const;

const dir = mkdtempSync(path.join(os.tmpdir(), 'pal-pipeline-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const project = path.join(dir, 'project');

before(() => {
  if (!hasTorch) return;
  mkdirSync(path.join(project, 'personas'), { recursive: true });
  writeFileSync(path.join(project, 'personas', 'sam.persona.yaml'), `id: sam\nname: Sam\nfacts:\n${facts.map((f) => `  - ${f}`).join('\n')}\n`);
  const lines = train.map(([h, r, k], i) => JSON.stringify({ id: `t${i}`, persona_id: 'sam', history: [h], response: r, persona_index: k, split: 'train' }));
  lines.push(JSON.stringify({ id: 'v1', persona_id: 'sam', history: ['do you like dogs ?'], response: 'i have rex .', persona_index: 0, split: 'valid' }));
  writeFileSync(path.join(project, 'sam.dialogues.jsonl'), `${lines.join('\n')}\n`);
  writeFileSync(
    path.join(project, 'sam.pairs.jsonl'),
    `${JSON.stringify({ prompt: 'any pets ?', chosen: 'rex , my dog .', rejected: 'no pets .', persona_ids: ['sam'], status: 'chosen', origin: 'annotated' })}\n`,
  );
  // The tiny model's word-level vocabulary covers every word the prompts and targets use.
  const texts = train.flatMap(([h, r, k]) => {
    const input = { personas: facts, history: [h] };
    return [selectPrompt(input), selectTarget(facts, k), generatePrompt(input, k), responseTarget(r), historyOnlyPrompt([h])];
  });
  texts.push(generatePrompt({ personas: facts, history: ['any pets ?'] }, 0), 'rex , my dog . no pets . none');
  const words = [...new Set(texts.flatMap((t) => t.split(/\s+/)).filter(Boolean))];
  const { tokenizer, config: tokenizerConfig, size } = wordPieceTokenizer(words);
  const base = path.join(dir, 'base');
  mkdirSync(path.join(base, 'hf'), { recursive: true });
  writeFileSync(path.join(base, 'hf', 'tokenizer.json'), JSON.stringify(tokenizer));
  writeFileSync(path.join(base, 'hf', 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
  execFileSync(python, [path.join(trainerDir(), 'tests', 'make_tiny_export.py'), String(size), '2', base, '[]', '0'], { env: pythonEnvironment() });
  const config = (name: string) =>
    `name: ${name}\nmodel:\n  base: ${path.join(base, 'hf')}\ndata:\n  dialogues: [sam.dialogues.jsonl]\n  pairs: [sam.pairs.jsonl]\n  personas: [personas]\nstage1: {epochs: 6, batch_size: 4, lr: 0.005, warmup_steps: 2}\nstage2: {epochs: 2, batch_size: 2, lr: 0.0005, warmup_steps: 0, rejected: {max_new_tokens: 8}}\ndevice: cpu\noutput: runs\nseed: 3\n`;
  writeFileSync(path.join(project, 'sam.palrun.yaml'), config('sam'));
  writeFileSync(path.join(project, 'cancel.palrun.yaml'), config('cancel').replace('epochs: 6', 'epochs: 40'));
  writeFileSync(path.join(project, 'plain.palrun.yaml'), `method: finetune\n${config('plain')}`);
  writeFileSync(
    path.join(project, 'subset.palrun.yaml'),
    config('subset').replace('rejected: {', 'examples: 3, rejected: {').replace('epochs: 6', 'epochs: 1'),
  );
});

test('a run goes through both stages, exports, and the result selects then generates with its own selection', { skip }, async () => {
  const seen: RunProgress[] = [];
  const result = await runAlignment(path.join(project, 'sam.palrun.yaml'), { python, onProgress: (p) => seen.push(p) });
  assert.equal(result.outcome, 'done');
  assert.deepEqual(result.stages, ['prepare', 'stage1', 'generate', 'stage2', 'export', 'evaluate']);
  // Before vs after on the held-out example: the base model selects by retrieval, the aligned one by itself.
  const report = JSON.parse(readFileSync(result.report!, 'utf8'));
  assert.equal(report.count, 1);
  assert.equal(typeof report.bleu1, 'number');
  assert.equal(report.baseline.count, 1);
  assert.equal(report.cScore, null, 'no NLI model: C.score is not computed, not invented');
  const before = JSON.parse(readFileSync(path.join(result.runDir, 'eval', 'predictions-before.jsonl'), 'utf8').trim());
  const after = JSON.parse(readFileSync(path.join(result.runDir, 'eval', 'predictions-after.jsonl'), 'utf8').trim());
  assert.deepEqual([before.selection_source, after.selection_source], ['retrieval', 'model']);
  assert.ok(existsSync(path.join(result.runDir, 'eval', 'report.html')));
  for (const f of ['onnx/model.onnx', 'tokenizer.json', 'config.json', 'pal.json']) assert.ok(existsSync(path.join(result.model!, f)), f);
  // Progress: steps with totals and an ETA, in stage order.
  const s1 = seen.filter((p) => p.stage === 'stage1' && p.step !== undefined);
  assert.equal(s1.at(-1)!.step, s1.at(-1)!.total);
  assert.equal(s1.at(-1)!.total, 24, '8 examples x 2 tasks / 4 a step x 6 epochs');
  assert.ok(s1.every((p) => typeof p.etaSeconds === 'number'));
  const sampled = seen.filter((p) => p.stage === 'generate' && p.step !== undefined);
  assert.deepEqual(
    [sampled.at(-1)!.step, sampled.at(-1)!.total],
    [6, 6],
    'rejection sampling reports its progress too: the 6 examples that name a persona sentence',
  );
  const s2 = seen.filter((p) => p.stage === 'stage2' && p.metrics);
  assert.ok(s2.length > 0 && 'rewards/margins' in s2[0]!.metrics!);
  // The generated pairs are a valid pairs file, annotated ones included.
  const pairs = parsePairs(readFileSync(path.join(result.runDir, 'stage2.pairs.jsonl'), 'utf8'), 'stage2.pairs.jsonl');
  const values = records(pairs).map((r) => r.value);
  assert.ok(values.some((p) => p.origin === 'annotated'));
  assert.ok(values.every((p) => typeof p.prompt === 'string' && (p.prompt as string).includes('Using:')));
  // The exported model knows it was trained on select, so selection is the model's own.
  const model = await loadModel(result.model!);
  assert.equal(model.trainedForSelect, true);
  const answer = await selectThenGenerate(model, { personas: facts, history: ['do you have pets ?'] }, { maxNewTokens: 8 });
  assert.equal(answer.selectionSource, 'model');
  assert.match(answer.generatePrompt, new RegExp(`Using: ${answer.selectedText.replace(/[.?]/g, '\\$&')}\\n`));
  const runs = await listRuns(path.join(project, 'runs'));
  assert.deepEqual(
    runs.map((r) => [r.name, r.finished]),
    [['sam', true]],
  );
});

test('a cancelled run stops cleanly and resumes where it stopped', { skip }, async () => {
  const controller = new AbortController();
  const first = await runAlignment(path.join(project, 'cancel.palrun.yaml'), {
    python,
    signal: controller.signal,
    onProgress: (p) => {
      if (p.stage === 'stage1' && p.step === 5) controller.abort();
    },
  });
  assert.equal(first.outcome, 'cancelled');
  assert.deepEqual(first.stages, ['prepare']);
  const second = await runAlignment(path.join(project, 'cancel.palrun.yaml'), { python });
  assert.equal(second.outcome, 'done');
  const steps = readFileSync(path.join(second.runDir, 'stage1', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).step);
  assert.deepEqual(
    steps,
    Array.from({ length: 160 }, (_, i) => i + 1),
    'stage 1 resumed: every step once',
  );
});

test('a missing or incomplete base model is reported in the run config’s terms, before anything is written', { skip }, async () => {
  const config = path.join(project, 'nobase.palrun.yaml');
  writeFileSync(config, `name: nobase\nmodel: {base: ${path.join(dir, 'no-such-model')}}\ndata: {dialogues: [sam.dialogues.jsonl], personas: [personas]}\n`);
  await assert.rejects(runAlignment(config, { python }), /The base model .*no-such-model does not exist \(model\.base in nobase\.palrun\.yaml\)/);
  assert.equal(existsSync(path.join(project, 'runs', 'nobase')), false, 'no run folder was created');
  mkdirSync(path.join(dir, 'half-model'), { recursive: true });
  writeFileSync(path.join(dir, 'half-model', 'config.json'), '{}');
  writeFileSync(config, `name: nobase\nmodel: {base: ${path.join(dir, 'half-model')}}\ndata: {dialogues: [sam.dialogues.jsonl], personas: [personas]}\n`);
  await assert.rejects(runAlignment(config, { python }), /lacks model\.safetensors, tokenizer\.json/);

  // Damaged or mismatched files are named, with what to do, before anything is written.
  const copy = (name: string, change: (file: string, text: string) => string) => {
    const folder = path.join(dir, name);
    mkdirSync(folder, { recursive: true });
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) {
      const from = path.join(dir, 'base', 'hf', f);
      if (existsSync(from)) writeFileSync(path.join(folder, f), f.endsWith('.json') ? change(f, readFileSync(from, 'utf8')) : readFileSync(from));
    }
    writeFileSync(config, `name: nobase\nmodel: {base: ${folder}}\ndata: {dialogues: [sam.dialogues.jsonl], personas: [personas]}\n`);
  };
  copy('cut-config', (f, t) => (f === 'config.json' ? t.slice(0, 20) : t));
  await assert.rejects(
    runAlignment(config, { python }),
    /cut-config\/config\.json \(model\.base in nobase\.palrun\.yaml\) is not valid JSON .*copy or export the model folder again/,
  );
  copy('small-vocab', (f, t) => (f === 'config.json' ? JSON.stringify({ ...JSON.parse(t), vocab_size: 5 }) : t));
  await assert.rejects(
    runAlignment(config, { python }),
    /small-vocab\/tokenizer\.json has \d+ token ids but the model in .*small-vocab embeds only 5 .*: they do not belong together/,
  );
  assert.equal(existsSync(path.join(project, 'runs', 'nobase')), false, 'still no run folder');
});

test('a corrupt state.json stops the run with its path and what to do, and is left as it was', { skip }, async () => {
  const config = path.join(project, 'corrupt.palrun.yaml');
  writeFileSync(config, readFileSync(path.join(project, 'sam.palrun.yaml'), 'utf8').replace('name: sam', 'name: corrupt'));
  const statePath = path.join(project, 'runs', 'corrupt', 'state.json');
  mkdirSync(path.dirname(statePath), { recursive: true });
  for (const [text, message] of [
    ['{"done": ["prepare", "stage1"', /state\.json:1: not valid JSON .* delete it to redo the run from the start/],
    ['{"done": ["stage9"]}', /state\.json:1: 'done' must be a list of stages \(prepare, stage1, generate, stage2, export, evaluate\)/],
  ] as const) {
    writeFileSync(statePath, text);
    await assert.rejects(runAlignment(config, { python }), message);
    assert.equal(readFileSync(statePath, 'utf8'), text);
  }
  rmSync(path.dirname(statePath), { recursive: true }); // the CLI test lists this project's runs
});

test('personas too long for the context stop the run before training, naming the example and what to do', { skip }, async () => {
  const long = Array.from({ length: 12 }, (_, i) => `i have a dog named rex and i play the trumpet by the sea number ${i} .`);
  writeFileSync(
    path.join(project, 'long.dialogues.jsonl'),
    `${JSON.stringify({ id: 'ok', personas: ['i have a dog .'], history: ['hi'], response: 'hi .', persona_index: 0, split: 'train' })}\n${JSON.stringify({ personas: long, history: ['do you have pets ?', 'yes .', 'what kind ?'], response: 'a dog named rex .', persona_index: 0, split: 'train' })}\n`,
  );
  const config = path.join(project, 'long.palrun.yaml');
  writeFileSync(config, `name: long\nmodel: {base: ${path.join(dir, 'base', 'hf')}}\ndata: {dialogues: [long.dialogues.jsonl]}\nstage1: {max_length: 64}\n`);
  await assert.rejects(
    runAlignment(config, { python }),
    /1 training example does not fit stage1\.max_length \(64 tokens\) even with only the last turn .* Shorten the facts \(or the response\), or raise stage1\.max_length in long\.palrun\.yaml:\nlong\.dialogues\.jsonl:2: 12 facts/,
  );
  assert.equal(existsSync(path.join(project, 'runs', 'long', 'stage1')), false, 'no training started');
  rmSync(path.join(project, 'runs', 'long'), { recursive: true, force: true });
});

test('bad data stops a run before training, naming the file and line', { skip }, async () => {
  const bad = path.join(project, 'bad.palrun.yaml');
  writeFileSync(
    path.join(project, 'bad.dialogues.jsonl'),
    '{"persona_id": "nobody", "history": ["hi"], "response": "x", "persona_index": -1, "split": "train"}\n',
  );
  writeFileSync(bad, `model: {base: ${path.join(dir, 'base', 'hf')}}\ndata: {dialogues: [bad.dialogues.jsonl], personas: [personas]}\n`);
  await assert.rejects(runAlignment(bad, { python }), /bad\.dialogues\.jsonl:1:1: error: example bad\.dialogues\.jsonl:1: no persona file has the id "nobody"/);
});

/** The command line, with the test's Python. */
const pal = (...args: string[]) =>
  spawnSync(process.execPath, [path.join(packageRoot(), 'dist', 'cli.js'), ...args], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, PAL_PYTHON: python },
  });

test('pal train, pal runs and pal chat: the same run from the command line', { skip }, async () => {
  const config = path.join(project, 'cli.palrun.yaml');
  // The evaluation decodes as the config says: at most 3 tokens a reply (a token is a word or less
  // with this word-level tokenizer) and, with no_repeat_ngram_size 1, no word twice.
  writeFileSync(
    config,
    `${readFileSync(path.join(project, 'sam.palrun.yaml'), 'utf8').replace('name: sam', 'name: cli').replace('epochs: 6', 'epochs: 1')}evaluation: {no_repeat_ngram_size: 1, max_new_tokens: 3}\n`,
  );
  // The base model sits outside both the current folder and the config's: refused unless allowed.
  const refused = pal('train', config);
  assert.equal(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /cli\.palrun\.yaml: model\.base points outside the workspace .* pal train --allow-outside/);
  assert.equal(existsSync(path.join(project, 'runs', 'cli')), false, 'nothing was written');
  const train = pal('train', config, '--allow-outside');
  assert.equal(train.status, 0, train.stderr);
  assert.match(train.stderr, /\[stage1\] step 4 of 4 loss [\d.]+/);
  assert.match(train.stderr, /\[stage2\] step \d+ of \d+ loss [\d.]+ margin -?[\d.]+/);
  const model = train.stdout.trim();
  assert.ok(existsSync(path.join(model, 'onnx', 'model.onnx')));
  // One held-out example: a tiny model after one epoch may end its reply at once on either side,
  // so the limits below are held to be tested (not vacuous) over both sides together.
  let words = 0;
  for (const side of ['before', 'after']) {
    const replies = readFileSync(path.join(project, 'runs', 'cli', 'eval', `predictions-${side}.jsonl`), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { prediction: string }).prediction.split(/\s+/).filter(Boolean));
    words = Math.max(words, ...replies.map((r) => r.length));
    for (const words of replies) {
      assert.ok(words.length <= 3, `${side}: "${words.join(' ')}" is longer than max_new_tokens`);
      assert.equal(new Set(words).size, words.length, `${side}: "${words.join(' ')}" repeats a word`);
    }
  }
  assert.ok(words > 1, 'some reply has words');
  const runs = pal('runs', config, '--json');
  assert.deepEqual(
    JSON.parse(runs.stdout).map((r: { name: string; finished: boolean }) => [r.name, r.finished]),
    [
      ['cancel', true],
      ['cli', true],
      ['sam', true],
    ],
  );
  const chat = pal('chat', '--model', model, '--facts', facts.join('|'), '--max-new-tokens', '6', '--json', 'do you have pets ?');
  assert.equal(chat.status, 0, chat.stderr);
  const answer = JSON.parse(chat.stdout);
  assert.equal(answer.selectionSource, 'model');
  assert.equal(typeof answer.response, 'string');
  const curbed = pal(
    'chat',
    '--model',
    model,
    '--facts',
    facts.join('|'),
    '--max-new-tokens',
    '6',
    '--repetition-penalty',
    '1.3',
    '--no-repeat-ngram',
    '2',
    '--json',
    'do you have pets ?',
  );
  assert.equal(curbed.status, 0, curbed.stderr);
  for (const [flag, value, message] of [
    ['--repetition-penalty', '0', /--repetition-penalty must be a number above 0/],
    ['--no-repeat-ngram', '1.5', /--no-repeat-ngram must be a whole number, not "1.5"/],
  ] as const) {
    const bad = pal('chat', '--model', model, '--facts', facts.join('|'), flag, value, 'hi');
    assert.equal(bad.status, 2, `${flag} ${value}`);
    assert.match(bad.stderr, message);
  }
  assert.equal(pal('train', path.join(project, 'nope.palrun.yaml')).status, 1);
});

test('method finetune is the plain fine-tuning baseline: one stage, no selection, evaluated the same way', { skip }, async () => {
  const seen: RunProgress[] = [];
  const result = await runAlignment(path.join(project, 'plain.palrun.yaml'), { python, onProgress: (p) => seen.push(p) });
  assert.equal(result.outcome, 'done');
  assert.deepEqual(result.stages, ['prepare', 'stage1', 'export', 'evaluate'], 'no rejection sampling, no DPO');
  // One plain item per example (not two tasks): 8 examples / 4 a step x 6 epochs.
  assert.equal(seen.filter((p) => p.stage === 'stage1' && p.step !== undefined).at(-1)!.total, 12);
  const items = readFileSync(path.join(result.runDir, 'stage1.tokens.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual([...new Set(items.map((i) => i.kind))], ['plain']);
  assert.deepEqual(JSON.parse(readFileSync(path.join(result.model!, 'pal.json'), 'utf8')), {
    prompt_format: 'text',
    prompt_template_version: PROMPT_TEMPLATE_VERSION,
    tasks: ['plain'],
    max_length: 512,
  });
  const after = JSON.parse(readFileSync(path.join(result.runDir, 'eval', 'predictions-after.jsonl'), 'utf8').trim());
  assert.equal(after.selection_source, 'none');
  assert.equal('selected' in after, false, 'a baseline selects nothing, so it is not scored on selection');
  const report = JSON.parse(readFileSync(result.report!, 'utf8'));
  assert.equal(report.selectionAccuracy, null);
  assert.equal(typeof report.baseline.selectionAccuracy, 'number', 'the base model before it still selects by retrieval');
  const timing = JSON.parse(readFileSync(path.join(result.runDir, 'eval', 'timing.json'), 'utf8'));
  assert.equal(timing['predictions-after'].examples, 1);
  // At inference the baseline answers from its own prompt, with no persona highlighted.
  const model = await loadModel(result.model!);
  assert.equal(model.plainOnly, true);
  const answer = await respond(model, { personas: facts, history: ['do you have pets ?'] }, { maxNewTokens: 6 });
  assert.equal(answer.selectionSource, 'none');
  assert.doesNotMatch(answer.generatePrompt, /Using:/);
  assert.match(answer.generatePrompt, /Facts:\n1\. i have a dog named rex \.[^]*\nPersona:$/);
});

test("--from-stage1: a run takes another run's stage-1 model, trains only stage 2 on it, and records where it came from", { skip }, async () => {
  const sam = await runAlignment(path.join(project, 'sam.palrun.yaml'), { python });
  assert.equal(sam.outcome, 'done');
  writeFileSync(path.join(project, 'reuse.palrun.yaml'), readFileSync(path.join(project, 'sam.palrun.yaml'), 'utf8').replace('name: sam', 'name: reuse'));
  const seen: RunProgress[] = [];
  const reuse = await runAlignment(path.join(project, 'reuse.palrun.yaml'), { python, fromStage1: sam.runDir, onProgress: (p) => seen.push(p) });
  assert.equal(reuse.outcome, 'done');
  assert.deepEqual(reuse.stages, ['prepare', 'stage1', 'generate', 'stage2', 'export', 'evaluate']);
  const weights = (run: string) => readFileSync(path.join(run, 'stage1', 'final', 'model.safetensors'));
  assert.ok(weights(reuse.runDir).equals(weights(sam.runDir)), 'the same stage-1 weights');
  assert.ok(!seen.some((p) => p.stage === 'stage1' && p.step !== undefined), 'stage 1 was not trained');
  assert.ok(!existsSync(path.join(reuse.runDir, 'stage1', 'metrics.jsonl')));
  assert.equal(JSON.parse(readFileSync(path.join(reuse.runDir, 'stage1', 'source.json'), 'utf8')).run, sam.runDir);
  assert.ok(existsSync(path.join(reuse.runDir, 'stage2', 'final')), 'stage 2 trained on it');
  // Again with the same source: a finished run, nothing to do; another source cannot replace it.
  assert.equal((await runAlignment(path.join(project, 'reuse.palrun.yaml'), { python, fromStage1: sam.runDir })).outcome, 'done');
  await assert.rejects(
    runAlignment(path.join(project, 'reuse.palrun.yaml'), { python, fromStage1: path.join(project, 'runs', 'other') }),
    /already has its stage 1 \(taken from .*sam\); --from-stage1 .*other does not replace it/,
  );
  await assert.rejects(
    runAlignment(path.join(project, 'sam.palrun.yaml'), { python, fromStage1: reuse.runDir }),
    /already has its stage 1 \(trained in this run\)/,
  );
  // What cannot be a stage 1 to take: no run there, a fine-tuning run, another base.
  writeFileSync(path.join(project, 'fresh.palrun.yaml'), readFileSync(path.join(project, 'sam.palrun.yaml'), 'utf8').replace('name: sam', 'name: fresh'));
  await assert.rejects(
    runAlignment(path.join(project, 'fresh.palrun.yaml'), { python, fromStage1: project }),
    /--from-stage1 .*: no state\.json there: not a run folder/,
  );
  writeFileSync(path.join(project, 'plain2.palrun.yaml'), readFileSync(path.join(project, 'plain.palrun.yaml'), 'utf8').replace('name: plain', 'name: plain2'));
  await assert.rejects(
    runAlignment(path.join(project, 'plain2.palrun.yaml'), { python, fromStage1: sam.runDir }),
    /a plain fine-tuning run \(method: finetune\) is its stage 1/,
  );
  const other = readFileSync(path.join(project, 'sam.palrun.yaml'), 'utf8')
    .replace('name: sam', 'name: otherbase')
    .replace(/base: .*/, 'base: pal-default');
  writeFileSync(path.join(project, 'otherbase.palrun.yaml'), other);
  await assert.rejects(
    runAlignment(path.join(project, 'otherbase.palrun.yaml'), { python, fromStage1: sam.runDir }),
    /its stage 1 was trained from .*hf, and this run's base is .*pal-default/,
  );
});

test("pal model export: a run's stage-1 model with its stage-2 LoRA adapter merged, as the studio ships models", { skip }, async () => {
  writeFileSync(
    path.join(project, 'lora.palrun.yaml'),
    readFileSync(path.join(project, 'sam.palrun.yaml'), 'utf8')
      .replace('name: sam', 'name: lora')
      .replace('warmup_steps: 0,', 'warmup_steps: 0, lora: {r: 4, alpha: 8, dropout: 0, targets: [q_proj, v_proj]},'),
  );
  const run = await runAlignment(path.join(project, 'lora.palrun.yaml'), { python });
  assert.equal(run.outcome, 'done');
  const adapter = path.join(run.runDir, 'stage2', 'final', 'adapter');
  assert.ok(existsSync(path.join(adapter, 'adapter_config.json')), 'stage 2 trained a LoRA adapter');
  const out = path.join(dir, 'exported');
  // A run's trained model has no tokenizer beside it: the export says where to find one.
  const noTokenizer = pal('model', 'export', path.join(run.runDir, 'stage1', 'final'), '--adapter', adapter, '--out', out);
  assert.equal(noTokenizer.status, 1);
  assert.match(noTokenizer.stderr, /final: no tokenizer\.json beside the model \(name the folder that has it/);
  const r = pal('model', 'export', path.join(run.runDir, 'stage1', 'final'), '--adapter', adapter, '--tokenizer', path.join(run.runDir, 'model'), '--out', out);
  assert.equal(r.status, 0, r.stderr);
  for (const f of ['onnx/model.onnx', 'model.safetensors', 'tokenizer.json', 'config.json']) assert.ok(existsSync(path.join(out, f)), f);
  // The merged weights are stage 2's (fp16 here): the adapter was merged, not dropped.
  const compare = `
import sys, torch
from pal_trainer.safetensors import load_file
a, b, s1 = (load_file(p) for p in sys.argv[1:4])
print(max((a[k].float() - b[k].float()).abs().max().item() for k in b), max((s1[k].float() - b[k].float()).abs().max().item() for k in b))`;
  const [merged, unmerged] = execFileSync(
    python,
    [
      '-c',
      compare,
      path.join(out, 'model.safetensors'),
      path.join(run.runDir, 'stage2', 'final', 'model.safetensors'),
      path.join(run.runDir, 'stage1', 'final', 'model.safetensors'),
    ],
    { env: pythonEnvironment(), encoding: 'utf8' },
  )
    .trim()
    .split(' ')
    .map(Number);
  // fp16 rounds these small weights by well under 1e-3; stage 2's LoRA moved some by more.
  assert.ok(merged! < 5e-4, `export vs stage 2 (fp16 rounding): ${merged}`);
  assert.ok(unmerged! > 2 * merged!, `stage 1 differs from stage 2 by more: ${unmerged} against ${merged}`);
  const m = await loadModel(out);
  assert.ok((await respond(m, { personas: facts, history: ['do you have pets ?'] }, { maxNewTokens: 4 })).response.length >= 0);
  // It does not replace a folder unasked, and says what is not a model.
  const again = pal('model', 'export', path.join(run.runDir, 'stage1', 'final'), '--tokenizer', path.join(run.runDir, 'model'), '--out', out);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /exported exists; --force replaces it/);
  const notModel = pal('model', 'export', project, '--out', path.join(dir, 'x'));
  assert.match(notModel.stderr, /no config\.json, so not a model folder/);
  assert.ok(!existsSync(path.join(dir, 'x')));
});

test('stage2.examples draws that many training examples for rejection sampling, the same ones every time', { skip }, async () => {
  const result = await runAlignment(path.join(project, 'subset.palrun.yaml'), { python });
  assert.equal(result.outcome, 'done');
  const prompts = readFileSync(path.join(result.runDir, 'generate.tokens.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).id);
  assert.equal(prompts.length, 3);
  const generated = readFileSync(path.join(result.runDir, 'generate', 'generated.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).id);
  assert.deepEqual(generated, prompts);
  const pairs = records(parsePairs(readFileSync(path.join(result.runDir, 'stage2.pairs.jsonl'), 'utf8'), 'x.pairs.jsonl')).map((r) => r.value);
  assert.ok(pairs.filter((p) => p.origin === 'pal-stage2').every((p) => prompts.includes(p.dialogue!.id!)));
  // Only examples that name a persona sentence are drawn (t3 and t7 answer "none").
  assert.ok(
    prompts.every((id: string) => !['t3', 't7'].includes(id)),
    prompts.join(' '),
  );
  // A rejection the model ended gets the end-of-sequence token; one cut at max_new_tokens does not.
  const ended = new Map(
    readFileSync(path.join(result.runDir, 'generate', 'generated.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .map((g) => [g.id, g.ended]),
  );
  const tokens = readFileSync(path.join(result.runDir, 'stage2.tokens.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  pairs.forEach((p, i) => {
    const eos = tokens[i].chosen.at(-1);
    if (p.origin === 'pal-stage2') assert.equal(tokens[i].rejected.at(-1) === eos, ended.get(p.dialogue!.id!), `pair ${p.dialogue!.id}`);
  });
});

test("a trainer's warning event is the run's progress, marked as a warning, once a run for each kind", () => {
  const warned = new Set<string>();
  for (const event of ['start', 'step', 'checkpoint', 'done'] as const)
    assert.equal(trainerWarning('stage1', { event, message: 'm' }, warned), undefined, event);
  const first = 'precision bf16 is emulated on this CPU: 51x';
  assert.deepEqual(trainerWarning('stage1', { event: 'warning', kind: 'emulated_bf16', message: first }, warned), {
    stage: 'stage1',
    message: first,
    warning: true,
  });
  // The next job measures the CPU again and finds another ratio: the same warning, not shown twice.
  assert.equal(
    trainerWarning('stage2', { event: 'warning', kind: 'emulated_bf16', message: 'precision bf16 is emulated on this CPU: 47x' }, warned),
    undefined,
  );
  assert.equal(trainerWarning('stage2', { event: 'warning', kind: 'other', message: 'x' }, warned)?.message, 'x');
});

test('fitted drops the oldest turns until every row fits, tokenizing each candidate once', () => {
  const ex: ResolvedExample = { id: 'e', personas: ['p'], history: ['a a a a', 'b b b', 'c c', 'd'], response: 'r', personaIndex: -1, split: 'train' };
  const calls: number[] = [];
  const encode = (x: ResolvedExample) => {
    calls.push(x.history.length);
    return [x.history.join(' ').split(' ')];
  };
  assert.deepEqual(
    fitted(ex, encode, (row) => row.length <= 6),
    [['b', 'b', 'b', 'c', 'c', 'd']],
  );
  assert.deepEqual(calls, [4, 3], 'each candidate encoded once; the rows of the last check are returned');
  calls.length = 0;
  // Nothing fits: the partner's last turn alone, encoded once more for what is returned.
  assert.deepEqual(
    fitted(ex, encode, () => false),
    [['d']],
  );
  assert.deepEqual(calls, [4, 3, 2, 1]);
});

test('model.base "pal-default" is the embedded default model, unless a folder of that name sits next to the config', () => {
  const project = mkdtempSync(path.join(os.tmpdir(), 'pal-model-name-'));
  try {
    assert.equal(resolveModelSpec(project, 'pal-default'), embeddedModelDir());
    assert.ok(existsSync(path.join(embeddedModelDir(), 'config.json')), 'the embedded model is where the name points');
    assert.equal(resolveModelSpec(project, 'models/mine'), path.join(project, 'models', 'mine'));
    mkdirSync(path.join(project, 'pal-default'));
    assert.equal(resolveModelSpec(project, 'pal-default'), path.join(project, 'pal-default'), 'a local folder wins');
    // A known pretrained base or aligned model by name: its folder in the cache, fetched or not.
    assert.equal(resolveModelSpec(project, 'smollm2-135m'), path.join(cacheRoot(), 'models', 'smollm2-135m'));
    assert.equal(knownModelNamed(project, 'pal-smollm2-135m'), 'pal-smollm2-135m');
    mkdirSync(path.join(project, 'smollm2-135m'));
    assert.equal(resolveModelSpec(project, 'smollm2-135m'), path.join(project, 'smollm2-135m'), 'a local folder wins here too');
    assert.equal(knownModelNamed(project, 'smollm2-135m'), undefined);
  } finally {
    rmSync(project, { recursive: true, force: true });
  }
});

test('a run config cannot point the trainer outside the workspace, not even through a symbolic link', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pal-confine-'));
  try {
    const ws = path.join(root, 'workspace');
    const outside = path.join(root, 'outside');
    mkdirSync(path.join(ws, 'data'), { recursive: true });
    mkdirSync(outside);
    symlinkSync(outside, path.join(ws, 'data', 'escape'));
    const configFile = path.join(ws, 'x.palrun.yaml');
    const check = (yaml: string) => {
      const config = parseRunConfig(`name: x\n${yaml}`, configFile).config!;
      return checkRunPaths(configFile, config, ws, [ws, ws]);
    };
    // Inside: data, a model folder, the output (not there yet); and the embedded model by name.
    await check('model: {base: pal-default}\ndata: {dialogues: [data]}\noutput: runs\n');
    await check('model: {base: models/mine}\ndata: {dialogues: [data/a.dialogues.jsonl]}\n');
    for (const [yaml, key] of [
      ['model: {base: ../outside}\ndata: {dialogues: [data]}\n', 'model.base'],
      [`model: {base: pal-default, tokenizer: ${outside}}\ndata: {dialogues: [data]}\n`, 'model.tokenizer'],
      ['model: {base: pal-default}\ndata: {dialogues: [data], pairs: [../outside/p.pairs.jsonl]}\n', 'data.pairs'],
      ['model: {base: pal-default}\ndata: {dialogues: [data/escape]}\n', 'data.dialogues'],
      ['model: {base: pal-default}\ndata: {dialogues: [data]}\noutput: ../outside\n', 'output'],
      ['model: {base: pal-default}\ndata: {dialogues: [data]}\noutput: data/escape/runs\n', 'output'],
    ] as const) {
      await assert.rejects(
        check(yaml),
        (err: Error) => {
          assert.match(err.message, new RegExp(`x\\.palrun\\.yaml: ${key.replace('.', '\\.')} points outside the workspace \\(${outside}`));
          assert.match(err.message, /palStudio\.runs\.allowOutsideWorkspace, or pal train --allow-outside/);
          assert.match(err.message, new RegExp(`only inside the workspace \\(${ws}\\) unless`), 'each root named once (issue 18.12)');
          return true;
        },
        yaml,
      );
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a confined run opens no data file outside the workspace: an absolute path, .., a link in a data folder (issue 18.1)', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pal-leak-'));
  try {
    const ws = path.join(root, 'workspace');
    const outside = path.join(root, 'outside');
    mkdirSync(path.join(ws, 'data'), { recursive: true });
    mkdirSync(outside);
    // Not a dialogue file: read as one, each line would be reported (and so printed) as a parse error.
    const secret = path.join(outside, 'secret.dialogues.jsonl');
    writeFileSync(secret, 'API_KEY=SECRET-TOKEN-1234\nsecond line SECRET-TOKEN-5678\n');
    writeFileSync(
      path.join(ws, 'data', 'ok.dialogues.jsonl'),
      `${JSON.stringify({ id: 'a', personas: ['i ski .'], history: ['hi'], response: 'hello .', persona_index: -1, split: 'train' })}\n`,
    );
    symlinkSync(secret, path.join(ws, 'data', 'leak.dialogues.jsonl'));
    const configFile = path.join(ws, 'x.palrun.yaml');
    for (const [dialogues, key] of [
      [secret, 'data.dialogues'],
      ['../outside/secret.dialogues.jsonl', 'data.dialogues'],
      ['data', 'data\\.dialogues \\(.*leak\\.dialogues\\.jsonl\\)'],
    ] as const) {
      writeFileSync(configFile, `name: x\nmodel: {base: pal-default}\ndata: {dialogues: [${dialogues}]}\n`);
      await assert.rejects(
        runAlignment(configFile, { python: 'python-never-started', allowedRoots: [ws] }),
        (err: Error) => {
          assert.match(
            err.message,
            new RegExp(`x\\.palrun\\.yaml: ${key.replace(/^data\.dialogues$/, 'data\\.dialogues')} points outside the workspace \\(${outside}`),
          );
          assert.doesNotMatch(err.message, /SECRET-TOKEN/);
          return true;
        },
        dialogues,
      );
    }
    // Not confined (pal train --allow-outside): the same link is read, and its lines are named as bad data.
    await assert.rejects(prepareRun(configFile), /leak\.dialogues\.jsonl:1:/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('one process per run folder: a live holder is named, a dead one is taken over, the lock goes at the end', async () => {
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'pal-lock-'));
  const lock = path.join(runDir, 'run.lock');
  try {
    const release = await acquireRunLock(runDir);
    assert.equal(JSON.parse(readFileSync(lock, 'utf8')).pid, process.pid);
    // A second taker (another window's engine) is refused while the first runs, naming it.
    await assert.rejects(acquireRunLock(runDir), new RegExp(`already being run by another PAL Studio process \\(pid ${process.pid}, since `));
    await release();
    assert.equal(existsSync(lock), false);

    // Left by a process that was killed: taken over.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    writeFileSync(lock, JSON.stringify({ pid: Number(dead), host: os.hostname(), startedAt: 'earlier' }));
    const again = await acquireRunLock(runDir);
    assert.equal(JSON.parse(readFileSync(lock, 'utf8')).pid, process.pid);
    await again();
    // Half written (killed while writing it): nobody holds it.
    writeFileSync(lock, '{"pid": 12');
    await (
      await acquireRunLock(runDir)
    )();
    // Another machine's (a shared folder): not judged from here; the message says what to do.
    writeFileSync(lock, JSON.stringify({ pid: 1, host: 'elsewhere', startedAt: 'earlier' }));
    await assert.rejects(acquireRunLock(runDir), /is being run on elsewhere \(pid 1, since earlier\)\. If that run is over, delete .*run\.lock/);
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
});

test('pal train --seed: another seed than the config’s runs under <name>-seed<N>, the config’s own seed keeps the name', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pal-seed-'));
  try {
    const example = { id: 'a', personas: ['i fish .'], history: ['hi'], response: 'i fish .', persona_index: 0, split: 'train' };
    writeFileSync(path.join(root, 'd.dialogues.jsonl'), `${JSON.stringify(example)}\n`);
    const configFile = path.join(root, 'r.palrun.yaml');
    writeFileSync(configFile, 'name: r\nmodel: {base: pal-default}\ndata: {dialogues: [d.dialogues.jsonl]}\noutput: runs\nseed: 7\n');
    const own = await prepareRun(configFile);
    assert.deepEqual([own.config.name, own.config.seed], ['r', 7]);
    const same = await prepareRun(configFile, undefined, 7);
    assert.deepEqual([same.config.name, same.config.seed], ['r', 7], 'the config’s own seed: the same run');
    const other = await prepareRun(configFile, undefined, 43);
    assert.deepEqual([other.config.name, other.config.seed], ['r-seed43', 43]);
    assert.deepEqual(other.config.stage1, own.config.stage1, 'nothing else changes');
    assert.equal(runWithSeed(own.config, undefined), own.config);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
