/**
 * PAL Studio's authoring formats: the writer's files are the source of truth, so these types are
 * what every part of the product (extension, engine, CLI, trainer data preparation) agrees on.
 *
 * Field names follow the snake_case of TRL and Hugging Face datasets, so the files can be used by
 * those tools as they are. Every record keeps fields it does not know (`[key: string]: unknown`):
 * a file written by a newer PAL Studio, or extended by hand, loses nothing when this one saves it.
 */

import type { FromSchema, runConfigSchema } from './schemas';

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

// The run config's types are its schema's (schemas.ts, FromSchema): a setting is declared once,
// there, with its default and description.
type RunConfigSchema = typeof runConfigSchema;
type Stage1Schema = RunConfigSchema['properties']['stage1'];
type Stage2Schema = RunConfigSchema['properties']['stage2'];

/** A stage's LoRA block (null in the config: full fine-tuning). */
export type LoraConfig = NonNullable<FromSchema<Stage1Schema['properties']['lora']>>;
/** How the stage-1 model samples stage 2's rejected responses (stage2.rejected). */
export type DecodingConfig = FromSchema<Stage2Schema['properties']['rejected']>;
/** How the evaluation decodes, the same for the models before and after alignment (deterministic). */
export type EvaluationDecoding = FromSchema<RunConfigSchema['properties']['evaluation']>;
export type Stage1Config = FromSchema<Stage1Schema>;
export type Stage2Config = FromSchema<Stage2Schema>;

/** `*.palrun.yaml`, with every default filled in (the schema's defaults) and the name (the file's, when not given). */
export type RunConfig = Omit<FromSchema<RunConfigSchema>, 'name'> & { name: string; [key: string]: unknown };

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
