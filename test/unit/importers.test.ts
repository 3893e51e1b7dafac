// Importers of PERSONA-CHAT (ParlAI text), Synthetic-Persona-Chat (CSV) and character cards, the
// relevant-persona labeller and the format guesser. The data-set tests read the real files in
// ../shared/data (never copied into the repository); the damaged copies are made here, in memory.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import * as path from 'node:path';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import type { DialogueExample, Persona } from '../../src/core/formats/types';
import { balanceLabels } from '../../src/engine/data';
import { exportCharacterCard, importCharacterCard } from '../../src/core/importers/card';
import { guessImportFormat } from '../../src/core/importers/guess';
import {
  contentStems,
  DEFAULT_MIN_SHARED,
  DEFAULT_MIN_SINGLE_WORD_LENGTH,
  LABELLER_RULE,
  labelDistribution,
  labelPersona,
  STOP_WORDS,
} from '../../src/core/labeller';
import { importCorpus } from '../../src/core/importers/corpus';
import { importParlai } from '../../src/core/importers/parlai';
import { importSyntheticPersonaChat, parseSpcConversation } from '../../src/core/importers/spc';
import { personaChatDir, skipWithoutData } from './shared-data';

const convai2File = path.join(personaChatDir, 'convai2_valid_dev.txt');
const spcFile = path.join(personaChatDir, 'synthetic_persona_chat_test.csv');
const noData = skipWithoutData(convai2File, spcFile);
const read = (file: string) => readFileSync(file, 'utf8');

/** 1-based line of a 0-based offset, counted here rather than by the importers' helpers. */
const lineAt = (text: string, offset: number) => text.slice(0, offset).split('\n').length;

// ---------------------------------------------------------------------------------------------
// Labeller

test('contentStems lower-cases, drops stop words and short words, keeps numbers, stems', () => {
  assert.deepEqual(contentStems("The DOGS ran 5 miles, I'm sure! Glass classes"), ['dog', 'ran', '5', 'mile', 'glass', 'class']);
  assert.deepEqual(contentStems('hiking and hikes , enjoyed it'), ['hike'], 'one stem; "enjoyed" is a framing verb');
  assert.deepEqual(contentStems('i like to ski .'), ['ski']);
  assert.deepEqual(contentStems('it is what it is'), []);
  assert.ok(STOP_WORDS.has('the') && STOP_WORDS.has('like') && !STOP_WORDS.has('dog'));
});

test('labelPersona picks the sentence the response obviously relies on', () => {
  const personas = ['i have two dogs .', 'i like to ski .', 'my favorite color is blue .'];
  assert.equal(labelPersona(personas, 'i walk my two dogs every morning'), 0, 'two shared words: "two", "dog"');
  assert.equal(labelPersona(personas, 'my two dogs are the best'), 0);
  assert.equal(labelPersona(personas, 'nothing beats fresh powder , except ski racing'), -1, 'one short word is not enough: "ski" is 3 letters');
  assert.equal(labelPersona(personas, 'hi ! what time is it where you are ?'), -1);
  assert.equal(labelPersona([], 'i have two dogs'), -1);
  // One long shared word suffices; one short word does not, unless the options say so.
  assert.equal(labelPersona(['i only eat kosher .'], 'he only ate kosher food'), 0);
  assert.equal(labelPersona(['i have a dog .'], 'my dog is asleep'), -1);
  // Stems meet: "hiking"/"hike" and "played"/"playing" (two shared, so enough).
  assert.equal(labelPersona(['i like to read .', 'i love hiking in the mountains .'], 'we hiked the mountain trail'), 1);
  // A single stem counts only when the word is long on both sides: "hikes" (5) vs "hike" (4) is not.
  assert.equal(labelPersona(['i hike .'], 'my hikes are short'), -1);
  assert.equal(labelPersona(['i have a dog .'], 'my dog is asleep', { minSingleWordLength: 3 }), 0);
  assert.equal(labelPersona(['i have two dogs .'], 'my two dogs', { minShared: 3, minSingleWordLength: 99 }), -1);
  // A shared number is specific enough on its own.
  assert.equal(labelPersona(['i am 19 years old .', 'i like pizza .'], 'i just turned 19'), 0);
});

test('labelPersona breaks ties by the larger share of the sentence, then by the earlier sentence', () => {
  // Both share one long word; the second sentence has fewer content words, so a larger share.
  const byShare = ['i own a red vintage truck and a blue boat .', 'i restore vintage furniture .'];
  assert.equal(labelPersona(byShare, 'vintage stuff is my thing'), 1);
  // Same count and same share: the earlier sentence.
  const exact = ['i collect vintage stamps .', 'i collect vintage coins .'];
  assert.equal(labelPersona(exact, 'i collect vintage cars'), 0);
  // More shared words beat a larger share.
  assert.equal(labelPersona(['i paint .', 'i paint portraits of my grandmother .'], 'paint portraits'), 1);
});

