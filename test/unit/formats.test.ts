import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { parseDialogues } from '../../src/core/formats/dialogues';
import { validateText, formatProblem, type Problem } from '../../src/core/formats/index';
import { appendRecord, records, serializeJsonl, setRecord } from '../../src/core/formats/jsonl';
import { parsePairs } from '../../src/core/formats/pairs';
import { editPersona, parsePersona, serializePersona } from '../../src/core/formats/persona';
import { parseRunConfig } from '../../src/core/formats/runConfig';
import { packageRoot } from '../../src/engine/paths';

const at = (p: Problem) => `${p.line}:${p.column}`;
const codes = (ps: readonly Problem[]) => ps.map((p) => p.code);

describe('persona files', () => {
  const samples = path.join(packageRoot(), 'samples', 'studio', 'personas');

  test('the sample personas parse with no problem, and unchanged files save byte for byte', () => {
    const files = readdirSync(samples).filter((f) => f.endsWith('.persona.yaml'));
    assert.ok(files.length >= 2);
    for (const f of files) {
      const text = readFileSync(path.join(samples, f), 'utf8');
      const doc = parsePersona(text, f);
      assert.deepEqual(doc.problems, [], f);
      assert.ok(doc.persona!.facts.length >= 3);
      assert.equal(serializePersona(doc), text);
    }
  });

  const yamlPersona = `# Mara, written by hand
id: mara   # used by dialogue sets
name: Mara
facts:
  # the important one first
  - i keep a lighthouse .
  - i bake bread every morning .
tags: [calm]
extensions:
  card_color: teal
`;

  test('an edit keeps comments, key order and unknown fields', () => {
    const doc = parsePersona(yamlPersona, 'mara.persona.yaml');
    const edited = editPersona(doc, ['facts', 1], 'i bake rye bread every morning .');
    const text = serializePersona(edited);
    assert.equal(edited.dirty, true);
    // Editing a fact's text touches that line alone: every other byte is the writer's.
    assert.equal(text, yamlPersona.replace('i bake bread every morning .', 'i bake rye bread every morning .'));
    assert.match(text, / {2}# the important one first\n/);
    assert.match(text, /- i bake rye bread every morning \.\n/);
    assert.ok(text.indexOf('tags:') > text.indexOf('facts:') && text.indexOf('extensions:') > text.indexOf('tags:'), 'key order kept');
    assert.deepEqual(edited.persona!.extensions, { card_color: 'teal' });
    // Appending and removing facts works the same way.
    const added = editPersona(edited, ['facts', 2], 'my cat is named tern .');
    assert.deepEqual(added.persona!.facts.length, 3);
    assert.match(serializePersona(added), /id: mara +# used by dialogue sets\n[^]*tags: \[calm\]/);
    const removed = editPersona(added, ['facts', 0], undefined);
    assert.deepEqual(removed.persona!.facts, ['i bake rye bread every morning .', 'my cat is named tern .']);
    assert.match(serializePersona(removed), /# Mara, written by hand/);
  });

  test('a fact quoted because it had to be is written plain once it no longer needs quotes; a quoted number stays quoted (issue 17)', () => {
    const text = 'id: x\nname: X\nfacts:\n  - "i say: hello"\n  - "styled by hand"\n  - "123"\n';
    const fixed = editPersona(parsePersona(text, 'x.persona.yaml'), ['facts', 0], 'i say hello');
    assert.equal(serializePersona(fixed), text.replace('"i say: hello"', 'i say hello'));
    // Quotes the writer chose (the old value did not need them) stay; so do quotes a value needs.
    const styled = editPersona(parsePersona(text, 'x.persona.yaml'), ['facts', 1], 'still by hand');
    assert.equal(serializePersona(styled), text.replace('"styled by hand"', '"still by hand"'));
    const number = editPersona(parsePersona(text, 'x.persona.yaml'), ['facts', 2], '456');
    assert.equal(serializePersona(number), text.replace('"123"', '"456"'));
    assert.deepEqual(number.persona!.facts[2], '456');
    const needs = editPersona(fixed, ['facts', 0], 'i say: hello again');
    assert.equal(needs.persona!.facts[0], 'i say: hello again');
  });

  test("a structural edit keeps the spacing before an unrelated line's comment (issue 17)", () => {
    const text = 'id: ines\nname: Inês Lobo   # keep the accent\nfacts:\n  - i like tea .\n';
    const added = editPersona(parsePersona(text, 'ines.persona.yaml'), ['facts'], ['i like tea .', 'i grew up in porto .']);
    assert.equal(serializePersona(added), `${text}  - i grew up in porto .\n`);
  });

  test('a JSON persona is edited in place: the rest of its formatting is untouched', () => {
    const json = '{\n    "id": "dev",\n    "name": "Dev",\n    "facts": ["i ride a bike ."],\n    "x-custom": {"keep": true}\n}\n';
    const doc = parsePersona(json, 'dev.persona.json');
    assert.deepEqual(doc.problems, []);
    const edited = editPersona(doc, ['name'], 'Dev Okafor');
    assert.equal(serializePersona(edited), json.replace('"Dev"', '"Dev Okafor"'));
  });

  test('schema problems say what is wrong, in words, where it is', () => {
    const text = 'id: Mara Quell\nfacts: i keep a lighthouse .\ntags: [calm]\n';
    const ps = parsePersona(text, 'm.persona.yaml').problems;
    const byCode = Object.fromEntries(ps.map((p) => [p.code, p]));
    assert.equal(byCode['persona/schema-required']!.message, "Missing 'name': the character's name.");
    assert.equal(byCode['persona/schema-type']!.message, '\'facts\' should be a list, not text ("i keep a lighthouse .").');
    assert.equal(at(byCode['persona/schema-type']!), '2:8');
    assert.match(byCode['persona/schema-pattern']!.message, /^'id' is not in the expected form \(identifier used by dialogue sets.*\): "Mara Quell"\.$/);
    assert.equal(at(byCode['persona/schema-pattern']!), '1:5');
  });

  test('lint: duplicate facts, over-long facts, empty personas, misspelt fields', () => {
    const long = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ');
    const text = `id: a\nname: A\nfacts:\n  - i like tea .\n  - ${long}\n  - I like tea!\nstyel: terse\n`;
    const ps = parsePersona(text, 'a.persona.yaml').problems;
    const dup = ps.find((p) => p.code === 'persona/duplicate-fact')!;
    assert.equal(dup.line, 6);
    assert.match(dup.message, /same fact as line 4/);
    assert.equal(ps.find((p) => p.code === 'persona/fact-too-long')!.line, 5);
    const typo = ps.find((p) => p.code === 'persona/unknown-field')!;
    assert.equal(at(typo), '7:1');
    assert.match(typo.message, /did you mean 'style'\? It is kept/);
    const empty = parsePersona('id: b\nname: B\nfacts: []\n', 'b.persona.yaml').problems;
    assert.deepEqual(codes(empty), ['persona/empty']);
  });

  test('YAML syntax errors are located; a persona file that is a list is refused', () => {
    const ps = parsePersona('id: a\nname: [unclosed\nfacts: []\n', 'a.persona.yaml').problems;
    assert.equal(ps[0]!.code, 'persona/syntax');
    assert.ok(ps[0]!.line >= 2);
    assert.deepEqual(codes(parsePersona('- a\n- b\n', 'l.persona.yaml').problems), ['persona/not-a-persona']);
  });
});

describe('dialogue sets', () => {
  const good = {
    id: 'e1',
    personas: ['i have a dog .', 'i like jazz .'],
    history: ['hi , any pets ?'],
    response: 'yes , a dog named rex .',
    persona_index: 0,
    split: 'train' as const,
  };
  const lines = [
    JSON.stringify(good),
    '{"personas": ["a ."], "history": ["hi"], "response": "x", "persona_index": "0", "split": "train"}',
    '{"personas": ["a ."], "history": ["hi"], "response": "x", "persona_index": 3, "split": "train"}',
    '{"personas": ["a ."], "persona_id": "mara", "history": [], "response": "x", "persona_index": -1, "split": "dev"}',
    '{"history": ["hi"], "respone": "x", "persona_index": -1, "split": "test", "persona_id": "mara"}',
    '{"broken": ',
    '',
    JSON.stringify({ ...good, id: 'e1', extra: { kept: [1, 2] } }),
  ];
  const text = lines.join('\r\n');

  test('every line is checked on its own; problems name the line and column', () => {
    const doc = parseDialogues(text, 'd.dialogues.jsonl');
    assert.deepEqual(
      records(doc).map((r) => r.line),
      [1, 8],
    );
    const problems = doc.lines.flatMap((l) => l.problems).map((p) => `${at(p)} ${p.code}`);
    assert.deepEqual(problems, [
      `2:76 dialogue/schema-type`,
      `3:76 dialogue/persona-index`,
      `4:107 dialogue/schema-enum`,
      `5:1 dialogue/schema-required`,
      `5:21 dialogue/unknown-field`,
      `6:12 jsonl/invalid-json`,
      `8:1 dialogue/duplicate-id`,
    ]);
    const messages = doc.lines.flatMap((l) => l.problems.map((p) => p.message));
    assert.equal(messages[0], '\'persona_index\' should be a whole number, not text ("0").');
    assert.equal(messages[1], "'persona_index' is 3 but there are only 1 persona sentences (0 to 0, or -1 for none).");
    assert.equal(messages[2], '\'split\' should be one of "train", "valid", "test", not "dev".');
    assert.equal(messages[3], "Missing 'response': the gold response.");
  });

  test('saving gives back the same bytes (CRLF, blank lines, broken lines, no final newline)', () => {
    const doc = parseDialogues(text, 'd.dialogues.jsonl');
    assert.equal(serializeJsonl(doc), text);
    const withBom = `\uFEFF${lines[0]}\n`;
    const bomDoc = parseDialogues(withBom, 'b.dialogues.jsonl');
    assert.equal(records(bomDoc).length, 1);
    assert.equal(serializeJsonl(bomDoc), withBom);
  });

  test('an edit rewrites only its line; an append keeps the file’s line endings; unknown fields survive', () => {
    const doc = parseDialogues(text, 'd.dialogues.jsonl');
    const last = doc.lines.length - 1;
    const value = { ...doc.lines[last]!.value!, response: 'a new response .' };
    setRecord(doc, last, value);
    appendRecord(doc, { ...good, id: 'e9' });
    const out = serializeJsonl(doc);
    const outLines = out.split('\r\n');
    assert.deepEqual(outLines.slice(0, 7), lines.slice(0, 7));
    assert.deepEqual(JSON.parse(outLines[7]!).extra, { kept: [1, 2] });
    assert.equal(JSON.parse(outLines[7]!).response, 'a new response .');
    assert.equal(JSON.parse(outLines[8]!).id, 'e9');
    assert.equal(out.endsWith('\r\n'), false, 'the file had no final newline, and still has none');
  });
});

describe('preference pairs', () => {
  test('standard and conversational TRL pairs are accepted, with unknown fields', () => {
    const std = {
      prompt: 'hi',
      chosen: 'hello there .',
      rejected: 'go away .',
      status: 'chosen',
      origin: 'annotated',
      time: '2026-11-26T09:30:00Z',
      trl_extra: 1,
    };
    const conv = {
      prompt: [{ role: 'user', content: 'hi' }],
      chosen: [{ role: 'assistant', content: 'hello' }],
      rejected: [{ role: 'assistant', content: 'no' }],
    };
    const doc = parsePairs(`${JSON.stringify(std)}\n${JSON.stringify(conv)}\n`, 'p.pairs.jsonl');
    assert.deepEqual(
      doc.lines.flatMap((l) => l.problems),
      [],
    );
    assert.equal(records(doc)[0]!.value.trl_extra, 1);
  });

  test('mixed formats, equal responses, unknown statuses and bad times are reported', () => {
    const lines = [
      { prompt: 'hi', chosen: [{ role: 'assistant', content: 'x' }], rejected: 'y' },
      { prompt: 'hi', chosen: 'same .', rejected: ' same . ' },
      { prompt: 'hi', chosen: 'a', rejected: 'b', status: 'done' },
      { prompt: 'hi', chosen: 'a', rejected: 'b', time: 'yesterday' },
    ];
    const doc = parsePairs(lines.map((l) => JSON.stringify(l)).join('\n'), 'p.pairs.jsonl');
    assert.deepEqual(
      doc.lines.map((l) => l.problems.map((p) => p.code)),
      [['pair/mixed-format'], ['pair/chosen-equals-rejected'], ['pair/schema-enum'], ['pair/time']],
    );
    assert.equal(doc.lines[0]!.problems[0]!.column, 25, 'points at the odd field: chosen');
    assert.equal(records(doc).length, 2, 'warnings keep the record; errors do not');
  });
});

describe('run configs', () => {
  test("a minimal config gets PAL's defaults", () => {
    const doc = parseRunConfig('model:\n  base: models/pal-default\ndata:\n  dialogues: [data/train.dialogues.jsonl]\n', 'runs/mara.palrun.yaml');
    assert.deepEqual(doc.problems, []);
    const c = doc.config!;
    assert.equal(c.name, 'mara');
    assert.deepEqual([c.stage1.lr, c.stage1.warmup_steps, c.stage1.grad_clip, c.stage1.schedule, c.stage1.lora], [2e-5, 100, 10, 'constant', null]);
    assert.deepEqual(
      [c.stage2.beta, c.stage2.lr, c.stage2.loss, c.stage2.rejected.temperature, c.stage2.rejected.max_new_tokens],
      [0.1, 1e-6, 'sigmoid', 1, 40],
    );
    assert.deepEqual([c.device, c.precision, c.seed, c.data.pairs], ['auto', 'auto', 42, []]);
    assert.deepEqual(
      c.evaluation,
      { max_new_tokens: 40, num_beams: 1, repetition_penalty: 1, no_repeat_ngram_size: 0, no_repeat_ngram_from: 'reply', prefer_selected_fact: false },
      'greedy, no repetition controls',
    );
  });

  test("every unknown run-config field is a warning at its key, with our name for another tool's (issue 18.6)", () => {
    const doc = parseRunConfig(
      'model: {base: m}\ndata: {dialogues: [d.dialogues.jsonl]}\nstage1:\n  learning_rate: 0.0001\n  lora: {lora_r: 8}\noptimizer: adamw\n',
      'x.palrun.yaml',
    );
    assert.ok(doc.config, 'warnings do not stop the run');
    assert.deepEqual(
      doc.problems.map((p) => `${at(p)} ${p.severity} ${p.message}`),
      [
        "4:3 warning Unknown field 'stage1.learning_rate': did you mean 'lr'? It is kept, but PAL Studio does not use it.",
        "5:10 warning Unknown field 'stage1.lora.lora_r': did you mean 'r'? It is kept, but PAL Studio does not use it.",
        "6:1 warning Unknown field 'optimizer': a run config has no such setting, so it changes nothing. The top level takes: name, method, model, data, stage1, stage2, evaluation, device, precision, output, seed.",
      ],
    );
  });

  test('NaN or an infinity is one error, not one per bound it breaks (issue 18.12)', () => {
    for (const [v, word] of [
      ['.nan', 'NaN'],
      ['.inf', 'Infinity'],
      ['-.inf', '-Infinity'],
    ]) {
      const doc = parseRunConfig(`model: {base: m}\ndata: {dialogues: [d.dialogues.jsonl]}\nstage1: {lr: ${v}}\n`, 'x.palrun.yaml');
      assert.deepEqual(
        doc.problems.map((p) => `${at(p)} ${p.message}`),
        [`3:14 'stage1.lr' should be a finite number, not ${word}.`],
      );
    }
  });

  test('the evaluation decoding is checked where it is written', () => {
    const ok = parseRunConfig(
      'model: {base: m}\ndata: {dialogues: [d.dialogues.jsonl]}\nevaluation: {num_beams: 3, no_repeat_ngram_size: 3, prefer_selected_fact: true}\n',
      'x.palrun.yaml',
    );
    assert.deepEqual(ok.config!.evaluation, {
      max_new_tokens: 40,
      num_beams: 3,
      repetition_penalty: 1,
      no_repeat_ngram_size: 3,
      no_repeat_ngram_from: 'reply',
      prefer_selected_fact: true,
    });
    const bad = parseRunConfig(
      'model: {base: m}\ndata: {dialogues: [d.dialogues.jsonl]}\nevaluation:\n  repetition_penalty: 0.5\n  no_repeat_ngram_size: 2.5\n  no_repeat_ngram_from: facts\n  prefer_selected_fact: often\n',
      'x.palrun.yaml',
    );
    assert.equal(bad.config, undefined);
    assert.deepEqual(bad.problems.map((p) => `${at(p)} ${p.message}`).sort(), [
      "4:23 'evaluation.repetition_penalty' should be at least 1, not 0.5.",
      "5:25 'evaluation.no_repeat_ngram_size' should be a whole number, not the number 2.5.",
      `6:25 'evaluation.no_repeat_ngram_from' should be one of "reply", "partner", "prompt", not "facts".`,
      '7:25 \'evaluation.prefer_selected_fact\' should be true or false, not text ("often").',
    ]);
  });

  test('LoRA switched on with {} gets r 16, alpha 32', () => {
    const doc = parseRunConfig('model: {base: m}\ndata: {dialogues: [d.dialogues.jsonl]}\nstage2:\n  lora: {}\n', 'x.palrun.yaml');
    assert.deepEqual(doc.config!.stage2.lora, { r: 16, alpha: 32, dropout: 0.05, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] });
  });

  test('wrong types and impossible values are errors at their place; odd values are warnings', () => {
    const text = 'model: {base: m}\ndata: {dialogues: [d.dialogues.jsonl]}\nstage1:\n  lr: fast\n  epochs: 0\nstage2:\n  beta: 0\n  lr: 0.01\ndevice: gpu\n';
    const doc = parseRunConfig(text, 'x.palrun.yaml');
    assert.equal(doc.config, undefined);
    const shown = doc.problems.map((p) => `${at(p)} ${p.message}`);
    assert.deepEqual(shown.sort(), [
      '4:7 \'stage1.lr\' should be a number, not text ("fast").',
      "5:11 'stage1.epochs' should be at least 1, not 0.",
      "7:9 'stage2.beta' should be more than 0, not 0.",
      '9:9 \'device\' is not in the expected form (auto, cpu, cuda, cuda:N or mps): "gpu".',
    ]);
    const warned = parseRunConfig('model: {base: m}\ndata: {dialogues: [d.dialogues.jsonl]}\nstage2:\n  lr: 0.01\n', 'x.palrun.yaml');
    assert.deepEqual(codes(warned.problems), ['palrun/dpo-lr']);
    assert.ok(warned.config, 'a warning does not stop the run');
  });
});

test('validateText dispatches on the file name and formats problems like a compiler', () => {
  const ps = validateText('a/b.pairs.jsonl', '{"prompt": "x"}\n');
  assert.deepEqual(ps.map(formatProblem), [
    "a/b.pairs.jsonl:1:1: error: Missing 'chosen': the preferred response.",
    "a/b.pairs.jsonl:1:1: error: Missing 'rejected': the dispreferred response.",
  ]);
  assert.throws(() => validateText('notes.txt', ''), /not a PAL Studio file/);
});

test('a scalar edit that needs quoting is quoted; the rest of the file is untouched', () => {
  const text = 'id: a\nname: A   # the name\nfacts:\n  - i like tea .\n';
  const doc = parsePersona(text, 'a.persona.yaml');
  for (const tricky of ['i say: hello # not a comment', '[not a list]', "it's fine", '- dash', 'yes']) {
    const edited = editPersona(doc, ['facts', 0], tricky);
    assert.deepEqual(edited.persona!.facts, [tricky], serializePersona(edited));
    assert.ok(serializePersona(edited).startsWith('id: a\nname: A   # the name\nfacts:\n  - '));
  }
});
