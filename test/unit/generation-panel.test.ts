// The generation panel's pure parts: the pair it saves, the append that adds it to a pairs file,
// judging samples, and the checks every message from its webview goes through.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePairs } from '../../src/core/formats/pairs';
import { annotatedPairs } from '../../src/core/mixture';
import { judge } from '../../src/core/judgement';
import { jsonlAppend, sampledPair } from '../../src/core/pairAppend';
import type { Persona } from '../../src/core/formats/types';
import { DEFAULT_DECODING, parseFromGenerationPanel } from '../../webview/generation-panel/protocol';

const time = new Date('2026-12-01T10:20:30.456Z');
const mara: Persona = { id: 'mara-lighthouse', name: 'Mara', facts: ['i have a cat named tern .', 'i am not afraid of storms .'] };

test('one turn of history makes a standard (text) pair, judged, annotated, with how it was sampled', () => {
  const sampling = { model: 'pal-default', temperature: 0.8, top_k: 50, top_p: 0.95, max_new_tokens: 40, seeds: [2, 1] as const };
  const pair = sampledPair({
    history: ['do you have a cat ?'],
    personaIds: ['mara-lighthouse'],
    chosen: 'tern keeps me company .',
    rejected: 'no pets .',
    time,
    sampling,
  });
  assert.deepEqual(pair, {
    prompt: 'do you have a cat ?',
    chosen: 'tern keeps me company .',
    rejected: 'no pets .',
    persona_ids: ['mara-lighthouse'],
    origin: 'annotated',
    time: '2026-12-01T10:20:30Z',
    status: 'chosen',
    sampling: { model: 'pal-default', temperature: 0.8, top_k: 50, top_p: 0.95, max_new_tokens: 40, seeds: [2, 1] },
  });
  // It is a valid line of a pairs file, without a single problem.
  const doc = parsePairs(JSON.stringify(pair), 'x.pairs.jsonl');
  assert.deepEqual(doc.lines[0]!.problems, []);
});

test('a pair records the fact each reply was generated with, and stays a valid pairs line', () => {
  const selected = [
    { index: 0, text: '1. i have a cat named tern .' },
    { index: -1, text: 'none' },
  ] as const;
  const sampling = {
    model: 'pal-default',
    temperature: 0.8,
    top_k: 50,
    top_p: 0.95,
    max_new_tokens: 40,
    repetition_penalty: 1.2,
    no_repeat_ngram_size: 3,
    no_repeat_ngram_from: 'partner' as const,
    seeds: [2, 1] as const,
    selected,
  };
  const pair = sampledPair({
    history: ['do you have a cat ?'],
    personaIds: ['mara-lighthouse'],
    chosen: 'tern keeps me company .',
    rejected: 'no pets .',
    time,
    sampling,
  });
  assert.deepEqual((pair.sampling as { selected: unknown }).selected, [
    { index: 0, text: '1. i have a cat named tern .' },
    { index: -1, text: 'none' },
  ]);
  assert.notEqual((pair.sampling as { selected: unknown[] }).selected[0], selected[0], "a copy, not the caller's object");
  assert.equal((pair.sampling as { no_repeat_ngram_from: unknown }).no_repeat_ngram_from, 'partner');
  assert.deepEqual(parsePairs(JSON.stringify(pair), 'x.pairs.jsonl').lines[0]!.problems, []);
});