test('labelPersona is deterministic, returns -1 or an index, and ignores sentences that share nothing', () => {
  const sentence = fc
    .array(fc.constantFrom('dog', 'ski', 'vintage', 'kosher', 'the', 'two', 'blue', 'farm', '19', 'i', 'love'), { maxLength: 6 })
    .map((w) => w.join(' '));
  fc.assert(
    fc.property(fc.array(sentence, { maxLength: 5 }), sentence, (personas, response) => {
      const label = labelPersona(personas, response);
      assert.ok(label >= -1 && label < personas.length);
      assert.equal(labelPersona([...personas], response), label);
      assert.equal(labelPersona([...personas, 'zzz qqq xxxx'], response), label);
    }),
  );
});

test('LABELLER_RULE states the thresholds the code uses', () => {
  assert.match(LABELLER_RULE, new RegExp(`at least ${DEFAULT_MIN_SHARED} words`));
  assert.match(LABELLER_RULE, new RegExp(`at least ${DEFAULT_MIN_SINGLE_WORD_LENGTH} characters`));
});

test('labelDistribution counts none and each index', () => {
  const ex = (persona_index: number) => ({ history: ['hi'], response: 'x', persona_index, split: 'valid' as const });
  assert.deepEqual(labelDistribution([ex(-1), ex(2), ex(0), ex(2), ex(-1)]), { total: 5, none: 2, byIndex: [1, 0, 2] });
  assert.deepEqual(labelDistribution([]), { total: 0, none: 0, byIndex: [] });
});

// ---------------------------------------------------------------------------------------------
// ParlAI / ConvAI2

test('importParlai reads every response line of convai2_valid_dev.txt', { skip: noData }, () => {
  const text = read(convai2File);
  const lines = text.split('\n');
  const responseLines = lines.filter((l) => l.includes('\t')).length;
  const episodes = lines.filter((l) => l.startsWith('1 ')).length;
  const { examples, problems } = importParlai(text, 'convai2_valid_dev.txt');

  assert.deepEqual(problems, []);
  assert.equal(examples.length, responseLines);
  assert.equal(new Set(examples.map((e) => e.id!.split('-')[0])).size, episodes);
  assert.equal(new Set(examples.map((e) => e.id)).size, examples.length, 'ids are unique');
  for (const e of examples) {
    assert.ok(e.personas!.length >= 3 && e.personas!.length <= 5, `${e.id} has ${e.personas!.length} persona sentences`);
    assert.equal(e.history.length % 2, 1, 'the history alternates and ends with the partner');
    assert.equal(e.split, 'valid');
    assert.equal(e.source, 'convai2');
  }

  // The first episode, checked against the file's own lines.
  const [first, , third] = examples;
  assert.deepEqual(first, {
    id: '0-0',
    personas: lines.slice(0, 4).map((l) => l.replace(/^\d+ your persona: /, '')),
    history: [lines[4]!.split('\t')[0]!.replace(/^5 /, '')],
    response: lines[4]!.split('\t')[1],
    persona_index: first!.persona_index,
    split: 'valid',
    source: 'convai2',
  });
  const partnerAndSelf = (l: string) => l.replace(/^\d+ /, '').split('\t');
  assert.deepEqual(third!.history, [...partnerAndSelf(lines[4]!), ...partnerAndSelf(lines[5]!), partnerAndSelf(lines[6]!)[0]]);
  assert.equal(third!.response, partnerAndSelf(lines[6]!)[1]);
  // "i rather read , i've read about 20 books this year ." relies on "i read twenty books a year."
  assert.equal(examples[1]!.persona_index, 0);
});

test('label distribution on convai2_valid_dev.txt is plausible', { skip: noData }, () => {
  const { examples } = importParlai(read(convai2File), 'convai2_valid_dev.txt');
  const d = labelDistribution(examples);
  const pct = (n: number) => `${((100 * n) / d.total).toFixed(1)}%`;
  console.log(
    `convai2_valid_dev.txt labels: total ${d.total}, none ${d.none} (${pct(d.none)}), by index ${d.byIndex.map((n, i) => `${i}: ${n} (${pct(n)})`).join(', ')}`,
  );
  assert.equal(d.total, examples.length);
  assert.ok(d.none > 0 && d.none < d.total, 'none is neither 0% nor 100%');
  assert.ok(d.byIndex.filter((n) => n > 0).length >= 3, 'at least 3 indices are used');
  assert.equal(d.none + d.byIndex.reduce((a, b) => a + b, 0), d.total);
  // The figures docs/labeller.md reports: a change of the rule must update the document.
  assert.deepEqual(d, { total: 5270, none: 3000, byIndex: [534, 509, 523, 492, 212] });
});

