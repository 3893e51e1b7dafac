/**
 * Preference pairs for other trainers: TRL, LLaMA-Factory and axolotl.
 *
 * Each exporter takes `*.pairs.jsonl` records and returns the files to write (paths relative to an
 * output folder; the caller writes them), a short note on how to use them, and what was left out.
 * Only judged pairs are training data: a pair whose `status` is "chosen" (or that has no status,
 * as imported data sets have) is exported; "pending", "skipped" and "tie" pairs are left out and
 * counted, as are pairs the target format cannot hold (with the reason).
 */
import { stringify as stringifyYaml } from 'yaml';
import type { ChatMessage, PreferencePair } from '../formats/types';

export interface ExportedFile {
  /** Relative to the output folder, with "/" separators. */
  path: string;
  content: string;
}

export interface LeftOut {
  total: number;
  pending: number;
  skipped: number;
  tie: number;
  /** Lines of the input file that could not be read as pairs (the caller counts them). */
  unreadable: number;
  /** Pairs the target format cannot hold: 0-based index in the input, and why. */
  unsupported: { index: number; reason: string }[];
}

export interface PairExport {
  files: ExportedFile[];
  /** How to use the files, for the writer (a few lines of plain text). */
  usage: string;
  exported: number;
  leftOut: LeftOut;
}

/** A dataset name usable as a file name and as a key in trainer configs. */
export function safeDatasetName(name: string): string {
  const safe = name
    .trim()
    .replace(/[^A-Za-z0-9_.-]+/g, '_')
    .replace(/^[._]+/, '');
  return safe === '' ? 'pal_pairs' : safe;
}

interface Selected {
  index: number;
  pair: PreferencePair;
}

/** The pairs to export and the count of those left out for their status. */
function selectJudged(pairs: readonly PreferencePair[], unreadable: number): { selected: Selected[]; leftOut: LeftOut } {
  const leftOut: LeftOut = { total: 0, pending: 0, skipped: 0, tie: 0, unreadable, unsupported: [] };
  const selected: Selected[] = [];
  pairs.forEach((pair, index) => {
    const status = pair.status;
    if (status === undefined || status === 'chosen') selected.push({ index, pair });
    else if (status === 'pending' || status === 'skipped' || status === 'tie') leftOut[status]++;
    else leftOut.unsupported.push({ index, reason: `unknown status "${String(status)}"` });
  });
  return { selected, leftOut };
}

function finish(leftOut: LeftOut): LeftOut {
  leftOut.unsupported.sort((a, b) => a.index - b.index);
  leftOut.total = leftOut.pending + leftOut.skipped + leftOut.tie + leftOut.unreadable + leftOut.unsupported.length;
  return leftOut;
}

function leftOutSentence(leftOut: LeftOut): string {
  if (leftOut.total === 0) return 'No pair was left out.';
  const parts: string[] = [];
  if (leftOut.pending) parts.push(`${leftOut.pending} pending`);
  if (leftOut.skipped) parts.push(`${leftOut.skipped} skipped`);
  if (leftOut.tie) parts.push(`${leftOut.tie} tie${leftOut.tie === 1 ? '' : 's'}`);
  if (leftOut.unsupported.length) parts.push(`${leftOut.unsupported.length} the format cannot hold`);
  if (leftOut.unreadable) parts.push(`${leftOut.unreadable} on line${leftOut.unreadable === 1 ? '' : 's'} that could not be read`);
  return `Left out ${leftOut.total} pair${leftOut.total === 1 ? '' : 's'}: ${parts.join(', ')}.`;
}

const isStandard = (pair: PreferencePair) => typeof pair.prompt === 'string' && typeof pair.chosen === 'string' && typeof pair.rejected === 'string';

/** A prompt as messages: a plain-text prompt is one user message. */
function promptMessages(prompt: string | ChatMessage[]): ChatMessage[] {
  return typeof prompt === 'string' ? [{ role: 'user', content: prompt }] : prompt;
}

/** A response as messages: a plain-text response is one assistant message. */
function responseMessages(response: string | ChatMessage[]): ChatMessage[] {
  return typeof response === 'string' ? [{ role: 'assistant', content: response }] : response;
}

/** The single assistant message of a response, or why there is none. */
function singleAssistantMessage(response: string | ChatMessage[], which: string): ChatMessage | string {
  const messages = responseMessages(response);
  const only = messages[0];
  if (messages.length !== 1 || !only) return `${which} has ${messages.length} messages; this format takes exactly one`;
  if (only.role !== 'assistant') return `${which} is a "${only.role}" message, not an assistant one`;
  return only;
}

const jsonl = (records: readonly unknown[]) => records.map((r) => `${JSON.stringify(r)}\n`).join('');

// ---------------------------------------------------------------------------------------------
// TRL (DPOTrainer and the other preference trainers): one JSON object a line with `prompt`,
// `chosen` and `rejected`, either all text ("standard") or all message lists ("conversational").