test("a longer dialogue makes a conversational pair whose roles count back from the user's last turn, as stage 2 reads it", () => {
  const history = ['hello !', 'evening . the lamp is lit .', 'are you scared of the storm ?'];
  const pair = sampledPair({ history, personaIds: ['mara-lighthouse'], chosen: 'storms i can handle .', rejected: 'i hide in the basement .', time });
  assert.deepEqual(pair.prompt, [
    { role: 'user', content: 'hello !' },
    { role: 'assistant', content: 'evening . the lamp is lit .' },
    { role: 'user', content: 'are you scared of the storm ?' },
  ]);
  assert.deepEqual(pair.chosen, [{ role: 'assistant', content: 'storms i can handle .' }]);
  assert.deepEqual(pair.rejected, [{ role: 'assistant', content: 'i hide in the basement .' }]);
  assert.equal('sampling' in pair, false);
  assert.deepEqual(parsePairs(JSON.stringify(pair), 'x.pairs.jsonl').lines[0]!.problems, []);
  // Stage 2 trains on it with the persona's facts and the whole dialogue, tagged as PAL's prompts tag it.
  const [text] = annotatedPairs([pair], new Map([['mara-lighthouse', mara]]));
  assert.ok(text, 'stage 2 takes the pair');
  assert.match(text.prompt, /1\. i have a cat named tern \.\n2\. i am not afraid of storms \./);
  assert.match(text.prompt, /User: hello !\nPersona: evening \. the lamp is lit \.\nUser: are you scared of the storm \?/);
  assert.equal(text.chosen, ' storms i can handle .');
  assert.equal(text.rejected, ' i hide in the basement .');
  assert.throws(() => sampledPair({ history: [], personaIds: [], chosen: 'a', rejected: 'b', time }), /at least one turn/);
});

test('appending a line keeps every byte before it: final newline, none, CRLF, empty', () => {
  const record = { prompt: 'hi', chosen: 'a', rejected: 'b' };
  const line = JSON.stringify(record);
  const cases: [string, string, number][] = [
    ['{"a":1}\n{"b":2}\n', `${line}\n`, 3],
    ['{"a":1}\n{"b":2}', `\n${line}\n`, 3],
    ['{"a":1}\r\n{"b":2}\r\n', `${line}\r\n`, 3],
    ['{"a":1}\r\n{"b":2}', `\r\n${line}\r\n`, 3],
    ['', `${line}\n`, 1],
    ['\uFEFF', `${line}\n`, 1],
    ['{"a":1}\n\n', `${line}\n`, 3],
  ];
  for (const [before, insert, lineNumber] of cases) {
    const result = jsonlAppend(before, record);
    assert.deepEqual(result, { insert, line: lineNumber }, JSON.stringify(before));
    const after = before + result.insert;
    assert.ok(after.startsWith(before));
    // The new record is on the line named, and nothing else changed.
    assert.equal(after.split(/\r?\n/)[lineNumber - 1]!.replace(/^\uFEFF/, ''), line);
    assert.equal(after.split(/\r?\n/).length - 1, lineNumber, 'the file ends with its line ending');
  }
  // A value that has no JSON form (or would not stay on one line) is refused, not written.
  assert.throws(() => jsonlAppend('', undefined), /one line/);
});

test('judging: with two finished samples one gesture marks both; with more, each gesture marks one', () => {
  assert.deepEqual(judge({}, 1, 'chosen', [true, true]), { chosen: 1, rejected: 0 });
  assert.deepEqual(judge({}, 1, 'rejected', [true, true]), { rejected: 1, chosen: 0 });
  assert.deepEqual(judge({ chosen: 1, rejected: 0 }, 0, 'chosen', [true, true]), { chosen: 0, rejected: 1 });
  // The other sample failed: it cannot be rejected for the writer.
  assert.deepEqual(judge({}, 0, 'chosen', [true, false]), { chosen: 0 });
  assert.deepEqual(judge({}, 1, 'chosen', [true, false]), {}, 'an unfinished sample cannot be judged');
  const three = [true, true, true];
  assert.deepEqual(judge({}, 2, 'chosen', three), { chosen: 2 });
  assert.deepEqual(judge({ chosen: 2 }, 0, 'rejected', three), { rejected: 0, chosen: 2 });
  // A sample is never both: marking the rejected one chosen clears the rejection.
  assert.deepEqual(judge({ chosen: 2, rejected: 0 }, 0, 'chosen', three), { chosen: 0 });
  assert.deepEqual(judge({ chosen: 2, rejected: 0 }, 1, 'chosen', three), { chosen: 1, rejected: 0 });
});

