// The pair annotator on a large file, with the real core code (src/core/annotator.ts): a generated
// 100,000-pair *.pairs.jsonl (one line in 50 invalid, a few blank), timed as the extension does it.
//   open: read the file + split it into lines + index every line + the first view (the first
//         pending pair validated fully, its place in the filter, the counts);
//   key:  a judgement (the new line text, the incremental re-index of that line, the next pending
//         pair, its view), and an arrow (the next pair in the filter, its view).
// For comparison it also times the full schema validation of the file (parsePairs), which the
// index avoids. Prints a table on stderr and one JSON object on stdout (median and p95 in ms).
//
// usage: node bench/annotator_bench.mjs [--pairs N] [--keys N] [--runs N]
import * as esbuild from 'esbuild';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const PAIRS = arg('--pairs', 100_000);
const KEYS = arg('--keys', 500);
const RUNS = arg('--runs', 5);

const bundle = await esbuild.build({
  stdin: { contents: "export * from './src/core/annotator'; export { parsePairs } from './src/core/formats/pairs';", resolveDir: root, loader: 'ts' },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  mainFields: ['module', 'main'],
  write: false,
  logLevel: 'warning',
});
const mod = { exports: {} };
new Function('module', 'exports', 'require', bundle.outputFiles[0].text)(mod, mod.exports, createRequire(import.meta.url));
const A = mod.exports;

// Pairs like PAL stage 2 writes them: two personas, two origins, all pending.
const lines = [];
for (let i = 0; i < PAIRS; i++) {
  if (i % 50 === 49) lines.push(`{"prompt": "line ${i} was cut off`);
  else
    lines.push(
      JSON.stringify({
        prompt: `what do you do on the evening of day ${i} , when the storm comes in from the sea ?`,
        chosen: `i climb the tower and light the lamp , then i sit with tern and listen to the rain . (${i})`,
        rejected: `i go to the city to see a film with my friends . (${i})`,
        persona_ids: [i % 3 ? 'mara-lighthouse' : 'dev-courier'],
        dialogue: { file: 'data/mara.dialogues.jsonl', line: (i % 900) + 1 },
        origin: i % 4 ? 'pal-stage2' : 'annotated',
        status: 'pending',
      }),
    );
  if (i % 10_000 === 9_999) lines.push('');
}
const tmp = mkdtempSync(path.join(os.tmpdir(), 'pal-annotator-bench-'));
const file = path.join(tmp, 'large.pairs.jsonl');
writeFileSync(file, `${lines.join('\n')}\n`);

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], p95: s[Math.min(s.length - 1, Math.floor(s.length * 0.95))], max: s.at(-1) };
};
const personas = () => undefined;

/** What the extension posts for a line: the full validation of it, its place in the filter, the counts. */
function view(docLines, index, line, filter) {
  return { item: A.lineView(docLines[line], line, file, personas), position: index.position(line, filter), counts: index.counts() };
}

function open() {
  const t0 = process.hrtime.bigint();
  const docLines = A.documentLines(readFileSync(file, 'utf8'));
  const index = new A.PairIndex(docLines);
  const current = index.first(A.DEFAULT_FILTER);
  view(docLines, index, current, A.DEFAULT_FILTER);
  return { openMs: ms(t0), docLines, index, current };
}

const opens = [];
const judgeMs = [];
const arrowMs = [];
let last;
for (let run = 0; run < RUNS; run++) {
  const o = open();
  opens.push(o.openMs);
  let { docLines, index, current } = o;
  const filter = A.DEFAULT_FILTER;
  for (let k = 0; k < KEYS; k++) {
    const t0 = process.hrtime.bigint();
    const judgement = A.JUDGEMENTS[k % 4];
    const text = A.judgedLine(docLines[current], judgement, new Date().toISOString());
    docLines[current] = text; // what the document holds after the edit
    index.applyChanges([{ startLine: current, endLine: current, text }], (i) => docLines[i]);
    current = index.nextPending(current, filter) ?? current;
    view(docLines, index, current, filter);
    judgeMs.push(ms(t0));

    const t1 = process.hrtime.bigint();
    const all = { ...filter, status: 'all' };
    const next = index.step(current, all, 1) ?? current;
    view(docLines, index, next, all);
    arrowMs.push(ms(t1));
  }
  last = index.counts();
}

const t0 = process.hrtime.bigint();
const full = A.parsePairs(readFileSync(file, 'utf8'), file);
const fullValidationMs = ms(t0);
rmSync(tmp, { recursive: true, force: true });

const result = {
  pairs: PAIRS,
  lines: lines.length,
  megabytes: Number((Buffer.byteLength(lines.join('\n')) / 1e6).toFixed(1)),
  runs: RUNS,
  keys_per_run: KEYS,
  open_ms: stats(opens),
  judgement_ms: stats(judgeMs),
  arrow_ms: stats(arrowMs),
  full_validation_ms: fullValidationMs,
  judged_after_last_run: last.pairs - last.byStatus.pending,
  invalid_lines: last.invalid,
  checked_lines: full.lines.length,
};
const f = (s) => `median ${s.median.toFixed(2)} ms, p95 ${s.p95.toFixed(2)} ms`;
console.error(`annotator bench: ${PAIRS} pairs (${result.megabytes} MB, ${result.invalid_lines} invalid lines), ${RUNS} runs of ${KEYS} keys`);
console.error(`  open (read + index + first view): ${f(result.open_ms)}   [budget 2000 ms]`);
console.error(`  judgement key (new line + re-index + next pending + view): ${f(result.judgement_ms)}   [budget 50 ms]`);
console.error(`  arrow key (next in filter + view): ${f(result.arrow_ms)}   [budget 50 ms]`);
console.error(`  for comparison, full schema validation of the file (parsePairs): ${fullValidationMs.toFixed(0)} ms`);
console.log(JSON.stringify(result));
