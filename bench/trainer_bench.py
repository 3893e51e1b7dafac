"""Training throughput of PAL Studio's trainer against a minimal plain PyTorch loop.

Both train the same model (pal_trainer.model.CausalLM) on the same batches with AdamW: the peer is
the shortest correct loop (stage 1: forward, masked cross-entropy, backward, clip, step; DPO: the
policy and a frozen reference score chosen and rejected stacked in one batch, -log σ(β·Δ),
backward, clip, step); ours is the real job (pal_trainer.train.train, stage "sft" or "dpo") with
its checkpointing turned down to the end of the run. The ratio ours/peer says what the trainer's
bookkeeping costs. Achieved FLOP/s are set against this machine's measured fp32 matmul peak (a
large torch.mm), the most any training step here could reach. Prints one JSON object.

usage: python bench/trainer_bench.py [--steps N] [--sizes 7m,30m] [--stages sft,dpo] [--lengths 128]
                                    [--device cpu|cuda] [--precision fp32|bf16] [--batch 8]

On a CUDA GPU (the ~100M row): --device cuda --precision bf16 --sizes 100m --lengths 512 --batch 16.
Both sides then run under bf16 autocast, time their steps after a device synchronisation, and the
peak is a large bf16 matmul's.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "trainer"))

import contextlib

import torch
import torch.nn.functional as F
from pal_trainer import train as T
from pal_trainer.model import CausalLM, ModelConfig, count_parameters

SIZES = {
    # ~7M and ~30M parameters, Llama-style with grouped-query attention and tied embeddings.
    "7m": dict(vocab_size=4096, hidden_size=256, intermediate_size=688, num_hidden_layers=6, num_attention_heads=4, num_key_value_heads=2),
    "30m": dict(vocab_size=8192, hidden_size=512, intermediate_size=1376, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4),
    # ~100M (the GPU row): a 32k vocabulary, as real tokenizers have.
    "100m": dict(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4),
}
BATCH = 8
DEVICE = torch.device("cpu")
AMP = None  # torch.bfloat16 with --precision bf16


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def autocast():
    return torch.autocast(DEVICE.type, dtype=AMP) if AMP else contextlib.nullcontext()


def config(size):
    return ModelConfig.from_hf(
        {
            "model_type": "llama",
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "tie_word_embeddings": True,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 0,
            **SIZES[size],
        }
    )


def rows(vocab, n, length, stage, seed=0):
    """Equal-length rows (half prompt, half response), so neither side pads."""
    g = torch.Generator().manual_seed(seed)
    half = length // 2
    ids = lambda: torch.randint(3, vocab, (half,), generator=g).tolist()  # noqa: E731
    if stage == "sft":
        return [{"prompt": ids(), "target": ids()} for _ in range(n)]
    return [{"prompt": ids(), "chosen": ids(), "rejected": ids()} for _ in range(n)]


def sft_loss(model, batch):
    ids = torch.tensor([r["prompt"] + r["target"] for r in batch], device=DEVICE)
    labels = ids.clone()
    labels[:, : len(batch[0]["prompt"])] = -100
    with autocast():
        logits, _ = model(ids)
    return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100), ids.numel()


def dpo_loss(model, reference, batch, beta=0.1):
    # Chosen and rejected stacked in one batch, as TRL does; log-probabilities of the response tokens.
    ids = torch.tensor([r["prompt"] + r[k] for k in ("chosen", "rejected") for r in batch], device=DEVICE)
    start = len(batch[0]["prompt"])

    def logps(m):
        with autocast():
            logits, _ = m(ids)
        lp = torch.gather(F.log_softmax(logits[:, start - 1 : -1].float(), dim=-1), 2, ids[:, start:].unsqueeze(-1)).squeeze(-1)
        return lp.sum(-1)

    pi = logps(model)
    with torch.no_grad():
        ref = logps(reference)
    n = len(batch)
    delta = (pi[:n] - pi[n:]) - (ref[:n] - ref[n:])
    return -F.logsigmoid(beta * delta).mean(), ids.numel()


def plain_loop(model_dir, data, steps, stage):
    """The peer: as little as a correct training step needs."""
    model = CausalLM.from_pretrained(model_dir, device=DEVICE, dtype=torch.float32)
    model.train()
    reference = CausalLM.from_pretrained(model_dir, device=DEVICE, dtype=torch.float32).eval().requires_grad_(False) if stage == "dpo" else None
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for s in range(steps):
        t0 = time.perf_counter()  # building the batch is part of any loop's step, as it is of ours
        batch = data[s * BATCH : (s + 1) * BATCH]
        loss, _ = sft_loss(model, batch) if stage == "sft" else dpo_loss(model, reference, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        times.append(time.perf_counter() - t0)
    return times


def ours(model_dir, data_path, out, steps, stage, length):
    job = {
        **T.DEFAULTS,
        "stage": stage,
        "model": model_dir,
        "data": data_path,
        "out": out,
        "batch_size": BATCH,
        "max_length": length,
        "epochs": 1,
        "max_steps": steps,
        "checkpoint_every": 10**9,
        "device": str(DEVICE),
        "lr": 1e-4,
        "warmup_steps": 0,
        "precision": "bf16" if AMP else "fp32",
    }
    times = []

    class Collect(T.Events):
        def metric(self, **fields):
            times.append(fields["step_time"])

    T.train(job, T.Distributed("cpu"), Collect(out, True))
    return times


def matmul_peak_gflops(n=2048, repeats=5):
    """FLOP/s of a large square matmul (fp32 on the CPU's threads; on a GPU, in the benchmark's
    precision, 8192²): the practical ceiling of a training step."""
    if DEVICE.type == "cuda":
        n = 8192
    a = torch.randn(n, n, device=DEVICE, dtype=AMP or torch.float32)
    b = torch.randn(n, n, device=DEVICE, dtype=AMP or torch.float32)
    torch.mm(a, b)
    sync()

    def mm():
        torch.mm(a, b)
        sync()

    best = min(timed(mm) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    global DEVICE, AMP, BATCH
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--sizes", default="7m,30m")
    ap.add_argument("--stages", default="sft,dpo")
    ap.add_argument("--lengths", default="128", help="sequence lengths (prompt + response) to sweep")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="bf16: autocast, on GPUs that have it")
    ap.add_argument("--batch", type=int, default=BATCH, help="sequences (DPO: pairs) per step")
    args = ap.parse_args()
    DEVICE = torch.device(args.device)
    if args.precision == "bf16" and DEVICE.type != "cuda":
        ap.error("--precision bf16 is for GPUs: the trainer runs fp32 on the CPU")
    AMP = torch.bfloat16 if args.precision == "bf16" else None
    BATCH = args.batch
    peak = matmul_peak_gflops()
    results = []
    for size in args.sizes.split(","):
        for stage in args.stages.split(","):
            for length in (int(x) for x in args.lengths.split(",")):
                results.append(measure(size, stage, length, args.steps, args.rounds, peak))
                print(f"trainer bench: {json.dumps(results[-1])}", file=sys.stderr)
    gpu = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else None
    print(
        json.dumps(
            {
                "machine": {
                    "cpu": cpu_name(),
                    "cores": os.cpu_count(),
                    "device": str(DEVICE),
                    "gpu": gpu,
                    "precision": args.precision,
                    "batch": BATCH,
                    "python": platform.python_version(),
                    "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads(),
                    "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                    "matmul_peak_gflops": peak,
                    "matmul_peak_dtype": str(AMP or torch.float32).replace("torch.", ""),
                },
                "trainer": results,
            }
        )
    )


def measure(size, stage, length, steps, rounds, peak):
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model = CausalLM(config(size))
        params = count_parameters(model)
        model.save_pretrained(os.path.join(tmp, "model"))
        data = rows(config(size).vocab_size, BATCH * steps, length, stage)
        data_path = os.path.join(tmp, f"{stage}.jsonl")
        with open(data_path, "w", encoding="utf-8") as f:
            for r in data:
                f.write(json.dumps(r) + "\n")
        # Rounds alternate the two, so that a noisy moment on a shared machine hits both alike.
        peer, mine = [], []
        for r in range(rounds):
            peer += plain_loop(os.path.join(tmp, "model"), data, steps, stage)[2:]
            mine += ours(os.path.join(tmp, "model"), data_path, os.path.join(tmp, f"run{r}"), steps, stage, length)[2:]
    # Tokens through the policy per step (DPO: chosen and rejected, so twice the rows).
    tokens = BATCH * length * (2 if stage == "dpo" else 1)
    # The first two steps of each run warm up allocators and caches and are dropped. The median
    # is the typical step; the fastest step is the least disturbed by other work on the machine.
    p, o = statistics.median(peer), statistics.median(mine)
    # Forward + backward of the policy is 6 FLOPs per parameter and token (attention's share left
    # out: short sequences); DPO adds the reference's forward, 2 more.
    flops_per_token = (6 if stage == "sft" else 8) * params
    gflops = flops_per_token * tokens / o / 1e9
    return {
        "size": size,
        "stage": stage,
        "length": length,
        "parameters": params,
        "tokens_per_step": tokens,
        "steps_timed": len(mine),
        "ours_tokens_per_s": tokens / o,
        "peer_tokens_per_s": tokens / p,
        "ratio_median": p / o,
        "ratio_fastest": min(peer) / min(mine),
        "ours_gflops": gflops,
        "utilisation": gflops / peak,
    }


def cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
