// `pal eval` and `pal compare` as a user runs them: the built dist/cli.js in a child process, on
// small predictions files whose metrics are worked out by hand below.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { packageRoot } from '../../src/engine/paths';
import { buildTinyNli, torchSkip } from './tiny-nli';

const cli = path.join(packageRoot(), 'dist', 'cli.js');
const pal = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

const personas = ['i have two dogs .', 'i like to ski .'];
const HAND_CASE = [
  { prediction: 'i have two dogs .', reference: 'i have two dogs .', personas, selected: 0, gold_persona: 0 },
  { prediction: 'i like cats', reference: 'i like to ski', personas, selected: -1, gold_persona: 1 },
];

let dir: string;
const file = (name: string, lines: unknown[]) => {
  const f = path.join(dir, name);
  writeFileSync(f, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return f;
};

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pal-eval-'));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('pal eval --json gives every metric under its stable key, with hand-checked values', () => {
  const r = pal('eval', '--predictions', file('hand.jsonl', HAND_CASE), '--json');
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  for (const key of [
    'bleu1',
    'bleu2',
    'bleu3',
    'bleu4',
    'rougeL',
    'distinct1',
    'distinct2',
    'avgLength',
    'selectionAccuracy',
    'selectionAccuracyPersona',
    'selectionAccuracyNone',
    'pF1',
    'pCover',
    'selectedFactUse',
    'factRecital',
    'partnerEcho',
    'cScore',
    'cScoreMax',
    'count',
    'notes',
  ]) {
    assert.ok(key in report, `missing key ${key}`);
  }
  // Corpus n-gram matches/totals: unigrams (5 + 2)/(5 + 3), bigrams (4 + 1)/(4 + 2), trigrams
  // (3 + 0)/(3 + 1), 4-grams (2 + 0)/(2 + 1: nltk counts 1 for a hypothesis shorter than n);
  // hypothesis length 8 < reference length 9, so BP = exp(1 - 9/8).
  const bp = Math.exp(1 - 9 / 8);
  close(report.bleu1, bp * (7 / 8), 'bleu1');
  close(report.bleu2, bp * Math.sqrt((7 / 8) * (5 / 6)), 'bleu2');
  close(report.bleu3, bp * Math.cbrt((7 / 8) * (5 / 6) * (3 / 4)), 'bleu3');
  close(report.bleu4, bp * ((7 / 8) * (5 / 6) * (3 / 4) * (2 / 3)) ** 0.25, 'bleu4');
  // ROUGE-L: 1 for the identical pair; "i like cats" vs "i like to ski": LCS 2, P 2/3, R 1/2.
  const f = (p: number, rr: number) => ((1 + 1.44) * p * rr) / (rr + 1.44 * p);
  close(report.rougeL, (1 + f(2 / 3, 1 / 2)) / 2, 'rougeL');
  // 8 unigrams, 7 distinct ("i" twice); 6 bigrams, all distinct.
  close(report.distinct1, 7 / 8, 'distinct1');
  assert.equal(report.distinct2, 1);
  assert.equal(report.avgLength, 4);
  // Selection: right for the first, "none" for a gold sentence in the second.
  assert.equal(report.selectionAccuracy, 0.5);
  assert.equal(report.selectionAccuracyPersona, 0.5);
  assert.equal(report.selectionAccuracyNone, null);
  // P-F1: {two, dogs} against {two, dogs, like, ski} -> 2/3; {like, cats} -> P 1/2, R 1/4 -> 1/3.
  close(report.pF1, 0.5, 'pF1');
  // P-Cover: two, dogs, like and ski each occur 3 times in the references and persona sentences,
  // so each weighs w = 1/(1 + ln 4); covers w·2/2 and w·1/2.
  const w = 1 / (1 + Math.log(4));
  close(report.pCover, (w + w / 2) / 2, 'pCover');
  assert.equal(report.count, 2);
  assert.equal(report.tokenization, 'whitespace');
});

