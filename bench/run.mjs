// `npm run bench`: PAL Studio's benchmarks. Each figure is measured against a peer in the same
// run (the ratio is what to read; absolute numbers depend on the machine, which is recorded), with
// the goal it is held to. Writes bench/results.json and prints the table (Markdown) and a sweep of
// how each cost grows with model size, sequence length and data size. Benchmarks print numbers;
// no test asserts on them. docs/performance.md explains the table.
//
// usage: npm run bench [-- --quick]     (--quick: the 7M model only, fewer steps and runs)
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const quick = process.argv.includes('--quick');
const info = JSON.parse(execFileSync(process.execPath, [path.join(root, 'dist', 'cli.js'), 'info', '--json'], { encoding: 'utf8' }));
if (!info.python.found) {
  console.error(`bench: no Python with torch (${info.python.reason}); the trainer benchmark needs one.`);
  process.exit(1);
}
const python = info.python.selected.path;
const threads = process.env.OPENBLAS_NUM_THREADS ?? String(os.availableParallelism());
const env = { ...process.env, OPENBLAS_NUM_THREADS: threads, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? threads, PAL_PYTHON: python };

/** Runs one benchmark script and returns the JSON object on its last stdout line. */
function bench(what, command, args) {
  console.error(`bench: ${what}…`);
  const out = execFileSync(command, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
  return JSON.parse(out.trim().split('\n').pop());
}
const node = (script, ...args) => [process.execPath, [path.join(root, 'bench', script), ...args]];
const py = (...args) => [python, [path.join(root, 'bench', 'trainer_bench.py'), ...args]];

// The field's peers (transformers' Trainer, TRL's DPOTrainer) where the trainer's environment has
// them (the tests' requirements: npm test's set-up installs them); else the plain loop alone.
const hasFieldPeers = (() => {
  try {
    execFileSync(python, ['-c', 'import transformers, trl, peft, datasets'], { stdio: 'ignore', env });
    return true;
  } catch {
    return false;
  }
})();
const peers = hasFieldPeers ? 'plain,transformers' : 'plain';
if (!hasFieldPeers) console.error(`bench: ${python} lacks transformers, TRL, PEFT or datasets: the trainer is compared with the plain loop only`);
// Rows at 64, 128 and 256 tokens: PAL's rows are short dialogue turns, where a fixed cost per step shows.
const trainer = bench(
  `trainer tokens/s, ours vs ${peers.replace(',', ' and ')} (${python}, ${threads} threads)`,
  ...py(
    '--sizes',
    quick ? '7m' : '7m,30m',
    '--stages',
    'sft,dpo',
    '--lengths',
    '64,128,256',
    '--peers',
    peers,
    '--steps',
    quick ? '5' : '8',
    '--rounds',
    quick ? '1' : '2',
    '--memory',
  ),
);
// The pretrained base's size (SmolLM2-135M's shape), one round at the shortest rows: a step takes seconds here.
const trainer135m = quick
  ? null
  : bench(
      'trainer tokens/s at 135M (batch 8 × 64)',
      ...py('--sizes', '135m', '--stages', 'sft,dpo', '--lengths', '64', '--peers', peers, '--steps', '5', '--rounds', '1', '--memory'),
    );
// PAL's real rows are of mixed lengths (a hundred tokens to the model's limit): one epoch of
// ConvAI2's stage-1 items with batches grouped by length against random ones.
const grouping = bench(
  'trainer on ConvAI2-length rows: batches grouped by length vs random',
  ...node('grouping_bench.mjs', '--examples', quick ? '100' : '200'),
);
const metrics = bench(
  'metrics: BLEU-1..4 + ROUGE-L + Distinct-1/2 over 10,000 ConvAI2 pairs, ours vs nltk + coco-caption ROUGE-L',
  ...node('metrics_bench.mjs'),
);
const generation = existsSync(path.join(root, 'models', 'pal-default', 'onnx', 'model.onnx'))
  ? bench(
      'generation: the default model through the engine (transformers.js + onnxruntime-node) vs the same weights in PyTorch with a KV cache',
      ...node('generation_bench.mjs'),
    )
  : null;
// The aligned pretrained model (SmolLM2-135M + PAL's adapter), when set-up fetched it: int8 ONNX
// through the engine against its fp16->fp32 safetensors in PyTorch.
const cacheModels = path.join(
  process.env.PAL_STUDIO_CACHE || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'pal-studio'),
  'models',
);
const smolDir = path.join(cacheModels, 'pal-smollm2-135m');
const generation135m = existsSync(path.join(smolDir, 'onnx', 'model.onnx'))
  ? bench(
      'generation: pal-smollm2-135m (int8 ONNX) through the engine vs PyTorch',
      ...node('generation_bench.mjs', '--model', smolDir, '--prompts', quick ? '4' : '10'),
    )
  : null;
