// Bootstrap intervals, the paired test, the labelled/unlabelled subsets and the trivial selection
// rows (src/core/metrics/bootstrap.ts, evaluate.ts): checked against cases whose answer is known
// without a bootstrap (a proportion's normal interval, identical systems, a system better on
// every example) and against the report's own numbers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  aggregate,
  AGGREGATE_KEYS,
  bootstrapIntervals,
  evaluate,
  evaluateText,
  pairedBootstrap,
  pairedShareDifference,
  shareInterval,
  trivialSelection,
  type PredictionRecord,
} from '../../src/core/metrics/index';
import { mulberry32 } from '../../src/core/random';

const WORDS = ['dog', 'cat', 'ski', 'bread', 'sea', 'jazz', 'truck', 'ohio', 'nurse', 'garden', 'rain', 'tea'];

/** n records of random short sentences, each prediction sharing some words with its reference. */
function randomRecords(n: number, seed: number): PredictionRecord[] {
  const random = mulberry32(seed);
  const sentence = (k: number) => Array.from({ length: k }, () => WORDS[Math.floor(random() * WORDS.length)]!).join(' ');
  return Array.from({ length: n }, (_, i) => ({
    id: `e${i}`,
    prediction: sentence(3 + Math.floor(random() * 6)),
    reference: sentence(3 + Math.floor(random() * 6)),
    personas: [sentence(4), sentence(4)],
    selected: Math.floor(random() * 3) - 1,
    gold_persona: Math.floor(random() * 3) - 1,
  }));
}

test('aggregate over every example is the report: one function for the point and for each draw', () => {
  const records = randomRecords(200, 3);
  const ev = evaluateText(records);
  const all = aggregate(ev.stats, Int32Array.from(ev.stats.keys()), ev.vocabularySize);
  for (const k of AGGREGATE_KEYS) assert.equal(all[k], ev.report[k], k);
});

test("a proportion's bootstrap interval is its normal interval: ROUGE-L 1 on half of 400 examples, 0 on the rest", () => {
  const records = Array.from({ length: 400 }, (_, i) =>
    i % 2 ? { prediction: 'i like tea', reference: 'i like tea' } : { prediction: 'dogs bark', reference: 'i like tea' },
  );
  const ev = evaluateText(records);
  assert.equal(ev.report.rougeL, 0.5);
  const { rougeL } = bootstrapIntervals(ev, { resamples: 2000 });
  // 0.5 +- 1.96 * sqrt(0.25 / 400) = 0.451 .. 0.549
  assert.ok(Math.abs(rougeL!.low - 0.451) < 0.012 && Math.abs(rougeL!.high - 0.549) < 0.012, `${rougeL!.low}..${rougeL!.high}`);
});

test('intervals hold the point, narrow with more examples, and repeat with the seed', () => {
  const small = evaluateText(randomRecords(100, 5));
  const large = evaluateText(randomRecords(1600, 5));
  const a = bootstrapIntervals(small);
  assert.deepEqual(bootstrapIntervals(small), a, 'the same seed gives the same intervals');
  assert.notDeepEqual(bootstrapIntervals(small, { seed: 2 }), a);
  for (const k of ['bleu1', 'bleu4', 'rougeL', 'distinct1', 'pF1', 'selectionAccuracy'] as const) {
    assert.ok(a[k]!.low <= small.report[k]! && small.report[k]! <= a[k]!.high, `${k}: ${small.report[k]} in ${a[k]!.low}..${a[k]!.high}`);
  }
  const b = bootstrapIntervals(large);
  for (const k of ['bleu1', 'rougeL', 'pF1'] as const) assert.ok(b[k]!.high - b[k]!.low < (a[k]!.high - a[k]!.low) / 2, `${k} narrows`);
  // Every answer right: nothing to be unsure of.
  const perfect = evaluateText(randomRecords(50, 9).map((r) => ({ ...r, prediction: r.reference })));
  assert.deepEqual(bootstrapIntervals(perfect).bleu1, { low: 1, high: 1 });
  assert.deepEqual(bootstrapIntervals(perfect).rougeL, { low: 1, high: 1 });
});