test('importParlai reports a damaged line where it is and still imports every other line', { skip: noData }, () => {
  const lines = read(convai2File).split('\n');
  const responseLines = lines.filter((l) => l.includes('\t')).length;

  // A line without its number, pasted after line 7.
  const pasted = [...lines.slice(0, 7), 'i pasted this from somewhere else', ...lines.slice(7)];
  const a = importParlai(pasted.join('\n'), 'pasted.txt');
  assert.deepEqual(
    a.problems.map((p) => [p.line, p.severity, p.code]),
    [[8, 'error', 'parlai/no-line-number']],
  );
  assert.equal(a.examples.length, responseLines);

  // Line 9 loses its tab: that line's example alone is lost.
  const noTab = [...lines];
  noTab[8] = noTab[8]!.replace('\t', ' ');
  const b = importParlai(noTab.join('\n'), 'no-tab.txt');
  assert.deepEqual(
    b.problems.map((p) => [p.line, p.column, p.code]),
    [[9, 3, 'parlai/no-tab']],
  );
  assert.match(b.problems[0]!.message, /tab/);
  assert.equal(b.examples.length, responseLines - 1);
  // The next example's history skips the lost line but keeps the rest of the episode.
  const next = b.examples.find((e) => e.id === '0-4')!;
  assert.equal(next.response, lines[9]!.split('\t')[1]);

  // The file cut in the middle of line 100's partner utterance.
  const cutAt = lines.slice(0, 99).join('\n').length + 1 + 6;
  const cut = read(convai2File).slice(0, cutAt);
  const c = importParlai(cut, 'cut.txt');
  assert.deepEqual(
    c.problems.map((p) => [p.line, p.code]),
    [[100, 'parlai/no-tab']],
  );
  assert.equal(c.examples.length, lines.slice(0, 99).filter((l) => l.includes('\t')).length);
});

test('importParlai: the "both" format, extra columns, the split option and numbering problems', () => {
  const text = [
    '1 your persona: i like to ski.',
    "2 partner's persona: i have a cat.",
    '3 your persona: i am a nurse.',
    '4 hi there\thello ! i just got back from skiing .\t\tcand a|cand b',
    '5 nice . what do you do ?\ti work as a nurse at night .',
    '7 cool\tthanks',
    '1 your persona: i love tea.',
    '2 hello\thi , want some tea ?',
  ].join('\n');
  const { examples, problems } = importParlai(text, 'both.txt', { split: 'train', source: 'mine' });
  assert.deepEqual(
    examples.map((e) => [e.id, e.personas, e.history, e.response, e.split, e.source]),
    [
      ['0-0', ['i like to ski.', 'i am a nurse.'], ['hi there'], 'hello ! i just got back from skiing .', 'train', 'mine'],
      [
        '0-1',
        ['i like to ski.', 'i am a nurse.'],
        ['hi there', 'hello ! i just got back from skiing .', 'nice . what do you do ?'],
        'i work as a nurse at night .',
        'train',
        'mine',
      ],
      [
        '0-2',
        ['i like to ski.', 'i am a nurse.'],
        ['hi there', 'hello ! i just got back from skiing .', 'nice . what do you do ?', 'i work as a nurse at night .', 'cool'],
        'thanks',
        'train',
        'mine',
      ],
      ['1-0', ['i love tea.'], ['hello'], 'hi , want some tea ?', 'train', 'mine'],
    ],
  );
  assert.equal(examples[1]!.persona_index, 1, '"nurse" is long enough on its own');
  assert.deepEqual(
    problems.map((p) => [p.line, p.severity, p.code]),
    [[6, 'warning', 'parlai/line-number']],
  );
  assert.match(problems[0]!.message, /Line number 7 follows 5/);
});

// ---------------------------------------------------------------------------------------------
// Synthetic-Persona-Chat

const SPEAKER = /^[*\s]*user\s*([12])[*\s]*:/i;

test('importSyntheticPersonaChat: one example per answering turn of synthetic_persona_chat_test.csv', { skip: noData }, () => {
  const text = read(spcFile);
  const rows = parse(text, { columns: true }) as Record<string, string>[];
  // Counted here from the speaker labels alone: each turn that follows a turn of the other speaker
  // (User 2's turns, and User 1's after the first). A speaker's lines in a row are one turn.
  let expected = 0;
  for (const row of rows) {
    const speakers = row['Best Generated Conversation']!.split('\n').flatMap((l) => SPEAKER.exec(l)?.[1] ?? []);
    speakers.forEach((s, i) => {
      if (i > 0 && s !== speakers[i - 1]) expected++;
    });
  }
  const { examples, problems } = importSyntheticPersonaChat(text, 'spc.csv');
  assert.equal(examples.length, expected);
  assert.ok(expected > 25_000, `${expected} examples`);

  // The published file has two rows that cannot be read: one conversation without any speaker
  // label, one empty. They are reported where their conversation cell starts, nothing else is.
  const unlabelled = text.indexOf(`"Hi! I'm [user 1 name]. I'm an engineer and I love Bach.`);
  // The file ends its rows with "\r\n" (and lines inside a cell with "\n").
  const empty = text.search(/I have two brothers\.",\r?\n"I run to relieve stress\./); // its last cell is empty
  assert.ok(unlabelled > 0 && empty > 0);
  assert.deepEqual(
    problems.map((p) => [p.line, p.severity, p.code]),
    [
      [lineAt(text, unlabelled), 'warning', 'spc/no-speaker-labels'],
      [lineAt(text, empty), 'warning', 'spc/empty-conversation'],
    ],
  );

  const [first, second] = examples;
  const row0 = rows[0]!;
  const conv0 = row0['Best Generated Conversation']!.split('\n');
  assert.deepEqual(first, {
    id: '0-1',
    personas: row0['user 2 personas']!.split('\n'),
    history: [conv0[0]!.replace('User 1: ', '')],
    response: conv0[1]!.replace('User 2: ', ''),
    persona_index: first!.persona_index,
    split: 'test',
    source: 'synthetic-persona-chat',
  });
  assert.deepEqual(second!.personas, row0['user 1 personas']!.split('\n'));
  assert.equal(second!.history.length, 2);
  // "I like to meet new people, play ultimate frisbee, ..." relies on "I love to meet new people."
  assert.equal(examples[2]!.persona_index, 0);
  for (const e of examples) {
    assert.equal(e.history.length >= 1, true);
    assert.ok(e.persona_index >= -1 && e.persona_index < e.personas!.length);
  }
});

