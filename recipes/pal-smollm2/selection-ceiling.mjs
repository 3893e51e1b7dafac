// How well can the select task be done on the model card's examples, and how well does a model do
// it? PAL's select task names the fact the gold reply will use before the reply exists, and the
// labels count a fact as used only where the reference happens to use one. This script puts the
// model's selection beside selectors that need no training, on the same examples:
//
//   node recipes/pal-smollm2/selection-ceiling.mjs .pal-studio/pal-smollm2/eval/pal-smollm2-135m.predictions.jsonl [more.predictions.jsonl]
//
// For each predictions file (written by `pal predict`, with history, personas, gold_persona and,
// for a PAL model, select_probabilities), it prints:
// - accuracy of always "none", of BM25 over the partner's last turn, and of the model;
// - on the turns whose reference uses a fact, how often the top-ranked fact is it (the model's
//   fact probabilities, BM25, all-MiniLM-L6-v2 cosine with the partner's last turn, a random order);
// - the model's "a fact is used" probability as a detector of turns whose reference uses one (AUC);
// - the best accuracy a cosine threshold reaches (a fact when its cosine with the partner's last
//   turn clears the threshold, else "none"), the threshold chosen on these same examples: an
//   optimistic ceiling for retrieval without training.
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { loadEngineModules } from '../../bench/engine-bundle.mjs';
import { root } from '../lib.mjs';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node recipes/pal-smollm2/selection-ceiling.mjs <predictions.jsonl> [...]');
  process.exit(2);
}
const m = await loadEngineModules(
  'selection-ceiling',
  `export { loadEmbedder, dot } from './src/engine/embedder';
   export { fetchedModelDir, LABELLER_ENCODER } from './src/engine/baseModels';
   export { bm25Select } from './src/core/bm25';
   export { selectionAccuracy, trivialSelection } from './src/core/metrics/index';`,
);
const encoder = m.fetchedModelDir(m.LABELLER_ENCODER);
if (!existsSync(path.join(encoder, 'onnx', 'model.onnx'))) throw new Error(`${m.LABELLER_ENCODER} is not fetched: pal model fetch ${m.LABELLER_ENCODER}`);
const embedder = await m.loadEmbedder(encoder);

const argmax = (xs) => xs.reduce((best, x, i) => (x > xs[best] ? i : best), 0);
const share = (n, of) => (of ? n / of : NaN);
const fmt = (x) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');

/** Area under the ROC curve of `score` separating positives from negatives (ties count half). */
function auc(positives, negatives) {
  let wins = 0;
  for (const p of positives) for (const n of negatives) wins += p > n ? 1 : p === n ? 0.5 : 0;
  return share(wins, positives.length * negatives.length);
}

for (const file of files) {
  const records = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l, i) => {
      const r = JSON.parse(l);
      if (!Array.isArray(r.personas) || !Array.isArray(r.history) || typeof r.gold_persona !== 'number')
        throw new Error(`${file}:${i + 1}: a prediction needs personas, history and gold_persona`);
      return r;
    });
  const cosines = [];
  for (const r of records) {
    const [query, ...facts] = await embedder.embed([r.history.at(-1), ...r.personas]);
    cosines.push(facts.map((f) => m.dot(query, f)));
  }
  const used = records.map((r, i) => i).filter((i) => records[i].gold_persona >= 0);
  const notUsed = records.map((r, i) => i).filter((i) => records[i].gold_persona < 0);
  const withModel = records.every((r) => r.select_probabilities);
  const bm25 = records.map((r) => m.bm25Select(r.personas, r.history.at(-1)));

  // The report's own trivial rows and selection accuracy (pal eval), on these records.
  const trivial = m.trivialSelection(records);
  const rows = [
    ['always "none"', trivial.alwaysNone],
    ["BM25 over the partner's last turn", trivial.bm25],
  ];
  if (records.every((r) => typeof r.selected === 'number'))
    rows.push(["the model's selection", m.selectionAccuracy(records.map((r) => ({ selected: r.selected, gold: r.gold_persona }))).overall]);
  let best = { threshold: Infinity, accuracy: trivial.alwaysNone };
  for (let t = 0.1; t <= 0.9; t += 0.025) {
    const right = records.filter((r, i) => {
      const k = argmax(cosines[i]);
      return (cosines[i][k] >= t ? k : -1) === r.gold_persona;
    }).length;
    if (share(right, records.length) > best.accuracy) best = { threshold: t, accuracy: share(right, records.length) };
  }
  rows.push([`MiniLM cosine >= ${fmt(best.threshold)} (threshold chosen here)`, best.accuracy]);

  const topRight = (scores) => share(used.filter((i) => argmax(scores(i)) === records[i].gold_persona).length, used.length);
  const ranking = [
    [
      'a random order',
      share(
        used.reduce((s, i) => s + 1 / records[i].personas.length, 0),
        used.length,
      ),
    ],
    ['BM25', topRight((i) => bm25[i].scores)],
    ['MiniLM cosine', topRight((i) => cosines[i])],
  ];
  if (withModel) ranking.push(["the model's fact probabilities", topRight((i) => records[i].select_probabilities.facts)]);

  console.log(`\n${path.relative(root, path.resolve(file))}: ${records.length} turns, ${used.length} whose reference uses a fact`);
  console.log('Selection accuracy:');
  for (const [name, x] of rows) console.log(`  ${name.padEnd(48)} ${fmt(x)}`);
  console.log(`Top-ranked fact is the reference's, on the ${used.length} turns that use one:`);
  for (const [name, x] of ranking) console.log(`  ${name.padEnd(48)} ${fmt(x)}`);
  if (withModel) {
    const named = (i) => 1 - records[i].select_probabilities.none;
    console.log(
      `The model's P(a fact is used) as a detector of those turns: AUC ${fmt(auc(used.map(named), notUsed.map(named)))} (0.5: no better than chance)`,
    );
  }
  const maxCos = (i) => Math.max(...cosines[i]);
  console.log(`The best MiniLM cosine as that detector: AUC ${fmt(auc(used.map(maxCos), notUsed.map(maxCos)))}`);
}
await embedder.dispose();