export function exportTrl(pairs: readonly PreferencePair[], datasetName = 'pal_pairs', unreadable = 0): PairExport {
  const name = safeDatasetName(datasetName);
  const { selected, leftOut } = selectJudged(pairs, unreadable);
  // One file must be all standard or all conversational (a datasets column has one type), so a
  // mix is made conversational: a text prompt becomes a user message, a text response an
  // assistant message. Otherwise the pairs are kept exactly as they are.
  const allStandard = selected.every(({ pair }) => isStandard(pair));
  const records = selected.map(({ pair }) =>
    allStandard
      ? { prompt: pair.prompt, chosen: pair.chosen, rejected: pair.rejected }
      : { prompt: promptMessages(pair.prompt), chosen: responseMessages(pair.chosen), rejected: responseMessages(pair.rejected) },
  );
  finish(leftOut);
  const file = `${name}.jsonl`;
  const mixed = !allStandard && selected.some(({ pair }) => [pair.prompt, pair.chosen, pair.rejected].some((v) => typeof v === 'string'));
  const usage = [
    `${file}: ${records.length} pair${records.length === 1 ? '' : 's'} in TRL's ${allStandard ? 'standard' : 'conversational'} preference format${mixed ? ' (text prompts and responses were turned into messages so that every line has the same shape)' : ''}.`,
    `Load it with datasets.load_dataset("json", data_files="${file}", split="train") and pass it to trl.DPOTrainer as train_dataset.`,
    leftOutSentence(leftOut),
  ].join('\n');
  return { files: [{ path: file, content: jsonl(records) }], usage, exported: records.length, leftOut };
}

// ---------------------------------------------------------------------------------------------
// LLaMA-Factory, as its data/README.md documents preference ("ranking") datasets:
// - alpaca: [{ "instruction", "input", "chosen", "rejected" }] with dataset_info columns
//   { prompt: "instruction", query: "input", chosen: "chosen", rejected: "rejected" };
// - sharegpt: [{ "conversations": [{ "from": "human"|"gpt", "value" }...], "chosen": { "from":
//   "gpt", "value" }, "rejected": {...} }] with formatting "sharegpt" and columns { messages:
//   "conversations", chosen, rejected } (and "system" for a system prompt). The conversation must
//   alternate human/gpt, human first and last.
// Text pairs use alpaca; as soon as one pair has messages, all use sharegpt.

interface ShareGptMessage {
  from: string;
  value: string;
}

function toShareGpt(pair: PreferencePair): { record: Record<string, unknown>; hasSystem: boolean } | string {
  const messages = promptMessages(pair.prompt);
  let system: string | undefined;
  const rest = [...messages];
  if (rest[0]?.role === 'system') {
    system = rest[0].content;
    rest.shift();
  }
  const conversations: ShareGptMessage[] = [];
  for (const [i, message] of rest.entries()) {
    const expected = i % 2 === 0 ? 'user' : 'assistant';
    if (message.role !== expected) {
      return `prompt message ${i + 1 + (system === undefined ? 0 : 1)} is "${message.role}" where LLaMA-Factory needs "${expected}" (turns must alternate, user first)`;
    }
    conversations.push({ from: expected === 'user' ? 'human' : 'gpt', value: message.content });
  }
  if (conversations.length % 2 === 0) return 'the prompt must end with a user message';
  const chosen = singleAssistantMessage(pair.chosen, 'chosen');
  if (typeof chosen === 'string') return chosen;
  const rejected = singleAssistantMessage(pair.rejected, 'rejected');
  if (typeof rejected === 'string') return rejected;
  const record: Record<string, unknown> = {
    conversations,
    chosen: { from: 'gpt', value: chosen.content },
    rejected: { from: 'gpt', value: rejected.content },
  };
  if (system !== undefined) record.system = system;
  return { record, hasSystem: system !== undefined };
}

