import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bm25Select } from '../../src/core/bm25';
import {
  annotatedPairs,
  finetuneItems,
  rejectionPrompts,
  resolveExample,
  sampleExamples,
  selectCounts,
  stage1Items,
  stage2Candidates,
  stage2Pairs,
  type ResolvedExample,
} from '../../src/core/mixture';
import {
  dialogueTurns,
  generatePrompt,
  historyOnlyPrompt,
  parseSelection,
  plainPrompt,
  responseTarget,
  selectPrompt,
  selectTarget,
  trimHistory,
  type PromptFormat,
} from '../../src/core/prompts';
import { selectionSettled } from '../../src/engine/inference';
import type { Persona } from '../../src/core/formats/types';

const personas = ['i have a dog named rex .', 'i play the trumpet in a jazz band .', 'i live by the sea .'];
const history = ['hello !', 'hi , how are you ?', 'good . do you have pets ?'];

test('templates: numbered personas, speaker tags counted back from the partner’s last turn', () => {
  assert.equal(
    selectPrompt({ personas, history }),
    "Facts:\n1. i have a dog named rex .\n2. i play the trumpet in a jazz band .\n3. i live by the sea .\n\nDialogue:\nUser: hello !\nPersona: hi , how are you ?\nUser: good . do you have pets ?\n\nWhich fact does Persona's next reply use?\nAnswer:",
  );
  assert.equal(selectTarget(personas, 0), ' 1. i have a dog named rex .');
  assert.equal(selectTarget(personas, -1), ' none');
  assert.match(generatePrompt({ personas, history }, 1), /\n\nUsing: 2\. i play the trumpet in a jazz band \.\nPersona:$/);
  assert.match(generatePrompt({ personas, history }, -1), /\n\nUsing: none\nPersona:$/);
  assert.equal(historyOnlyPrompt(['hi there']), 'Dialogue:\nUser: hi there\n\nPersona:');
  assert.ok(!historyOnlyPrompt(history).includes('dog'), 'no persona in the history-only prompt');
});

test('a select answer is read back into an index', () => {
  assert.equal(parseSelection(' 2. i play the trumpet in a jazz band .', personas), 1);
  assert.equal(parseSelection('3', personas), 2);
  assert.equal(parseSelection(' none', personas), -1);
  assert.equal(parseSelection('i live by the sea . and more', personas), 2);
  assert.equal(parseSelection('7. something', personas), -1, 'out of range is none');
  assert.equal(parseSelection('banana', personas), -1);
});

test('stage 1 is a 1:1 mixture of select and generate items with the gold persona highlighted', () => {
  const ex = resolveExample({ id: 'e1', personas, history, response: 'yes , a dog called rex .', persona_index: 0, split: 'train' }, 'x', new Map());
  const items = stage1Items([ex, { ...ex, id: 'e2', personaIndex: -1 }]);
  assert.deepEqual(
    items.map((i) => i.kind),
    ['select', 'generate', 'select', 'generate'],
  );
  assert.equal(items[0]!.target, ' 1. i have a dog named rex .');
  assert.match(items[1]!.prompt, /Using: 1\. i have a dog named rex \./);
  assert.equal(items[1]!.target, ' yes , a dog called rex .');
  assert.equal(items[2]!.target, ' none');
  assert.match(items[3]!.prompt, /Using: none/);
});

test('persona ids are looked up; an unknown one names the example', () => {
  const mara: Persona = { id: 'mara', name: 'Mara', facts: ['i keep a lighthouse .'] };
  const ex = resolveExample(
    { id: 'm1', persona_id: 'mara', history: ['hi'], response: 'hello .', persona_index: -1, split: 'train' },
    'x',
    new Map([['mara', mara]]),
  );
  assert.deepEqual(ex.personas, mara.facts);
  assert.throws(
    () => resolveExample({ persona_id: 'nobody', history: ['hi'], response: 'x', persona_index: -1, split: 'train' }, 'line 4', new Map()),
    /example line 4: no persona file has the id "nobody"/,
  );
});

