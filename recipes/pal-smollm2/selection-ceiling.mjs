// How well can the select task be done on the model card's examples, and how well does a model do
// it? PAL's select task names the fact the gold reply will use before the reply exists, and the
// labels count a fact as used only where the reference happens to use one. This script puts the
// model's selection beside selectors that need no training, on the same examples:
//
//   node recipes/pal-smollm2/selection-ceiling.mjs .pal-studio/pal-smollm2/eval/pal-smollm2-135m.predictions.jsonl [more.predictions.jsonl]
//     [--in-domain <all ConvAI2 dev turns, as pal import writes them>]
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
// With --in-domain, a selector *trained on ConvAI2's own labels* (all 5,270 dev turns, imported as
// the recipe imports its 500; see IN_DOMAIN below), scored out of fold: what learning the select
// task in this domain could reach, on all the turns and on each file's.
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { loadEngineModules } from '../../bench/engine-bundle.mjs';
import { root } from '../lib.mjs';

const args = process.argv.slice(2);
const inDomainAt = args.indexOf('--in-domain');
const inDomainFile = inDomainAt >= 0 ? args[inDomainAt + 1] : undefined;
const files = inDomainAt >= 0 ? args.filter((_, i) => i !== inDomainAt && i !== inDomainAt + 1) : args;
if (files.length === 0 || (inDomainAt >= 0 && !inDomainFile)) {
  console.error('usage: node recipes/pal-smollm2/selection-ceiling.mjs <predictions.jsonl> [...] [--in-domain <dialogues.jsonl>]');
  process.exit(2);
}
const m = await loadEngineModules(
  'selection-ceiling',
  `export { loadEmbedder, dot } from './src/engine/embedder';
   export { fetchedModelDir, LABELLER_ENCODER } from './src/engine/baseModels';
   export { bm25Select } from './src/core/bm25';
   export { labelPersona } from './src/core/labeller';
   export { pairedShareDifference, sameSelection, selectionAccuracy, shareInterval, trivialSelection } from './src/core/metrics/index';`,
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

/** Embeddings by text, computed once: the in-domain selector reads each sentence many times. */
const embedded = new Map();
async function embed(texts) {
  const missing = [...new Set(texts.filter((t) => !embedded.has(t)))];
  for (let i = 0; i < missing.length; i += 256) {
    const batch = missing.slice(i, i + 256);
    (await embedder.embed(batch)).forEach((v, j) => embedded.set(batch[j], v));
  }
  return texts.map((t) => embedded.get(t));
}
const formatInterval = (i) => (i ? `[${fmt(i.low)}, ${fmt(i.high)}]` : '');
const formatDifference = (d) => `${d.delta >= 0 ? '+' : ''}${fmt(d.delta)} ${formatInterval(d.interval)}`;

// --- A selector trained in-domain (--in-domain) ---
// Each option of a turn ("none", or fact k) gets a score linear in a few features, and a softmax
// over the options is fitted to the labeller's labels (a conditional logit): on four fifths of the
// persona sets, scoring the other fifth, five times, so that no persona is on both sides. The
// features are what a select step can see before the reply: how close each fact is to the
// partner's last two turns (MiniLM cosine, BM25), whether it is a question, whether the speaker
// has already said the fact, and how far into the dialogue the turn is.
const IN_DOMAIN = { folds: 5, iterations: 1500, learningRate: 0.05, l2: 1e-3 };

async function turnFeatures(turn) {
  const h = turn.history;
  const facts = await embed(turn.personas);
  const [last, before] = await embed([h.at(-1), h.at(-3) ?? '']);
  const own = h.filter((_, i) => (h.length - 1 - i) % 2 === 1); // the speaker's earlier turns
  const ownVectors = await embed(own);
  const said = new Set(own.map((t) => m.labelPersona(turn.personas, t)).filter((k) => k >= 0));
  const question = h.at(-1).includes('?') ? 1 : 0;
  const bm25 = m.bm25Select(turn.personas, h.at(-1)).scores;
  const bm25Top = Math.max(1e-9, ...bm25);
  const fact = turn.personas.map((_, k) => {
    const toLast = m.dot(facts[k], last);
    const toOwn = ownVectors.length ? Math.max(...ownVectors.map((v) => m.dot(facts[k], v))) : 0;
    const toBefore = h.length >= 3 ? m.dot(facts[k], before) : 0;
    return [toLast, toLast * toLast, toLast * question, toBefore, toOwn, said.has(k) ? 1 : 0, bm25[k] / bm25Top, k === 0 ? 1 : 0, k / turn.personas.length];
  });
  const closest = Math.max(...fact.map((f) => f[0]));
  const none = [1, question, Math.min(h.length, 15) / 15, closest, said.size / turn.personas.length, h.length === 1 ? 1 : 0];
  return { fact, none };
}

const dotw = (w, x) => x.reduce((s, xi, j) => s + xi * w[j], 0);
/** The options' scores: "none" first, then each fact. */
const optionScores = (weights, t) => [dotw(weights.none, t.none), ...t.fact.map((f) => dotw(weights.fact, f))];

/** Fits the conditional logit (Adam on the mean log-likelihood, L2) to turns with a `gold` index. */
function fitSelector(turns) {
  const nf = turns[0].fact[0].length;
  const nn = turns[0].none.length;
  const w = { fact: new Float64Array(nf), none: new Float64Array(nn) };
  const params = [...Array(nf + nn).keys()];
  const get = (j) => (j < nf ? w.fact[j] : w.none[j - nf]);
  const set = (j, v) => (j < nf ? (w.fact[j] = v) : (w.none[j - nf] = v));
  const mean = new Float64Array(nf + nn);
  const square = new Float64Array(nf + nn);
  for (let it = 1; it <= IN_DOMAIN.iterations; it++) {
    const grad = new Float64Array(nf + nn);
    for (const t of turns) {
      const u = optionScores(w, t);
      const top = Math.max(...u);
      const e = u.map((x) => Math.exp(x - top));
      const z = e.reduce((a, b) => a + b);
      e.forEach((x, o) => {
        const g = x / z - (o === t.gold + 1 ? 1 : 0);
        if (o === 0) t.none.forEach((xj, j) => (grad[nf + j] += g * xj));
        else t.fact[o - 1].forEach((xj, j) => (grad[j] += g * xj));
      });
    }
    for (const j of params) {
      const g = grad[j] / turns.length + IN_DOMAIN.l2 * get(j);
      mean[j] = 0.9 * mean[j] + 0.1 * g;
      square[j] = 0.999 * square[j] + 0.001 * g * g;
      set(j, get(j) - (IN_DOMAIN.learningRate * mean[j]) / (1 - 0.9 ** it) / (Math.sqrt(square[j] / (1 - 0.999 ** it)) + 1e-8));
    }
  }
  return (t) => argmax(optionScores(w, t)) - 1;
}

/** Every turn of the file, selected out of fold: id -> { selected, gold }. */
async function inDomainSelection(file) {
  const turns = [];
  for (const [i, line] of readFileSync(file, 'utf8').split('\n').entries()) {
    if (!line.trim()) continue;
    const d = JSON.parse(line);
    if (!Array.isArray(d.personas) || !Array.isArray(d.history) || typeof d.persona_index !== 'number' || !d.id)
      throw new Error(`${file}:${i + 1}: a turn needs id, personas, history and persona_index (pal import writes them)`);
    turns.push({ id: d.id, group: d.personas.join('\n'), gold: d.persona_index, ...(await turnFeatures(d)) });
  }
  const groups = [...new Set(turns.map((t) => t.group))];
  const fold = new Map(groups.map((g, i) => [g, i % IN_DOMAIN.folds]));
  const out = new Map();
  for (let f = 0; f < IN_DOMAIN.folds; f++) {
    const pick = fitSelector(turns.filter((t) => fold.get(t.group) !== f));
    for (const t of turns.filter((t) => fold.get(t.group) === f)) out.set(t.id, { selected: pick(t), gold: t.gold });
  }
  return out;
}

/** Accuracy with its interval, and the paired difference from always "none", over selections. */
function againstNone(items) {
  const hits = items.map((x) => +m.sameSelection(x.selected, x.gold));
  const none = items.map((x) => +m.sameSelection(-1, x.gold));
  return {
    accuracy: share(
      hits.reduce((a, b) => a + b, 0),
      hits.length,
    ),
    interval: m.shareInterval(hits),
    overNone: m.pairedShareDifference(none, hits),
  };
}

const inDomain = inDomainFile ? await inDomainSelection(inDomainFile) : null;
if (inDomain) {
  const all = againstNone([...inDomain.values()]);
  console.log(
    `\nA selector trained on ConvAI2's own labels (${inDomain.size} turns of ${path.relative(root, path.resolve(inDomainFile))}, ${IN_DOMAIN.folds}-fold by persona set):`,
  );
  console.log(`  accuracy out of fold ${fmt(all.accuracy)} ${formatInterval(all.interval)}; minus always "none": ${formatDifference(all.overNone)}`);
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
  // The model's selections (when every record has one), for its accuracy and its paired row below.
  const selections = records.every((r) => typeof r.selected === 'number') ? records.map((r) => ({ selected: r.selected, gold: r.gold_persona })) : null;
  if (selections) rows.push(["the model's selection", m.selectionAccuracy(selections).overall]);
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
  const paired = (name, items) => {
    const r = againstNone(items);
    console.log(`  ${name.padEnd(48)} ${fmt(r.accuracy)} ${formatInterval(r.interval)}, minus always "none" ${formatDifference(r.overNone)}`);
  };
  console.log('Against always "none", paired over these turns (95% intervals):');
  if (selections) paired("the model's selection", selections);
  if (inDomain) {
    const missing = records.filter((r) => !inDomain.has(r.id));
    if (missing.length) throw new Error(`${file}: ${missing.length} turns (${missing[0].id}, ...) are not in ${inDomainFile}`);
    paired(
      'the selector trained on ConvAI2 (out of fold)',
      records.map((r) => inDomain.get(r.id)),
    );
  }
}
await embedder.dispose();
