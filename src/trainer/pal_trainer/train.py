"""PAL's training stages, one job at a time: `python -m pal_trainer.train <job.json>`.

The engine writes a job (a JSON object) and reads this process's stdout: one JSON object a line
("start", "warning", "step", "checkpoint", "done", "cancelled", "error"). A job is one of

- "lm":       pre-training of a base model on a token stream (a uint16 file), loss on every token;
- "sft":      stage 1, supervised learning on the select/generate mixture, loss on targets only;
- "generate": rejected responses for stage 2, sampled from history-only prompts;
- "dpo":      stage 2, DPO against a frozen reference that is the stage-1 model itself.

Runs resume exactly: checkpoints hold the weights, the optimizer and scheduler, every RNG state
and the data position, and the data order is a pure function of (seed, epoch). SIGTERM finishes
the step, checkpoints and exits 0. Several processes (torchrun's RANK/WORLD_SIZE/MASTER_ADDR)
train with DistributedDataParallel and end with the weights one process would reach with the
same global batch: every loss is normalised by the global count of target tokens (or pairs).
"""

import contextlib
import copy
import json
import math
import os
import random
import shutil
import signal
import sys
import time

import torch
import torch.nn.functional as F

from . import data as D
from .generation import generate
from .lora import apply_lora, load_lora_state_dict, lora_state_dict, merge_lora, save_adapter, set_lora_enabled
from .model import CausalLM
from .safetensors import load_file, save_file

DEFAULTS = {
    "epochs": 1,
    "lr": 2e-5,
    "warmup_steps": 100,
    "schedule": "constant",
    "grad_clip": 10.0,
    "batch_size": 8,
    "grad_accum": 1,
    "max_length": 512,
    "weight_decay": 0.0,
    "group_by_length": True,
    "lora": None,
    "beta": 0.1,
    "loss": "sigmoid",
    "label_smoothing": 0.0,
    "seed": 42,
    "device": "auto",
    "precision": "auto",
    "checkpoint_every": 50,
    "keep_checkpoints": 2,
    "max_steps": None,
    "pad_token_id": 0,
    "eos_token_id": None,
    "decoding": {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "max_new_tokens": 40},
}


class Events:
    """JSON lines to stdout (for the engine) and, for metrics, to <out>/metrics.jsonl; warnings
    also to <out>/warnings.jsonl, so that the run's dashboard still shows them after the run."""

    def __init__(self, out, enabled):
        self.enabled = enabled
        self.metrics_path = os.path.join(out, "metrics.jsonl")
        self.warnings_path = os.path.join(out, "warnings.jsonl")

    def emit(self, event, **fields):
        if self.enabled:
            sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
            sys.stdout.flush()

    def warning(self, kind, message):
        if self.enabled:
            with open(self.warnings_path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"kind": kind, "message": message}) + "\n")
            self.emit("warning", kind=kind, message=message)

    def metric(self, **fields):
        if self.enabled:
            with open(self.metrics_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(fields) + "\n")
            self.emit("step", **fields)

    def truncate_after(self, step):
        """A resumed run repeats the steps after its checkpoint: drop their old lines."""
        if not self.enabled or not os.path.exists(self.metrics_path):
            return
        with open(self.metrics_path, encoding="utf-8") as f:
            kept = [line for line in f if line.strip() and json.loads(line).get("step", 0) <= step]
        with open(self.metrics_path, "w", encoding="utf-8") as f:
            f.writelines(kept)


class Distributed:
    """torchrun's environment, or a single process."""

    def __init__(self, device_kind):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", str(self.rank)))
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if device_kind == "cuda" else "gloo")

    def all_sum(self, values):
        t = torch.tensor(values, dtype=torch.float64)
        if self.world > 1:
            torch.distributed.all_reduce(t)
        return t.tolist()

    def close(self):
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def pick_device(job, dist):
    want = job["device"]
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {want!r} was asked for, but torch sees no usable CUDA GPU")
        index = int(want.split(":")[1]) if ":" in want else dist.local_rank
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device(want)


