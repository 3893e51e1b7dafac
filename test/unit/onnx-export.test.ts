// The ONNX export (src/trainer/pal_trainer/export_onnx.py) against PyTorch: tiny random llama (GQA,
// tied embeddings) and gpt2 models, exported by make_parity_fixture.py, then run here through
// transformers.js (greedy generation, logits, a left-padded batch) and through onnxruntime-node
// directly (prompt and past lengths other than the traced ones, past length 0 included).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { AutoModelForCausalLM, env, Tensor, type PreTrainedModel } from '@huggingface/transformers';
import * as ort from 'onnxruntime-node';
import { packageRoot } from '../../src/engine/paths';

const TYPES = ['llama', 'gpt2'] as const;
const TOLERANCE = 1e-4;
const PAD = 0;

interface Fixture {
  folder: string;
  vocab_size: number;
  export_seconds: number;
  onnx_bytes: number;
  prompts: number[][];
  greedy: number[][];
  logits: number[][][]; // per prompt: (prompt length, vocab)
}

const python = process.env.PAL_PYTHON || '/usr/bin/python3';
const requireTorch = process.env.CI === 'true' || process.env.PAL_REQUIRE_TORCH === '1';

/** Why this machine cannot build the fixture, or undefined when it can. */
function torchMissing(): string | undefined {
  const r = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) return `${python}: ${r.error.message}`;
  if (r.status !== 0) return `${python} cannot import torch: ${(r.stderr.trim().split('\n').pop() ?? '').trim()}`;
  return undefined;
}

const missing = torchMissing();
if (missing && requireTorch) {
  test('a Python with torch is available (CI or PAL_REQUIRE_TORCH=1 require it)', () => {
    assert.fail(`${missing}; set PAL_PYTHON to an interpreter with torch >= 1.13`);
  });
}

/** Rows left-padded to one length, with their attention mask. */
function leftPad(rows: number[][]): { ids: number[][]; mask: number[][] } {
  const width = Math.max(...rows.map((r) => r.length));
  return {
    ids: rows.map((r) => [...Array<number>(width - r.length).fill(PAD), ...r]),
    mask: rows.map((r) => [...Array<number>(width - r.length).fill(0), ...Array<number>(r.length).fill(1)]),
  };
}

function int64(rows: number[][]): Tensor {
  return new Tensor('int64', BigInt64Array.from(rows.flat().map((v) => BigInt(v))), [rows.length, rows[0]!.length]);
}

/** Largest |a - b| over the logits of one sequence position. */
function maxDiff(data: ArrayLike<number>, offset: number, expected: number[]): number {
  let worst = 0;
  for (let v = 0; v < expected.length; v++) {
    const d = Math.abs(data[offset + v]! - expected[v]!);
    // NaN must fail, and Math.max(NaN, x) would hide nothing but read oddly.
    worst = Number.isNaN(d) ? Infinity : Math.max(worst, d);
  }
  return worst;
}

/** Sequences (batch, length) of generate() as rows of numbers. */
function rowsOf(t: Tensor): number[][] {
  const [batch, length] = t.dims as [number, number];
  const data = t.data as BigInt64Array;
  return Array.from({ length: batch }, (_, b) => Array.from(data.subarray(b * length, (b + 1) * length), Number));
}

