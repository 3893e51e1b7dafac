// pal validate / import / export, run as a user runs them, on real data from ../shared/data.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { fetchedModelDir, LABELLER_ENCODER } from '../../src/engine/baseModels';
import { packageRoot } from '../../src/engine/paths';
import { personaChatDir, skipWithoutData } from './shared-data';

const root = packageRoot();
const data = personaChatDir;
const noData = skipWithoutData(path.join(data, 'convai2_valid_dev.txt'), path.join(data, 'synthetic_persona_chat_test.csv'));
const dir = mkdtempSync(path.join(os.tmpdir(), 'pal-cli-data-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const pal = (...args: string[]) => spawnSync(process.execPath, [path.join(root, 'dist', 'cli.js'), ...args], { encoding: 'utf8', timeout: 120_000 });

test('pal validate: the sample project is clean (exit 0)', () => {
  const r = pal('validate', path.join(root, 'samples', 'studio'));
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^6 files checked: 0 errors, 0 warnings\.$/m);
});

test('pal validate: problems as file:line:column: severity: message, exit 1', () => {
  const f = path.join(dir, 'bad.pairs.jsonl');
  writeFileSync(f, '{"prompt": "hi", "chosen": "a", "rejected": "b"}\n{"prompt": "hi", "chosen": "a"}\n');
  const r = pal('validate', f);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, `${f}:2:1: error: Missing 'rejected': the dispreferred response.\n`);
  const json = pal('validate', '--json', f);
  assert.equal(JSON.parse(json.stdout)[0].code, 'pair/schema-required');
});

test('pal import: ConvAI2 text into a dialogue set that validates, without ever replacing a file unasked', { skip: noData }, () => {
  const out = path.join(dir, 'convai2.dialogues.jsonl');
  // Word labels here: this test is about the import itself; the semantic labeller has its own below.
  const r = pal('import', path.join(data, 'convai2_valid_dev.txt'), '--out', out, '--labeller', 'words');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /Imported 5270 examples .* \(persona-chat; split valid, from the file name\)/);
  assert.match(r.stderr, /^Labelled by word overlap\.$/m);
  const lines = readFileSync(out, 'utf8').trim().split('\n');
  assert.equal(lines.length, 5270);
  assert.equal(pal('validate', out).status, 0);
  writeFileSync(out, 'my own work\n');
  const again = pal('import', path.join(data, 'convai2_valid_dev.txt'), '--out', out, '--labeller', 'words');
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already exists; choose another name or pass --force/);
  assert.equal(readFileSync(out, 'utf8'), 'my own work\n', 'the existing file is untouched');
  assert.equal(pal('import', path.join(data, 'convai2_valid_dev.txt'), '--out', out, '--force', '--labeller', 'words').status, 0);
  assert.match(
    pal('import', path.join(data, 'convai2_valid_dev.txt'), '--out', out, '--labeller', 'meaning').stderr,
    /--labeller must be words, semantic or auto/,
  );
});

const encoderFetched = existsSync(path.join(fetchedModelDir(LABELLER_ENCODER), 'onnx', 'model.onnx'));
test(
  'pal import --labeller semantic: the kept examples are labelled by meaning where words found no persona sentence',
  { skip: noData || (!encoderFetched && process.env.CI !== 'true' && `${LABELLER_ENCODER} is not fetched`) },
  () => {
    const read = (f: string) =>
      readFileSync(f, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { id: string; persona_index: number });
    const [words, semantic] = [path.join(dir, 'words.dialogues.jsonl'), path.join(dir, 'semantic.dialogues.jsonl')];
    const input = path.join(data, 'convai2_valid_dev.txt');
    assert.equal(pal('import', input, '--out', words, '--limit', '60', '--labeller', 'words').status, 0);
    const r = pal('import', input, '--out', semantic, '--limit', '60', '--labeller', 'semantic');
    assert.equal(r.status, 0, r.stderr);
    const byMeaning = Number(/then by meaning \(all-minilm-l6-v2\) where no sentence shared enough words: (\d+) responses/.exec(r.stderr)?.[1]);
    const [w, s] = [read(words), read(semantic)];
    assert.deepEqual(
      s.map((e) => e.id),
      w.map((e) => e.id),
    );
    const changed = s.filter((e, i) => e.persona_index !== w[i]!.persona_index);
    assert.ok(changed.length > 0 && changed.length === byMeaning, `${changed.length} changed, ${byMeaning} reported`);
    for (const e of changed) assert.equal(w[s.indexOf(e)]!.persona_index, -1, 'only "none" labels are given a sentence');
    // --balance labels the whole file first; the count is of the examples written.
    const balanced = pal('import', input, '--out', semantic, '--force', '--balance', '--sample', '30', '--labeller', 'semantic');
    assert.equal(balanced.status, 0, balanced.stderr);
    const counted = Number(/where no sentence shared enough words: (\d+) responses/.exec(balanced.stderr)?.[1]);
    assert.ok(counted > 0 && counted <= 30, `${counted} of 30 written`);
  },
);

