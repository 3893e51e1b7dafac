// A tiny NLI model for the C.score tests, built with PyTorch and exported to ONNX in the layout
// transformers.js loads (config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx).
// No NLI model can be had on these machines, so the tests make one whose answers are known:
// only the hypothesis (token type 1) votes, with fixed weights per word:
//
//   "yes", "agree", "love"  -> entailment      "no", "not", "hate" -> contradiction
//   anything else           -> neutral (a bias of 1 on neutral)
//
// A classifier that swapped premise and hypothesis would read the persona's words instead, which
// the tests' data makes give a different answer. The label order in config.json is deliberately
// not entailment/neutral/contradiction, and upper-case, to test the id2label mapping.
import { execFile, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

export const python = process.env.PAL_PYTHON || '/usr/bin/python3';
const required = process.env.CI === 'true' || process.env.PAL_REQUIRE_TORCH === '1';

export const ENTAIL_WORDS = ['yes', 'agree', 'love'];
export const CONTRADICT_WORDS = ['no', 'not', 'hate'];
export const OTHER_WORDS = ['i', 'have', 'two', 'dogs', 'like', 'to', 'ski', 'a', 'cat', 'am', 'nurse', 'you', 'do', 'it', 'my', 'job', '.', ',', '?', '!'];

/** The expected label of a hypothesis, by the rule the model's weights encode. */
export function expectedLabel(hypothesis: string): 'entailment' | 'neutral' | 'contradiction' {
  const words = hypothesis.toLowerCase().match(/[a-z]+|[^\sa-z]/g) ?? [];
  let entail = 0;
  let contradict = 0;
  for (const w of words) {
    if (ENTAIL_WORDS.includes(w)) entail += 5;
    if (CONTRADICT_WORDS.includes(w)) contradict += 5;
  }
  const neutral = 1;
  if (entail > neutral && entail > contradict) return 'entailment';
  if (contradict > neutral && contradict > entail) return 'contradiction';
  return 'neutral';
}

const BUILD = String.raw`
import inspect, json, os, sys
import torch

out, words_json = sys.argv[1], sys.argv[2]
spec = json.loads(words_json)
special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
vocab = special + spec["entail"] + spec["contradict"] + spec["other"]
ids = {w: i for i, w in enumerate(vocab)}
# Columns follow config.json's id2label: 0 CONTRADICTION, 1 NEUTRAL, 2 ENTAILMENT.
votes = torch.zeros(len(vocab), 3)
for w in spec["entail"]:
    votes[ids[w], 2] = 5.0
for w in spec["contradict"]:
    votes[ids[w], 0] = 5.0

class TinyNli(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.votes = torch.nn.Parameter(votes)
        self.bias = torch.nn.Parameter(torch.tensor([0.0, 1.0, 0.0]))

    def forward(self, input_ids, attention_mask, token_type_ids):
        # Only real tokens of the second segment (the hypothesis) vote.
        weight = (attention_mask * token_type_ids).unsqueeze(-1).to(torch.float32)
        return (self.votes[input_ids] * weight).sum(1) + self.bias

os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
model = TinyNli().eval()
example = (torch.tensor([[2, 5, 3, 6, 3]]), torch.ones(1, 5, dtype=torch.long), torch.tensor([[0, 0, 0, 1, 1]]))
axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
        "token_type_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch"}}
# torch >= 2.9 defaults to the dynamo exporter (it needs onnxscript); the TorchScript one is the plain graph.
legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
torch.onnx.export(model, example, os.path.join(out, "onnx", "model.onnx"), opset_version=14,
                  input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"], dynamic_axes=axes, **legacy)

labels = {"0": "CONTRADICTION", "1": "NEUTRAL", "2": "ENTAILMENT"}
config = {"model_type": "bert", "architectures": ["BertForSequenceClassification"], "id2label": labels,
          "label2id": {v: int(k) for k, v in labels.items()}, "vocab_size": len(vocab), "hidden_size": 3,
          "num_attention_heads": 1, "num_hidden_layers": 1, "max_position_embeddings": 512, "type_vocab_size": 2}
tokenizer = {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True} for i, t in enumerate(special)],
    "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                   "strip_accents": None, "lowercase": True},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "post_processor": {"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                 {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
        "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                           "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
              "max_input_chars_per_word": 100, "vocab": ids},
}
tokenizer_config = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512,
                    "pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                    "mask_token": "[MASK]"}
for name, value in [("config.json", config), ("tokenizer.json", tokenizer), ("tokenizer_config.json", tokenizer_config)]:
    with open(os.path.join(out, name), "w") as f:
        json.dump(value, f, indent=1)
print("ok")
`;

/**
 * A skip reason when no Python with torch is available, else false. Where torch is required (CI,
 * PAL_REQUIRE_TORCH=1) its absence is a failing test instead, and the tests that need it skip.
 */
export function torchSkip(): string | false {
  const r = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8', timeout: 120_000 });
  let reason: string | undefined;
  if (r.error) reason = `${python}: ${r.error.message}`;
  else if (r.status !== 0) reason = `${python} cannot import torch: ${(r.stderr.trim().split('\n').pop() ?? '').trim()}`;
  if (!reason) return false;
  if (required) {
    test('a Python with torch is available (CI or PAL_REQUIRE_TORCH=1 require it)', () => {
      throw new Error(`${reason}; set PAL_PYTHON to an interpreter with torch`);
    });
  }
  return `${reason}; set PAL_PYTHON, or PAL_REQUIRE_TORCH=1 to fail instead`;
}

/** Writes the tiny NLI model into `folder`. */
export async function buildTinyNli(folder: string): Promise<void> {
  const words = JSON.stringify({ entail: ENTAIL_WORDS, contradict: CONTRADICT_WORDS, other: OTHER_WORDS });
  await promisify(execFile)(python, ['-c', BUILD, folder, words], {
    env: { ...process.env, OPENBLAS_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' },
    timeout: 300_000,
  });
}