test('parseSpcConversation: markdown labels, narration, continuation lines and repeated speakers', () => {
  const cell = [
    '* * User 1: * * Hi there!',
    '',
    '[The next day]',
    'User 2: Hello. Here is my list:',
    '* eggs',
    '* * *',
    'User 1: Nice.',
    'User 1: So, what now?',
    'User 2:',
    '(Later)',
    'User 2: Bye.',
  ].join('\n');
  const { turns, problems } = parseSpcConversation(cell);
  assert.deepEqual(turns, [
    { speaker: '1', text: 'Hi there!' },
    { speaker: '2', text: 'Hello. Here is my list:\n* eggs' },
    { speaker: '1', text: 'Nice.\nSo, what now?' },
    { speaker: '2', text: 'Bye.' },
  ]);
  assert.deepEqual(problems, []);
  assert.equal(parseSpcConversation('Hello\nHi').problems[0]!.code, 'spc/no-speaker-labels');
  assert.deepEqual(
    parseSpcConversation('Preamble\nUser 1: a\nUser 2: b').problems.map((p) => [p.lineInCell, p.code]),
    [[0, 'spc/text-before-first-turn']],
  );
});

test('importSyntheticPersonaChat reports broken rows at their line and keeps going', () => {
  const csv = [
    'user 1 personas,user 2 personas,Best Generated Conversation',
    '"I am a chef.', // row 1 starts on line 2 and spans lines 2-6
    'I live in Paris.","I paint.","User 1: Hi!',
    'User 2: Hi, I paint landscapes.',
    'User 1: I live in Paris and cook at a small bistro.',
    'User 2: Lovely."',
    '"Only one column here."', // line 7
    '"I swim.","I run.","Hello without labels', // line 8
    'and more."',
    '"I swim.","I run.","User 1: Hey', // line 10
    'User 2: Hey"',
  ].join('\n');
  const { examples, problems } = importSyntheticPersonaChat(csv, 'small.csv', { split: 'train' });
  assert.deepEqual(
    problems.map((p) => [p.line, p.severity, p.code]),
    [
      [7, 'error', 'spc/missing-column'],
      [8, 'warning', 'spc/no-speaker-labels'],
    ],
  );
  assert.deepEqual(
    examples.map((e) => [e.id, e.personas, e.history.length, e.response, e.persona_index, e.split]),
    [
      ['0-1', ['I paint.'], 1, 'Hi, I paint landscapes.', 0, 'train'],
      ['0-2', ['I am a chef.', 'I live in Paris.'], 2, 'I live in Paris and cook at a small bistro.', 1, 'train'],
      ['0-3', ['I paint.'], 3, 'Lovely.', -1, 'train'],
      ['3-1', ['I run.'], 1, 'Hey', -1, 'train'],
    ],
  );

  const crlf = importSyntheticPersonaChat(csv.replace(/\n/g, '\r\n'), 'crlf.csv');
  assert.deepEqual(
    crlf.problems.map((p) => p.line),
    [7, 8],
    'Windows line ends give the same lines',
  );

  const badHeader = importSyntheticPersonaChat('a,b\n1,2\n', 'other.csv');
  assert.deepEqual(
    badHeader.problems.map((p) => [p.line, p.code]),
    [[1, 'spc/header']],
  );
  assert.match(badHeader.problems[0]!.message, /"user 1 personas", "user 2 personas", "Best Generated Conversation"/);

  const unclosed = importSyntheticPersonaChat(`${csv}\n"I fly.","I sing.","User 1: oops\nUser 2: never closed\n`, 'unclosed.csv');
  assert.equal(unclosed.examples.length, 4, 'the rows before the broken one are kept');
  assert.deepEqual(
    unclosed.problems.map((p) => [p.severity, p.code]),
    [
      ['error', 'spc/missing-column'],
      ['warning', 'spc/no-speaker-labels'],
      ['error', 'spc/csv-syntax'],
    ],
  );
  assert.ok(unclosed.problems[2]!.line >= 12, 'at or after the row that opened the quote');
  assert.match(unclosed.problems[2]!.message, /never closed/);
});

// ---------------------------------------------------------------------------------------------
// Character cards (made up for these tests)

