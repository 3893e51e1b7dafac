// Preference-pair exporters for TRL, LLaMA-Factory and axolotl: exact files for small inputs,
// and what is left out (and why).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import type { PreferencePair } from '../../src/core/formats/types';
import { exportAxolotl, exportLlamaFactory, exportTrl, safeDatasetName } from '../../src/core/exporters/pairs';

const standard: PreferencePair[] = [
  {
    prompt: 'persona: i have two dogs .\nuser: hi !',
    chosen: 'hi ! just back from walking my two dogs .',
    rejected: 'hello .',
    status: 'chosen',
    origin: 'annotated',
    annotator: 'ana',
  },
  { prompt: 'persona: i ski .\nuser: plans ?', chosen: 'skiing , as every weekend .', rejected: 'nothing .' }, // no status: imported
  { prompt: 'p3', chosen: 'c3', rejected: 'r3', status: 'pending' },
  { prompt: 'p4', chosen: 'c4', rejected: 'r4', status: 'skipped' },
  { prompt: 'p5', chosen: 'c5', rejected: 'r5', status: 'tie' },
  { prompt: 'p6', chosen: 'c6', rejected: 'r6', status: 'pending' },
];

const conversational: PreferencePair[] = [
  {
    prompt: [
      { role: 'system', content: 'You are Maren.' },
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hm.' },
      { role: 'user', content: 'cats?' },
    ],
    chosen: [{ role: 'assistant', content: 'three of them.' }],
    rejected: [{ role: 'assistant', content: 'no idea.' }],
    status: 'chosen',
  },
  { prompt: 'plain text prompt', chosen: 'plain chosen', rejected: 'plain rejected', status: 'chosen' },
  { prompt: [{ role: 'assistant', content: 'I start.' }], chosen: [{ role: 'assistant', content: 'a' }], rejected: [{ role: 'assistant', content: 'b' }] },
  {
    prompt: [{ role: 'user', content: 'x' }],
    chosen: [
      { role: 'assistant', content: 'a' },
      { role: 'assistant', content: 'a2' },
    ],
    rejected: [{ role: 'assistant', content: 'b' }],
    status: 'tie',
  },
];

test('pairs the formats cannot hold are left out with the reason', () => {
  const odd: PreferencePair[] = [
    {
      prompt: [
        { role: 'user', content: 'q' },
        { role: 'tool', content: '42' },
        { role: 'user', content: 'so?' },
      ],
      chosen: 'a',
      rejected: 'b',
    },
    {
      prompt: [{ role: 'user', content: 'q' }],
      chosen: [
        { role: 'assistant', content: 'a' },
        { role: 'assistant', content: 'a2' },
      ],
      rejected: 'b',
    },
    { prompt: [{ role: 'user', content: 'q' }], chosen: [{ role: 'user', content: 'a' }], rejected: 'b' },
    { prompt: 'q', chosen: 'a', rejected: 'b', status: 'maybe' as never },
  ];
  assert.deepEqual(exportAxolotl(odd, 'x').leftOut.unsupported, [
    { index: 0, reason: 'the prompt has a "tool" message; axolotl is configured for system, user, assistant' },
    { index: 1, reason: 'chosen has 2 messages; this format takes exactly one' },
    { index: 2, reason: 'chosen is a "user" message, not an assistant one' },
    { index: 3, reason: 'unknown status "maybe"' },
  ]);
  assert.deepEqual(
    exportLlamaFactory(odd, 'x').leftOut.unsupported.map((u) => u.index),
    [0, 1, 2, 3],
  );
  assert.equal(exportAxolotl(odd, 'x').exported, 0);
});

test('exportTrl writes prompt, chosen and rejected only, for chosen and status-less pairs', () => {
  const out = exportTrl(standard);
  assert.deepEqual(out.files, [
    {
      path: 'pal_pairs.jsonl',
      content:
        '{"prompt":"persona: i have two dogs .\\nuser: hi !","chosen":"hi ! just back from walking my two dogs .","rejected":"hello ."}\n' +
        '{"prompt":"persona: i ski .\\nuser: plans ?","chosen":"skiing , as every weekend .","rejected":"nothing ."}\n',
    },
  ]);
  assert.equal(out.exported, 2);
  assert.deepEqual(out.leftOut, { total: 4, pending: 2, skipped: 1, tie: 1, unreadable: 0, unsupported: [] });
  assert.match(out.usage, /standard preference format/);
  assert.match(out.usage, /Left out 4 pairs: 2 pending, 1 skipped, 1 tie\./);
});