def autocast_dtype(job, device):
    """bf16 (or fp16) autocast on GPUs. On the CPU only when asked for ("bf16"): it pays on CPUs
    with native bf16 units (AVX512-BF16, AMX), where it is emulated elsewhere, and "auto" keeps
    fp32 so that CPU runs stay exact (resume and multi-process tests compare weights to 1e-5)."""
    if job["precision"] == "fp32":
        return None
    if device.type != "cuda":
        return torch.bfloat16 if job["precision"] == "bf16" else None
    if job["precision"] == "fp16":
        return torch.float16
    if job["precision"] == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


# bf16 on a CPU pays only with native bf16 units (AMX: a step 1.8x faster than fp32); elsewhere
# torch emulates it, and a bf16 matrix product took 20-80x as long as a float32 one (a 2-core AMD
# EPYC without AVX512-BF16: a stage-1 step of the 135M base in 90 s instead of 3.5 s).
EMULATED_BF16_SLOWDOWN = 2.0


def cpu_bf16_slowdown(size=256, tries=3):
    """How many times as long a bf16 matrix product takes as a float32 one on this CPU, measured
    (about 0.1 s): below 1 with AMX or AVX512-BF16 units, tens where bf16 is emulated. Measured
    rather than read from CPU flags, which differ by platform and torch version."""

    def best(dtype):
        a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
        a @ b  # the first product pays for warming up, not for the arithmetic
        times = []
        for _ in range(tries):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
        return min(times)

    return best(torch.bfloat16) / max(best(torch.float32), 1e-9)


def emulated_bf16_warning(device, amp, slowdown=None):
    """The warning for a job that asked for bf16 on a CPU that emulates it, or None. A run asks
    for bf16 by name (precision "auto" keeps float32 on the CPU), so it is told, not overruled."""
    if device.type != "cpu" or amp != torch.bfloat16:
        return None
    times = (slowdown or cpu_bf16_slowdown)()
    if times <= EMULATED_BF16_SLOWDOWN:
        return None
    return (
        f"precision bf16 is emulated on this CPU (no AMX or AVX512-BF16 units): a bf16 matrix product "
        f"took {times:.0f}x as long as a float32 one, so each step will take many times longer than "
        f"with precision fp32 (or auto, which trains in float32 on the CPU)."
    )


def report_emulated_bf16(device, amp, events):
    """The warning above as the job's "warning" event, measured only in the process that reports
    (rank 0 of several)."""
    if not events.enabled:
        return
    warning = emulated_bf16_warning(device, amp)
    if warning:
        events.warning("emulated_bf16", warning)


def lr_lambda(warmup, total, schedule):
    def f(step):
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "cosine":
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return 1.0

    return f


def adamw(params, **settings):
    """AdamW, fused where this torch has it for these parameters' device (CPU since torch 2.4,
    CUDA since 2.0): one kernel over all parameters instead of a dozen passes over each list. Its
    cost grows with the parameters, not the tokens, so it is a fixed cost per step that shows at
    PAL's short rows: at 135M parameters on 2 CPU cores 160 ms a step instead of 530 (the default
    for-each implementation); transformers' Trainer uses the fused one too. Older torch (1.13)
    refuses the argument and gets the for-each one."""
    try:
        return torch.optim.AdamW(params, fused=True, **settings)
    except (TypeError, RuntimeError, ValueError):
        return torch.optim.AdamW(params, **settings)


def first_scored(labels):
    """The first position any row has a label at (at least 1). The logits before position
    first - 1 predict nothing that is scored, so the vocabulary projection skips them: PAL's
    prompts (persona, dialogue) are most of each row, and the projection and its log-softmax are
    the widest tensors of a step."""
    scored = (labels[:, 1:] != D.IGNORE).any(0).nonzero()
    return int(scored[0]) + 1 if len(scored) else 1