const generate = { type: 'generate', personas: ['file:///w/personas/mara.persona.yaml'], history: ['do you have a cat ?'], decoding: { ...DEFAULT_DECODING } };

test('generation panel messages that are well formed get through', () => {
  assert.deepEqual(parseFromGenerationPanel({ type: 'ready' }), { type: 'ready' });
  assert.deepEqual(parseFromGenerationPanel({ type: 'stop' }), { type: 'stop' });
  assert.deepEqual(parseFromGenerationPanel(generate), generate);
  const longer = {
    ...generate,
    history: ['hi', 'hello .', 'cat ?'],
    decoding: { temperature: 0, topK: 0, topP: 1, maxNewTokens: 256, repetitionPenalty: 3, noRepeatNgramSize: 10, samples: 8, seed: 0 },
  };
  assert.deepEqual(parseFromGenerationPanel(longer), longer);
  assert.deepEqual(parseFromGenerationPanel({ type: 'save', generation: 3, chosen: 1, rejected: 0 }), { type: 'save', generation: 3, chosen: 1, rejected: 0 });
});

test('generation panel messages that only the field checks reject are not acted on', () => {
  const bad: unknown[] = [
    null,
    'ready',
    [],
    { type: 'ready', extra: 1 },
    { type: 'stop', personas: [] },
    { type: 'generate' },
    { ...generate, extra: true },
    { ...generate, personas: [] },
    { ...generate, personas: 'file:///w/personas/mara.persona.yaml' },
    { ...generate, personas: [generate.personas[0], generate.personas[0]] },
    { ...generate, personas: [''] },
    { ...generate, personas: [42] },
    { ...generate, history: [] },
    { ...generate, history: ['hi', 'hello .'] },
    { ...generate, history: ['   '] },
    { ...generate, history: [7] },
    { ...generate, history: ['x'.repeat(2001)] },
    { ...generate, history: Array.from({ length: 41 }, () => 'x') },
    { ...generate, decoding: null },
    { ...generate, decoding: { ...DEFAULT_DECODING, samples: 9 } },
    { ...generate, decoding: { ...DEFAULT_DECODING, samples: 0 } },
    { ...generate, decoding: { ...DEFAULT_DECODING, samples: 1.5 } },
    { ...generate, decoding: { ...DEFAULT_DECODING, temperature: -0.1 } },
    { ...generate, decoding: { ...DEFAULT_DECODING, temperature: Number.NaN } },
    { ...generate, decoding: { ...DEFAULT_DECODING, topP: 0 } },
    { ...generate, decoding: { ...DEFAULT_DECODING, topK: '50' } },
    { ...generate, decoding: { ...DEFAULT_DECODING, maxNewTokens: 257 } },
    { ...generate, decoding: { ...DEFAULT_DECODING, seed: -1 } },
    { ...generate, decoding: { ...DEFAULT_DECODING, numBeams: 4 } },
    { ...generate, decoding: { ...DEFAULT_DECODING, repetitionPenalty: 0.5 } },
    { ...generate, decoding: { ...DEFAULT_DECODING, noRepeatNgramSize: 1.5 } },
    { ...generate, decoding: (({ seed: _, ...rest }) => rest)(DEFAULT_DECODING) },
    { type: 'save', generation: 1, chosen: 0, rejected: 0 },
    { type: 'save', generation: 1, chosen: 0, rejected: 8 },
    { type: 'save', generation: 1, chosen: -1, rejected: 1 },
    { type: 'save', generation: 1, chosen: '0', rejected: 1 },
    { type: 'save', generation: 1.5, chosen: 0, rejected: 1 },
    { type: 'save', chosen: 0, rejected: 1 },
    { type: 'save', generation: 1, chosen: 0, rejected: 1, chosenText: 'forged' },
  ];
  for (const message of bad) assert.equal(parseFromGenerationPanel(message), undefined, JSON.stringify(message));
});
