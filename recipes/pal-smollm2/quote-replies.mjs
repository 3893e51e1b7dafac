// The replies a model card quotes: N turns where the model named a fact, drawn by a seeded shuffle
// (not picked), as a Markdown table to read by hand. Each row carries what `pal eval` says of it
// (the selected fact used by the word-overlap rule, a fact recited word for word), so a hand read
// can be set beside the counts:
//
//   node recipes/pal-smollm2/quote-replies.mjs .pal-studio/pal-smollm2/eval/pal-smollm2-135m.predictions.jsonl [--count 20] [--seed 20261206]
import { readFileSync } from 'node:fs';
import { loadEngineModules } from '../../bench/engine-bundle.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const count = option('--count', 20);
const seed = option('--seed', 20261206);
const file = args.find((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--')));
if (!file || !Number.isInteger(count) || count < 1 || !Number.isInteger(seed)) {
  console.error('usage: node recipes/pal-smollm2/quote-replies.mjs <predictions.jsonl> [--count N] [--seed N]');
  process.exit(2);
}
const m = await loadEngineModules(
  'quote-replies',
  `export { mulberry32 } from './src/core/random';
   export { recitesFact, usesSelectedFact } from './src/core/metrics/index';`,
);

const records = readFileSync(file, 'utf8')
  .split('\n')
  .map((line, i) => [line, i + 1])
  .filter(([line]) => line.trim())
  .map(([line, n]) => {
    const r = JSON.parse(line);
    if (!Array.isArray(r.personas) || !Array.isArray(r.history) || typeof r.selected !== 'number' || typeof r.gold_persona !== 'number')
      throw new Error(`${file}:${n}: a prediction needs personas, history, selected and gold_persona (pal predict writes them)`);
    return r;
  });
const named = records.filter((r) => r.selected >= 0);
// Fisher-Yates with the seeded generator: the same file and seed give the same rows.
const random = m.mulberry32(seed);
for (let i = named.length - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [named[i], named[j]] = [named[j], named[i]];
}
const cell = (text) => String(text).replace(/\|/g, '\\|').replace(/\s+/g, ' ').trim();
const drawn = named.slice(0, count);
console.log(`${drawn.length} of the ${named.length} turns (of ${records.length}) where the model named a fact, shuffled with seed ${seed}:\n`);
console.log("| # | partner's last turn | fact selected (reference's fact) | reply | used (words) | recited |");
console.log('| --- | --- | --- | --- | --- | --- |');
drawn.forEach((r, i) => {
  const reference = r.gold_persona < 0 ? 'none' : r.gold_persona === r.selected ? 'same' : 'another';
  const used = m.usesSelectedFact(r) === 1 ? 'yes' : 'no';
  const recited = m.recitesFact(r.prediction, r.personas) ? 'yes' : 'no';
  console.log(`| ${i + 1} | ${cell(r.history.at(-1))} | ${cell(r.personas[r.selected])} (${reference}) | ${cell(r.prediction)} | ${used} | ${recited} |`);
});