test('exportTrl keeps conversational pairs as they are and makes a mixed set conversational', () => {
  const onlyMessages = exportTrl([conversational[0]!], 'maren');
  assert.equal(onlyMessages.files[0]!.path, 'maren.jsonl');
  assert.deepEqual(JSON.parse(onlyMessages.files[0]!.content), {
    prompt: conversational[0]!.prompt,
    chosen: conversational[0]!.chosen,
    rejected: conversational[0]!.rejected,
  });

  const mixed = exportTrl(conversational.slice(0, 2));
  const lines = mixed.files[0]!.content.trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(lines[1], {
    prompt: [{ role: 'user', content: 'plain text prompt' }],
    chosen: [{ role: 'assistant', content: 'plain chosen' }],
    rejected: [{ role: 'assistant', content: 'plain rejected' }],
  });
  assert.match(mixed.usage, /conversational preference format \(text prompts and responses were turned into messages/);
});

test('exportLlamaFactory: alpaca ranking format and its dataset_info entry', () => {
  const out = exportLlamaFactory(standard, 'pal persona/dpo');
  assert.deepEqual(
    out.files.map((f) => f.path),
    ['pal_persona_dpo.json', 'dataset_info.json'],
  );
  assert.deepEqual(JSON.parse(out.files[0]!.content), [
    { instruction: 'persona: i have two dogs .\nuser: hi !', input: '', chosen: 'hi ! just back from walking my two dogs .', rejected: 'hello .' },
    { instruction: 'persona: i ski .\nuser: plans ?', input: '', chosen: 'skiing , as every weekend .', rejected: 'nothing .' },
  ]);
  assert.deepEqual(JSON.parse(out.files[1]!.content), {
    pal_persona_dpo: {
      file_name: 'pal_persona_dpo.json',
      formatting: 'alpaca',
      ranking: true,
      columns: { prompt: 'instruction', query: 'input', chosen: 'chosen', rejected: 'rejected' },
    },
  });
  assert.equal(out.exported, 2);
  assert.deepEqual(out.leftOut, { total: 4, pending: 2, skipped: 1, tie: 1, unreadable: 0, unsupported: [] });
  assert.match(out.usage, /dataset: pal_persona_dpo/);
});

test('exportLlamaFactory: sharegpt ranking format for conversational pairs, leaving out what it cannot hold', () => {
  const out = exportLlamaFactory(conversational, 'maren');
  assert.deepEqual(JSON.parse(out.files[0]!.content), [
    {
      conversations: [
        { from: 'human', value: 'hi' },
        { from: 'gpt', value: 'hm.' },
        { from: 'human', value: 'cats?' },
      ],
      chosen: { from: 'gpt', value: 'three of them.' },
      rejected: { from: 'gpt', value: 'no idea.' },
      system: 'You are Maren.',
    },
    {
      conversations: [{ from: 'human', value: 'plain text prompt' }],
      chosen: { from: 'gpt', value: 'plain chosen' },
      rejected: { from: 'gpt', value: 'plain rejected' },
    },
  ]);
  const info = JSON.parse(out.files[1]!.content);
  assert.deepEqual(info, {
    maren: {
      file_name: 'maren.json',
      formatting: 'sharegpt',
      ranking: true,
      columns: { messages: 'conversations', chosen: 'chosen', rejected: 'rejected', system: 'system' },
    },
  });
  assert.equal(info.maren.ranking, true);
  assert.equal(out.exported, 2);
  assert.deepEqual(out.leftOut.unsupported, [
    { index: 2, reason: 'prompt message 1 is "assistant" where LLaMA-Factory needs "user" (turns must alternate, user first)' },
  ]);
  assert.equal(out.leftOut.tie, 1);
  assert.equal(out.leftOut.total, 2);
  assert.match(out.usage, /Left out 2 pairs: 1 tie, 1 the format cannot hold\./);
});

test('exportAxolotl: chat_template.default records and the config snippet to paste', () => {
  const out = exportAxolotl([...conversational, ...standard.slice(2)], 'maren');
  assert.deepEqual(
    out.files.map((f) => f.path),
    ['maren.axolotl.jsonl', 'axolotl-dataset.yaml'],
  );
  assert.equal(
    out.files[0]!.content,
    '{"messages":[{"role":"system","content":"You are Maren."},{"role":"user","content":"hi"},{"role":"assistant","content":"hm."},{"role":"user","content":"cats?"}],' +
      '"chosen":{"role":"assistant","content":"three of them."},"rejected":{"role":"assistant","content":"no idea."}}\n' +
      '{"messages":[{"role":"user","content":"plain text prompt"}],"chosen":{"role":"assistant","content":"plain chosen"},"rejected":{"role":"assistant","content":"plain rejected"}}\n',
  );
  const config = parseYaml(out.files[1]!.content);
  assert.deepEqual(config, {
    rl: 'dpo',
    datasets: [
      {
        path: './maren.axolotl.jsonl',
        ds_type: 'json',
        split: 'train',
        type: 'chat_template.default',
        field_messages: 'messages',
        field_chosen: 'chosen',
        field_rejected: 'rejected',
        message_property_mappings: { role: 'role', content: 'content' },
        roles: { user: ['user'], assistant: ['assistant'], system: ['system'] },
      },
    ],
  });
  assert.match(out.files[1]!.content, /^# PAL Studio: the dataset entry for maren\.axolotl\.jsonl/);
  assert.equal(out.exported, 2);
  assert.deepEqual(out.leftOut, {
    total: 6,
    pending: 2,
    skipped: 1,
    tie: 2,
    unreadable: 0,
    unsupported: [{ index: 2, reason: 'the prompt must end with a user message' }],
  });
});

test('nothing to export still gives valid, empty files', () => {
  const trl = exportTrl([{ prompt: 'p', chosen: 'c', rejected: 'r', status: 'skipped' }]);
  assert.equal(trl.files[0]!.content, '');
  assert.equal(trl.exported, 0);
  const lf = exportLlamaFactory([], 'x');
  assert.equal(lf.files[0]!.content, '[]\n');
  assert.match(lf.usage, /No pair was left out\./);
});

test('safeDatasetName keeps names usable as file names and config keys', () => {
  assert.equal(safeDatasetName('my pairs (v2)'), 'my_pairs_v2_');
  assert.equal(safeDatasetName('../etc/passwd'), 'etc_passwd');
  assert.equal(safeDatasetName('   '), 'pal_pairs');
  assert.equal(safeDatasetName('pal-dpo_1.0'), 'pal-dpo_1.0');
});
