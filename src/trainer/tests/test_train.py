"""The training stages: losses against hand-computed values, masking, and runs as the engine starts
them (a child process per job): exact resume after SIGKILL, clean SIGTERM, DDP equivalence."""

import contextlib
import errno
import io
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

import torch
import torch.multiprocessing as mp
from pal_trainer import data as D
from pal_trainer.lora import load_adapter, merge_lora
from pal_trainer.model import CausalLM, ModelConfig
from pal_trainer.safetensors import load_file
from pal_trainer.train import DEFAULTS, JOB_CONTRACT, dpo_losses, first_scored, load_job, token_logps
from pal_trainer.train import main as train_main

TRAINER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": TRAINER_DIR, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def tiny_model(folder, seed=0):
    torch.manual_seed(seed)
    config = ModelConfig.from_hf(
        {
            "model_type": "llama",
            "vocab_size": 48,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 128,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "tie_word_embeddings": True,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 0,
        }
    )
    CausalLM(config).save_pretrained(folder)
    return folder


def write_rows(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return path


def sft_rows(n=24, seed=1):
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        prompt = torch.randint(3, 48, (int(torch.randint(3, 9, (1,), generator=g)),), generator=g).tolist()
        target = torch.randint(3, 48, (int(torch.randint(2, 6, (1,), generator=g)),), generator=g).tolist() + [2]
        rows.append({"prompt": prompt, "target": target})
    return rows


def dpo_rows(n=16, seed=2):
    return [{"prompt": r["prompt"], "chosen": r["target"], "rejected": list(reversed(r["target"][:-1])) + [2]} for r in sft_rows(n, seed)]


def job(tmp, name, **overrides):
    """A job as the engine sends it: every key job_contract.json names for its stage, no other."""
    j = {
        "stage": "sft",
        "model": os.path.join(tmp, "base"),
        "data": os.path.join(tmp, "sft.jsonl"),
        "out": os.path.join(tmp, name),
        "epochs": 2,
        "lr": 1e-2,
        "warmup_steps": 2,
        "batch_size": 4,
        "grad_accum": 1,
        "max_length": 32,
        "seed": 5,
        "checkpoint_every": 2,
        "device": "cpu",
        "pad_token_id": 0,
        "eos_token_id": 2,
    }
    j.update(overrides)
    contract = JOB_CONTRACT[j["stage"]]
    j = {**{k: v for k, v in DEFAULTS.items() if k in contract["required"]}, **j}
    j = {k: v for k, v in j.items() if k in contract["required"] or k in contract["optional"]}
    path = os.path.join(tmp, f"{name}.job.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(j, f)
    return path, j["out"]


LONG = {"epochs": 20, "checkpoint_every": 5, "lr": 1e-3}


def run(job_path, **kw):
    return subprocess.run([sys.executable, "-m", "pal_trainer.train", job_path], env=ENV, capture_output=True, text=True, timeout=300, **kw)


def events(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def kill_at_checkpoint(job_path, min_step):
    """Starts the job and SIGKILLs it on reading its first checkpoint at or after `min_step`."""
    return kill_at(job_path, "checkpoint", min_step)


def kill_at(job_path, event, min_step):
    """Starts the job and SIGKILLs it on reading its first `event` at or after `min_step`."""
    with subprocess.Popen([sys.executable, "-m", "pal_trainer.train", job_path], env=ENV, stdout=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout:
            e = json.loads(line)
            if e["event"] == event and e["step"] >= min_step:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=60)
    return proc.returncode


def assert_same_weights(out_a, out_b, atol):
    a, b = final_weights(out_a), final_weights(out_b)
    assert sorted(a) == sorted(b), (sorted(a), sorted(b))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=atol, msg=k)


def final_weights(out):
    return load_file(os.path.join(out, "final", "model.safetensors"))


class LossTest(unittest.TestCase):
    def test_dpo_sigmoid_ipo_and_label_smoothing_against_hand_values(self):
        t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
        # Δ = (π_c - π_r) - (ref_c - ref_r) = (-1 + 2) - 0 = 1; β = 0.1
        sig = dpo_losses(t(-1.0), t(-2.0), t(-1.5), t(-1.5), 0.1, "sigmoid", 0.0).item()
        self.assertAlmostEqual(sig, math.log(1 + math.exp(-0.1)), places=12)  # 0.644397...
        self.assertAlmostEqual(sig, 0.6443966600735709, places=12)
        smooth = dpo_losses(t(-1.0), t(-2.0), t(-1.5), t(-1.5), 0.1, "sigmoid", 0.1).item()
        self.assertAlmostEqual(smooth, 0.9 * math.log(1 + math.exp(-0.1)) + 0.1 * math.log(1 + math.exp(0.1)), places=12)
        ipo = dpo_losses(t(-1.0), t(-2.0), t(-1.5), t(-1.5), 0.1, "ipo", 0.0).item()
        self.assertAlmostEqual(ipo, (1 - 1 / 0.2) ** 2, places=12)  # 16

    def test_masking_loss_counts_target_tokens_only(self):
        rows = [{"prompt": [5, 6, 7], "target": [8, 2]}, {"prompt": [9], "target": [10, 11, 2]}]
        ids, mask, labels = D.sft_batch(rows, pad_id=0, max_length=16)
        self.assertEqual(ids.tolist(), [[5, 6, 7, 8, 2], [9, 10, 11, 2, 0]])
        self.assertEqual(mask.tolist(), [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
        self.assertEqual(labels.tolist(), [[-100, -100, -100, 8, 2], [-100, 10, 11, 2, -100]])
        logits = torch.randn(2, 5, 12, dtype=torch.float64)
        total, count = token_logps(logits, labels)
        logp = torch.log_softmax(logits, -1)
        by_hand0 = logp[0, 2, 8] + logp[0, 3, 2]
        by_hand1 = logp[1, 0, 10] + logp[1, 1, 11] + logp[1, 2, 2]
        self.assertAlmostEqual(total[0].item(), by_hand0.item(), places=12)
        self.assertAlmostEqual(total[1].item(), by_hand1.item(), places=12)
        self.assertEqual(count.tolist(), [2, 3])

    def test_logits_only_where_a_label_is_scored_give_the_same_loss_and_gradients(self):
        # Row 0's target starts at position 3, row 1's at 5: logits from position 2 on are kept.
        rows = [{"prompt": [5, 6, 7], "target": [8, 9, 2]}, {"prompt": [9, 3, 4, 5, 6], "target": [10, 2]}]
        ids, mask, labels = D.sft_batch(rows, pad_id=0, max_length=16)
        self.assertEqual(first_scored(labels), 3)
        self.assertEqual(first_scored(torch.full((2, 4), D.IGNORE)), 1, "nothing scored: every position kept")
        with tempfile.TemporaryDirectory() as tmp:
            model = CausalLM.from_pretrained(tiny_model(os.path.join(tmp, "m")), dtype=torch.float64)
        results = []
        for keep in (0, ids.shape[1] - 3 + 1):
            model.zero_grad(set_to_none=True)
            logits, _ = model(ids, attention_mask=mask, logits_to_keep=keep)
            total, count = token_logps(logits, labels, 3 if keep else 1)
            total.sum().backward()
            results.append((total.detach(), count, [p.grad.clone() for p in model.parameters()]))
        (full, full_count, full_grads), (kept, kept_count, kept_grads) = results
        self.assertEqual(logits.shape[1], ids.shape[1] - 2)
        torch.testing.assert_close(kept, full, atol=1e-12, rtol=0)
        self.assertEqual(kept_count.tolist(), full_count.tolist())
        self.assertEqual(kept_count.tolist(), [3, 2])
        for a, b in zip(kept_grads, full_grads, strict=True):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0)

    def test_long_prompts_lose_their_start_never_the_target(self):
        self.assertEqual(D.fit(list(range(10)), [50, 51, 2], 6), [7, 8, 9])
        with self.assertRaises(ValueError):
            D.fit([1], list(range(6)), 6)

    def test_epoch_order_is_a_function_of_seed_and_epoch(self):
        self.assertEqual(D.epoch_order(20, 3, 1), D.epoch_order(20, 3, 1))
        self.assertNotEqual(D.epoch_order(20, 3, 1), D.epoch_order(20, 3, 2))
        parts = D.shard(list(range(8)), 1, 2, 2)
        self.assertEqual(parts, [[2, 3], [6, 7]])

    def test_batches_grouped_by_length_pad_little_and_stay_a_function_of_seed_and_epoch(self):
        rng = random.Random(5)
        lengths = [rng.randint(60, 512) for _ in range(1000)]
        padding = lambda batches: sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in batches)  # noqa: E731
        plain = D.global_batches(len(lengths), 8, 3, 1)
        grouped = D.global_batches(len(lengths), 8, 3, 1, lengths)
        self.assertEqual(grouped, D.global_batches(len(lengths), 8, 3, 1, lengths))
        self.assertNotEqual(grouped, D.global_batches(len(lengths), 8, 3, 2, lengths))
        # Every example at most once, as many batches as without grouping.
        flat = [i for b in grouped for i in b]
        self.assertEqual(len(flat), len(set(flat)))
        self.assertEqual((len(grouped), {len(b) for b in grouped}), (len(plain), {8}))
        self.assertLess(padding(grouped), padding(plain) / 10)
        # The long batches are not all at one end of the epoch.
        longest = [max(lengths[i] for i in b) for b in grouped]
        self.assertGreater(max(longest[: len(longest) // 4]), 400)
        self.assertLess(min(longest[: len(longest) // 4]), 200)


class RunTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pal-train-")
        tiny_model(os.path.join(cls.tmp, "base"))
        write_rows(os.path.join(cls.tmp, "sft.jsonl"), sft_rows())
        write_rows(os.path.join(cls.tmp, "dpo.jsonl"), dpo_rows())
        path, cls.reference_out = job(cls.tmp, "uninterrupted")
        result = run(path)
        assert result.returncode == 0, result.stderr
        cls.reference_events = events(result.stdout)
        # A longer run (120 steps) to interrupt: long enough that a signal sent on reading an early
        # step lands mid-stage, whatever the machine's speed.
        long_path, cls.long_out = job(cls.tmp, "long-uninterrupted", **LONG)
        assert run(long_path).returncode == 0

    def test_a_run_logs_every_step_and_exports_the_model(self):
        steps = [e for e in self.reference_events if e["event"] == "step"]
        self.assertEqual(len(steps), 12)  # 24 examples / 4 a step * 2 epochs
        self.assertEqual(self.reference_events[-1]["event"], "done")
        self.assertLess(steps[-1]["loss"], steps[0]["loss"])
        self.assertTrue(os.path.exists(os.path.join(self.reference_out, "final", "config.json")))
        with open(os.path.join(self.reference_out, "metrics.jsonl"), encoding="utf-8") as f:
            self.assertEqual([json.loads(line)["step"] for line in f], list(range(1, 13)))

    def test_sigkill_mid_stage_then_resume_ends_with_the_same_weights(self):
        path, out = job(self.tmp, "killed", **LONG)
        self.assertEqual(kill_at_checkpoint(path, 10), -signal.SIGKILL)
        self.assertFalse(os.path.exists(os.path.join(out, "final")), "killed mid-stage")
        resumed = run(path)
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        start = events(resumed.stdout)[0]
        self.assertTrue(10 <= start["resumed_from"] < 120, start)
        self.assertEqual(start["resumed_from"] % 5, 0)
        assert_same_weights(self.long_out, out, 1e-6)
        with open(os.path.join(out, "metrics.jsonl"), encoding="utf-8") as f:
            self.assertEqual([json.loads(line)["step"] for line in f], list(range(1, 121)), "no step logged twice")

    def test_sigkill_at_random_steps_again_and_again_still_ends_with_the_same_weights(self):
        # Killed at seeded random moments: on a step's event, so the next step, a checkpoint write
        # (every 5 steps) or the metrics line may be half done; each resume carries on from the last
        # complete checkpoint, and the end is the uninterrupted run's weights.
        path, out = job(self.tmp, "killed-often", **LONG)
        rng = random.Random(20261126)
        kills = sorted(rng.sample(range(3, 118), 4))
        for at in kills:
            self.assertEqual(kill_at(path, "step", at), -signal.SIGKILL, f"killed at step {at}")
        resumed = run(path)
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        assert_same_weights(self.long_out, out, 1e-6)
        with open(os.path.join(out, "metrics.jsonl"), encoding="utf-8") as f:
            self.assertEqual([json.loads(line)["step"] for line in f], list(range(1, 121)), f"no step lost or logged twice (kills at {kills})")

    def test_a_full_disk_while_checkpointing_keeps_the_last_good_checkpoint_and_resume_still_ends_the_same(self):
        from pal_trainer import train as T

        path, out = job(self.tmp, "full-disk", **LONG)
        real, calls = T.save_file, []

        def disk_fills_up(tensors, file):
            calls.append(file)
            if len(calls) == 3:  # the checkpoint of step 15: half a file, then no space
                with open(file, "wb") as f:
                    f.write(b"\0" * 100)
                raise OSError(errno.ENOSPC, "No space left on device", file)
            return real(tensors, file)

        with mock.patch.object(T, "save_file", disk_fills_up), contextlib.redirect_stdout(io.StringIO()) as printed:
            with self.assertRaises(T.CheckpointWriteError) as caught:
                T.main([path])
        message = str(caught.exception)
        self.assertIn("could not write the checkpoint of step 15", message)
        self.assertIn("No space left on device", message)
        self.assertIn("The last good checkpoint, step-0000010, is kept", message)
        self.assertIn("run the same job again to resume", message)
        self.assertEqual(events(printed.getvalue())[-1]["event"], "error", "the engine hears why")
        root = os.path.join(out, "checkpoints")
        with open(os.path.join(root, "latest"), encoding="utf-8") as f:
            self.assertEqual(f.read().strip(), "step-0000010")
        self.assertEqual(sorted(os.listdir(root)), ["latest", "step-0000005", "step-0000010"], "no half checkpoint left behind")
        resumed = run(path)
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        self.assertEqual(events(resumed.stdout)[0]["resumed_from"], 10)
        assert_same_weights(self.long_out, out, 1e-6)

    def test_sigterm_finishes_the_step_checkpoints_and_exits_0(self):
        path, out = job(self.tmp, "terminated", **{**LONG, "checkpoint_every": 1000})
        seen = []
        with subprocess.Popen([sys.executable, "-m", "pal_trainer.train", path], env=ENV, stdout=subprocess.PIPE, text=True) as proc:
            for line in proc.stdout:
                e = json.loads(line)
                seen.append(e)
                if e["event"] == "step" and e["step"] == 3:
                    proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        self.assertEqual(proc.returncode, 0)
        cancelled = [e for e in seen if e["event"] == "cancelled"]
        self.assertEqual(len(cancelled), 1)
        stopped_at = cancelled[0]["step"]
        self.assertTrue(os.path.isdir(os.path.join(out, "checkpoints", f"step-{stopped_at:07d}")))
        self.assertLess(stopped_at, 120)
        self.assertEqual(run(path).returncode, 0)
        assert_same_weights(self.long_out, out, 1e-6)

    def test_dpo_starts_at_log2_with_the_stage1_model_as_reference(self):
        for name, lora in (("dpo-full", None), ("dpo-lora", {"r": 4, "alpha": 8, "dropout": 0.0, "targets": ["q_proj", "v_proj"]})):
            path, out = job(
                self.tmp,
                name,
                stage="dpo",
                data=os.path.join(self.tmp, "dpo.jsonl"),
                model=os.path.join(self.reference_out, "final"),
                lr=5e-3,
                epochs=2,
                lora=lora,
                beta=0.1,
            )
            result = run(path)
            self.assertEqual(result.returncode, 0, result.stderr)
            steps = [e for e in events(result.stdout) if e["event"] == "step"]
            first = steps[0]
            # Policy = reference before the first update: every reward is 0 and the loss is log 2.
            self.assertAlmostEqual(first["loss"], math.log(2), places=5)
            self.assertAlmostEqual(first["rewards/chosen"], 0.0, places=5)
            self.assertAlmostEqual(first["rewards/margins"], 0.0, places=5)
            for key in (
                "loss",
                "rewards/chosen",
                "rewards/rejected",
                "rewards/margins",
                "rewards/accuracies",
                "logps/chosen",
                "logps/rejected",
                "learning_rate",
                "grad_norm",
                "tokens_per_s",
                "step_time",
            ):
                self.assertIn(key, steps[-1])
            self.assertGreater(steps[-1]["rewards/margins"], 0.0, name)
            final = final_weights(out)
            self.assertFalse(any("lora" in k for k in final), "LoRA is merged into the exported weights")

    def test_dpo_trains_with_dropout_off(self):
        # A stage-1 model with heavy attention dropout: with dropout on, the policy's pass would
        # differ from the reference's and the first loss would not be log 2 (it was, by 0.01-0.1).
        stage1 = tiny_model(os.path.join(self.tmp, "dropout-model"), seed=5)
        with open(os.path.join(stage1, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        config["attention_dropout"] = 0.5
        with open(os.path.join(stage1, "config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f)
        for name, lora in (("dpo-dropout-full", None), ("dpo-dropout-lora", {"r": 4, "alpha": 8, "dropout": 0.5, "targets": ["q_proj", "v_proj"]})):
            path, out = job(self.tmp, name, stage="dpo", data=os.path.join(self.tmp, "dpo.jsonl"), model=stage1, lr=5e-3, epochs=1, lora=lora, beta=0.1)
            result = run(path)
            self.assertEqual(result.returncode, 0, result.stderr)
            first = [e for e in events(result.stdout) if e["event"] == "step"][0]
            self.assertAlmostEqual(first["loss"], math.log(2), places=6, msg=name)
            self.assertAlmostEqual(first["rewards/margins"], 0.0, places=6, msg=name)

    def test_lora_in_bf16_keeps_a_bf16_base_and_merges_in_float32(self):
        # LoRA under bf16 autocast keeps the frozen base in bf16 (no cast per pass); the adapter is
        # saved on its own (PEFT's files) and merged into the float32 base, not into bf16 weights.
        lora = {"r": 4, "alpha": 8, "dropout": 0.0, "targets": ["q_proj", "v_proj"]}
        path, out = job(self.tmp, "lora-bf16", precision="bf16", lora=lora)
        result = run(path)
        self.assertEqual(result.returncode, 0, result.stderr)
        adapter = os.path.join(out, "final", "adapter")
        with open(os.path.join(adapter, "adapter_config.json"), encoding="utf-8") as f:
            self.assertEqual(json.load(f)["target_modules"], ["q_proj", "v_proj"])
        model = CausalLM.from_pretrained(os.path.join(self.tmp, "base"), dtype=torch.float32)
        load_adapter(model, adapter)
        merge_lora(model)
        final = final_weights(out)
        base = load_file(os.path.join(self.tmp, "base", "model.safetensors"))
        name = "model.layers.0.self_attn.q_proj.weight"
        self.assertEqual(final[name].dtype, torch.float32)
        self.assertGreater(float((final[name] - base[name]).abs().max()), 0.0, "the adapter learnt something")
        for k, v in model.state_dict().items():
            torch.testing.assert_close(final[k], v, rtol=0, atol=1e-7, msg=k)

    def test_a_bf16_job_on_a_cpu_that_emulates_bf16_says_so_first_and_still_trains(self):
        from pal_trainer import train as T

        path, out = job(self.tmp, "bf16-emulated", precision="bf16")
        with mock.patch.object(T, "cpu_bf16_slowdown", lambda: 40.0), contextlib.redirect_stdout(io.StringIO()) as printed:
            self.assertEqual(T.main([path]), 0)
        got = events(printed.getvalue())
        self.assertEqual((got[0]["event"], got[0]["kind"]), ("warning", "emulated_bf16"))
        self.assertIn("took 40x as long as a float32 one", got[0]["message"])
        self.assertIn("precision fp32", got[0]["message"])
        self.assertEqual(got[-1]["event"], "done")
        self.assertEqual([e["event"] for e in got].count("warning"), 1)
        # Kept in the stage's folder too, for the dashboard after the run.
        with open(os.path.join(out, "warnings.jsonl"), encoding="utf-8") as f:
            self.assertEqual([json.loads(line) for line in f], [{"kind": "emulated_bf16", "message": got[0]["message"]}])

    def test_only_bf16_on_the_cpu_is_measured_and_only_a_slow_one_warned_of(self):
        from pal_trainer import train as T

        cpu = torch.device("cpu")
        never = mock.Mock(side_effect=AssertionError("measured for a job that does not use bf16 on the CPU"))
        self.assertIsNone(T.emulated_bf16_warning(cpu, None, slowdown=never))
        self.assertIsNone(T.emulated_bf16_warning(torch.device("cuda", 0), torch.bfloat16, slowdown=never))
        self.assertIsNone(T.emulated_bf16_warning(cpu, torch.bfloat16, slowdown=lambda: 0.6), "native bf16 (AMX) is faster")
        self.assertIsNone(T.emulated_bf16_warning(cpu, torch.bfloat16, slowdown=lambda: T.EMULATED_BF16_SLOWDOWN))
        self.assertIsNotNone(T.emulated_bf16_warning(cpu, torch.bfloat16, slowdown=lambda: 25.0))
        measured = T.cpu_bf16_slowdown(size=64, tries=2)
        self.assertTrue(math.isfinite(measured) and measured > 0, measured)

    def test_a_job_outside_the_contract_is_refused(self):
        path, _ = job(self.tmp, "contract")
        with open(path, encoding="utf-8") as f:
            good = json.load(f)
        for bad, message in (
            ({**good, "optimizer": "adamw"}, "unknown keys ['optimizer']"),
            ({k: v for k, v in good.items() if k != "weight_decay"}, "missing keys ['weight_decay']"),
        ):
            with open(path, "w", encoding="utf-8") as f:
                json.dump(bad, f)
            with self.assertRaises(ValueError) as caught:
                load_job(path)
            self.assertIn(message, str(caught.exception))

    def test_generate_answers_every_prompt_and_resumes(self):
        prompts = [{"id": i, "prompt": r["prompt"]} for i, r in enumerate(sft_rows(6))]
        data = write_rows(os.path.join(self.tmp, "prompts.jsonl"), prompts)
        path, out = job(self.tmp, "generate", stage="generate", data=data, batch_size=4, decoding={"temperature": 1.0, "max_new_tokens": 5})
        result = run(path)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(os.path.join(out, "generated.jsonl"), encoding="utf-8") as f:
            got = [json.loads(line) for line in f]
        self.assertEqual([g["id"] for g in got], list(range(6)))
        self.assertTrue(all(0 < len(g["tokens"]) <= 5 or g["tokens"] == [] for g in got))
        # "ended": the sample chose eos; a cut one ran to max_new_tokens (here, with eos rare, most).
        self.assertTrue(all(g["ended"] or len(g["tokens"]) == 5 for g in got))
        self.assertIn(False, [g["ended"] for g in got])
        again = run(path)
        self.assertEqual(events(again.stdout)[0]["done"], 6)
        with open(os.path.join(out, "generated.jsonl"), encoding="utf-8") as f:
            self.assertEqual(len(f.readlines()), 6, "nothing generated twice")


def _ddp_worker(rank, world, port, job_path):
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    sys.stdout = open(os.devnull, "w") if rank else sys.stdout
    code = train_main([job_path])
    if code != 0:
        raise SystemExit(code)


class DistributedTest(unittest.TestCase):
    def test_two_processes_and_gradient_accumulation_end_with_the_weights_of_one_global_batch(self):
        tmp = tempfile.mkdtemp(prefix="pal-ddp-")
        tiny_model(os.path.join(tmp, "base"))
        write_rows(os.path.join(tmp, "sft.jsonl"), sft_rows(16))
        one, out1 = job(tmp, "one", batch_size=4, epochs=1, lr=1e-2)
        self.assertEqual(run(one).returncode, 0)
        two, out2 = job(tmp, "two", batch_size=2, epochs=1, lr=1e-2)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        mp.start_processes(_ddp_worker, args=(2, port, two), nprocs=2, join=True, start_method="spawn")
        assert_same_weights(out1, out2, 1e-5)
        # Gradient accumulation is the same sum taken in two passes.
        accum, out3 = job(tmp, "accum", batch_size=2, grad_accum=2, epochs=1, lr=1e-2)
        self.assertEqual(run(accum).returncode, 0)
        assert_same_weights(out1, out3, 1e-5)


class LanguageModelTest(unittest.TestCase):
    """Pre-training on a token stream: learns, and resumes exactly like the other stages."""

    def test_lm_learns_a_stream_and_resumes_to_the_same_weights(self):
        import numpy as np

        tmp = tempfile.mkdtemp(prefix="pal-lm-")
        tiny_model(os.path.join(tmp, "base"))
        # A stream with structure to learn: counting 3..20 over and over, documents split by EOS (2).
        stream = np.array(([2] + list(range(3, 21))) * 400, dtype="<u2")
        data = os.path.join(tmp, "stream.bin")
        stream.tofile(data)
        # Long enough (150 steps) that a kill sent on reading an early checkpoint lands mid-run.
        common = dict(stage="lm", data=data, max_steps=150, max_length=24, batch_size=4, lr=3e-3, warmup_steps=3, checkpoint_every=5, epochs=1)
        path, out = job(tmp, "lm-uninterrupted", **common)
        result = run(path)
        self.assertEqual(result.returncode, 0, result.stderr)
        steps = [e for e in events(result.stdout) if e["event"] == "step"]
        self.assertEqual(len(steps), 150)
        self.assertLess(steps[-1]["loss"], steps[0]["loss"] / 2, "the counting pattern is learnt")

        path2, out2 = job(tmp, "lm-stopped", **common)
        self.assertEqual(kill_at_checkpoint(path2, 10), -signal.SIGKILL)
        self.assertFalse(os.path.exists(os.path.join(out2, "final")))
        self.assertEqual(run(path2).returncode, 0)
        assert_same_weights(out, out2, 1e-6)

    def test_an_lm_job_needs_max_steps_and_enough_tokens(self):
        tmp = tempfile.mkdtemp(prefix="pal-lm-")
        tiny_model(os.path.join(tmp, "base"))
        data = os.path.join(tmp, "short.bin")
        with open(data, "wb") as f:
            f.write(bytes(10))  # 5 tokens
        path, _ = job(tmp, "no-steps", stage="lm", data=data, max_length=24)
        self.assertIn("needs max_steps", run(path).stderr)
        path, _ = job(tmp, "short", stage="lm", data=data, max_length=24, max_steps=3)
        self.assertIn("5 tokens are fewer than one window of 24", run(path).stderr)


if __name__ == "__main__":
    unittest.main()