const annotator = bench(
  'the pair annotator on a generated 100,000-pair file (open; judgement and arrow keys)',
  ...node('annotator_bench.mjs', ...(quick ? ['--runs', '2', '--keys', '200'] : [])),
);
const engine = bench('engine start to ready (spawn to engine/initialize answered)', ...node('engine_start_bench.mjs'));

// The sweep: how the costs grow (ours only; the trainer's table already sweeps lengths and sizes).
const sweep = {
  metrics_pairs: [1_000, 100_000].map((n) =>
    bench(`sweep: metrics on ${n} pairs`, ...node('metrics_bench.mjs', '--pairs', String(n), '--no-peer', '--runs', '3')),
  ),
  annotator_pairs: [10_000].map((n) =>
    bench(`sweep: annotator on ${n} pairs`, ...node('annotator_bench.mjs', '--pairs', String(n), '--runs', '2', '--keys', '200')),
  ),
};

const results = {
  date: new Date().toISOString(),
  machine: { ...trainer.machine, node: process.version, platform: `${os.platform()}/${os.arch()}`, memory_gib: Math.round(os.totalmem() / 2 ** 30) },
  trainer: [...trainer.trainer, ...(trainer135m?.trainer ?? [])],
  grouping,
  metrics,
  generation,
  generation_135m: generation135m,
  annotator,
  engine,
  sweep,
};
writeFileSync(path.join(root, 'bench', 'results.json'), `${JSON.stringify(results, null, 2)}\n`);