test('stage 2: history-only prompts, pairs under the generate prompt, useless samples dropped, writers’ pairs joined', () => {
  const ex = resolveExample({ id: 'e1', personas, history, response: 'yes , rex the dog .', persona_index: 0, split: 'train' }, 'x', new Map());
  assert.deepEqual(rejectionPrompts([ex]), [{ id: 'e1', prompt: historyOnlyPrompt(history) }]);
  const sample = (text: string, ended = true) => ({ text, ended });
  const pairs = stage2Pairs(
    [ex, { ...ex, id: 'e2' }, { ...ex, id: 'e3' }, { ...ex, id: 'e4' }],
    new Map([
      ['e1', sample('no pets here .')],
      ['e2', sample(' Yes , rex the dog . ')],
      ['e3', sample('')],
      ['e4', sample('i have no pets and i', false)],
    ]),
  );
  assert.deepEqual(
    pairs.map((p) => [p.id, p.rejectedCut]),
    [
      ['e1', undefined],
      ['e4', true],
    ],
  );
  // Only examples that name a persona sentence give stage 2 pairs; all of them when none does.
  const unnamed = { ...ex, id: 'e5', personaIndex: -1 };
  assert.deepEqual(
    stage2Candidates([ex, unnamed]).map((x) => x.id),
    ['e1'],
  );
  assert.deepEqual(
    stage2Candidates([unnamed]).map((x) => x.id),
    ['e5'],
  );
  assert.equal(pairs[0]!.prompt, generatePrompt(ex, 0));
  assert.deepEqual([pairs[0]!.chosen, pairs[0]!.rejected], [' yes , rex the dog .', ' no pets here .']);
  const mara: Persona = { id: 'mara', name: 'Mara', facts: ['i keep a lighthouse .', 'my cat is named tern .'] };
  const written = annotatedPairs(
    [
      { prompt: 'any pets ?', chosen: 'just tern , my cat .', rejected: 'no .', persona_ids: ['mara'], status: 'chosen' },
      { prompt: 'x', chosen: 'a', rejected: 'b', status: 'pending' },
      { prompt: 'x', chosen: 'same', rejected: 'same' },
    ],
    new Map([['mara', mara]]),
  );
  assert.equal(written.length, 1);
  assert.equal(written[0]!.origin, 'annotated');
  assert.match(written[0]!.prompt, /Using: 2\. my cat is named tern \./);
});

test('BM25 picks the sentence that matches the last turn, or none', () => {
  assert.equal(bm25Select(personas, 'do you play any instruments , like the trumpet ?').index, 1);
  assert.equal(bm25Select(personas, 'what is your favourite colour ?').index, -1);
  const { scores } = bm25Select(personas, 'dog dog rex');
  assert.ok(scores[0]! > 0 && scores[1] === 0 && scores[2] === 0);
});

test('the plain fine-tuning baseline: persona and dialogue straight to the reply, one item per example', () => {
  const prompt = plainPrompt({ personas, history });
  assert.equal(prompt, selectPrompt({ personas, history }).replace(/\n\nWhich fact[^]*$/, '\n\nPersona:'));
  assert.doesNotMatch(prompt, /Using:/);
  const ex = resolveExample({ id: 'e', personas, history, response: 'yes , rex .', persona_index: 0, split: 'train' }, 'x', new Map());
  assert.deepEqual(
    finetuneItems([ex, { ...ex, id: 'f' }]).map((i) => [i.kind, i.exampleId, i.target]),
    [
      ['plain', 'e', ' yes , rex .'],
      ['plain', 'f', ' yes , rex .'],
    ],
  );
});

test('sampleExamples draws a seeded subset without repeats, kept in the original order', () => {
  const all = Array.from({ length: 100 }, (_, i) => i);
  const a = sampleExamples(all, 10, 42);
  assert.equal(a.length, 10);
  assert.equal(new Set(a).size, 10);
  assert.deepEqual(
    a,
    [...a].sort((x, y) => x - y),
  );
  assert.deepEqual(sampleExamples(all, 10, 42), a, 'the same seed draws the same subset');
  assert.notDeepEqual(sampleExamples(all, 10, 43), a);
  assert.ok(a.at(-1)! - a[0]! > 50, 'the draw spans the list rather than taking its start');
  assert.deepEqual(sampleExamples(all, undefined, 1), all);
  assert.deepEqual(sampleExamples(all, 500, 1), all);
});