const v2Card = {
  spec: 'chara_card_v2',
  spec_version: '2.0',
  data: {
    name: 'Maren Holt',
    description: '{{char}} is a retired lighthouse keeper. She lives alone with three cats on a windy island. Her boat is called Gull.',
    personality: 'gruff, patient, curious',
    scenario: '{{user}} washes up on the island after a storm.',
    first_mes: '*Maren squints at you.* Another one the sea spat out.',
    mes_example:
      '<START>\n{{user}}: Where am I?\n{{char}}: On my island. Sit by the fire.\n<START>\n{{user}}: Do you get lonely?\n{{char}}: The cats talk more than you think.\nAnd the gulls never stop.',
    creator_notes: 'Written for the PAL Studio tests.',
    system_prompt: '',
    post_history_instructions: '',
    alternate_greetings: ['The kettle is on.'],
    character_book: { entries: [{ keys: ['lighthouse'], content: 'Built in 1871.', enabled: true, insertion_order: 0 }], extensions: {} },
    tags: ['maritime', 'slice of life'],
    creator: 'pal-studio-tests',
    character_version: '1.0',
    extensions: { other_tool: { mood: 7 } },
  },
};

const v3Card = {
  spec: 'chara_card_v3',
  spec_version: '3.0',
  data: {
    ...v2Card.data,
    name: 'Ilse',
    nickname: 'Ils',
    description: '',
    personality: 'Ilse speaks in short sentences. She hates small talk.',
    mes_example: '',
    tags: [],
    creator_notes_multilingual: { de: 'Für die Tests.' },
    source: ['https://example.invalid/ilse'],
    group_only_greetings: ['Everyone, sit.'],
    creation_date: 1700000000,
    modification_date: 1700000100,
    assets: [{ type: 'icon', uri: 'ccdefault:', name: 'main', ext: 'png' }],
  },
};

test('card facts turn into the first person, a second verb of the same subject too (issue 18.12)', () => {
  const card = {
    spec: 'chara_card_v2',
    spec_version: '2.0',
    data: {
      ...v2Card.data,
      personality: '',
      description: '{{char}} keeps the lamp lit and has not left the island in years. Maren Holt loves cats and dogs. She is old but is still strong.',
    },
  };
  const { persona } = importCharacterCard(JSON.stringify(card), 'maren.json');
  assert.deepEqual(persona!.facts, ['I keep the lamp lit and have not left the island in years.', 'I love cats and dogs.', 'I am old but am still strong.']);
});

test('a V2 card imports as a persona and exports deep-equal when unchanged', () => {
  const { persona, problems } = importCharacterCard(JSON.stringify(v2Card, null, 2), 'maren.json');
  assert.deepEqual(problems, []);
  assert.ok(persona);
  assert.equal(persona.id, 'maren-holt');
  assert.equal(persona.name, 'Maren Holt');
  assert.equal(persona.description, v2Card.data.description);
  assert.equal(persona.style, 'gruff, patient, curious');
  assert.deepEqual(persona.tags, ['maritime', 'slice of life']);
  assert.deepEqual(persona.facts, [
    'I am gruff, patient, curious.',
    'I am a retired lighthouse keeper.',
    'I live alone with three cats on a windy island.',
    'My boat is called Gull.',
  ]);
  assert.deepEqual(persona.examples, [
    {
      turns: [
        { speaker: 'user', text: 'Where am I?' },
        { speaker: 'persona', text: 'On my island. Sit by the fire.' },
      ],
    },
    {
      turns: [
        { speaker: 'user', text: 'Do you get lonely?' },
        { speaker: 'persona', text: 'The cats talk more than you think.\nAnd the gulls never stop.' },
      ],
    },
  ]);
  assert.deepEqual(persona.extensions?.character_card, v2Card);

  assert.deepEqual(JSON.parse(exportCharacterCard(persona)), v2Card);
  // Through a JSON round trip too, as a saved persona file would be.
  assert.deepEqual(JSON.parse(exportCharacterCard(JSON.parse(JSON.stringify(persona)) as Persona)), v2Card);
});

test('edits to a persona show in the exported card, and nothing else changes', () => {
  const { persona } = importCharacterCard(JSON.stringify(v2Card), 'maren.json');
  const edited: Persona = { ...persona!, name: 'Maren Holt-Vik', style: 'gruff but kind', tags: ['maritime'] };
  const card = JSON.parse(exportCharacterCard(edited));
  // The id and the facts no longer follow from the card's name and personality: they travel in
  // the card's extensions.pal_studio, and the card's own fields hold just the edits.
  const { pal_studio: stored, ...extensions } = card.data.extensions;
  assert.deepEqual(
    { ...card, data: { ...card.data, extensions } },
    {
      ...v2Card,
      data: { ...v2Card.data, name: 'Maren Holt-Vik', personality: 'gruff but kind', tags: ['maritime'] },
    },
  );
  assert.deepEqual(stored.persona.facts, persona!.facts);
  assert.equal(importCharacterCard(JSON.stringify(card), 'maren.json').persona!.id, 'maren-holt');
  const noDescription: Persona = {
    ...persona!,
    description: undefined,
    examples: [
      {
        turns: [
          { speaker: 'user', text: 'Hi' },
          { speaker: 'persona', text: 'Hm.' },
        ],
      },
    ],
  };
  const card2 = JSON.parse(exportCharacterCard(noDescription));
  assert.equal(card2.data.description, '');
  assert.equal(card2.data.mes_example, '<START>\n{{user}}: Hi\n{{char}}: Hm.');
  assert.equal(card2.data.name, 'Maren Holt');
});