export function exportLlamaFactory(pairs: readonly PreferencePair[], datasetName: string, unreadable = 0): PairExport {
  const name = safeDatasetName(datasetName);
  const { selected, leftOut } = selectJudged(pairs, unreadable);
  const alpaca = selected.every(({ pair }) => isStandard(pair));
  const records: Record<string, unknown>[] = [];
  let hasSystem = false;
  for (const { index, pair } of selected) {
    if (alpaca) {
      records.push({ instruction: pair.prompt, input: '', chosen: pair.chosen, rejected: pair.rejected });
      continue;
    }
    const converted = toShareGpt(pair);
    if (typeof converted === 'string') {
      leftOut.unsupported.push({ index, reason: converted });
      continue;
    }
    records.push(converted.record);
    hasSystem ||= converted.hasSystem;
  }
  finish(leftOut);
  const file = `${name}.json`;
  const columns: Record<string, string> = alpaca
    ? { prompt: 'instruction', query: 'input', chosen: 'chosen', rejected: 'rejected' }
    : { messages: 'conversations', chosen: 'chosen', rejected: 'rejected', ...(hasSystem ? { system: 'system' } : {}) };
  const datasetInfo = {
    [name]: { file_name: file, formatting: alpaca ? 'alpaca' : 'sharegpt', ranking: true, columns },
  };
  const usage = [
    `${file}: ${records.length} pair${records.length === 1 ? '' : 's'} in LLaMA-Factory's ${alpaca ? 'alpaca' : 'sharegpt'} preference format; dataset_info.json registers it as "${name}".`,
    `Put both files in LLaMA-Factory's data folder (merge the entry into its dataset_info.json if one is there), or set dataset_dir to this folder; then train with stage: dpo and dataset: ${name}.`,
    leftOutSentence(leftOut),
  ].join('\n');
  return {
    files: [
      { path: file, content: `${JSON.stringify(records, null, 2)}\n` },
      { path: 'dataset_info.json', content: `${JSON.stringify(datasetInfo, null, 2)}\n` },
    ],
    usage,
    exported: records.length,
    leftOut,
  };
}

// ---------------------------------------------------------------------------------------------
// axolotl: the DPO dataset type `chat_template.default` of its docs/rlhf.qmd ("RLHF", DPO
// section): one JSON object a line, { "messages": [{ "role", "content" }...], "chosen": { "role":
// "assistant", "content" }, "rejected": {...} }, rendered with the model's chat template. It holds
// text pairs (the prompt becomes one user message) and conversational pairs alike, so every pair
// has one shape; the other documented types (chatml.intel, llama3.*) would force one template.
// (Checked against axolotl's src/axolotl/prompt_strategies/dpo/chat_template.py, `default`: a
// dict `chosen` is taken as the response message, and roles go through the `roles` mapping.)

export const AXOLOTL_DATASET_TYPE = 'chat_template.default';
const AXOLOTL_ROLES = ['system', 'user', 'assistant'];

export function exportAxolotl(pairs: readonly PreferencePair[], datasetName: string, unreadable = 0): PairExport {
  const name = safeDatasetName(datasetName);
  const { selected, leftOut } = selectJudged(pairs, unreadable);
  const records: Record<string, unknown>[] = [];
  for (const { index, pair } of selected) {
    const messages = promptMessages(pair.prompt);
    const last = messages[messages.length - 1];
    // axolotl maps each role through the `roles` of the config below and fails on any other.
    const odd = messages.find((m) => !AXOLOTL_ROLES.includes(m.role));
    if (odd) {
      leftOut.unsupported.push({ index, reason: `the prompt has a "${odd.role}" message; axolotl is configured for ${AXOLOTL_ROLES.join(', ')}` });
      continue;
    }
    if (!last || last.role !== 'user') {
      leftOut.unsupported.push({ index, reason: 'the prompt must end with a user message' });
      continue;
    }
    const chosen = singleAssistantMessage(pair.chosen, 'chosen');
    const rejected = singleAssistantMessage(pair.rejected, 'rejected');
    if (typeof chosen === 'string' || typeof rejected === 'string') {
      leftOut.unsupported.push({ index, reason: typeof chosen === 'string' ? chosen : (rejected as string) });
      continue;
    }
    records.push({ messages, chosen, rejected });
  }
  finish(leftOut);
  const file = `${name}.axolotl.jsonl`;
  const config = {
    rl: 'dpo',
    datasets: [
      {
        path: `./${file}`,
        ds_type: 'json',
        split: 'train',
        type: AXOLOTL_DATASET_TYPE,
        field_messages: 'messages',
        field_chosen: 'chosen',
        field_rejected: 'rejected',
        message_property_mappings: { role: 'role', content: 'content' },
        roles: { user: ['user'], assistant: ['assistant'], system: ['system'] },
      },
    ],
  };
  const yamlSnippet = [
    `# PAL Studio: the dataset entry for ${file}; paste it into your axolotl config.`,
    `# Format: axolotl's DPO type "${AXOLOTL_DATASET_TYPE}" (docs/rlhf.qmd). Set path to where the file is.`,
    '# A base model without a chat template needs one, e.g. a top-level "chat_template: chatml".',
    stringifyYaml(config).trimEnd(),
    '',
  ].join('\n');
  const usage = [
    `${file}: ${records.length} pair${records.length === 1 ? '' : 's'} for axolotl's DPO dataset type ${AXOLOTL_DATASET_TYPE}.`,
    'axolotl-dataset.yaml holds the rl: dpo and datasets: entry to paste into your axolotl config.',
    leftOutSentence(leftOut),
  ].join('\n');
  return {
    files: [
      { path: file, content: jsonl(records) },
      { path: 'axolotl-dataset.yaml', content: yamlSnippet },
    ],
    usage,
    exported: records.length,
    leftOut,
  };
}
