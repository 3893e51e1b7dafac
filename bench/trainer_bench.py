"""Training throughput of PAL Studio's trainer against its peers: a minimal plain PyTorch loop, and
the field's own libraries, transformers' Trainer (stage 1) and TRL's DPOTrainer (stage 2).

All train the same weights on the same batches with AdamW, in the same precision:
- plain: the shortest correct loop on pal_trainer.model.CausalLM (stage 1: forward, masked
  cross-entropy, backward, clip, step; DPO: the policy and a frozen reference score chosen and
  rejected stacked in one batch, -log σ(β·Δ), backward, clip, step);
- transformers: the same weights loaded as transformers' LlamaForCausalLM; stage 1 through
  `transformers.Trainer` with completion-only loss (prompt labels -100), stage 2 through
  `trl.DPOTrainer` (sigmoid loss, β 0.1, reference = the same stage-1 weights, its reference
  log-probabilities precomputed, which TRL offers: that pass is timed and spread over the steps);
- ours: the real job (pal_trainer.train.train, stage "sft" or "dpo") with its checkpointing turned
  down to the end of the run.
Each side logs its loss every step. A step's time is the interval between the ends of two
consecutive steps (all of a loop's work: batch, forward, backward, optimiser, logging); the first
two steps warm up and are dropped. Achieved FLOP/s are set against this machine's measured matmul
peak (a large torch.mm in the run's precision), or with --peak-tflops against a datasheet's (MFU).
With --memory, each side's peak memory as well: each side trains a few steps at every length in a
process of its own (a process's peak never comes down), shortest length first, and reports its
peak resident set (CPU; imports and all, what a user's process takes) or the peak allocated on the
GPU after each length. Prints one JSON object.

usage: python bench/trainer_bench.py [--steps N] [--sizes 7m,30m,135m] [--stages sft,dpo]
          [--lengths 64,128,256] [--peers plain,transformers] [--lora] [--device cpu|cuda]
          [--precision fp32|bf16] [--batch 8] [--peak-tflops T] [--memory]

GPU (docs/performance.md, "GPU"): bash bench/gpu.sh runs the rows the issue asks for.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
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
    # ~100M: a 32k vocabulary, as real tokenizers have.
    "100m": dict(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4),
    # SmolLM2-135M's shape (the pretrained base PAL Studio fetches), random weights.
    "135m": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3),
}
# A run config's LoRA defaults (src/core/formats/schemas.ts), dropout off so that both sides do the
# same work (PEFT's dropout and ours draw different masks).
LORA = {"r": 16, "alpha": 32, "dropout": 0.0, "targets": ["q_proj", "k_proj", "v_proj", "o_proj"]}
LR = 1e-4
CLIP = 10.0
BETA = 0.1
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


def step_times(ends):
    """Step times from the ends of consecutive steps, from the third step on (the first two warm up
    allocators and caches)."""
    return [b - a for a, b in zip(ends[1:], ends[2:], strict=False)]


def plain_loop(model_dir, data, steps, stage, tmp):
    """The plain peer: as little as a correct training step needs."""
    model = CausalLM.from_pretrained(model_dir, device=DEVICE, dtype=torch.float32)
    model.train()
    reference = CausalLM.from_pretrained(model_dir, device=DEVICE, dtype=torch.float32).eval().requires_grad_(False) if stage == "dpo" else None
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    ends = []
    for s in range(steps):
        batch = data[s * BATCH : (s + 1) * BATCH]  # building the batch is part of any loop's step
        loss, _ = sft_loss(model, batch) if stage == "sft" else dpo_loss(model, reference, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()  # its loss, logged as every side logs it
        sync()
        ends.append(time.perf_counter())
    return step_times(ends), 0.0


def word_tokenizer(vocab):
    """A tokenizer whose ids are the bench's: "t5" is id 5. TRL takes text and tokenizes it itself;
    with this one it reads exactly the ids the other sides train on."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = {"<pad>": 0, "<s>": 1, "</s>": 2, **{f"t{i}": i for i in range(3, vocab)}}
    backend = Tokenizer(models.WordLevel(vocab=words, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="</s>", pad_token="<pad>", bos_token="<s>")


def transformers_loop(model_dir, data, steps, stage, tmp):
    """The field's peer: transformers' Trainer with completion-only loss (stage 1), TRL's
    DPOTrainer with precomputed reference log-probabilities (stage 2); PEFT's LoRA with --lora.
    Returns the step times and the seconds TRL spent precomputing (0 for stage 1)."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    model = transformers.LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    peft_config = None
    if USE_LORA:
        import peft

        peft_config = peft.LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"], target_modules=LORA["targets"])
    ends = []

    class Clock(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            sync()
            ends.append(time.perf_counter())

    common = dict(
        output_dir=os.path.join(tmp, "peer"),
        per_device_train_batch_size=BATCH,
        max_steps=steps,
        learning_rate=LR,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=CLIP,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=DEVICE.type == "cpu",
        bf16=AMP is not None,
        dataloader_num_workers=0,
        seed=0,
    )
    if stage == "sft":
        rows_ = [{"input_ids": r["prompt"] + r["target"], "labels": [-100] * len(r["prompt"]) + r["target"]} for r in data]
        if peft_config:
            import peft

            model = peft.get_peft_model(model, peft_config)
        trainer = transformers.Trainer(
            model=model,
            args=transformers.TrainingArguments(**common),
            train_dataset=datasets.Dataset.from_list(rows_),
            data_collator=transformers.default_data_collator,
            callbacks=[Clock()],
        )
        trainer.train()
        return step_times(ends), 0.0

    import trl

    precompute = []

    class TimedDPOTrainer(trl.DPOTrainer):
        def _precompute_ref_logps(self, *args, **kwargs):
            t0 = time.perf_counter()
            out = super()._precompute_ref_logps(*args, **kwargs)
            sync()
            precompute.append(time.perf_counter() - t0)
            return out

    words = lambda ids: " ".join(f"t{i}" for i in ids)  # noqa: E731
    # TRL appends the tokenizer's EOS to each response: the bench's responses end with one (id 2).
    pairs = [{"prompt": words(r["prompt"]), "chosen": " " + words(r["chosen"][:-1]), "rejected": " " + words(r["rejected"][:-1])} for r in data]
    trainer = TimedDPOTrainer(
        model=model,
        args=trl.DPOConfig(**common, beta=BETA, loss_type=["sigmoid"], precompute_ref_log_probs=True, max_length=None),
        train_dataset=datasets.Dataset.from_list(pairs),
        processing_class=word_tokenizer(model.config.vocab_size),
        callbacks=[Clock()],
        peft_config=peft_config,
    )
    trainer.train()
    return step_times(ends), sum(precompute)


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
        "lr": LR,
        "grad_clip": CLIP,
        "beta": BETA,
        "warmup_steps": 0,
        "lora": LORA if USE_LORA else None,
        "precision": "bf16" if AMP else "fp32",
    }
    ends = []

    class Clock(T.Events):
        def metric(self, **fields):
            super().metric(**fields)
            sync()
            ends.append(time.perf_counter())

    os.makedirs(out, exist_ok=True)
    T.train(job, T.Distributed("cpu"), Clock(out, True))
    return step_times(ends)


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


PEERS = {"plain": plain_loop, "transformers": transformers_loop}
USE_LORA = False


def main():
    global DEVICE, AMP, BATCH, USE_LORA
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--sizes", default="7m,30m")
    ap.add_argument("--stages", default="sft,dpo")
    ap.add_argument("--lengths", default="128", help="sequence lengths (prompt + response) to sweep")
    ap.add_argument("--peers", default="plain", help="plain and/or transformers (transformers' Trainer, TRL's DPOTrainer)")
    ap.add_argument("--lora", action="store_true", help="LoRA (a run config's defaults) on every side; the plain loop has none")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="bf16: autocast, on GPUs that have it")
    ap.add_argument("--batch", type=int, default=BATCH, help="sequences (DPO: pairs) per step")
    ap.add_argument("--peak-tflops", type=float, help="the device's datasheet peak in this precision: utilisation becomes MFU against it")
    ap.add_argument("--memory", action="store_true", help="each side's peak memory too, in a process of its own")
    ap.add_argument("--memory-of", help=argparse.SUPPRESS)  # the child process of --memory: SIDE:MODEL_DIR
    args = ap.parse_args()
    DEVICE = torch.device(args.device)
    if args.precision == "bf16" and DEVICE.type != "cuda":
        ap.error("--precision bf16 is for GPUs: the trainer runs fp32 on the CPU")
    AMP = torch.bfloat16 if args.precision == "bf16" else None
    BATCH = args.batch
    USE_LORA = args.lora
    peers = args.peers.split(",")
    if unknown := [p for p in peers if p not in PEERS]:
        ap.error(f"unknown peer {unknown[0]} (known: {', '.join(PEERS)})")
    if USE_LORA and "plain" in peers:
        ap.error("--lora: the plain loop has no LoRA; use --peers transformers")
    lengths = sorted(int(x) for x in args.lengths.split(","))
    if args.memory_of:
        side, model_dir = args.memory_of.split(":", 1)
        print(json.dumps(memory_of(side, model_dir, args.sizes, args.stages, lengths)))
        return
    measured_peak = matmul_peak_gflops()
    peak = args.peak_tflops * 1e3 if args.peak_tflops else measured_peak
    results = []
    for size in args.sizes.split(","):
        for stage in args.stages.split(","):
            rows_ = [measure(size, stage, length, args.steps, args.rounds, peak, peers) for length in lengths]
            if args.memory:
                memory = peak_memory(size, stage, lengths, ["ours", *peers])
                for row in rows_:
                    row["peak_memory_mb"] = {side: by_length[str(row["length"])] for side, by_length in memory.items()}
                    row["memory_after_imports_mb"] = memory["ours"]["imports"]
            for row in rows_:
                results.append(row)
                print(f"trainer bench: {json.dumps(row)}", file=sys.stderr)
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
                    "lora": LORA if USE_LORA else None,
                    "python": platform.python_version(),
                    "torch": torch.__version__,
                    "libraries": library_versions(),
                    "torch_threads": torch.get_num_threads(),
                    "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                    "matmul_peak_gflops": measured_peak,
                    "matmul_peak_dtype": str(AMP or torch.float32).replace("torch.", ""),
                    "peak_gflops": peak,
                    "peak_from": "datasheet (--peak-tflops)" if args.peak_tflops else "measured matmul",
                },
                "trainer": results,
            }
        )
    )


# The settings a --memory child takes from its parent (the rest are the defaults).
CHILD_FLAGS = ("--device", "--precision", "--batch")


def peak_memory(size, stage, lengths, sides):
    """Each side's peak memory in MB at each length: {side: {length: MB}}. The model is written once
    here, and each side runs in a fresh process (python bench/trainer_bench.py --memory-of)."""
    flags = [a for i, a in enumerate(sys.argv[1:], 1) if a in CHILD_FLAGS or sys.argv[i - 1] in CHILD_FLAGS]
    flags += ["--lora"] if USE_LORA else []
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        CausalLM(config(size)).save_pretrained(os.path.join(tmp, "model"))
        for side in sides:
            args = ["--memory-of", f"{side}:{os.path.join(tmp, 'model')}", "--sizes", size, "--stages", stage, "--lengths", ",".join(map(str, lengths))]
            child = subprocess.run([sys.executable, os.path.abspath(__file__), *args, *flags], capture_output=True, text=True, check=False)
            if child.returncode != 0:
                raise SystemExit(f"trainer bench: the memory of {side} ({size} {stage}) failed:\n{child.stderr[-3000:]}")
            out[side] = json.loads(child.stdout.strip().splitlines()[-1])
    return out


def memory_of(side, model_dir, size, stage, lengths, steps=4):
    """In a process of its own: `side` trains `steps` steps at each length, shortest first; after each,
    the process's peak so far (resident set on the CPU, in MB; allocated on a GPU)."""
    peaks = {"imports": peak_rss_mb() if DEVICE.type == "cpu" else 0.0}  # torch and the trainer, before any work
    with tempfile.TemporaryDirectory() as tmp:
        for length in lengths:
            data = rows(config(size).vocab_size, BATCH * steps, length, stage)
            if DEVICE.type == "cuda":
                torch.cuda.reset_peak_memory_stats(DEVICE)
            if side == "ours":
                data_path = os.path.join(tmp, f"{length}.jsonl")
                with open(data_path, "w", encoding="utf-8") as f:
                    f.writelines(json.dumps(r) + "\n" for r in data)
                ours(model_dir, data_path, os.path.join(tmp, f"run{length}"), steps, stage, length)
            else:
                PEERS[side](model_dir, data, steps, stage, os.path.join(tmp, f"{side}{length}"))
            if DEVICE.type == "cuda":
                peaks[str(length)] = torch.cuda.max_memory_allocated(DEVICE) / 2**20
            else:
                peaks[str(length)] = peak_rss_mb()
    return peaks


def peak_rss_mb():
    """This process's peak resident set. Linux's VmHWM, not getrusage's ru_maxrss: that one carries
    the parent's peak over fork and exec (every side read as the bench's own 819 MB)."""
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def library_versions():
    versions = {}
    for name in ("transformers", "trl", "peft", "accelerate"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return versions


def measure(size, stage, length, steps, rounds, peak, peers):
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model = CausalLM(config(size))
        params = count_parameters(model)
        model.save_pretrained(os.path.join(tmp, "model"))
        del model
        data = rows(config(size).vocab_size, BATCH * steps, length, stage)
        data_path = os.path.join(tmp, f"{stage}.jsonl")
        with open(data_path, "w", encoding="utf-8") as f:
            for r in data:
                f.write(json.dumps(r) + "\n")
        # Rounds alternate the sides, so that a noisy moment on a shared machine hits all alike.
        times = {p: [] for p in peers}
        precompute = {p: 0.0 for p in peers}
        mine = []
        for r in range(rounds):
            for p in peers:
                t, pre = PEERS[p](os.path.join(tmp, "model"), data, steps, stage, os.path.join(tmp, f"{p}{r}"))
                times[p] += t
                precompute[p] += pre
            mine += ours(os.path.join(tmp, "model"), data_path, os.path.join(tmp, f"run{r}"), steps, stage, length)
    # Tokens through the policy per step (DPO: chosen and rejected, so twice the rows).
    tokens = BATCH * length * (2 if stage == "dpo" else 1)
    o = statistics.median(mine)
    # Forward + backward is 6 FLOPs per parameter and token with every weight trained, 4 with the
    # base frozen (LoRA: no weight gradients; the adapters' own FLOPs left out); DPO adds the
    # reference's forward, 2 more. Attention's share is left out (short sequences).
    flops_per_token = ((4 if USE_LORA else 6) + (2 if stage == "dpo" else 0)) * params
    gflops = flops_per_token * tokens / o / 1e9
    row = {
        "size": size,
        "stage": stage,
        "length": length,
        "parameters": params,
        "tokens_per_step": tokens,
        "steps_timed": len(mine),
        "ours_tokens_per_s": tokens / o,
        "ours_gflops": gflops,
        "utilisation": gflops / peak,
        "peers": {},
    }
    for p in peers:
        # A precomputed pass (TRL's reference log-probs) is work of the run: spread over its steps.
        per_step = statistics.median(times[p]) + precompute[p] / (rounds * steps)
        row["peers"][p] = {
            "tokens_per_s": tokens / per_step,
            "ratio_median": per_step / o,
            "ratio_fastest": (min(times[p]) + precompute[p] / (rounds * steps)) / min(mine),
            **({"precompute_s_per_step": precompute[p] / (rounds * steps)} if precompute[p] else {}),
        }
    # The first peer's figures at the top level, as bench/run.mjs and results.json have read them.
    first = row["peers"][peers[0]]
    row.update(peer=peers[0], peer_tokens_per_s=first["tokens_per_s"], ratio_median=first["ratio_median"], ratio_fastest=first["ratio_fastest"])
    return row


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