test('a V3 card keeps its V3 fields through import and export', () => {
  const { persona, problems } = importCharacterCard(JSON.stringify(v3Card), 'ilse.json');
  assert.deepEqual(problems, []);
  assert.equal(persona!.id, 'ilse');
  assert.equal(persona!.description, undefined, 'an empty description is no description');
  assert.equal(persona!.tags, undefined);
  assert.equal(persona!.examples, undefined);
  assert.deepEqual(persona!.facts, ['I speak in short sentences.', 'I hate small talk.']);
  assert.deepEqual(JSON.parse(exportCharacterCard(persona!)), v3Card);
  const renamed = JSON.parse(exportCharacterCard({ ...persona!, name: 'Ilse Brandt', tags: ['stern'] }));
  assert.equal(renamed.data.name, 'Ilse Brandt');
  assert.deepEqual(renamed.data.tags, ['stern']);
  assert.equal(renamed.data.nickname, 'Ils');
  assert.deepEqual(renamed.data.assets, v3Card.data.assets);
});

test('a V1 (flat) card imports, and exports back flat', () => {
  const v1 = {
    name: 'Tobias',
    description: 'Tobias repairs clocks in a tiny shop. He never throws a gear away.',
    personality: '',
    scenario: '',
    first_mes: 'Ah, a customer.',
    mes_example: '<START>\n<USER>: Can you fix it?\n<BOT>: Everything can be fixed.',
  };
  const { persona, problems } = importCharacterCard(JSON.stringify(v1), 'tobias.json');
  assert.deepEqual(problems, []);
  assert.equal(persona!.id, 'tobias');
  assert.equal(persona!.style, undefined);
  assert.deepEqual(persona!.facts, ['I repair clocks in a tiny shop.', 'I never throw a gear away.']);
  assert.deepEqual(persona!.examples, [
    {
      turns: [
        { speaker: 'user', text: 'Can you fix it?' },
        { speaker: 'persona', text: 'Everything can be fixed.' },
      ],
    },
  ]);
  assert.deepEqual(JSON.parse(exportCharacterCard(persona!)), v1);
  assert.equal(JSON.parse(exportCharacterCard({ ...persona!, name: 'Tobi' })).name, 'Tobi');
});

test('invalid JSON is reported at the line and column of the error', () => {
  const text = '{\n  "name": "Broken",\n  "description": "x"\n  "personality": "y"\n}';
  const { persona, problems } = importCharacterCard(text, 'broken.json');
  assert.equal(persona, undefined);
  assert.deepEqual(
    problems.map((p) => [p.line, p.column, p.severity, p.code]),
    [[4, 3, 'error', 'card/invalid-json']],
  );
  assert.match(problems[0]!.message, /","/);

  assert.deepEqual(
    importCharacterCard('[1, 2]', 'a.json').problems.map((p) => p.code),
    ['card/not-an-object'],
  );
  assert.deepEqual(
    importCharacterCard('{"spec": "chara_card_v2"}', 'a.json').problems.map((p) => p.code),
    ['card/no-data'],
  );
  assert.deepEqual(
    importCharacterCard('{"spec": "chara_card_v2", "data": {"name": ""}}', 'a.json').problems.map((p) => p.code),
    ['card/no-name'],
  );
});

test('a persona written in PAL Studio exports as a new V2 card that imports back', () => {
  const persona: Persona = { id: 'ada', name: 'Ada', facts: ['i have two dogs .', 'i grew up on a farm .'], tags: ['farm'] };
  const card = JSON.parse(exportCharacterCard(persona));
  assert.equal(card.spec, 'chara_card_v2');
  assert.equal(card.data.name, 'Ada');
  assert.equal(card.data.description, 'i have two dogs . i grew up on a farm .');
  assert.deepEqual(card.data.tags, ['farm']);
  const back = importCharacterCard(JSON.stringify(card), 'ada.json').persona!;
  assert.equal(back.name, 'Ada');
  assert.deepEqual(back.tags, ['farm']);
});

// Issue 18.2: a card has no field for facts, the id or a persona's own fields; they were lost on
// export, and re-importing a new card took a fact from its description and dropped a long one.
const handWritten: Persona = {
  id: 'ada-lovelace-2',
  name: 'Ada',
  facts: ['i have two dogs .', 'i grew up on a farm at the edge of a forest where my grandfather kept bees and sold honey at the market every saturday .'],
  description: 'A farmer who reads at night.',
  style: 'warm, slow',
  tags: ['farm'],
  examples: [
    {
      turns: [
        { speaker: 'user', text: 'Hi' },
        { speaker: 'persona', text: 'Come in.' },
      ],
      note: 'kept',
    },
  ],
  voice: 'low',
  extensions: { other_tool: { colour: 'green' } },
};

test('persona -> card -> persona keeps every field, and the card -> persona -> card round trip is exact', () => {
  const cardText = exportCharacterCard(handWritten);
  const card = JSON.parse(cardText);
  // Front ends still see the facts after the description.
  assert.equal(card.data.description, `A farmer who reads at night.\n\n${handWritten.facts.join(' ')}`);
  assert.deepEqual(card.data.extensions.pal_studio.persona, handWritten);
  const { persona: back, problems } = importCharacterCard(cardText, 'ada.json');
  assert.deepEqual(problems, []);
  assert.deepEqual(back, handWritten);
  assert.equal(exportCharacterCard(back!), cardText);
  // The same through YAML-like JSON text, as a saved persona file is read.
  assert.deepEqual(importCharacterCard(exportCharacterCard(JSON.parse(JSON.stringify(back)) as Persona), 'ada.json').persona, handWritten);
});

