"""Training throughput of PAL Studio's trainer against a minimal plain PyTorch loop.

Both train the same model (pal_trainer.model.CausalLM) on the same batches with AdamW: the peer is
the shortest correct loop (forward, masked cross-entropy, backward, clip, step); ours is the real
stage-1 job (pal_trainer.train.train) with its checkpointing turned down to the end of the run. The
ratio ours/peer says what the trainer's bookkeeping costs. Prints one JSON object.

usage: python bench/trainer_bench.py [--steps N] [--sizes 7m,30m]
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

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from pal_trainer import train as T  # noqa: E402
from pal_trainer.model import CausalLM, ModelConfig, count_parameters  # noqa: E402

SIZES = {
    # ~7M and ~30M parameters, Llama-style with grouped-query attention and tied embeddings.
    "7m": dict(vocab_size=4096, hidden_size=256, intermediate_size=688, num_hidden_layers=6, num_attention_heads=4, num_key_value_heads=2),
    "30m": dict(vocab_size=8192, hidden_size=512, intermediate_size=1376, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4),
}
BATCH, PROMPT, TARGET = 8, 64, 64


def config(size):
    return ModelConfig.from_hf({"model_type": "llama", "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
                                "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, **SIZES[size]})


def rows(vocab, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"prompt": torch.randint(3, vocab, (PROMPT,), generator=g).tolist(), "target": torch.randint(3, vocab, (TARGET,), generator=g).tolist()} for _ in range(n)]


def plain_loop(model_dir, data, steps):
    """The peer: as little as a correct masked-LM training step needs."""
    model = CausalLM.from_pretrained(model_dir)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for s in range(steps):
        t0 = time.perf_counter()  # building the batch is part of any loop's step, as it is of ours
        batch = data[s * BATCH:(s + 1) * BATCH]
        ids = torch.tensor([r["prompt"] + r["target"] for r in batch])
        labels = ids.clone()
        labels[:, :PROMPT] = -100
        logits, _ = model(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return times


def ours(model_dir, data_path, out, steps):
    job = {**T.DEFAULTS, "stage": "sft", "model": model_dir, "data": data_path, "out": out, "batch_size": BATCH, "max_length": PROMPT + TARGET,
           "epochs": 1, "max_steps": steps, "checkpoint_every": 10**9, "device": "cpu", "lr": 1e-4, "warmup_steps": 0}
    times = []

    class Collect(T.Events):
        def metric(self, **fields):
            times.append(fields["step_time"])

    T.train(job, T.Distributed("cpu"), Collect(out, True))
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--sizes", default="7m,30m")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    results = []
    for size in args.sizes.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            torch.manual_seed(0)
            model = CausalLM(config(size))
            params = count_parameters(model)
            model.save_pretrained(os.path.join(tmp, "model"))
            data = rows(config(size).vocab_size, BATCH * args.steps)
            data_path = os.path.join(tmp, "sft.jsonl")
            with open(data_path, "w", encoding="utf-8") as f:
                for r in data:
                    f.write(json.dumps(r) + "\n")
            # Rounds alternate the two, so that a noisy moment on a shared machine hits both alike.
            peer, mine = [], []
            for r in range(args.rounds):
                peer += plain_loop(os.path.join(tmp, "model"), data, args.steps)[2:]
                mine += ours(os.path.join(tmp, "model"), data_path, os.path.join(tmp, f"run{r}"), args.steps)[2:]
        tokens = BATCH * (PROMPT + TARGET)
        # The first two steps of each run warm up allocators and caches and are dropped. The median
        # is the typical step; the fastest step is the least disturbed by other work on the machine.
        p, o = statistics.median(peer), statistics.median(mine)
        flops_per_token = 6 * params  # forward + backward, attention's share ignored (short sequences)
        results.append({"size": size, "parameters": params, "tokens_per_step": tokens, "steps_timed": len(mine),
                        "ours_tokens_per_s": tokens / o, "peer_tokens_per_s": tokens / p, "ratio_median": p / o,
                        "ratio_fastest": min(peer) / min(mine), "ours_gflops": flops_per_token * tokens / o / 1e9})
    print(json.dumps({"machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                                  "torch_threads": torch.get_num_threads(), "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS")},
                      "trainer": results}))


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
