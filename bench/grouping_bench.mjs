// Length-grouped batches against random ones on PAL's real rows: the stage-1 items (select and
// generate) of ConvAI2 dev examples, tokenized as a run tokenizes them (the default model's
// tokenizer and prompts), become rows of those exact prompt and target lengths, and the trainer's
// real job (pal_trainer.train, stage sft, the bench's 7M model) trains one epoch over them twice:
// group_by_length on and off, same seed. Reports the padding of each and the real (unpadded)
// tokens/s. Prints one JSON object.
//
// usage: node bench/grouping_bench.mjs [--examples N] [--size 7m]
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadEngineModules } from './engine-bundle.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, fallback) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : fallback);
const EXAMPLES = Number(arg('--examples', '200'));
const SIZE = arg('--size', '7m');
const python = process.env.PAL_PYTHON || 'python3';
const data = path.join(process.env.PAL_SHARED_DATA || path.join(root, '..', 'shared', 'data'), 'persona-chat', 'convai2_valid_dev.txt');

const lib = await loadEngineModules(
  'grouping',
  "export { importParlai } from './src/core/importers/parlai'; export { stage1Items } from './src/core/mixture'; export { loadModel, encode } from './src/engine/inference';",
);
const { examples } = lib.importParlai(readFileSync(data, 'utf8'), data);
// Spread over the file (consecutive turns of one dialogue have histories of growing length).
const step = Math.floor(examples.length / EXAMPLES);
const picked = Array.from({ length: EXAMPLES }, (_, i) => examples[i * step]);
const m = await lib.loadModel(path.join(root, 'models', 'pal-default'));
const resolved = picked.map((e, i) => ({
  id: String(i),
  personas: e.personas,
  history: e.history,
  response: e.response,
  personaIndex: e.persona_index,
  split: 'train',
}));
const lengths = lib.stage1Items(resolved, m.promptFormat).map((it) => [lib.encode(m, it.prompt).length, lib.encode(m, it.target).length + 1]);
const file = path.join(root, 'dist-bench', 'grouping-lengths.json');
writeFileSync(file, JSON.stringify(lengths));

const script = `
import json, os, sys, tempfile, time
sys.path.insert(0, os.path.join(${JSON.stringify(root)}, "bench"))
sys.argv = ["grouping"]
import torch
import trainer_bench as B
from pal_trainer import train as T
lengths = json.load(open(sys.argv[1] if len(sys.argv) > 1 else ${JSON.stringify(file)}))
size = ${JSON.stringify(SIZE)}
vocab = B.config(size).vocab_size
g = torch.Generator().manual_seed(0)
ids = lambda n: torch.randint(3, vocab, (n,), generator=g).tolist()
result = {"size": size, "rows": len(lengths), "batch": 8}
with tempfile.TemporaryDirectory() as tmp:
    torch.manual_seed(0)
    B.CausalLM(B.config(size)).save_pretrained(os.path.join(tmp, "model"))
    with open(os.path.join(tmp, "rows.jsonl"), "w") as f:
        for p, t in lengths:
            f.write(json.dumps({"prompt": ids(p), "target": ids(t - 1) + [2]}) + "\\n")
    for grouped in (False, True, False, True):
        job = {**T.DEFAULTS, "stage": "sft", "model": os.path.join(tmp, "model"), "data": os.path.join(tmp, "rows.jsonl"),
               "out": os.path.join(tmp, f"run{grouped}{time.time()}"), "batch_size": 8, "max_length": 512, "epochs": 1,
               "checkpoint_every": 10**9, "device": "cpu", "lr": 1e-4, "warmup_steps": 0, "group_by_length": grouped}
        ends, tokens = [], []
        class Clock(T.Events):
            def metric(self, **fields):
                super().metric(**fields)
                ends.append(time.perf_counter())
                tokens.append(fields.get("tokens", 0))
        os.makedirs(job["out"])
        t0 = time.perf_counter()
        T.train(job, T.Distributed("cpu"), Clock(job["out"], True))
        seconds = ends[-1] - t0
        src = __import__("pal_trainer.data", fromlist=["x"]).ExampleSource(job["data"], "sft", job["seed"], grouped, 512)
        batches = src.batches(0, 8)
        real = sum(min(512, len(src.rows[i]["prompt"]) + len(src.rows[i]["target"])) for b in batches for i in b)
        padded = sum(8 * max(min(512, len(src.rows[i]["prompt"]) + len(src.rows[i]["target"])) for i in b) for b in batches)
        key = "grouped" if grouped else "random"
        r = result.setdefault(key, {"seconds": [], "padding": 1 - real / padded, "real_tokens": real})
        r["seconds"].append(seconds)
for key in ("random", "grouped"):
    result[key]["tokens_per_s"] = result[key]["real_tokens"] / min(result[key]["seconds"])
result["speedup"] = result["grouped"]["tokens_per_s"] / result["random"]["tokens_per_s"]
print(json.dumps(result))
`;
const res = execFileSync(python, ['-c', script], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
  cwd: path.join(root, 'src', 'trainer'),
  maxBuffer: 16 << 20,
});
process.stdout.write(res.trim().split('\n').pop() + '\n');