test('facts edited after importing a card survive export and re-import; an unedited card gets nothing added', () => {
  const { persona } = importCharacterCard(JSON.stringify(v2Card), 'maren.json');
  assert.equal(JSON.parse(exportCharacterCard(persona!)).data.extensions.pal_studio, undefined);
  const edited: Persona = { ...persona!, id: 'maren', facts: ['I keep the light on Skarv.', ...persona!.facts.slice(1)] };
  const card = JSON.parse(exportCharacterCard(edited));
  // Only the extension is new: every field of the card is as it was.
  const { pal_studio: stored, ...otherExtensions } = card.data.extensions;
  assert.deepEqual({ ...card, data: { ...card.data, extensions: otherExtensions } }, v2Card);
  assert.deepEqual(stored.persona.facts, edited.facts);
  const back = importCharacterCard(JSON.stringify(card), 'maren.json').persona!;
  assert.equal(back.id, 'maren');
  assert.deepEqual(back.facts, edited.facts);
  assert.deepEqual(back.extensions?.character_card, v2Card, 'the copy of the card does not carry the extension');
  assert.deepEqual(JSON.parse(exportCharacterCard(back)), card);
});

test('a field edited in another tool after export wins; the facts and the id stay', () => {
  const card = JSON.parse(exportCharacterCard(handWritten));
  card.data.name = 'Ada Byron';
  card.data.description = `Reads at night, writes at dawn.\n\n${handWritten.facts.join(' ')}`;
  card.data.tags = ['farm', 'poet'];
  card.data.creator = 'someone';
  const back = importCharacterCard(JSON.stringify(card), 'ada.json').persona!;
  assert.equal(back.name, 'Ada Byron');
  assert.equal(back.description, 'Reads at night, writes at dawn.');
  assert.deepEqual(back.tags, ['farm', 'poet']);
  assert.equal(back.id, handWritten.id);
  assert.deepEqual(back.facts, handWritten.facts);
  assert.equal(back.voice, 'low');
  assert.equal(back.style, handWritten.style);
  // The card now holds what PAL Studio did not write (the creator): it is kept with the persona.
  assert.equal((back.extensions?.character_card as { data: { creator: string } }).data.creator, 'someone');
  assert.equal(JSON.parse(exportCharacterCard(back)).data.creator, 'someone');
});

test('a V1 card with edited facts round-trips and comes back flat', () => {
  const v1 = {
    name: 'Tobias',
    description: 'Tobias repairs clocks in a tiny shop. He never throws a gear away.',
    personality: '',
    scenario: '',
    first_mes: '',
    mes_example: '',
  };
  const persona = importCharacterCard(JSON.stringify(v1), 'tobias.json').persona!;
  const card = JSON.parse(exportCharacterCard({ ...persona, facts: ['I repair clocks.'] }));
  assert.equal(card.spec, undefined);
  const back = importCharacterCard(JSON.stringify(card), 'tobias.json').persona!;
  assert.deepEqual(back.facts, ['I repair clocks.']);
  assert.deepEqual(back.extensions?.character_card, v1);
});

test('an extensions.pal_studio that PAL Studio did not write is warned about and kept in the card', () => {
  const card = { ...v2Card, data: { ...v2Card.data, extensions: { pal_studio: { version: 9 } } } };
  const { persona, problems } = importCharacterCard(JSON.stringify(card), 'maren.json');
  assert.deepEqual(
    problems.map((p) => p.code),
    ['card/pal-data'],
  );
  assert.equal(persona!.name, 'Maren Holt');
  assert.deepEqual(persona!.extensions?.character_card, card);
});

// ---------------------------------------------------------------------------------------------
// Format guessing

test('guessImportFormat recognises each format by its content', { skip: noData }, () => {
  const head = (file: string) => read(file).slice(0, 4000);
  assert.equal(guessImportFormat(head(convai2File), 'whatever.dat'), 'persona-chat');
  assert.equal(guessImportFormat(head(spcFile), 'whatever.dat'), 'spc');
  // Content wins over a misleading name.
  assert.equal(guessImportFormat(head(convai2File), 'data.csv'), 'persona-chat');
  assert.equal(guessImportFormat(head(spcFile), 'data.txt'), 'spc');
});