test('without an NLI model, C.score is null and the report says so (never a stand-in number)', () => {
  const r = pal('eval', '--predictions', file('hand.jsonl', HAND_CASE), '--json');
  const report = JSON.parse(r.stdout);
  assert.equal(report.cScore, null);
  assert.equal(report.cScoreMax, null);
  assert.ok(report.notes.includes('C.score not computed: no NLI model configured'));
  const table = pal('eval', '--predictions', path.join(dir, 'hand.jsonl'));
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /C\.score \(sum, Madotto et al\.\)\s+n\/a/);
  assert.match(table.stdout, /Note: C\.score not computed: no NLI model configured\./);
  // The trivial rows with their intervals, and the model against always "none", paired.
  assert.match(table.stdout, /always "none" 0\.0000 \(0\.0000–0\.0000\)/);
  assert.match(
    table.stdout,
    /The model's selection accuracy minus always "none": \+0\.5000 \(0\.0000–1\.0000, p [\d.]+\): not told apart from always "none"\./,
  );
});

test('--out writes report.json and a self-contained report.html that escapes every text', () => {
  const out = path.join(dir, 'out');
  const lines = [
    ...HAND_CASE,
    {
      prediction: 'hi <script>alert("x")</script> & bye',
      reference: 'hello </td><img src=x onerror=alert(1)>',
      personas: ['i am a <b>nurse</b> .'],
      selected: 0,
      gold_persona: 0,
    },
  ];
  const r = pal('eval', '--predictions', file('xss.jsonl', lines), '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /Wrote .*report\.json/);
  const json = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8'));
  assert.equal(json.count, 3);
  assert.equal(json.examples.length, 3);
  assert.deepEqual(Object.keys(json.examples[0]).sort(), [
    'bleu',
    'cScore',
    'cScoreMax',
    'factRecital',
    'nli',
    'pCover',
    'pF1',
    'partnerEcho',
    'rougeL',
    'selectedFactUse',
  ]);
  const html = readFileSync(path.join(out, 'report.html'), 'utf8');
  assert.ok(!/<script/i.test(html), 'no script element may come from the data');
  assert.ok(!/<img/i.test(html) && !/<b>nurse/.test(html));
  assert.ok(html.includes('hi &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; bye'));
  // Nothing remote: a content security policy that allows no source, and no URL anywhere.
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
  assert.ok(!/(src|href)=["']?https?:/i.test(html));
  // The selected persona sentence is highlighted; a chart is drawn inline.
  assert.ok(html.includes('<mark>i have two dogs .</mark>'));
  assert.ok(html.includes('<svg class="chart"'));
  assert.match(html, /Worst examples by P-F1/);
  assert.match(html, /<p>The model&#39;s selection accuracy minus always &quot;none&quot;: /);
});

test('--baseline shows before, after and the change; pal compare puts two reports side by side', () => {
  const before = file(
    'before.jsonl',
    HAND_CASE.map((l) => ({ ...l, prediction: 'hello there', selected: -1 })),
  );
  const after = path.join(dir, 'hand.jsonl');
  const r = pal('eval', '--predictions', after, '--baseline', before);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Metric\s+Before\s+After\s+Change/);
  assert.match(r.stdout, /Selection accuracy\s+0\.0000\s+0\.5000\s+\+0\.5000/);
  const json = JSON.parse(pal('eval', '--predictions', after, '--baseline', before, '--json').stdout);
  assert.equal(json.baseline.selectionAccuracy, 0);
  assert.equal(json.baseline.predictions, before);

  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  assert.equal(pal('eval', '--predictions', before, '--out', a).status, 0);
  assert.equal(pal('eval', '--predictions', after, '--out', b).status, 0);
  const cmp = pal('compare', path.join(a, 'report.json'), path.join(b, 'report.json'));
  assert.equal(cmp.status, 0, cmp.stderr);
  assert.match(cmp.stdout, /Selection accuracy\s+0\.0000\s+0\.5000\s+\+0\.5000/);
  const cj = JSON.parse(pal('compare', path.join(a, 'report.json'), path.join(b, 'report.json'), '--json').stdout);
  const row = cj.rows.find((x: { key: string }) => x.key === 'pF1');
  assert.equal(row.a, 0);
  close(row.b, 0.5, 'pF1 in b');
  close(row.delta, 0.5, 'pF1 change');
  assert.deepEqual(cj.warnings, []);
  // Both predictions files are there: each change has the paired bootstrap's interval and p.
  assert.equal(row.paired.delta, row.delta);
  assert.ok(row.paired.interval.low <= row.delta && row.delta <= row.paired.interval.high);
  assert.ok(row.paired.p >= 0 && row.paired.p <= 1);
  assert.match(cmp.stdout, /Change: 95% interval, paired p/);
  // Without one of them, the table stays and a warning says why there is no test.
  rmSync(before);
  const unpaired = JSON.parse(pal('compare', path.join(a, 'report.json'), path.join(b, 'report.json'), '--json').stdout);
  assert.equal(unpaired.rows.find((x: { key: string }) => x.key === 'pF1').paired, undefined);
  assert.match(unpaired.warnings.join('\n'), /no paired test: .*before\.jsonl \(the predictions .* was made from\) is not there/);
  const notReport = pal('compare', path.join(a, 'report.json'), after);
  assert.equal(notReport.status, 1);
  assert.match(notReport.stderr, /not a PAL evaluation report|JSON/);
});

test('--tokenize words splits punctuation off; whitespace does not', () => {
  const f = file('raw.jsonl', [{ prediction: 'I have two dogs.', reference: 'i have two dogs .' }]);
  const words = JSON.parse(pal('eval', '--predictions', f, '--json', '--tokenize', 'words').stdout);
  assert.equal(words.bleu4, 1);
  assert.equal(words.tokenization, 'words');
  const ws = JSON.parse(pal('eval', '--predictions', f, '--json').stdout);
  // "dogs." is one token here, so 3 of 4 unigrams match and the hypothesis is one token short.
  close(ws.bleu1, (3 / 4) * Math.exp(1 - 5 / 4), 'bleu1 whitespace');
  assert.ok(ws.notes.some((n: string) => n.startsWith('P-F1 and P-Cover not computed')));
  assert.equal(ws.pF1, null);
  assert.equal(ws.selectionAccuracy, null);
});

test('usage errors exit 2; a malformed predictions line exits 1 and names its line', () => {
  assert.equal(pal('eval').status, 2);
  assert.match(pal('eval').stderr, /needs --predictions/);
  const bad = pal('eval', '--predictions', path.join(dir, 'hand.jsonl'), '--tokenize', 'bpe');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--tokenize must be whitespace or words/);
  assert.equal(pal('compare', 'only-one.json').status, 2);
  const f = file('broken.jsonl', [HAND_CASE[0], '{"prediction": "x"}', 'not json', { prediction: 'a', reference: 'b', personas: ['x'], selected: 3 }]);
  const r = pal('eval', '--predictions', f);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /broken\.jsonl:2:1: error: "reference" must be a string/);
  assert.match(r.stderr, /broken\.jsonl:3:1: error: not valid JSON/);
  assert.match(r.stderr, /broken\.jsonl:4:1: error: "selected" is 3 but there are only 1 persona sentences/);
  assert.match(pal('eval', '--help').stdout, /Usage: pal eval --predictions/);
  assert.match(pal('--help').stdout, /eval {2,}Score a model's predictions/);
});

const noTorch = torchSkip();
describe('pal eval --nli: C.score through transformers.js with a tiny NLI model built here', { skip: noTorch }, () => {
  let model: string;
  before(async () => {
    model = path.join(dir, 'nli');
    await buildTinyNli(model);
  });

  test('C.score and its max variant, from the model folder given', () => {
    // The tiny model reads only the response: "yes"/"love" entail, "no"/"not" contradict.
    const f = file('nli.jsonl', [
      { prediction: 'yes i love dogs', reference: 'i have two dogs .', personas: ['no i hate dogs .', 'i like to ski .'] }, // +1 +1
      { prediction: 'no , not you', reference: 'i do .', personas: ['yes i agree .', 'i am a nurse .', 'i have a cat .'] }, // -1 -1 -1
      { prediction: 'i have a cat', reference: 'i have a cat .', personas: ['no .'] }, // 0
    ]);
    const r = pal('eval', '--predictions', f, '--nli', model, '--json');
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.cScore, (2 - 3 + 0) / 3);
    assert.equal(report.cScoreMax, (1 - 1 + 0) / 3);
    assert.equal(report.cScoreCount, 3);
    assert.equal(report.nliModel, model);
    assert.ok(!report.notes.some((n: string) => n.startsWith('C.score not computed')));
    const out = path.join(dir, 'nli-out');
    assert.equal(pal('eval', '--predictions', f, '--nli', model, '--out', out).status, 0);
    assert.match(readFileSync(path.join(out, 'report.html'), 'utf8'), /Worst examples by C\.score/);
  });

  test('a folder that is not an NLI model is an error, not a silent fallback', () => {
    const r = pal('eval', '--predictions', path.join(dir, 'hand.jsonl'), '--nli', path.join(dir, 'no-such-model'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /not a model folder: cannot read its config\.json/);
  });
});

test('pal predict answers every example as the run evaluation does, and pal eval reads what it wrote', () => {
  const examples = [
    { id: 'a', personas, history: ['hi , do you have pets ?'], response: 'yes , two dogs .', persona_index: 0, split: 'valid' },
    { id: 'b', personas, history: ['what do you do in winter ?'], response: 'i ski .', persona_index: 1, split: 'valid' },
    { id: 'c', personas, history: ['hello'], response: 'hi .', persona_index: -1, split: 'valid' },
  ];
  const set = file('set.dialogues.jsonl', examples);
  const out = path.join(dir, 'predicted.jsonl');
  const r = pal('predict', '--model', 'pal-default', set, '--out', out, '--limit', '2', '--beams', '2', '--no-repeat-ngram', '3', '--max-new-tokens', '8');
  assert.equal(r.status, 0, r.stderr);
  const rows = readFileSync(out, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    rows.map((x) => [x.id, x.reference, x.gold_persona, x.selection_source]),
    [
      ['a', 'yes , two dogs .', 0, 'model'],
      ['b', 'i ski .', 1, 'model'],
    ],
  );
  assert.ok(rows.every((x) => typeof x.prediction === 'string' && typeof x.selected === 'number'));
  assert.equal(pal('eval', '--predictions', out, '--json').status, 0);
  // Its output is never overwritten unasked, and bad options are usage errors.
  assert.match(pal('predict', '--model', 'pal-default', set, '--out', out).stderr, /already exists/);
  assert.equal(pal('predict', '--model', 'pal-default', set, '--out', out, '--beams', 'abc').status, 2);
  assert.match(
    pal('predict', '--model', 'pal-default', set, '--out', out, '--force', '--selection', 'oracle').stderr,
    /--selection must be one of auto, model, retrieval, gold, none/,
  );
  // The reference rows: the gold sentence highlighted (without a select answer), or none.
  const gold = path.join(dir, 'gold.jsonl');
  assert.equal(pal('predict', '--model', 'pal-default', set, '--out', gold, '--selection', 'gold', '--max-new-tokens', '8').status, 0);
  const goldRows = readFileSync(gold, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    goldRows.map((x) => [x.selected, x.selection_source, x.select_probabilities]),
    [
      [0, 'given', undefined],
      [1, 'given', undefined],
      [-1, 'given', undefined],
    ],
  );
  assert.deepEqual(
    goldRows.map((x) => x.history),
    examples.map((e) => e.history),
  );
  const none = path.join(dir, 'none.jsonl');
  assert.equal(pal('predict', '--model', 'pal-default', set, '--out', none, '--selection', 'none', '--max-new-tokens', '8').status, 0);
  assert.deepEqual(
    readFileSync(none, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).selected),
    [-1, -1, -1],
  );
});

test('a bad --out is said in words before any scoring: a file in its place, a dangling link, a file as parent (issue 18.11)', () => {
  const hand = path.join(dir, 'hand.jsonl');
  const existing = file('a-file', ['x']);
  const cases: [string, RegExp][] = [
    [existing, /--out \(.*a-file\) is a file, not a folder/],
    [path.join(existing, 'sub'), /--out \(.*a-file\/sub\) cannot be made: .*a-file is a file, not a folder/],
  ];
  const dangling = path.join(dir, 'dangling');
  symlinkSync(path.join(dir, 'nowhere', 'deeper'), dangling);
  cases.push([dangling, /--out \(.*dangling\) is a link to .*nowhere\/deeper, which is not there/]);
  for (const [out, message] of cases) {
    const r = pal('eval', '--predictions', hand, '--out', out);
    assert.equal(r.status, 1, out);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /EEXIST|ENOENT|ENOTDIR/);
    assert.equal(r.stdout, '', 'nothing was scored');
  }
});

test('a line too long to score is refused, naming the line, instead of running for minutes (issue 18.4)', () => {
  const long = 'word '.repeat(5000);
  const f = file('long.jsonl', [HAND_CASE[0], { prediction: long, reference: long }]);
  const r = pal('eval', '--predictions', f);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /long\.jsonl:2:1: error: "prediction" is 25,000 characters long; .* above 20,000 characters ROUGE-L/);
});
