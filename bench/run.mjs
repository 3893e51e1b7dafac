// `npm run bench`: PAL Studio's benchmarks. Each figure is measured against a peer in the same
// run (the ratio is what to read; absolute numbers depend on the machine, which is recorded).
// Writes bench/results.json and prints a table. Benchmarks print numbers; no test asserts on them.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const info = JSON.parse(execFileSync(process.execPath, [path.join(root, 'dist', 'cli.js'), 'info', '--json'], { encoding: 'utf8' }));
if (!info.python.found) {
  console.error(`bench: no Python with torch (${info.python.reason}); the trainer benchmark needs one.`);
  process.exit(1);
}
const python = info.python.selected.path;
const threads = process.env.OPENBLAS_NUM_THREADS ?? String(os.availableParallelism());
const args = process.argv.slice(2);
console.error(`bench: trainer tokens/s, ours vs a plain PyTorch loop (${python}, OPENBLAS_NUM_THREADS=${threads})…`);
const trainer = JSON.parse(
  execFileSync(python, [path.join(root, 'bench', 'trainer_bench.py'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, OPENBLAS_NUM_THREADS: threads },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split('\n')
    .pop(),
);

console.error('bench: metrics, BLEU-1..4 + ROUGE-L + Distinct-1/2 over 10,000 ConvAI2 pairs, ours vs nltk corpus_bleu + coco-caption ROUGE-L…');
const metrics = JSON.parse(
  execFileSync(process.execPath, [path.join(root, 'bench', 'metrics_bench.mjs')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .trim()
    .split('\n')
    .pop(),
);

console.error('bench: generation, the default model through the engine (transformers.js + onnxruntime-node) vs the same weights in PyTorch with a KV cache…');
const generation = existsSync(path.join(root, 'models', 'pal-default', 'onnx', 'model.onnx'))
  ? JSON.parse(execFileSync(process.execPath, [path.join(root, 'bench', 'generation_bench.mjs')], { encoding: 'utf8', env: { ...process.env, PAL_PYTHON: python }, stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop())
  : null;

console.error('bench: the pair annotator on a generated 100,000-pair file (open, judgement and arrow keys; budgets 2 s and 50 ms)…');
const annotator = JSON.parse(execFileSync(process.execPath, [path.join(root, 'bench', 'annotator_bench.mjs')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop());

const results = { annotator, date: new Date().toISOString(), machine: { ...trainer.machine, node: process.version, platform: `${os.platform()}/${os.arch()}`, memory_gib: Math.round(os.totalmem() / 2 ** 30) }, trainer: trainer.trainer, metrics, generation };
writeFileSync(path.join(root, 'bench', 'results.json'), `${JSON.stringify(results, null, 2)}\n`);

const m = results.machine;
console.log(`\nMachine: ${m.cpu}, ${m.cores} cores, ${m.memory_gib} GiB; torch ${m.torch}, OpenBLAS threads ${m.openblas_threads}\n`);
console.log('| path | size | ours | peer (plain PyTorch loop) | ratio (median step) | ratio (fastest step) | achieved |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const r of results.trainer) {
  console.log(
    `| trainer, stage 1 | ${r.size} (${(r.parameters / 1e6).toFixed(1)}M) | ${r.ours_tokens_per_s.toFixed(0)} tokens/s | ${r.peer_tokens_per_s.toFixed(0)} tokens/s | ${r.ratio_median.toFixed(3)} | ${r.ratio_fastest.toFixed(3)} | ${r.ours_gflops.toFixed(0)} GFLOP/s |`,
  );
}
// Time, not throughput: the ratio is peer time / our time (how many times faster ours is).
console.log(
  `| metrics (BLEU + ROUGE-L + Distinct) | ${metrics.pairs} pairs | ${metrics.ours_ms.toFixed(1)} ms | ${metrics.peer_ms.toFixed(1)} ms (nltk + coco-caption ROUGE-L, Python ${metrics.python}) | ${metrics.ratio.toFixed(2)} (peer time / ours) | | max abs difference ${metrics.max_abs_difference.toExponential(1)} |`,
);
if (generation) {
  console.log(
    `| generation, greedy, batch 1 | ${generation.model} (${(generation.onnx_bytes / 2 ** 20).toFixed(1)} MiB ONNX), ${generation.new_tokens} new tokens after ~${generation.prompt_tokens_median} | ${generation.ours_tokens_per_s.toFixed(0)} tokens/s, first token ${generation.ours_first_token_ms_median.toFixed(0)} ms | ${generation.peer_tokens_per_s?.toFixed(0) ?? 'n/a'} tokens/s (PyTorch, KV cache) | ${generation.ratio?.toFixed(2) ?? 'n/a'} | | |`,
  );
  console.log(`| select then generate vs plain generation | ${generation.prompts} prompts | ${generation.select_then_generate_ms.toFixed(1)} ms | ${generation.plain_generate_ms.toFixed(1)} ms | ${generation.select_overhead.toFixed(2)} (overhead) | | |`);
}
console.log(`\nWritten to bench/results.json`);