test('guessImportFormat: cards, unknown content, and the file name as a tie-breaker', () => {
  assert.equal(guessImportFormat(JSON.stringify(v2Card), 'x.txt'), 'card');
  assert.equal(guessImportFormat(JSON.stringify(v3Card), 'x'), 'card');
  assert.equal(guessImportFormat(JSON.stringify({ name: 'A', first_mes: 'hi' }), 'x'), 'card');
  assert.equal(guessImportFormat(JSON.stringify({ name: 'A', facts: [] }), 'a.json'), undefined, 'a persona file is not a card');
  assert.equal(guessImportFormat('{ "name": "A", ', 'broken.json'), 'card', 'broken JSON named .json');
  assert.equal(guessImportFormat('{ "name": "A", ', 'broken.txt'), undefined);
  assert.equal(guessImportFormat('1 your persona: i like tea.\n2 hi\thello\n', 'x'), 'persona-chat');
  assert.equal(guessImportFormat("1 partner's persona: i like tea.\n2 your persona: i ski.\n", 'x'), 'persona-chat');
  assert.equal(guessImportFormat('1 hello there without a tab\n', 'a.txt'), 'persona-chat');
  assert.equal(guessImportFormat('1 hello there without a tab\n', 'a'), undefined);
  assert.equal(guessImportFormat('name,age\nbob,3\n', 'people.csv'), undefined);
  assert.equal(guessImportFormat('Dear diary,\ntoday I', 'notes.md'), undefined);
  assert.equal(guessImportFormat('', 'empty.csv'), 'spc');
  assert.equal(guessImportFormat('', 'empty'), undefined);
});

test('importCorpus: one example per answering turn of a speaker with personas, history alternating', () => {
  const line = (d: object) => JSON.stringify(d);
  const text = [
    line({
      id: 'd1',
      source: 'SPC-train',
      persona_a: ['I have a cat named Tom.'],
      persona_b: ['I am a baker.', 'I love bread.'],
      turns: [
        { speaker: 'user1', text: 'Hi! What do you do?' },
        { speaker: 'user2', text: 'I am a baker.' },
        { speaker: 'user2', text: 'I bake bread every morning.' },
        { speaker: 'user1', text: 'Nice. My cat Tom loves bread too.' },
      ],
    }),
    line({
      id: 'd2',
      source: 'other',
      turns: [
        { speaker: 'a', text: 'no personas here' },
        { speaker: 'b', text: 'none' },
      ],
    }),
    '{ not json',
    line({ id: 'd3', turns: [{ speaker: 'x' }] }),
    '',
  ].join('\n');
  const { examples, problems } = importCorpus(text, 'c.jsonl');
  assert.deepEqual(
    examples.map((e) => e.id),
    ['d1#1', 'd1#2'],
  );
  // The first speaker has persona_a; two turns in a row by one speaker are one turn.
  assert.deepEqual(examples[0]!.personas, ['I am a baker.', 'I love bread.']);
  assert.deepEqual(examples[0]!.history, ['Hi! What do you do?']);
  assert.equal(examples[0]!.response, 'I am a baker.\nI bake bread every morning.');
  assert.equal(examples[0]!.persona_index, 0);
  assert.deepEqual(examples[1]!.personas, ['I have a cat named Tom.']);
  assert.equal(examples[1]!.history.length, 2);
  assert.equal(examples[1]!.persona_index, 0, 'the labeller finds the cat');
  assert.equal(examples[1]!.split, 'train');
  assert.equal(examples[1]!.source, 'SPC-train');
  assert.deepEqual(
    problems.map((p) => [p.line, p.severity, p.code]),
    [
      [3, 'error', 'corpus/json'],
      [4, 'error', 'corpus/turn'],
      [2, 'info', 'corpus/no-personas'],
    ],
  );
  assert.equal(guessImportFormat(text, 'whatever'), 'corpus');
  assert.equal(guessImportFormat('', 'c.jsonl.gz'), 'corpus');
});

test('importCorpus reads the Synthetic-Persona-Chat training corpus', { skip: noData }, () => {
  const file = path.join(personaChatDir, '..', 'corpora', 'synthetic_persona_chat_train_newspc.jsonl.gz');
  const text = gunzipSync(readFileSync(file)).toString('utf8');
  const firstLines = text.split('\n').slice(0, 50).join('\n');
  const { examples, problems } = importCorpus(firstLines, file);
  assert.ok(examples.length > 500, `${examples.length} examples from 50 dialogues`);
  assert.ok(problems.every((p) => p.severity !== 'error'));
  for (const e of examples) {
    assert.ok(e.personas!.length >= 3 && e.history.length >= 1 && e.response.length > 0);
    assert.ok(e.persona_index >= -1 && e.persona_index < e.personas!.length);
  }
  const labelled = examples.filter((e) => e.persona_index >= 0).length / examples.length;
  assert.ok(labelled > 0.1 && labelled < 0.9, `share with a persona label: ${labelled}`);
});

test('pal import --balance keeps every labelled example and as many "none" ones, in file order, the same with the same seed', () => {
  const examples = Array.from({ length: 20 }, (_, i): DialogueExample => ({
    id: `e${i}`,
    personas: ['i sail .'],
    history: ['hi'],
    response: 'x',
    persona_index: i % 5 === 0 ? 0 : -1,
    split: 'train',
  }));
  const kept = balanceLabels(examples, 7);
  assert.equal(kept.filter((e) => e.persona_index >= 0).length, 4);
  assert.equal(kept.filter((e) => e.persona_index < 0).length, 4);
  assert.deepEqual(
    kept.map((e) => e.id),
    [...kept].sort((a, b) => Number(a.id!.slice(1)) - Number(b.id!.slice(1))).map((e) => e.id),
    'file order',
  );
  assert.deepEqual(balanceLabels(examples, 7), kept);
  assert.notDeepEqual(
    balanceLabels(examples, 8).map((e) => e.id),
    kept.map((e) => e.id),
    'the seed draws the "none" ones',
  );
});
