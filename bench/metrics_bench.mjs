// BLEU-1..4 + ROUGE-L + Distinct-1/2 over 10,000 (prediction, reference) pairs from ConvAI2: ours
// (src/core/metrics) against nltk's corpus_bleu plus coco-caption's ROUGE-L and a set-based
// Distinct in Python, on the same white-space tokens. Python is timed inside Python (interpreter
// start and JSON loading excluded); ours is timed in this process after a warm-up run. Each side's
// figure is the median of several runs. Prints one JSON object (and checks both sides agree).
//
// usage: node bench/metrics_bench.mjs [--runs N] [--pairs N] [--no-peer]   (PAL_PYTHON picks the Python with nltk)
// --no-peer times ours alone (the data-size sweep).
import * as esbuild from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
const pairsArg = process.argv.indexOf('--pairs');
const PAIRS = pairsArg > 0 ? Number(process.argv[pairsArg + 1]) : 10_000;
const NO_PEER = process.argv.includes('--no-peer');
const python = process.env.PAL_PYTHON || '/usr/bin/python3';
const data = path.join(process.env.PAL_SHARED_DATA || path.join(root, '..', 'shared', 'data'), 'persona-chat', 'convai2_valid_dev.txt');
if (!existsSync(data)) {
  console.error(`metrics bench: ${data} is missing (set PAL_SHARED_DATA)`);
  process.exit(1);
}

// The metrics are TypeScript: bundle them (and the ConvAI2 importer) in memory, as build.mjs does
// for the schemas.
const bundle = await esbuild.build({
  stdin: { contents: "export * from './src/core/metrics/index'; export { importParlai } from './src/core/importers/parlai';", resolveDir: root, loader: 'ts' },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  write: false,
  logLevel: 'warning',
});
const mod = { exports: {} };
new Function('module', 'exports', 'require', bundle.outputFiles[0].text)(mod, mod.exports, createRequire(import.meta.url));
const M = mod.exports;

// 10,000 pairs: each ConvAI2 response against the partner's turn before it (5,270), then against
// itself with words dropped and neighbours swapped (deterministically), up to 10,000.
const { examples } = M.importParlai(readFileSync(data, 'utf8'), data);
let seed = 12345;
const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
const records = [];
for (let i = 0; records.length < PAIRS; i++) {
  const e = examples[i % examples.length];
  let prediction;
  if (i < examples.length) prediction = e.history[e.history.length - 1] ?? '';
  else {
    const words = e.response.split(' ').filter(() => rand() >= 0.2);
    for (let k = 0; k + 1 < words.length; k++) if (rand() < 0.15) [words[k], words[k + 1]] = [words[k + 1], words[k]];
    prediction = words.join(' ');
  }
  records.push({ prediction, reference: e.response });
}
const hypTokens = records.map((r) => M.tokenize(r.prediction));
const refTokens = records.map((r) => M.tokenize(r.reference));

/** The work Python does too: from token lists to BLEU-1..4, ROUGE-L and Distinct-1/2. */
function metricsFromTokens() {
  const v = new M.Vocabulary();
  const hyps = hypTokens.map((t) => v.encode(t));
  const refs = refTokens.map((t) => v.encode(t));
  const bleu = M.corpusBleu(hyps, refs);
  let rouge = 0;
  for (let i = 0; i < hyps.length; i++) rouge += M.rougeL(hyps[i], refs[i]);
  return { bleu, rougeL: rouge / hyps.length, distinct1: M.distinctN(hyps, 1, v.size), distinct2: M.distinctN(hyps, 2, v.size) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function time(fn) {
  fn(); // warm-up: the first run pays for JIT compilation
  const ms = [];
  let value;
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    value = fn();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { ms: median(ms), value };
}

const ours = time(metricsFromTokens);
// evaluateText also tokenises, computes sentence BLEU for every pair and the per-example rows.
const oursFull = time(() => M.evaluateText(records));

if (NO_PEER) {
  console.log(JSON.stringify({ pairs: PAIRS, runs: RUNS, ours_ms: ours.ms, ours_evaluate_text_ms: oursFull.ms }));
  process.exit(0);
}

const script = String.raw`
import json, statistics, sys, time, warnings
from nltk.translate.bleu_score import corpus_bleu
warnings.simplefilter("ignore")
data = json.load(sys.stdin)
hyps, refs, runs = data["hyps"], data["refs"], data["runs"]

sys.path.insert(0, ${JSON.stringify(path.join(root, 'test', 'reference'))})
from coco_rouge_l import rouge_l  # coco-caption's ROUGE-L

def distinct(seqs, n):
    grams = [tuple(s[i:i + n]) for s in seqs for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0

def run():
    t0 = time.perf_counter()
    bleu = corpus_bleu([[r] for r in refs], hyps, weights=[(1.0,), (0.5, 0.5), (1 / 3, 1 / 3, 1 / 3), (0.25, 0.25, 0.25, 0.25)])
    t1 = time.perf_counter()
    rouge = sum(rouge_l(c, r) for c, r in zip(hyps, refs)) / len(hyps)
    t2 = time.perf_counter()
    d1, d2 = distinct(hyps, 1), distinct(hyps, 2)
    t3 = time.perf_counter()
    return {"bleu": bleu, "rougeL": rouge, "distinct1": d1, "distinct2": d2}, (t1 - t0, t2 - t1, t3 - t2)

times = []
for _ in range(runs):
    value, t = run()
    times.append(t)
med = lambda xs: sorted(xs)[len(xs) // 2]
print(json.dumps({"python": sys.version.split()[0], "value": value,
                  "bleu_ms": 1000 * med([t[0] for t in times]), "rougeL_ms": 1000 * med([t[1] for t in times]),
                  "distinct_ms": 1000 * med([t[2] for t in times]), "total_ms": 1000 * med([sum(t) for t in times])}))
`;
console.error(`metrics bench: ${PAIRS} pairs; ours ${ours.ms.toFixed(1)} ms; running nltk (${python}, ${Math.max(1, Math.min(RUNS, 3))} runs)…`);
const peer = JSON.parse(
  execFileSync(python, ['-c', script], {
    input: JSON.stringify({ hyps: hypTokens, refs: refTokens, runs: Math.max(1, Math.min(RUNS, 3)) }),
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  }),
);

const a = ours.value;
const b = peer.value;
const agreement = Math.max(
  ...a.bleu.map((x, i) => Math.abs(x - b.bleu[i])),
  Math.abs(a.rougeL - b.rougeL),
  Math.abs(a.distinct1 - b.distinct1),
  Math.abs(a.distinct2 - b.distinct2),
);
if (!(agreement <= 1e-9)) {
  console.error(`metrics bench: ours and the Python peers disagree by ${agreement}`);
  process.exit(1);
}
console.log(
  JSON.stringify({
    pairs: PAIRS,
    runs: RUNS,
    python: peer.python,
    ours_ms: ours.ms,
    ours_evaluate_text_ms: oursFull.ms,
    peer_ms: peer.total_ms,
    peer_bleu_ms: peer.bleu_ms,
    peer_rougeL_ms: peer.rougeL_ms,
    peer_distinct_ms: peer.distinct_ms,
    ratio: peer.total_ms / ours.ms,
    max_abs_difference: agreement,
    bleu4: a.bleu[3],
    rougeL: a.rougeL,
  }),
);