test('a select answer is settled once its number (or none) is out, which is all parseSelection reads', () => {
  for (const t of ['2.', '2. i play', ' 10)', 'none', 'None of them']) assert.equal(selectionSettled(t), true, t);
  for (const t of ['', '2', ' 1', 'no', 'i play']) assert.equal(selectionSettled(t), false, t);
  assert.equal(parseSelection('2.', personas), parseSelection('2. i play the trumpet in a jazz band .', personas));
});

test('trimHistory drops the oldest turns until the prompt fits, never the personas or the last turn', () => {
  const input = { personas, history: ['a b c d', 'e f g', 'h i', 'do you have pets ?'] };
  const words = (x: typeof input) => selectPrompt(x).split(/\s+/).length;
  assert.equal(
    trimHistory(input, () => true),
    input,
    'a prompt that fits is left alone',
  );
  const limit = words(input) - 6; // each turn is its words plus a speaker tag
  const trimmed = trimHistory(input, (x) => words(x) <= limit);
  assert.deepEqual(trimmed.history, ['h i', 'do you have pets ?'], 'the two oldest turns (5 + 4 words with their tags) go, no more');
  assert.deepEqual(trimmed.personas, personas);
  // Speaker tags are counted back from the last turn, so they stay right after trimming.
  assert.match(selectPrompt(trimmed), /Dialogue:\nPersona: h i\nUser: do you have pets \?/);
  assert.deepEqual(trimHistory(input, () => false).history, ['do you have pets ?'], 'the last turn always stays');
  const one = { personas, history: ['hi'] };
  assert.equal(
    trimHistory(one, () => false),
    one,
  );
});

test('select_none_max replaces extra "none" select items by repeats of named ones, keeping select and generate 1:1', () => {
  const ex = (id: string, personaIndex: number) =>
    ({ id, personas: ['a .', 'b .'], history: ['hi'], response: 'r', personaIndex }) as unknown as ResolvedExample;
  // 3 naming a fact, 8 answering none.
  const examples = [ex('p1', 0), ex('p2', 1), ex('p3', 0), ...Array.from({ length: 8 }, (_, i) => ex(`n${i}`, -1))];
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  assert.ok(
    [...selectCounts(examples, undefined, 1).values()].every((n) => n === 1),
    'absent: one each, as PAL does',
  );
  const half = selectCounts(examples, 0.5, 1);
  assert.equal(sum(half), examples.length, 'as many select items as generate items');
  const noneKept = examples.filter((e) => e.id.startsWith('n') && half.get(e.id) === 1).length;
  assert.equal(noneKept, 5, 'floor(0.5 * 11) "none" items stay');
  assert.ok(examples.filter((e) => e.id.startsWith('n')).every((e) => [0, 1].includes(half.get(e.id)!)));
  // The other 6 places: two each for the 3 named examples.
  assert.deepEqual(
    ['p1', 'p2', 'p3'].map((id) => half.get(id)),
    [2, 2, 2],
  );
  assert.deepEqual(selectCounts(examples, 0.5, 1), half, 'the same seed, the same items');
  assert.notDeepEqual(selectCounts(examples, 0.5, 2), half, 'another seed, others');
  assert.ok(
    [...selectCounts(examples, 0.9, 1).values()].every((n) => n === 1),
    'already below the limit',
  );
  // An uneven split: 7 places over 3 named examples = 3, 2, 2 in some seeded order.
  const uneven = selectCounts(examples, 0.4, 1);
  assert.equal(sum(uneven), examples.length);
  assert.deepEqual(['p1', 'p2', 'p3'].map((id) => uneven.get(id)).sort(), [2, 2, 3]);
  // No example names a fact: nothing to repeat, every item stays.
  assert.ok([...selectCounts(examples.slice(3), 0.5, 1).values()].every((n) => n === 1));
});