def shifted_labels(labels, first=1):
    """The label each kept logit predicts: logits at position t (from first - 1 on) predict the
    token at t + 1. The labels shift left instead of the logits: slicing the (batch, length, vocab)
    logits would copy them forward and zero-fill a copy backward."""
    return F.pad(labels[:, first:], (0, 1), value=D.IGNORE)


def token_logps(logits, labels, first=1):
    """Per-sequence sum and count of the log-probabilities of the label tokens; `logits` are those
    of positions first - 1 onwards (the model's logits_to_keep).

    The fused cross-entropy replaces log-softmax + gather, which keeps a second full-vocabulary
    tensor alive."""
    batch, length, vocab = logits.shape
    flat = logits.reshape(-1, vocab)
    if flat.dtype in (torch.float16, torch.bfloat16):
        flat = flat.float()  # log-softmax over a large vocabulary needs more than half precision
    shifted = shifted_labels(labels, first)
    nll = F.cross_entropy(flat, shifted.reshape(-1), ignore_index=D.IGNORE, reduction="none").view(batch, length)
    return -nll.sum(-1), (shifted != D.IGNORE).sum(-1)


def dpo_losses(pi_c, pi_r, ref_c, ref_r, beta, kind, label_smoothing):
    """TRL's DPO losses. sigmoid: -log σ(β·Δ) (with label smoothing: the conservative DPO mix);
    ipo: (Δ - 1/(2β))² on length-averaged log-probabilities (the caller averages)."""
    delta = (pi_c - pi_r) - (ref_c - ref_r)
    if kind == "ipo":
        return (delta - 1 / (2 * beta)) ** 2
    return -F.logsigmoid(beta * delta) * (1 - label_smoothing) - F.logsigmoid(-beta * delta) * label_smoothing


# --- checkpoints ----------------------------------------------------------------------------


def checkpoint_dir(out):
    return os.path.join(out, "checkpoints")


def latest_checkpoint(out):
    pointer = os.path.join(checkpoint_dir(out), "latest")
    if not os.path.exists(pointer):
        return None
    with open(pointer, encoding="utf-8") as f:
        name = f.read().strip()
    path = os.path.join(checkpoint_dir(out), name)
    return path if os.path.isdir(path) else None


