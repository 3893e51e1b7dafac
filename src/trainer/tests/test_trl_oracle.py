"""Our DPO stage against the field's own: TRL's DPOTrainer (sigmoid loss, beta 0.1, the stage-1
model as reference) on the same tiny model, pairs, batch, optimiser and precision. The loss and
TRL's rewards/* and logps/* of the first steps must agree within 1e-4; the later steps agree only
if the updates did too (same gradients, same AdamW). Skipped, saying why, where TRL is not
installed (the torch 1.x run: TRL needs torch >= 2)."""

import contextlib
import io
import os
import tempfile
import unittest

import torch

from tests.test_train import dpo_rows, events, job, run, tiny_model, write_rows

try:
    import transformers
    import trl
    from tokenizers import Tokenizer, models, pre_tokenizers
except ImportError:  # the torch 1.x run, or a trainer environment without the tests' requirements
    trl = None

VOCAB = 48  # tiny_model's; ids 0-2 are pad, bos, eos
PAIRS = 8
STEPS = 3
SETTINGS = {"lr": 5e-3, "beta": 0.1, "grad_clip": 1.0, "weight_decay": 0.0, "seed": 3}
COMPARED = ("loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected")


def word(token_id):
    return f"t{token_id}"


def word_tokenizer():
    """A tokenizer whose ids are ours: "t5" is 5, "</s>" is 2. TRL takes text and tokenizes it
    itself; with this, its ids are exactly the ones our trainer reads."""
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, **{word(i): i for i in range(3, VOCAB)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="</s>", pad_token="<pad>", bos_token="<s>")


def as_text(rows):
    """The pairs as TRL's text: the prompt's words, and each response's words without the final
    EOS (TRL appends its tokenizer's EOS to both)."""
    out = []
    for r in rows:
        assert r["chosen"][-1] == 2 and r["rejected"][-1] == 2
        out.append(
            {
                "prompt": " ".join(map(word, r["prompt"])),
                "chosen": " " + " ".join(map(word, r["chosen"][:-1])),
                "rejected": " " + " ".join(map(word, r["rejected"][:-1])),
            }
        )
    return out


@unittest.skipUnless(trl is not None, "TRL is not installed (it needs torch >= 2): no oracle to compare with")
class DpoAgainstTrlTest(unittest.TestCase):
    def test_losses_and_rewards_of_the_first_steps_equal_trls(self):
        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory() as tmp:
            stage1 = tiny_model(os.path.join(tmp, "stage1"), seed=11)
            rows = dpo_rows(PAIRS, seed=4)
            data = write_rows(os.path.join(tmp, "dpo.jsonl"), rows)

            # Ours: one batch of all the pairs per step, as many epochs as steps, so the order
            # the two trainers shuffle into does not matter (a step's loss is the mean over pairs).
            path, _ = job(
                tmp,
                "ours",
                stage="dpo",
                model=stage1,
                data=data,
                epochs=STEPS,
                batch_size=PAIRS,
                warmup_steps=0,
                schedule="constant",
                precision="fp32",
                **SETTINGS,
            )
            result = run(path)
            self.assertEqual(result.returncode, 0, result.stderr)
            ours = [e for e in events(result.stdout) if e["event"] == "step"]

            theirs = self.run_trl(tmp, stage1, as_text(rows), rows[0])
            self.assertEqual((len(ours), len(theirs)), (STEPS, STEPS))
            worst = max(abs(a[k] - b[k]) for a, b in zip(ours, theirs, strict=True) for k in COMPARED)
            print(f"DPO vs TRL: largest difference over {STEPS} steps and {len(COMPARED)} values: {worst:.2e}")
            for step, (a, b) in enumerate(zip(ours, theirs, strict=True), start=1):
                for key in COMPARED:
                    self.assertAlmostEqual(a[key], b[key], delta=1e-4, msg=f"step {step}, {key}: ours {a[key]}, TRL {b[key]}")
            # The first step is the one where policy = reference (loss log 2); the comparison only
            # tests the updates if the later steps moved away from it.
            self.assertGreater(abs(ours[-1]["rewards/margins"]), 1e-3, "the steps changed the policy")

    def run_trl(self, tmp, stage1, pairs, row):
        import datasets

        datasets.disable_progress_bars()
        transformers.logging.set_verbosity_error()
        metrics = []

        class Recording(trl.DPOTrainer):
            """TRL's DPOTrainer, keeping each step's loss and metrics unrounded (the Trainer's log
            rounds the loss to 4 decimals)."""

            def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
                loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
                self.last_loss = float(loss.detach())
                return loss

            def log(self, logs, start_time=None):
                if "loss" in logs:
                    step = {key: sum(v) / len(v) for key, v in self._metrics["train"].items()}
                    metrics.append({**step, "loss": self.last_loss})
                super().log(logs, start_time)

        model = transformers.LlamaForCausalLM.from_pretrained(stage1, dtype=torch.float32)
        args = trl.DPOConfig(
            output_dir=os.path.join(tmp, "trl"),
            per_device_train_batch_size=PAIRS,
            num_train_epochs=STEPS,
            learning_rate=SETTINGS["lr"],
            lr_scheduler_type="constant",
            warmup_steps=0,
            weight_decay=SETTINGS["weight_decay"],
            max_grad_norm=SETTINGS["grad_clip"],
            beta=SETTINGS["beta"],
            loss_type=["sigmoid"],
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            bf16=False,
            fp16=False,
            use_cpu=True,
            seed=SETTINGS["seed"],
            max_length=None,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        trainer = Recording(model=model, args=args, train_dataset=datasets.Dataset.from_list(pairs), processing_class=word_tokenizer())
        # TRL tokenized the text itself: it must have made our ids, or the comparison means nothing.
        first = trainer.train_dataset[0]
        self.assertEqual((first["prompt_ids"], first["chosen_ids"], first["rejected_ids"]), (row["prompt"], row["chosen"], row["rejected"]))
        with contextlib.redirect_stdout(io.StringIO()):  # the Trainer prints each step's log line
            trainer.train()
        return metrics


if __name__ == "__main__":
    unittest.main()
