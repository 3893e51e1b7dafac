// The Python the trainer-backed tests run (PAL_PYTHON, else Debian's /usr/bin/python3), whether it
// has torch, and the tests' skip rule: on CI (or with PAL_REQUIRE_TORCH=1) torch must be there,
// elsewhere the tests skip with a reason.
import { execFileSync } from 'node:child_process';

export const python = process.env.PAL_PYTHON || '/usr/bin/python3';

export const hasTorch = (() => {
  try {
    execFileSync(python, ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** `false` when torch is there; a skip reason otherwise (or a thrown error where it is required). */
export function skipWithoutTorch(what: string): false | string {
  if (hasTorch) return false;
  if (process.env.CI === 'true' || process.env.PAL_REQUIRE_TORCH === '1') throw new Error(`${python} cannot import torch, and CI requires the ${what}`);
  return `no torch in ${python} (set PAL_PYTHON)`;
}

/**
 * A word-level WordPiece tokenizer (tokenizer.json + tokenizer_config.json contents) over `words`,
 * with [PAD] = 0, [UNK] = 1 and [EOS] = 2: enough for tiny test models that transformers.js loads.
 */
export function wordPieceTokenizer(words: readonly string[]) {
  const specials = ['[PAD]', '[UNK]', '[EOS]'];
  const vocab = Object.fromEntries([...specials, ...words.filter((w) => !specials.includes(w))].map((w, i) => [w, i]));
  return {
    size: Object.keys(vocab).length,
    tokenizer: {
      version: '1.0',
      truncation: null,
      padding: null,
      normalizer: null,
      post_processor: null,
      added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      pre_tokenizer: { type: 'WhitespaceSplit' },
      decoder: { type: 'WordPiece', prefix: '##', cleanup: false },
      model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
    },
    config: {
      tokenizer_class: 'PreTrainedTokenizerFast',
      eos_token: '[EOS]',
      pad_token: '[PAD]',
      unk_token: '[UNK]',
      model_max_length: 256,
      clean_up_tokenization_spaces: false,
    },
  };
}
