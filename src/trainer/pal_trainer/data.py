"""Token-id data the TypeScript side prepared, and the deterministic batching a resumable run needs.

TypeScript owns text: it builds the prompts, tokenizes them and writes JSON lines of token ids.
Here they only become padded tensors:

- SFT (stage 1):   {"prompt": [ids], "target": [ids]}     loss on the target only (it ends in EOS)
- DPO (stage 2):   {"prompt": [ids], "chosen": [ids], "rejected": [ids]}
- generation:      {"id": any, "prompt": [ids]}

Order: each epoch is a permutation drawn from a generator seeded with (seed, epoch), so the
position "epoch e, batch b" names the same examples in every run with the same seed. That is what
makes a resumed run end with the same weights as an uninterrupted one.
"""

import json

import torch

IGNORE = -100


def read_jsonl(path, required):
    """Reads a token-id file; a malformed line is an error naming the file and line."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            for key in required:
                ids = row.get(key)
                if not isinstance(ids, list) or not all(isinstance(t, int) and t >= 0 for t in ids):
                    raise ValueError(f"{path}:{number}: '{key}' must be a list of token ids")
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no examples")
    return rows


def fit(prompt, target, max_length):
    """Cuts the start of the prompt, never the target, so that both fit in max_length tokens."""
    if len(target) >= max_length:
        raise ValueError(f"a target of {len(target)} tokens does not fit in max_length {max_length}")
    keep = max_length - len(target)
    return prompt[-keep:] if len(prompt) > keep else prompt


def epoch_order(n, seed, epoch):
    g = torch.Generator()
    g.manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


# Batches per length group: transformers' LengthGroupedSampler sorts mega-batches of 50 batches.
GROUP_BATCHES = 50


def global_batches(n, batch_examples, seed, epoch, lengths=None):
    """The epoch's optimizer-step batches of example indices (the last, short one is dropped so
    every step sees the same number of examples, in one process or many).

    With `lengths` (group_by_length), the epoch's permutation is cut into groups of GROUP_BATCHES
    batches, each group is sorted by length and cut into batches, and the batches are shuffled: a
    batch holds examples of about one length, so padding costs little (PAL's rows run from a
    hundred tokens to the model's limit: random batches of 8 ConvAI2 rows were a third padding,
    grouped ones 1%). Still a pure function of (seed, epoch), as resuming needs."""
    order = epoch_order(n, seed, epoch)
    if lengths is not None:
        size = GROUP_BATCHES * batch_examples
        order = [i for g in range(0, n, size) for i in sorted(order[g : g + size], key=lambda i: -lengths[i])]
    batches = [order[i : i + batch_examples] for i in range(0, n - batch_examples + 1, batch_examples)]
    if lengths is not None:
        batches = [batches[i] for i in epoch_order(len(batches), seed + 1, epoch)]
    return batches


def shard(indices, rank, world, accum):
    """Splits one global batch into this rank's `accum` micro-batches."""
    per = len(indices) // (world * accum)
    return [indices[(a * world + rank) * per : (a * world + rank + 1) * per] for a in range(accum)]


def pad_right(seqs, pad_id, value_for_pad=None):
    width = max(len(s) for s in seqs)
    fill = pad_id if value_for_pad is None else value_for_pad
    out = torch.full((len(seqs), width), fill, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return out, mask


def sft_batch(rows, pad_id, max_length):
    """input_ids, attention_mask and labels (IGNORE on the prompt and padding)."""
    seqs, labels = [], []
    for r in rows:
        prompt = fit(r["prompt"], r["target"], max_length)
        seqs.append(prompt + r["target"])
        labels.append([IGNORE] * len(prompt) + r["target"])
    input_ids, mask = pad_right(seqs, pad_id)
    label_ids, _ = pad_right(labels, pad_id, IGNORE)
    return input_ids, mask, label_ids


def dpo_batch(rows, pad_id, max_length):
    """Chosen and rejected sequences stacked (chosen first) so one forward scores both."""
    seqs, labels = [], []
    for key in ("chosen", "rejected"):
        for r in rows:
            prompt = fit(r["prompt"], r[key], max_length)
            seqs.append(prompt + r[key])
            labels.append([IGNORE] * len(prompt) + r[key])
    input_ids, mask = pad_right(seqs, pad_id)
    label_ids, _ = pad_right(labels, pad_id, IGNORE)
    return input_ids, mask, label_ids


class ExampleSource:
    """SFT or DPO examples: token-id rows, permuted each epoch (grouped by length on request)."""

    def __init__(self, path, stage, seed, group_by_length=False, max_length=None):
        self.rows = read_jsonl(path, ["prompt", "target"] if stage == "sft" else ["prompt", "chosen", "rejected"])
        self._make = sft_batch if stage == "sft" else dpo_batch
        self.seed = seed
        self.lengths = None
        if group_by_length:
            # A row's padded length: prompt and its longest answer, cut to max_length as batches are.
            answer = (lambda r: len(r["target"])) if stage == "sft" else (lambda r: max(len(r["chosen"]), len(r["rejected"])))
            self.lengths = [min(len(r["prompt"]) + answer(r), max_length or 10**9) for r in self.rows]
        self._epoch = None

    def __len__(self):
        return len(self.rows)

    def batches(self, epoch, global_batch):
        # Asked for at every step: the epoch's order is drawn once, not once a step.
        if self._epoch is None or self._epoch[0] != (epoch, global_batch):
            self._epoch = ((epoch, global_batch), global_batches(len(self.rows), global_batch, self.seed, epoch, self.lengths))
        return self._epoch[1]

    def make(self, ids, pad_id, max_length):
        return self._make([self.rows[i] for i in ids], pad_id, max_length)


class TokenStreamSource:
    """Language-model pre-training on one long stream of token ids (a little-endian uint16 file,
    documents separated by the end-of-text token), read through a memory map: corpora far larger
    than memory cost nothing to open.

    Example k of the run is the window starting at an offset drawn from a generator seeded with
    (seed, k): a pure function of k, so resuming, or splitting a batch over processes, sees exactly
    the windows an uninterrupted single process would."""

    def __init__(self, path, seed, block, steps_per_epoch):
        import numpy as np  # only pre-training needs it (Debian's torch depends on it)

        self.tokens = np.memmap(path, dtype="<u2", mode="r")
        if len(self.tokens) <= block:
            raise ValueError(f"{path}: {len(self.tokens)} tokens are fewer than one window of {block}")
        self.seed, self.block, self.steps_per_epoch = seed, block, steps_per_epoch

    def __len__(self):
        return len(self.tokens)

    def batches(self, epoch, global_batch):
        first = epoch * self.steps_per_epoch
        return [list(range((first + b) * global_batch, (first + b + 1) * global_batch)) for b in range(self.steps_per_epoch)]

    def make(self, ids, pad_id, max_length):
        windows = []
        for k in ids:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + k)
            start = int(torch.randint(0, len(self.tokens) - max_length, (1,), generator=g))
            windows.append(torch.from_numpy(self.tokens[start : start + max_length].astype("int64")))
        input_ids = torch.stack(windows)
        return input_ids, torch.ones_like(input_ids), input_ids.clone()