describe(
  'ONNX export: transformers.js and onnxruntime agree with PyTorch',
  { skip: missing ? `no Python with torch (${missing}); set PAL_PYTHON, or PAL_REQUIRE_TORCH=1 to fail instead` : false },
  () => {
    let dir: string;
    let fixtures: Record<string, Fixture>;
    const measured: string[] = [];

    before(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'pal-onnx-'));
      const script = path.join(packageRoot(), 'src', 'trainer', 'tests', 'make_parity_fixture.py');
      await promisify(execFile)(python, [script, dir], {
        env: { ...process.env, OPENBLAS_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' },
        timeout: 300_000,
      });
      fixtures = JSON.parse(readFileSync(path.join(dir, 'fixture.json'), 'utf8'));
      // Nothing from the hub: local folders only, and no cache written next to node_modules.
      env.allowRemoteModels = false;
      env.allowLocalModels = true;
      env.useFSCache = false;
    });

    after(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
      if (measured.length) console.log(measured.join('\n'));
    });

    for (const type of TYPES) {
      describe(type, () => {
        let model: PreTrainedModel;
        let fx: Fixture;

        before(async () => {
          fx = fixtures[type]!;
          model = await AutoModelForCausalLM.from_pretrained(fx.folder, { local_files_only: true });
        });
        after(async () => {
          await model?.dispose();
        });

        test('greedy generation gives PyTorch tokens exactly', async () => {
          for (const [i, prompt] of fx.prompts.entries()) {
            const out = (await model.generate({
              input_ids: int64([prompt]),
              max_new_tokens: fx.greedy[i]!.length,
              do_sample: false,
            } as Parameters<PreTrainedModel['generate']>[0])) as Tensor;
            assert.deepEqual(rowsOf(out)[0]!.slice(prompt.length), fx.greedy[i], `prompt ${i}`);
          }
        });

        test('one forward pass gives PyTorch logits', async () => {
          let worst = 0;
          for (const [i, prompt] of fx.prompts.entries()) {
            const { logits } = (await model({ input_ids: int64([prompt]), attention_mask: int64([prompt.map(() => 1)]) })) as { logits: Tensor };
            assert.deepEqual(logits.dims, [1, prompt.length, fx.vocab_size]);
            const data = logits.data as Float32Array;
            for (let p = 0; p < prompt.length; p++) worst = Math.max(worst, maxDiff(data, p * fx.vocab_size, fx.logits[i]![p]!));
          }
          measured.push(`${type}: max |logit difference| ${worst.toExponential(2)}; export ${fx.export_seconds} s, ${fx.onnx_bytes} bytes`);
          assert.ok(worst <= TOLERANCE, `max |logit difference| ${worst}`);
        });

        test('a left-padded batch: same tokens and, at real positions, same logits as each prompt alone', async () => {
          const { ids, mask } = leftPad(fx.prompts);
          const width = ids[0]!.length;
          const out = (await model.generate({
            input_ids: int64(ids),
            attention_mask: int64(mask),
            max_new_tokens: fx.greedy[0]!.length,
            do_sample: false,
          } as Parameters<PreTrainedModel['generate']>[0])) as Tensor;
          rowsOf(out).forEach((row, i) => assert.deepEqual(row.slice(width), fx.greedy[i], `row ${i}`));

          const { logits } = (await model({ input_ids: int64(ids), attention_mask: int64(mask) })) as { logits: Tensor };
          const data = logits.data as Float32Array;
          fx.prompts.forEach((prompt, i) => {
            const pad = width - prompt.length;
            for (let p = 0; p < prompt.length; p++) {
              const d = maxDiff(data, (i * width + pad + p) * fx.vocab_size, fx.logits[i]![p]!);
              assert.ok(d <= TOLERANCE, `row ${i} position ${p}: |logit difference| ${d}`);
            }
          });
        });

        test('onnxruntime: past lengths 0 and up, chunked and token by token, on a left-padded batch', async () => {
          const config = JSON.parse(readFileSync(path.join(fx.folder, 'config.json'), 'utf8'));
          const layers: number = config.num_hidden_layers ?? config.n_layer;
          const kvHeads: number = config.num_key_value_heads ?? config.n_head;
          const headDim: number = config.head_dim ?? config.n_embd / config.n_head;
          const session = await ort.InferenceSession.create(path.join(fx.folder, 'onnx', 'model.onnx'));
          try {
            const { ids, mask } = leftPad(fx.prompts);
            const batch = ids.length;
            const width = ids[0]!.length;
            // As transformers.js computes them: count of real tokens so far, 1 on padding.
            const positions = mask.map((m) => {
              let n = 0;
              return m.map((v) => (v ? n++ : 1));
            });
            const tensor = (rows: number[][], a: number, b: number) =>
              new ort.Tensor('int64', BigInt64Array.from(rows.flatMap((r) => r.slice(a, b)).map((v) => BigInt(v))), [batch, b - a]);
            const splits = [[0, 1, 4, width], Array.from({ length: width + 1 }, (_, i) => i), [0, width]];
            for (const split of splits) {
              let past: Record<string, ort.Tensor> = {};
              for (let l = 0; l < layers; l++) {
                for (const kv of ['key', 'value']) {
                  past[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [batch, kvHeads, 0, headDim]);
                }
              }
              for (let s = 0; s + 1 < split.length; s++) {
                const [a, b] = [split[s]!, split[s + 1]!];
                const out = await session.run({
                  input_ids: tensor(ids, a, b),
                  attention_mask: tensor(mask, 0, b),
                  position_ids: tensor(positions, a, b),
                  ...past,
                });
                const logits = out.logits!;
                assert.deepEqual(logits.dims, [batch, b - a, fx.vocab_size]);
                const data = logits.data as Float32Array;
                fx.prompts.forEach((prompt, i) => {
                  const pad = width - prompt.length;
                  for (let p = Math.max(a, pad); p < b; p++) {
                    const d = maxDiff(data, (i * (b - a) + p - a) * fx.vocab_size, fx.logits[i]![p - pad]!);
                    assert.ok(d <= TOLERANCE, `split ${split.join(',')}, row ${i} position ${p - pad}: |logit difference| ${d}`);
                  }
                });
                past = {};
                for (let l = 0; l < layers; l++) {
                  for (const kv of ['key', 'value']) {
                    const present = out[`present.${l}.${kv}`]!;
                    assert.deepEqual(present.dims, [batch, kvHeads, b, headDim]);
                    past[`past_key_values.${l}.${kv}`] = present;
                  }
                }
              }
            }
          } finally {
            await session.release();
          }
        });
      });
    }
  },
);