test('pal import guesses Synthetic-Persona-Chat CSV and Character Cards from their content', { skip: noData }, () => {
  const spc = path.join(dir, 'spc.dialogues.jsonl');
  const r = pal('import', path.join(data, 'synthetic_persona_chat_test.csv'), '--out', spc, '--labeller', 'words');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /\(spc; split test, from the file name\)/);
  assert.equal(pal('validate', spc).status, 0);
  const card = path.join(dir, 'card.json');
  writeFileSync(
    card,
    JSON.stringify({
      spec: 'chara_card_v2',
      spec_version: '2.0',
      data: {
        name: 'Captain Io',
        description: 'Io pilots a cargo ship. Io hates paperwork.',
        personality: 'gruff, loyal',
        scenario: '',
        first_mes: 'Aboard!',
        mes_example: '',
        creator_notes: '',
        system_prompt: '',
        post_history_instructions: '',
        alternate_greetings: [],
        tags: ['space'],
        creator: 'test',
        character_version: '1',
        extensions: {},
      },
    }),
  );
  const persona = path.join(dir, 'io.persona.yaml');
  const c = pal('import', card, '--out', persona);
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stderr, /\(card\)/);
  assert.equal(pal('validate', persona).status, 0, pal('validate', persona).stdout);
  // And back: the card comes out as it went in.
  const back = path.join(dir, 'io.card.json');
  assert.equal(pal('export', persona, '--to', 'card', '--out', back).status, 0);
  assert.deepEqual(JSON.parse(readFileSync(back, 'utf8')), JSON.parse(readFileSync(card, 'utf8')));
});

test('pal export --to card then pal import gives the persona file back, every field (issue 18.2)', () => {
  const written = path.join(dir, 'wren.persona.yaml');
  const yaml = [
    'id: wren-2',
    'name: Wren',
    'facts:',
    '  - i fix bicycles for a living .',
    '  - on sundays i ride out past the reservoir to the old mill where my aunt still bakes bread in a wood oven for the whole village .',
    'description: A bike mechanic.',
    'voice: husky',
    'extensions:',
    '  other_tool: {level: 3}',
    '',
  ].join('\n');
  writeFileSync(written, yaml);
  const card = path.join(dir, 'wren.card.json');
  const e = pal('export', written, '--to', 'card', '--out', card);
  assert.equal(e.status, 0, e.stderr);
  const back = path.join(dir, 'wren-back.persona.yaml');
  const i = pal('import', card, '--out', back);
  assert.equal(i.status, 0, i.stderr);
  assert.deepEqual(parseYaml(readFileSync(back, 'utf8')), parseYaml(yaml));
});