def trainable_state(model, lora):
    return lora_state_dict(model) if lora else {k: v for k, v in model.state_dict().items()}


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; the message says what is kept and what to do."""


def save_checkpoint(out, step, model, lora, optimizer, scheduler, position, keep):
    """Written to a temporary folder and renamed, then the 'latest' pointer is replaced: a kill
    at any moment leaves the previous checkpoint whole and pointed to."""
    root = checkpoint_dir(out)
    name = f"step-{step:07d}"
    tmp = os.path.join(root, f".{name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        os.makedirs(tmp)
        save_file({k: v.detach().cpu().contiguous() for k, v in trainable_state(model, lora).items()}, os.path.join(tmp, "weights.safetensors"))
        torch.save(
            {
                "step": step,
                "position": position,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": {
                    "torch": torch.get_rng_state(),
                    "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                },
            },
            os.path.join(tmp, "trainer_state.pt"),
        )
    except OSError as exc:
        # A full disk or a folder that turned read-only: give back what the half checkpoint took
        # and say what is kept; the 'latest' pointer still names the last whole checkpoint.
        shutil.rmtree(tmp, ignore_errors=True)
        kept = latest_checkpoint(out)
        raise CheckpointWriteError(
            f"could not write the checkpoint of step {step} in {root} ({exc.strerror or exc}). "
            f"{'The last good checkpoint, ' + os.path.basename(kept) + ', is kept' if kept else 'No earlier checkpoint exists'}: "
            "free some space (or make the folder writable) and run the same job again to resume."
        ) from exc
    final = os.path.join(root, name)
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    pointer_tmp = os.path.join(root, ".latest.tmp")
    with open(pointer_tmp, "w", encoding="utf-8") as f:
        f.write(name)
    os.replace(pointer_tmp, os.path.join(root, "latest"))
    old = sorted(d for d in os.listdir(root) if d.startswith("step-"))
    for d in old[:-keep]:
        shutil.rmtree(os.path.join(root, d), ignore_errors=True)
    return final


def load_checkpoint(path, model, lora, optimizer, scheduler):
    weights = load_file(os.path.join(path, "weights.safetensors"))
    if lora:
        load_lora_state_dict(model, weights)
    else:
        model.load_state_dict(weights)
    state = torch.load(os.path.join(path, "trainer_state.pt"), map_location="cpu")
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    random.setstate(state["rng"]["python"])
    if state["rng"]["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return state["step"], tuple(state["position"])


# --- the loop ---------------------------------------------------------------------------------


class Stop:
    """SIGTERM asks for a clean stop after the current step. So does the death of the process that
    started us (the engine): an orphaned trainer would race the resumed run for the same folder."""

    def __init__(self):
        self._signalled = False
        self._parent = os.getppid()
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, *_):
        self._signalled = True

    @property
    def requested(self):
        return self._signalled or os.getppid() != self._parent


def apply_job_lora(model, lora):
    apply_lora(
        model,
        r=lora.get("r", 16),
        alpha=lora.get("alpha", 32),
        dropout=lora.get("dropout", 0.05),
        targets=lora.get("targets", ["q_proj", "k_proj", "v_proj", "o_proj"]),
    )


def train(job, dist, events):
    stage = job["stage"]
    device = pick_device(job, dist)
    amp = autocast_dtype(job, device)
    report_emulated_bf16(device, amp, events)
    torch.manual_seed(job["seed"])
    random.seed(job["seed"])

    lora = job["lora"]
    # With LoRA the base weights are frozen, so under bf16 autocast they are kept in bf16: autocast
    # would otherwise cast every weight to bf16 again in every forward and backward pass. The
    # adapters stay float32 (LoRALinear), and the final merge is done in float32 (below).
    base_dtype = torch.bfloat16 if (lora and amp == torch.bfloat16) else torch.float32
    model = CausalLM.from_pretrained(job["model"], device=device, dtype=base_dtype)
    if lora:
        apply_job_lora(model, lora)
    reference = None
    if stage == "dpo":
        # The reference is the stage-1 model: the very weights the policy starts from. With LoRA it
        # is the same module with the adapters switched off; without, a frozen copy.
        reference = None if lora else copy.deepcopy(model).eval().requires_grad_(False)
    # DPO trains with dropout off (TRL's disable_dropout): its loss compares the policy's
    # log-probabilities with the reference's, and dropout in one pass and not (or differently) in
    # the other is noise in exactly that difference; the first step would not even read log 2.
    # Nothing else here looks at training mode (gradient checkpointing is never turned on).
    model.train(stage != "dpo")

    global_batch = job["batch_size"] * job["grad_accum"] * dist.world
    if stage == "lm":
        if not job["max_steps"]:
            raise ValueError("an lm job needs max_steps: a token stream has no natural epoch")
        source = D.TokenStreamSource(job["data"], job["seed"], job["max_length"], job["max_steps"])
    else:
        source = D.ExampleSource(job["data"], stage, job["seed"], job["group_by_length"], job["max_length"])
    steps_per_epoch = len(source.batches(0, global_batch))
    if steps_per_epoch == 0:
        raise ValueError(f"{job['data']}: {len(source)} examples are fewer than one global batch of {global_batch}")
    total = job["epochs"] * steps_per_epoch
    if job["max_steps"]:
        total = min(total, job["max_steps"])

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = adamw(params, lr=job["lr"], weight_decay=job["weight_decay"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(job["warmup_steps"], total, job["schedule"]))
    scaler = torch.cuda.amp.GradScaler() if amp == torch.float16 else None

    step, position = 0, (0, 0)
    resumed = latest_checkpoint(job["out"])
    if resumed:
        step, position = load_checkpoint(resumed, model, lora, optimizer, scheduler)
        events.truncate_after(step)
    net = torch.nn.parallel.DistributedDataParallel(model) if dist.world > 1 else model
    events.emit(
        "start",
        stage=stage,
        total_steps=total,
        steps_per_epoch=steps_per_epoch,
        resumed_from=resumed and step,
        examples=len(source),
        world_size=dist.world,
        device=str(device),
        parameters=sum(p.numel() for p in model.parameters()),
        trainable=sum(p.numel() for p in params),
    )

    stop = Stop()
    pad = job["pad_token_id"]
    while step < total:
        epoch, batch_index = position
        batches = source.batches(epoch, global_batch)
        if batch_index >= len(batches):
            position = (epoch + 1, 0)
            continue
        t0 = time.perf_counter()
        micro = D.shard(batches[batch_index], dist.rank, dist.world, job["grad_accum"])
        prepared = [tuple(t.to(device) for t in source.make(mb, pad, job["max_length"])) for mb in micro]
        # The global normaliser: target tokens (SFT, LM) or pairs (DPO) in this step, over every process.
        local_count = sum(int((lab[:, 1:] != D.IGNORE).sum()) for _, _, lab in prepared) if stage != "dpo" else sum(len(mb) for mb in micro)
        (global_count,) = dist.all_sum([local_count])
        sums = {}
        tokens = 0
        for i, (ids, mask, labels) in enumerate(prepared):
            last = i == len(prepared) - 1
            # A batch without padding needs no mask: the model then builds one (1, 1, T, T) causal
            # mask and shared positions instead of per-row ones. Same numbers, less work.
            attn = None if bool(mask.all()) else mask
            sync = contextlib.nullcontext() if (last or dist.world == 1) else net.no_sync()
            first = first_scored(labels)
            with sync, torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext():
                # DPO: the reference scores the pairs first, so that its logits are gone before the
                # policy's activations are held for the backward pass (the peak is one, not both).
                ref_sum = reference_logps(model, reference, lora, ids, attn, labels, first) if stage == "dpo" else None
                logits, _ = net(ids, attention_mask=attn, logits_to_keep=ids.shape[1] - first + 1)
                if stage != "dpo":
                    # Fused cross-entropy: the same sum as -token_logps, without a second pass.
                    flat = logits.reshape(-1, logits.shape[-1])
                    loss_sum = F.cross_entropy(flat.float() if amp else flat, shifted_labels(labels, first).reshape(-1), ignore_index=D.IGNORE, reduction="sum")
                    add(sums, loss=loss_sum.item())
                else:
                    loss_sum = dpo_step_losses(job, logits, labels, first, ref_sum, sums)
                # DDP averages gradients over processes; scaling by world size makes it a sum.
                loss = loss_sum * dist.world / global_count
                (scaler.scale(loss) if scaler else loss).backward()
            tokens += int(mask.sum())
        if scaler:
            scaler.unscale_(optimizer)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, job["grad_clip"]))
        lr = scheduler.get_last_lr()[0]
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        position = (epoch, batch_index + 1)

        keys = sorted(sums)
        totals = dict(zip(keys + ["tokens"], dist.all_sum([sums[k] for k in keys] + [tokens]), strict=True))
        elapsed = time.perf_counter() - t0
        record = {
            "step": step,
            "epoch": epoch + (batch_index + 1) / len(batches),
            "learning_rate": lr,
            "grad_norm": grad_norm,
            "tokens_per_s": totals["tokens"] / elapsed,
            "step_time": elapsed,
        }
        if stage != "dpo":
            record["loss"] = totals["loss"] / global_count
        else:
            n = global_count
            record.update(
                {
                    "loss": totals["loss"] / n,
                    "rewards/chosen": totals["rc"] / n,
                    "rewards/rejected": totals["rr"] / n,
                    "rewards/margins": (totals["rc"] - totals["rr"]) / n,
                    "rewards/accuracies": totals["acc"] / n,
                    "logps/chosen": totals["logp_c"] / n,
                    "logps/rejected": totals["logp_r"] / n,
                }
            )
        events.metric(**record)

        (stop_now,) = dist.all_sum([1.0 if stop.requested else 0.0])
        if dist.rank == 0 and (step % job["checkpoint_every"] == 0 or stop_now or step == total):
            path = save_checkpoint(job["out"], step, model, lora, optimizer, scheduler, position, job["keep_checkpoints"])
            events.emit("checkpoint", step=step, path=path)
        if dist.world > 1:
            torch.distributed.barrier()
        if stop_now:
            events.emit("cancelled", step=step)
            return "cancelled"

    if dist.rank == 0:
        final = os.path.join(job["out"], "final")
        if lora:
            if base_dtype != torch.float32:
                # Merging into bf16 weights would round the small updates away: merge into float32.
                adapters = {k: v.float() for k, v in lora_state_dict(model).items()}
                model = CausalLM.from_pretrained(job["model"], device="cpu", dtype=torch.float32)
                apply_job_lora(model, lora)
                load_lora_state_dict(model, adapters)
        tmp = final + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        if lora:
            # The adapter alone too (final/adapter, PEFT's files): a few MB to ship beside a base.
            save_adapter(model, os.path.join(tmp, "adapter"))
            merge_lora(model)
        model.save_pretrained(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        events.emit("done", step=step, model=final)
    return "done"


def add(sums, **values):
    for k, v in values.items():
        sums[k] = sums.get(k, 0.0) + v


def reference_logps(model, reference, lora, ids, mask, labels, first):
    """The reference's summed log-probabilities of each row's labels (no gradient), over the same
    positions the policy scores (first_scored). With LoRA the reference is the model with its
    adapters switched off."""
    keep = ids.shape[1] - first + 1
    with torch.no_grad():
        if lora:
            set_lora_enabled(model, False)
            ref_logits, _ = model(ids, attention_mask=mask, logits_to_keep=keep)
            set_lora_enabled(model, True)
        else:
            ref_logits, _ = reference(ids, attention_mask=mask, logits_to_keep=keep)
        return token_logps(ref_logits, labels, first)[0]


def dpo_step_losses(job, logits, labels, first, ref_sum, sums):
    """Sum over this micro-batch's pairs of the DPO loss; accumulates TRL's metrics into `sums`.
    `logits` are the policy's from position first - 1 on (first_scored); `ref_sum` the
    reference's (reference_logps)."""
    logp_sum, counts = token_logps(logits, labels, first)
    if job["loss"] == "ipo":
        logp_sum, ref_sum = logp_sum / counts.clamp(min=1), ref_sum / counts.clamp(min=1)
    half = labels.shape[0] // 2
    pi_c, pi_r, ref_c, ref_r = logp_sum[:half], logp_sum[half:], ref_sum[:half], ref_sum[half:]
    losses = dpo_losses(pi_c, pi_r, ref_c, ref_r, job["beta"], job["loss"], job["label_smoothing"])
    rewards_c = job["beta"] * (pi_c - ref_c).detach()
    rewards_r = job["beta"] * (pi_r - ref_r).detach()
    add(
        sums,
        loss=losses.sum().item(),
        rc=rewards_c.sum().item(),
        rr=rewards_r.sum().item(),
        acc=(rewards_c > rewards_r).float().sum().item(),
        logp_c=pi_c.detach().sum().item(),
        logp_r=pi_r.detach().sum().item(),
    )
    return losses.sum()


