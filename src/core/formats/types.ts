/**
 * PAL Studio's authoring formats: the writer's files are the source of truth, so these types are
 * what every part of the product (extension, engine, CLI, trainer data preparation) agrees on.
 *
 * Field names follow the snake_case of TRL and Hugging Face datasets, so the files can be used by
 * those tools as they are. Every record keeps fields it does not know (`[key: string]: unknown`):
 * a file written by a newer PAL Studio, or extended by hand, loses nothing when this one saves it.
 */

/** One turn of an example dialogue: `speaker` is "user", "persona" or a character name. */
export interface DialogueTurn {
  speaker: string;
  text: string;
  [key: string]: unknown;
}

/** `*.persona.yaml` / `*.persona.json`: one character. */
export interface Persona {
  id: string;
  name: string;
  /** Short first-person sentences, as in PERSONA-CHAT ("i have two dogs ."). */
  facts: string[];
  description?: string;
  /** How the character speaks. */
  style?: string;
  examples?: { turns: DialogueTurn[]; [key: string]: unknown }[];
  tags?: string[];
  /** Anything else, kept as is: importers put what has no place in this format here. */
  extensions?: Record<string, unknown>;
  [key: string]: unknown;
}

export const SPLITS = ['train', 'valid', 'test'] as const;
export type Split = (typeof SPLITS)[number];

/** One line of `*.dialogues.jsonl`: one PAL example. */
export interface DialogueExample {
  id?: string;
  /** The persona sentences, inline. Exactly one of `personas` and `persona_id` is given. */
  personas?: string[];
  /** A persona by id (a `*.persona.yaml` in the workspace); its `facts` are the sentences. */
  persona_id?: string;
  /** The dialogue so far, oldest first; turns alternate, the last one is the partner's. */
  history: string[];
  /** The gold response. */
  response: string;
  /** 0-based index of the persona sentence the response relies on, or -1 for none. */
  persona_index: number;
  split: Split;
  /** Where the example came from (a data set name, a file, "written"). */
  source?: string;
  [key: string]: unknown;
}

export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

export const PAIR_ORIGINS = ['annotated', 'pal-stage2', 'imported'] as const;
export type PairOrigin = (typeof PAIR_ORIGINS)[number];
export const PAIR_STATUSES = ['pending', 'chosen', 'skipped', 'tie'] as const;
export type PairStatus = (typeof PAIR_STATUSES)[number];

/**
 * One line of `*.pairs.jsonl`: a TRL preference record ("standard": strings; "conversational":
 * message lists), plus what PAL Studio knows about where it came from and how it was judged.
 */
export interface PreferencePair {
  prompt: string | ChatMessage[];
  chosen: string | ChatMessage[];
  rejected: string | ChatMessage[];
  persona_ids?: string[];
  /** The dialogue example the pair was made from: a file and a line (1-based), or an example id. */
  dialogue?: { file?: string; line?: number; id?: string; [key: string]: unknown };
  origin?: PairOrigin;
  annotator?: string;
  /** ISO 8601 time of the last judgement. */
  time?: string;
  rationale?: string;
  status?: PairStatus;
  [key: string]: unknown;
}

export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  /** Module names to adapt, e.g. ["q_proj", "v_proj"]. */
  targets: string[];
}

export interface DecodingConfig {
  temperature: number;
  top_k: number;
  top_p: number;
  max_new_tokens: number;
}

/** How the evaluation decodes, the same for the models before and after alignment (deterministic). */
export interface EvaluationDecoding {
  max_new_tokens: number;
  num_beams: number;
  repetition_penalty: number;
  no_repeat_ngram_size: number;
}

/** What both stages' optimisation takes (the schema's `common` block). */
export interface StageTraining {
  epochs: number;
  lr: number;
  warmup_steps: number;
  schedule: 'constant' | 'cosine';
  grad_clip: number;
  batch_size: number;
  grad_accum: number;
  max_length: number;
  weight_decay: number;
  lora: LoraConfig | null;
}

export interface Stage1Config extends StageTraining {
  /** At most this fraction of select items answer "none" (the rest give their place to repeats of named ones, seeded); absent: one each. */
  select_none_max?: number;
}

export interface Stage2Config extends StageTraining {
  beta: number;
  loss: 'sigmoid' | 'ipo';
  label_smoothing: number;
  /** How the stage-1 model samples rejected responses from history-only prompts. */
  rejected: DecodingConfig;
  /** How many training examples (drawn with the run's seed) get a sampled rejection; absent: all. */
  examples?: number;
}

/** `*.palrun.yaml`, with every default filled in (the schema's defaults: schemas.ts). */
export interface RunConfig {
  name: string;
  /** `pal`: both stages, select then generate. `finetune`: the paper's baseline (persona + history -> response, one stage). */
  method: 'pal' | 'finetune';
  model: { base: string; tokenizer?: string };
  data: { dialogues: string[]; pairs: string[]; personas: string[] };
  stage1: Stage1Config;
  stage2: Stage2Config;
  evaluation: EvaluationDecoding;
  device: string;
  precision: 'auto' | 'fp32' | 'bf16' | 'fp16';
  output: string;
  seed: number;
  [key: string]: unknown;
}

/** A problem found in a file, located for a person and for editors (1-based line and column). */
export interface Problem {
  file: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  severity: 'error' | 'warning' | 'info';
  /** Stable identifier of the kind of problem (e.g. "persona/duplicate-fact"), for filters and tests. */
  code: string;
  message: string;
}