test('Distinct-n intervals hold the point though a draw repeats predictions (every reply here is different)', () => {
  // Each prediction its own words: Distinct-2 is 1 on the set, and about 0.63 on a plain draw
  // (a third of the examples come twice), an interval that would leave the point out.
  const unique = Array.from({ length: 200 }, (_, i) => ({ prediction: `w${i}a w${i}b w${i}c w${i}d`, reference: 'i like tea' }));
  const repeated = unique.map((r, i) => ({ ...r, prediction: i % 2 ? 'i like it' : 'i like tea' }));
  const ev = evaluateText(unique);
  assert.equal(ev.report.distinct2, 1);
  const { distinct1, distinct2 } = bootstrapIntervals(ev);
  for (const [k, i] of [
    ['distinct1', distinct1],
    ['distinct2', distinct2],
  ] as const) {
    assert.ok(i!.low <= ev.report[k]! && ev.report[k]! <= i!.high && i!.high <= 1, `${k}: ${ev.report[k]} in ${i!.low}..${i!.high}`);
  }
  const paired = pairedBootstrap(evaluateText(repeated), ev).distinct2!;
  assert.ok(paired.interval.low <= paired.delta && paired.delta <= paired.interval.high && paired.interval.low > 0, JSON.stringify(paired));
});

test('the paired test: identical systems differ by nothing; one better on every example differs with p < 0.001; a coin flip does not', () => {
  const records = randomRecords(300, 11);
  const a = evaluateText(records);
  const same = pairedBootstrap(a, evaluateText(records));
  assert.deepEqual(same.bleu1, { delta: 0, interval: { low: 0, high: 0 }, p: 1 });

  const better = pairedBootstrap(a, evaluateText(records.map((r) => ({ ...r, prediction: r.reference, selected: r.gold_persona }))));
  for (const k of ['bleu1', 'rougeL', 'selectionAccuracy'] as const) {
    assert.ok(better[k]!.delta > 0 && better[k]!.interval.low > 0 && better[k]!.p < 0.001, `${k}: ${JSON.stringify(better[k])}`);
  }
  // b gets the reference on a shuffled half of the examples and nothing on the other half, a the
  // other way round: the same on the whole, so the test must not call it.
  const random = mulberry32(4);
  const heads = records
    .map((_, i) => [i % 2 === 0, random()] as const)
    .sort((p, q) => p[1] - q[1])
    .map(([h]) => h);
  const x = evaluateText(records.map((r, i) => ({ ...r, prediction: heads[i] ? r.reference : 'zzz' })));
  const y = evaluateText(records.map((r, i) => ({ ...r, prediction: heads[i] ? 'zzz' : r.reference })));
  const coin = pairedBootstrap(x, y).rougeL!;
  assert.ok(coin.interval.low < 0 && coin.interval.high > 0, JSON.stringify(coin));
  assert.ok(coin.p > 0.05, JSON.stringify(coin));
  assert.throws(() => pairedBootstrap(a, evaluateText(records.slice(1))), /same examples in both systems \(300 vs 299\)/);
});