def run_generate(job, dist, events):
    """Samples a response for each prompt; resumable: prompts already answered are skipped."""
    device = pick_device(job, dist)
    amp = autocast_dtype(job, device)
    report_emulated_bf16(device, amp, events)
    # float32 like training (a float16 checkpoint, as an imported GGUF, would otherwise stay half
    # precision on the CPU); autocast, when asked for, runs the matmuls in bf16.
    model = CausalLM.from_pretrained(job["model"], device=device, dtype=torch.float32)
    rows = D.read_jsonl(job["data"], ["prompt"])
    out_path = os.path.join(job["out"], "generated.jsonl")
    done = set()
    if os.path.exists(out_path):
        with open(out_path, encoding="utf-8") as f:
            done = {json.dumps(json.loads(line)["id"]) for line in f if line.strip()}
    todo = [r for r in rows if json.dumps(r.get("id")) not in done]
    dec = job["decoding"]
    g = torch.Generator(device=device)
    g.manual_seed(job["seed"] + len(done))
    events.emit("start", stage="generate", total=len(rows), done=len(done))
    stop = Stop()
    with open(out_path, "a", encoding="utf-8") as f:
        for i in range(0, len(todo), job["batch_size"]):
            batch = todo[i : i + job["batch_size"]]
            t0 = time.perf_counter()
            ended = []
            with torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext():
                outs = generate(
                    model,
                    [r["prompt"][-(job["max_length"] - dec["max_new_tokens"]) :] for r in batch],
                    dec["max_new_tokens"],
                    temperature=dec["temperature"],
                    top_k=dec["top_k"],
                    top_p=dec["top_p"],
                    eos_token_id=job["eos_token_id"],
                    pad_token_id=job["pad_token_id"],
                    generator=g,
                    ended=ended,
                )
            # "ended": the sample produced eos. A cut one must not be given an eos it never chose
            # (as a rejection, that would teach the policy that ending a reply is what is rejected).
            for r, tokens, end in zip(batch, outs, ended, strict=True):
                f.write(json.dumps({"id": r.get("id"), "tokens": tokens, "ended": end}) + "\n")
            f.flush()
            new_tokens = sum(len(t) for t in outs)
            events.emit("step", done=len(done) + i + len(batch), total=len(rows), tokens_per_s=new_tokens / (time.perf_counter() - t0))
            if stop.requested:
                events.emit("cancelled", done=len(done) + i + len(batch))
                return "cancelled"
    events.emit("done", output=out_path)
    return "done"