const m = results.machine;
const f0 = (x) => x.toFixed(0);
const f2 = (x) => x.toFixed(2);
const ok = (met) => (met ? 'yes' : '**no**');
console.log(
  `\nMachine: ${m.cpu}, ${m.cores} cores, ${m.memory_gib} GiB; torch ${m.torch} (${m.torch_threads} threads, OpenBLAS ${m.openblas_threads}); fp32 matmul peak ${f0(m.matmul_peak_gflops)} GFLOP/s; Node ${m.node}\n`,
);
console.log('| path | ours | peer (same run) | ratio | goal | met |');
console.log('| --- | --- | --- | --- | --- | --- |');
const PEER_NAMES = { plain: 'plain PyTorch loop', transformers: "transformers' Trainer" };
const GOALS = { plain: 0.95, transformers: 1.0 };
for (const r of results.trainer) {
  const stage = r.stage === 'sft' ? 'stage 1' : 'DPO';
  for (const [name, p] of Object.entries(r.peers)) {
    const peerName = name === 'transformers' && r.stage === 'dpo' ? "TRL's DPOTrainer, reference log-probs precomputed" : PEER_NAMES[name];
    // Peak memory (--memory): each side's process, imports included.
    const peakOf = (side) => (r.peak_memory_mb?.[side] !== undefined ? `, peak ${f0(r.peak_memory_mb[side])} MB` : '');
    console.log(
      `| trainer ${stage}, ${r.size} (${(r.parameters / 1e6).toFixed(1)}M), ${r.stage === 'dpo' ? 'pairs' : 'batch'} 8 × ${r.length} | ${f0(r.ours_tokens_per_s)} tokens/s, ${f0(r.ours_gflops)} GFLOP/s = ${(100 * r.utilisation).toFixed(0)}% of peak${peakOf('ours')} | ${f0(p.tokens_per_s)} tokens/s${peakOf(name)} (${peerName}) | ${f2(p.ratio_median)} (fastest steps ${f2(p.ratio_fastest)}) | ≥ ${GOALS[name].toFixed(2)} | ${ok(p.ratio_median >= GOALS[name])} |`,
    );
  }
}
console.log(
  `| trainer stage 1, ${grouping.size}, ${grouping.rows} ConvAI2 stage-1 rows, batch ${grouping.batch}, grouped by length | ${f0(grouping.grouped.tokens_per_s)} real tokens/s, ${(100 * grouping.grouped.padding).toFixed(1)}% padding | ${f0(grouping.random.tokens_per_s)} real tokens/s, ${(100 * grouping.random.padding).toFixed(1)}% padding (random batches) | ${f2(grouping.speedup)} | > 1 | ${ok(grouping.speedup > 1)} |`,
);
if (generation) {
  console.log(
    `| generation, default model, greedy, ${generation.new_tokens} new tokens | ${f0(generation.ours_tokens_per_s)} tokens/s, first token ${f0(generation.ours_first_token_ms_median)} ms | ${generation.peer_tokens_per_s ? f0(generation.peer_tokens_per_s) : 'n/a'} tokens/s (PyTorch, KV cache) | ${generation.ratio ? f2(generation.ratio) : 'n/a'} | > 1 | ${ok(generation.ratio > 1)} |`,
  );
  console.log(
    `| select then generate | ${f2(generation.select_then_generate_ms)} ms a prompt | ${f2(generation.plain_generate_ms)} ms (plain generation) | ${f2(generation.select_overhead)} | ≤ 1.3 | ${ok(generation.select_overhead <= 1.3)} |`,
  );
}
if (generation135m) {
  const g = generation135m;
  console.log(
    `| generation, pal-smollm2-135m (int8 ONNX), greedy, ${g.new_tokens} new tokens | ${f0(g.ours_tokens_per_s)} tokens/s, first token ${f0(g.ours_first_token_ms_median)} ms (prompts of ${g.prompt_tokens_median} tokens) | ${g.peer_tokens_per_s ? f0(g.peer_tokens_per_s) : 'n/a'} tokens/s (PyTorch, KV cache) | ${g.ratio ? f2(g.ratio) : 'n/a'} | > 1 | ${ok(g.ratio > 1)} |`,
  );
  console.log(
    `| select then generate, pal-smollm2-135m | ${f2(g.select_then_generate_ms)} ms a prompt | ${f2(g.plain_generate_ms)} ms (plain generation) | ${f2(g.select_overhead)} | ≤ 1.3 | ${ok(g.select_overhead <= 1.3)} |`,
  );
  // Try it's default (beam 3, the fact preferred) against its streamed setting: the price of a
  // reply that uses its fact more often (measured in the README), no target of its own.
  const t = g.try_it;
  console.log(
    `| Try it, pal-smollm2-135m: beam (default) | ${f0(t.beam.ms_median)} ms a reply, shown whole | ${f0(t.streamed.ms_median)} ms (streamed; first text at ${f0(t.streamed.first_text_ms_median)} ms) | ${f2(t.beam.ms_median / t.streamed.ms_median)} | — | — |`,
  );
}
console.log(
  `| BLEU + ROUGE-L + Distinct, ${metrics.pairs} pairs | ${f2(metrics.ours_ms)} ms | ${f2(metrics.peer_ms)} ms (nltk + coco-caption, Python ${metrics.python}) | ${f2(metrics.ratio)} × faster, values within ${metrics.max_abs_difference.toExponential(0)} | ≥ 10 × | ${ok(metrics.ratio >= 10)} |`,
);
console.log(
  `| annotator: open a ${annotator.pairs}-pair file (${annotator.megabytes} MB) | ${f0(annotator.open_ms.median)} ms (p95 ${f0(annotator.open_ms.p95)}) | — | — | < 2,000 ms | ${ok(annotator.open_ms.p95 < 2000)} |`,
);
console.log(
  `| annotator: key press (judgement; arrow) | ${f2(annotator.judgement_ms.p95)}; ${f2(annotator.arrow_ms.p95)} ms p95 | — | — | < 50 ms | ${ok(annotator.judgement_ms.p95 < 50 && annotator.arrow_ms.p95 < 50)} |`,
);
console.log(
  `| engine start to ready | ${f0(engine.ready_ms_median)} ms (max ${f0(engine.ready_ms_max)}) | ${f0(engine.bare_node_ms_median)} ms (a bare node -e 0) | — | < 1,000 ms | ${ok(engine.ready_ms_max < 1000)} |`,
);

console.log('\nSweep (how the costs grow):\n');
console.log('| what | size | ours | peer | ratio |');
console.log('| --- | --- | --- | --- | --- |');
for (const r of [...sweep.metrics_pairs.slice(0, 1), metrics, ...sweep.metrics_pairs.slice(1)])
  console.log(`| metrics | ${r.pairs} pairs | ${f2(r.ours_ms)} ms (${f2((r.ours_ms / r.pairs) * 1000)} µs a pair) | | |`);
for (const r of [...sweep.annotator_pairs, annotator]) console.log(`| annotator open | ${r.pairs} pairs | ${f0(r.open_ms.median)} ms | | |`);
console.log('\nWritten to bench/results.json');
