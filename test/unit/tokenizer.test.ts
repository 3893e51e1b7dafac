// The byte-level BPE tokenizer: merges computed by hand on tiny corpora, deterministic training, and
// on a sample of the real corpora transformers.js loading our tokenizer.json and tokenizing exactly
// as our own encoder does (and decoding back to the text).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BYTE_TO_UNICODE, BpeTokenizer, END_OF_TEXT, preTokenize, toTokenizerJson, trainBpe } from '../../src/core/tokenizer/bpe';
import { spawnSync } from 'node:child_process';
import { packageRoot } from '../../src/engine/paths';
import { corpusFiles, corpusTurns, trainTokenizer } from '../../src/engine/tokenizerTrain';
import { sharedData, skipWithoutData } from './shared-data';

describe('training on tiny corpora gives the merges computed by hand', () => {
  test('GPT-2 byte alphabet and pre-tokenizer', () => {
    assert.equal(BYTE_TO_UNICODE[0x20], 'Ġ');
    assert.equal(BYTE_TO_UNICODE[0x0a], 'Ċ');
    assert.equal(BYTE_TO_UNICODE[0x41], 'A');
    assert.equal(new Set(BYTE_TO_UNICODE).size, 256);
    assert.deepEqual(preTokenize("I'm 25, ok?\nyes  no"), ['I', "'m", ' 25', ',', ' ok', '?', '\n', 'yes', ' ', ' no']);
  });

  test('"ab ab ab" + "abc": a+b (count 4), then Ġ+ab (count 2); b+c (count 1) is below minFrequency 2', () => {
    // Words: "ab" x1, " ab" x2, "abc" x1. Pairs: (a,b) 4, (Ġ,a) 2, (b,c) 1 -> merge a b.
    // Then: (Ġ,ab) 2, (ab,c) 1 -> merge Ġ ab. Then only (ab,c) 1 < 2: stop.
    const m = trainBpe(['ab ab ab', 'abc'], { vocabSize: 1000 });
    assert.deepEqual(m.merges, [
      ['a', 'b'],
      ['Ġ', 'ab'],
    ]);
    assert.equal(m.vocab.get(END_OF_TEXT), 0);
    assert.equal(m.vocab.get('ab'), 257);
    assert.equal(m.vocab.get('Ġab'), 258);
    assert.equal(m.vocab.size, 259);
    const tok = new BpeTokenizer(m);
    assert.deepEqual(tok.tokenize('abc ab'), ['ab', 'c', 'Ġab']);
  });

  test('vocabSize stops training; minFrequency 1 merges singletons', () => {
    const m = trainBpe(['ab ab ab', 'abc'], { vocabSize: 258, minFrequency: 1 });
    assert.deepEqual(m.merges, [['a', 'b']]);
    const all = trainBpe(['ab ab ab', 'abc'], { vocabSize: 1000, minFrequency: 1 });
    assert.deepEqual(all.merges, [
      ['a', 'b'],
      ['Ġ', 'ab'],
      ['ab', 'c'],
    ]);
  });

  test('ties go to the pair with the smaller (left id, right id)', () => {
    const m = trainBpe(['zw', 'xy'], { vocabSize: 1000, minFrequency: 1 });
    assert.deepEqual(m.merges, [
      ['x', 'y'],
      ['z', 'w'],
    ]);
  });

  test('overlapping pairs merge left to right; a merged string made twice keeps one id', () => {
    // "aaaa": (a,a) counted 3 times; merging gives aa aa; then aa+aa.
    const m = trainBpe(['aaaa', 'aaaa'], { vocabSize: 1000 });
    assert.deepEqual(m.merges, [
      ['a', 'a'],
      ['aa', 'aa'],
    ]);
    assert.deepEqual(new BpeTokenizer(m).tokenize('aaaaa'), ['aaaa', 'a']);
    // "abc" x3, "xbc" x2: (b,c) 5 first, then (a,bc) 3, (x,bc) 2.
    const n = trainBpe(['abc abc', 'abc', 'xbc', 'xbc'], { vocabSize: 1000 });
    assert.deepEqual(n.merges.slice(0, 3), [
      ['b', 'c'],
      ['a', 'bc'],
      ['x', 'bc'],
    ]);
  });

  test('special tokens are never split and get the first ids', () => {
    const m = trainBpe([`hi${END_OF_TEXT}hi hi`], { vocabSize: 300 });
    const tok = new BpeTokenizer(m);
    assert.deepEqual(tok.encode(`hi${END_OF_TEXT}`).slice(-1), [0]);
    assert.equal(tok.decode(tok.encode(`a ${END_OF_TEXT}\nb`)), `a ${END_OF_TEXT}\nb`);
    assert.equal(tok.decode(tok.encode(`a${END_OF_TEXT}`), { skipSpecial: true }), 'a');
  });

  test('the JSON follows GPT-2 tokenizer.json: ByteLevel pre-tokenizer and decoder, BPE with "l r" merges', () => {
    const m = trainBpe(['ab ab ab', 'abc'], { vocabSize: 1000 });
    const j = toTokenizerJson(m) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(j.version, '1.0');
    assert.deepEqual(j.pre_tokenizer, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true });
    assert.equal(j.decoder.type, 'ByteLevel');
    assert.equal(j.model.type, 'BPE');
    assert.deepEqual(j.model.merges, ['a b', 'Ġ ab']);
    assert.equal(j.model.vocab['Ġab'], 258);
    assert.deepEqual(j.added_tokens[0], { id: 0, content: END_OF_TEXT, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    assert.deepEqual(BpeTokenizer.fromJson(JSON.parse(JSON.stringify(j))).tokenize('abc ab'), ['ab', 'c', 'Ġab']);
  });
});

// The built dist/cli.js in a child process, as test/unit/cli.test.ts runs it.
const pal = (...args: string[]) => spawnSync(process.execPath, [path.join(packageRoot(), 'dist', 'cli.js'), ...args], { encoding: 'utf8', timeout: 120_000 });

test('pal tokenizer: help, and usage errors exit 2', () => {
  const help = pal('tokenizer', '--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /pal tokenizer train --corpora/);
  assert.equal(pal('tokenizer', 'train', '--out', '/nonexistent').status, 2);
  const small = pal('tokenizer', 'train', '--corpora', 'a', '--out', 'b', '--vocab-size', '12');
  assert.equal(small.status, 2);
  assert.match(small.stderr, /--vocab-size must be an integer/);
});

const corpora = path.join(sharedData, 'corpora');
const skip = skipWithoutData(corpora);

describe('on a sample of the real corpora, transformers.js tokenizes exactly as our encoder', { skip }, () => {
  let dir = '';
  let dir2 = '';
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pal-tok-'));
    dir2 = await mkdtemp(path.join(tmpdir(), 'pal-tok-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
    await rm(dir2, { recursive: true, force: true });
  });

  test('2,000 dialogues, vocabulary 1,000: same ids, same text back, same file bytes twice', async () => {
    const r = await trainTokenizer({ corpora, out: dir, vocabSize: 1000, limitDialogues: 2000 });
    assert.equal(r.dialogues, 2000);
    assert.equal(r.model.vocab.size, 1000);
    const json = await readFile(path.join(dir, 'tokenizer.json'), 'utf8');
    const ours = BpeTokenizer.fromJson(JSON.parse(json));

    // Determinism: training again gives the same bytes.
    await trainTokenizer({ corpora, out: dir2, vocabSize: 1000, limitDialogues: 2000 });
    assert.equal(await readFile(path.join(dir2, 'tokenizer.json'), 'utf8'), json);
    assert.equal(await readFile(path.join(dir2, 'tokenizer_config.json'), 'utf8'), await readFile(path.join(dir, 'tokenizer_config.json'), 'utf8'));

    const texts = [
      'Hello, how are you today?',
      'Persona:\ni love to hike .\ni have 2 dogs named Max & Rex.\n\nUser: hi! what do you do for fun?\nBot:',
      'My flight is at 10:45am on 2019-03-12, gate B17 — costs $1,234.56 (approx.)',
      "I'm sure you'll like it; we've done it, they're here, he'd go.",
      'Un café au lait, s’il vous plaît. Naïve façade, Zürich, Ελληνικά, 日本語のテキスト.',
      'emoji: 😀👍🏽 and 🇫🇷 flags ❤️',
      '   leading spaces, trailing spaces   ',
      'tabs\tand\r\nwindows newlines\n\n\nand many\n',
      `end of one dialogue${END_OF_TEXT}start of another`,
      'ALL CAPS SHOUTING!!! ??? ...',
      '',
      ' ',
      '\n',
    ];
    // And real turns the tokenizer was not trained on.
    for await (const { dialogue, text } of corpusTurns(await corpusFiles(corpora), 2300)) if (dialogue >= 2000) texts.push(text);
    assert.ok(texts.length > 300);

    const tf = await import('@huggingface/transformers');
    tf.env.allowRemoteModels = false;
    tf.env.allowLocalModels = true;
    tf.env.localModelPath = '';
    const theirs = await tf.AutoTokenizer.from_pretrained(dir, { local_files_only: true });
    for (const text of texts) {
      const ids = ours.encode(text);
      assert.deepEqual(theirs.encode(text), ids, `ids of ${JSON.stringify(text)}`);
      assert.equal(ours.decode(ids), text);
      // (transformers.js refuses to decode an empty list.)
      if (ids.length > 0) assert.equal(theirs.decode(ids), text, `decoded ${JSON.stringify(text)}`);
    }
    assert.equal(theirs.eos_token_id, 0);
    assert.equal(theirs.pad_token_id, 0);
  });
});