# The keys of each stage's job, the list the engine checks too (src/engine/trainer.ts).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "job_contract.json"), encoding="utf-8") as _f:
    JOB_CONTRACT = json.load(_f)["stages"]


def load_job(path):
    """The job, checked against job_contract.json: a key this trainer does not know, or one it
    needs and was not given, is an error (an engine and a trainer of different versions would
    otherwise disagree in silence); then the defaults of the optional keys."""
    with open(path, encoding="utf-8") as f:
        job = json.load(f)
    stage = job.get("stage")
    if stage not in JOB_CONTRACT:
        raise ValueError(f"{path}: unknown stage {stage!r} ({', '.join(sorted(JOB_CONTRACT))})")
    contract = JOB_CONTRACT[stage]
    unknown = sorted(set(job) - set(contract["required"]) - set(contract["optional"]))
    missing = [k for k in contract["required"] if k not in job]
    if unknown or missing:
        raise ValueError(
            f"{path}: this trainer does not take a {stage} job with "
            + "; ".join(part for part in (unknown and f"unknown keys {unknown}", missing and f"missing keys {missing}") if part)
            + " (the engine and the trainer come from different versions of PAL Studio?)"
        )
    merged = {**DEFAULTS, **{k: v for k, v in job.items() if v is not None or k == "lora"}}
    merged["decoding"] = {**DEFAULTS["decoding"], **(job.get("decoding") or {})}
    return merged


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m pal_trainer.train <job.json>", file=sys.stderr)
        return 2
    job = load_job(argv[0])
    os.makedirs(job["out"], exist_ok=True)
    dist = Distributed("cuda" if job["device"].startswith("cuda") or (job["device"] == "auto" and torch.cuda.is_available()) else "cpu")
    events = Events(job["out"], dist.rank == 0)
    if dist.rank == 0:
        with open(os.path.join(job["out"], "job.json"), "w", encoding="utf-8") as f:
            json.dump(job, f, indent=2)
    try:
        result = run_generate(job, dist, events) if job["stage"] == "generate" else train(job, dist, events)
    except Exception as exc:
        events.emit("error", message=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        dist.close()
    return 0 if result in ("done", "cancelled") else 1


if __name__ == "__main__":
    sys.exit(main())