test('evaluate reports the labelled and unlabelled examples apart, and the trivial selectors', async () => {
  const personas = ['i have two dogs .', 'i like to ski .', 'i bake bread .'];
  const records: PredictionRecord[] = [
    { prediction: 'my dogs are loud', reference: 'i have two dogs', personas, history: ['do you have any dogs ?'], selected: 0, gold_persona: 0 },
    { prediction: 'hello', reference: 'i ski every winter', personas, history: ['what do you do in winter , ski ?'], selected: -1, gold_persona: 1 },
    { prediction: 'fine thanks', reference: 'fine , you ?', personas, history: ['how are you ?'], selected: -1, gold_persona: -1 },
    { prediction: 'i bake', reference: 'good morning', personas, history: ['good morning !'], selected: 2, gold_persona: -1 },
  ];
  const { report } = await evaluate(records);
  assert.equal(report.subsets!.labelled.count, 2);
  assert.equal(report.subsets!.unlabelled.count, 2);
  assert.equal(report.subsets!.labelled.metrics.selectionAccuracy, 0.5);
  assert.equal(report.subsets!.unlabelled.metrics.selectionAccuracy, 0.5);
  // Always "none": right on the two unlabelled examples. BM25 names dogs, ski, nothing, nothing.
  const t = report.trivialSelection!;
  assert.deepEqual({ count: t.count, alwaysNone: t.alwaysNone, bm25: t.bm25 }, { count: 4, alwaysNone: 0.5, bm25: 1 });
  // Their intervals, and the model's paired difference: 0.5 right against always "none"'s 0.5.
  assert.ok(t.intervals!.alwaysNone!.low <= 0.5 && t.intervals!.alwaysNone!.high >= 0.5, JSON.stringify(t.intervals));
  assert.deepEqual(t.intervals!.bm25, { low: 1, high: 1 });
  assert.equal(t.modelOverAlwaysNone!.delta, 0);
  assert.deepEqual(trivialSelection(records), { count: 4, alwaysNone: 0.5, bm25: 1 }, 'without bootstrap options: the rows alone');
  assert.ok(report.intervals!.bleu1);
  // Without histories BM25 has no query: n/a, not a made-up number.
  assert.equal(trivialSelection(records.map(({ history: _, ...r }) => r)).bm25, null);
  assert.equal((await evaluate(records, { bootstrap: false })).report.intervals, undefined);
});

test("a share's interval is its normal interval, and the paired difference of two shares tells them apart only when it should", () => {
  const half = Array.from({ length: 400 }, (_, i) => i % 2);
  const i = shareInterval(half, { resamples: 2000 })!;
  // 0.5 +- 1.96 * sqrt(0.25 / 400) = 0.451 .. 0.549
  assert.ok(Math.abs(i.low - 0.451) < 0.012 && Math.abs(i.high - 0.549) < 0.012, JSON.stringify(i));
  const same = pairedShareDifference(half, half)!;
  assert.deepEqual(same.interval, { low: 0, high: 0 });
  // b right on 60 more of 400 examples than a, wrong on none where a is right: clearly above.
  const better = half.map((h, k) => (h || k < 120 ? 1 : 0));
  const d = pairedShareDifference(half, better)!;
  assert.ok(Math.abs(d.delta - 60 / 400) < 1e-12, `${d.delta}`);
  assert.ok(d.interval.low > 0.1 && d.interval.high < 0.2 && d.p < 0.001, JSON.stringify(d));
  // Right on different halves, the same share: not told apart.
  const other = half.map((h) => 1 - h);
  const coin = pairedShareDifference(half, other)!;
  assert.ok(coin.interval.low < 0 && coin.interval.high > 0 && coin.p > 0.05, JSON.stringify(coin));
  assert.throws(() => pairedShareDifference(half, half.slice(1)), /same examples in both \(400 vs 399\)/);
});

test('trivialSelection: a model that names the right fact where "none" is wrong is above always "none"; one that names facts at random is below', () => {
  const random = mulberry32(9);
  const records: PredictionRecord[] = Array.from({ length: 300 }, (_, i) => ({
    prediction: 'hi',
    reference: 'hello',
    personas: ['a b c', 'd e f', 'g h i'],
    gold_persona: i % 5 < 2 ? -1 : i % 3,
  }));
  const oracle = trivialSelection(
    records.map((r) => ({ ...r, selected: r.gold_persona })),
    {},
  );
  assert.equal(oracle.alwaysNone, 0.4);
  assert.ok(oracle.modelOverAlwaysNone!.interval.low > 0.5, JSON.stringify(oracle.modelOverAlwaysNone));
  const guesser = trivialSelection(
    records.map((r) => ({ ...r, selected: Math.floor(random() * 4) - 1 })),
    {},
  );
  assert.ok(guesser.modelOverAlwaysNone!.interval.high < 0, JSON.stringify(guesser.modelOverAlwaysNone));
  // A record without a selection: no paired difference (the model's accuracy would be over fewer examples).
  assert.equal(trivialSelection([...records.map((r) => ({ ...r, selected: -1 })), records[0]!], {}).modelOverAlwaysNone, undefined);
});