// A ChatML renderer, as SmolLM2's template writes it (a default system message when none opens).
const chatml: PromptFormat = {
  kind: 'chat',
  render: (messages) =>
    (messages[0]?.role === 'system' ? '' : '<|im_start|>system\nYou are a helpful AI assistant<|im_end|>\n') +
    messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') +
    '<|im_start|>assistant\n',
};

test('chat format: facts open the conversation, the dialogue is user/assistant turns, the task closes it', () => {
  const select = selectPrompt({ personas, history }, chatml);
  assert.equal(
    select,
    '<|im_start|>system\nYou are the person these facts describe. Stay in character and reply in one or two short sentences.\nFacts:\n1. i have a dog named rex .\n2. i play the trumpet in a jazz band .\n3. i live by the sea .<|im_end|>\n' +
      '<|im_start|>user\nhello !<|im_end|>\n<|im_start|>assistant\nhi , how are you ?<|im_end|>\n<|im_start|>user\ngood . do you have pets ?<|im_end|>\n' +
      '<|im_start|>system\nWhich fact does your next reply use? Answer with its number and text, or none.<|im_end|>\n<|im_start|>assistant\n',
  );
  const generate = generatePrompt({ personas, history }, 1, chatml);
  assert.match(
    generate,
    /<\|im_start\|>system\nYour next reply uses this fact, in your own words: i play the trumpet in a jazz band \.<\|im_end\|>\n<\|im_start\|>assistant\n$/,
  );
  assert.match(generatePrompt({ personas, history }, -1, chatml), /Your next reply uses none of the facts\./);
  // Select then generate share everything up to the task message (one key/value cache for both).
  const shared = select.slice(0, select.lastIndexOf('<|im_start|>system'));
  assert.ok(generate.startsWith(shared) && shared.includes('do you have pets'));
  // No leading space on chat targets: the prompt ends with the assistant turn's newline.
  assert.equal(selectTarget(personas, 2, chatml), '3. i live by the sea .');
  assert.equal(responseTarget(' yes ,  rex . ', chatml), 'yes , rex .');
  // The history-only prompt has no facts; the template's default system message stands.
  const blind = historyOnlyPrompt(history, chatml);
  assert.ok(blind.startsWith('<|im_start|>system\nYou are a helpful AI assistant') && !blind.includes('rex'));
  assert.ok(!plainPrompt({ personas, history }, chatml).includes('Which fact'), 'the baseline prompt has no task message');
  // A dialogue the persona opened starts with the assistant; the partner's turn is always last.
  assert.deepEqual(
    dialogueTurns(['hi', 'hey there', 'how are you?']).map((t) => t.role),
    ['user', 'assistant', 'user'],
  );
  assert.deepEqual(
    dialogueTurns(['hello', 'how are you?']).map((t) => t.role),
    ['assistant', 'user'],
  );
});

test('chat format in the mixture: every item and pair is written in the model’s template', () => {
  const ex = resolveExample({ id: 'e1', personas, history, response: 'yes , rex the dog .', persona_index: 0, split: 'train' }, 'x', new Map());
  const items = stage1Items([ex], chatml);
  assert.deepEqual(
    items.map((i) => [i.kind, i.target]),
    [
      ['select', '1. i have a dog named rex .'],
      ['generate', 'yes , rex the dog .'],
    ],
  );
  assert.ok(items.every((i) => i.prompt.endsWith('<|im_start|>assistant\n')));
  assert.equal(rejectionPrompts([ex], chatml)[0]!.prompt, historyOnlyPrompt(history, chatml));
  const [pair] = stage2Pairs([ex], new Map([['e1', { text: 'no pets here .', ended: true }]]), chatml);
  assert.deepEqual([pair!.prompt, pair!.chosen, pair!.rejected], [generatePrompt(ex, 0, chatml), 'yes , rex the dog .', 'no pets here .']);
  assert.equal(finetuneItems([ex], chatml)[0]!.prompt, plainPrompt(ex, chatml));
});