test('pal export: pairs for TRL, LLaMA-Factory and axolotl; pending pairs are left out and counted', () => {
  const pairs = path.join(root, 'samples', 'studio', 'pairs', 'mara.pairs.jsonl');
  const trl = pal('export', pairs, '--to', 'trl', '--out', path.join(dir, 'trl'));
  assert.equal(trl.status, 0, trl.stderr);
  assert.match(trl.stderr, /Exported 2 to trl; left out 1 \(1 pending\)/);
  const rows = readFileSync(path.join(dir, 'trl', 'mara.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(Object.keys(rows[0]), ['prompt', 'chosen', 'rejected']);
  assert.equal(pal('export', pairs, '--to', 'llama-factory', '--out', path.join(dir, 'lf')).status, 0);
  const info = JSON.parse(readFileSync(path.join(dir, 'lf', 'dataset_info.json'), 'utf8'));
  assert.equal(info.mara.ranking, true);
  assert.equal(pal('export', pairs, '--to', 'axolotl', '--out', path.join(dir, 'ax')).status, 0);
  assert.ok(existsSync(path.join(dir, 'ax', 'axolotl-dataset.yaml')));
  const again = pal('export', pairs, '--to', 'trl', '--out', path.join(dir, 'trl'));
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already exists/);
  // Issue 18.3: a line that cannot be read is left out too, and said so ("No pair was left out." was printed).
  const broken = path.join(dir, 'broken.pairs.jsonl');
  const good = JSON.stringify({ prompt: 'any pets ?', chosen: 'a cat .', rejected: 'no .', status: 'chosen' });
  writeFileSync(broken, `${good}\n{"prompt": "cut off\n${good}\n`);
  const r = pal('export', broken, '--to', 'trl', '--out', path.join(dir, 'trl-broken'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /broken\.pairs\.jsonl:2:/);
  assert.match(r.stderr, /Exported 2 to trl; left out 1 \(1 unreadable line\)/);
  assert.match(r.stderr, /Left out 1 pair: 1 on line that could not be read\./);
  assert.doesNotMatch(r.stderr, /No pair was left out/);
});

test('usage errors exit 2 and say what is wrong', () => {
  assert.match(pal('import', 'x.txt').stderr, /needs --out/);
  assert.equal(pal('export', 'x.pairs.jsonl', '--to', 'onnx', '--out', 'o').status, 2);
  assert.match(pal('import', 'a', '--out', 'b', '--from', 'csv').stderr, /--from must be persona-chat, spc, corpus or card/);
  assert.equal(pal('validate').status, 2);
});

test('pal import never writes over its input, leaves no empty file behind, and takes the split from the file name (issue 18.8, 18.10)', () => {
  const episode = '1 your persona: i have a dog named rex .\n2 your persona: i like to ski .\n3 hi , do you have pets ?\tyes , a dog named rex .\n';
  const train = path.join(dir, 'train_both_original.txt');
  writeFileSync(train, episode);
  const out = path.join(dir, 'train.dialogues.jsonl');
  const r = pal('import', train, '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /Imported 1 example from .*\(persona-chat; split train, from the file name\)/);
  assert.equal(JSON.parse(readFileSync(out, 'utf8').trim()).split, 'train');
  const plain = path.join(dir, 'episodes.txt');
  writeFileSync(plain, episode);
  assert.match(
    pal('import', plain, '--out', path.join(dir, 'plain.dialogues.jsonl')).stderr,
    /\(persona-chat; split valid, the persona-chat default: --split to change\)/,
  );
  // Its own input, by the same path, through a link, or as a hard link: refused, the file intact.
  const before = readFileSync(out, 'utf8');
  const link = path.join(dir, 'link.dialogues.jsonl');
  symlinkSync(out, link);
  const hard = path.join(dir, 'hard.dialogues.jsonl');
  linkSync(out, hard);
  for (const target of [out, link, hard]) {
    const self = pal('import', out, '--out', target, '--force');
    assert.equal(self.status, 1, target);
    assert.match(self.stderr, /is the file being imported .*importing over it would lose it/);
  }
  assert.equal(readFileSync(out, 'utf8'), before);
  // Nothing to import (persona lines only): no empty output file blocks the next try.
  const empty = path.join(dir, 'valid_none.txt');
  writeFileSync(empty, '1 your persona: i have a dog named rex .\n');
  const none = path.join(dir, 'none.dialogues.jsonl');
  const n = pal('import', empty, '--out', none);
  assert.equal(n.status, 1);
  assert.match(n.stderr, /Nothing imported from .*none\.dialogues\.jsonl was not written/);
  assert.equal(existsSync(none), false);
});

test('pal validate walks a folder with a link cycle and dangling links, and names a bad link it was given (issue 18.9)', () => {
  const loop = path.join(dir, 'loop');
  mkdirSync(path.join(loop, 'a'), { recursive: true });
  symlinkSync('..', path.join(loop, 'a', 'up'));
  symlinkSync('itself', path.join(loop, 'itself'));
  symlinkSync('nowhere', path.join(loop, 'dangling'));
  writeFileSync(path.join(loop, 'a', 'm.persona.json'), JSON.stringify({ id: 'mara', name: 'Mara', facts: ['i keep a lighthouse .'] }));
  const r = pal('validate', loop);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /1 file checked: 0 errors/);
  assert.doesNotMatch(r.stderr, /ELOOP/);
  const self = pal('validate', path.join(loop, 'itself'));
  assert.equal(self.status, 1);
  assert.match(self.stderr, /itself: a chain of symbolic links that leads back to itself/);
  assert.match(pal('validate', path.join(loop, 'dangling')).stderr, /dangling: no such file or folder \(a symbolic link to something that is not there\)/);
});

test('a file that is not UTF-8 is refused where it goes wrong, never read as replacement characters (issue 18.7)', () => {
  const utf16 = path.join(dir, 'wide.persona.yaml');
  writeFileSync(utf16, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('id: ines\nname: Inês\nfacts: [i fish .]\n', 'utf16le')]));
  const a = pal('validate', utf16);
  assert.equal(a.status, 1);
  assert.match(a.stdout, /wide\.persona\.yaml:1:1: error: this file is UTF-16 \(little-endian\): PAL Studio reads UTF-8\. Save it as UTF-8/);
  const latin1 = path.join(dir, 'old.dialogues.jsonl');
  const bytes = Buffer.from(
    `${JSON.stringify({ personas: ['i fish .'], history: ['hi'], response: 'hello .', persona_index: -1, split: 'train' })}\n{"personas": ["caf\u00e9"], "history": ["x"], "response": "y", "persona_index": -1, "split": "train"}\n`,
    'latin1',
  );
  writeFileSync(latin1, bytes);
  const b = pal('validate', latin1);
  assert.equal(b.status, 1);
  assert.match(b.stdout, /old\.dialogues\.jsonl:2:19: error: byte 0xE9 is not UTF-8; the file looks like Latin-1/);
  assert.deepEqual(readFileSync(latin1), bytes, 'the file is untouched');
  // Everything that reads a writer's file says the same: an import, a run's data, a prediction set.
  const imported = pal('import', latin1, '--from', 'corpus', '--out', path.join(dir, 'latin1-out.dialogues.jsonl'));
  assert.equal(imported.status, 1);
  assert.match(imported.stderr, /old\.dialogues\.jsonl:2:19: error: byte 0xE9 is not UTF-8/);
  // A UTF-8 byte-order mark is fine.
  const bom = path.join(dir, 'bom.persona.yaml');
  writeFileSync(bom, `\uFEFFid: ines\nname: Inês\nfacts: [i fish .]\n`);
  assert.equal(pal('validate', bom).status, 0);
});
