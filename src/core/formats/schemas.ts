/**
 * JSON Schemas of the authoring formats: the one source of their shape. The validators check files
 * against them (with writer-friendly messages, see validate.ts), the build writes them to
 * dist/schemas/ for VS Code (validation, completion and hovers in the plain text editor), and the
 * run-config defaults are the schemas' `default`s.
 *
 * Records allow fields the schema does not name (kept, and flagged only when they look like a typo
 * of a known one), since files are shared with other tools.
 */

import { NO_REPEAT_SOURCES } from '../decoding';

type Schema = Record<string, unknown>;

/**
 * The TypeScript type of what a schema accepts, with every default filled in (as the validators
 * fill them): a property with a `default`, or named in `required`, is always there; the others are
 * optional. Covers what these schemas use: enum, string/number/integer/boolean/null, arrays with
 * `items`, and objects with `properties` (also as `["object", "null"]`). So the run config's type is
 * the schema's, and a setting is declared once.
 */
type Primitive<T> = T extends 'integer' | 'number' ? number : T extends 'string' ? string : T extends 'boolean' ? boolean : T extends 'null' ? null : never;
type Filled<P, R> = { -readonly [K in keyof P as P[K] extends { readonly default: unknown } ? K : K extends R ? K : never]: FromSchema<P[K]> };
type Optional<P, R> = { -readonly [K in keyof P as P[K] extends { readonly default: unknown } ? never : K extends R ? never : K]?: FromSchema<P[K]> };
type ObjectOf<P, S> = Filled<P, S extends { readonly required: readonly (infer R)[] } ? R : never> &
  Optional<P, S extends { readonly required: readonly (infer R)[] } ? R : never>;
type NullIfAllowed<S> = S extends { readonly type: readonly (infer T)[] } ? ('null' extends T ? null : never) : never;
export type FromSchema<S> = S extends { readonly enum: readonly (infer E)[] }
  ? E
  : S extends { readonly properties: infer P }
    ? ObjectOf<P, S> | NullIfAllowed<S>
    : S extends { readonly type: 'array'; readonly items: infer I }
      ? FromSchema<I>[]
      : S extends { readonly type: infer T }
        ? T extends readonly (infer U)[]
          ? Primitive<U>
          : Primitive<T>
        : unknown;

const nonEmptyText = (description: string) => ({ type: 'string', minLength: 1, description }) as const satisfies Schema;

const dialogueTurn: Schema = {
  type: 'object',
  required: ['speaker', 'text'],
  properties: {
    speaker: nonEmptyText('Who speaks: "user", "persona", or a name.'),
    text: nonEmptyText('What they say.'),
  },
};

export const personaSchema: Schema = {
  $id: 'https://pal-studio.dev/schemas/persona.schema.json',
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'PAL Studio persona',
  description: 'One character: who they are, as short first-person facts PAL learns to select from.',
  type: 'object',
  required: ['id', 'name', 'facts'],
  properties: {
    id: {
      type: 'string',
      pattern: '^[a-z0-9][a-z0-9_-]*$',
      description: 'Identifier used by dialogue sets and preference pairs: lower-case letters, digits, - and _.',
    },
    name: nonEmptyText("The character's name."),
    facts: {
      type: 'array',
      items: nonEmptyText('One short first-person sentence, e.g. "i grew up on a farm ."'),
      description: 'Persona facts, one short first-person sentence each (as in PERSONA-CHAT).',
    },
    description: { type: 'string', description: 'Who the character is, in a few sentences.' },
    style: { type: 'string', description: 'How the character speaks.' },
    examples: {
      type: 'array',
      description: 'Example dialogues that show the character speaking.',
      items: { type: 'object', required: ['turns'], properties: { turns: { type: 'array', items: dialogueTurn, minItems: 1 } } },
    },
    tags: { type: 'array', items: { type: 'string' }, description: 'Free labels for finding personas.' },
    extensions: {
      type: 'object',
      description: 'Anything else, kept as it is (importers keep what has no place in this format here).',
    },
  },
};

const persona_index = {
  type: 'integer',
  minimum: -1,
  description: '0-based index of the persona sentence the response relies on, or -1 for none.',
};

export const dialogueSchema: Schema = {
  $id: 'https://pal-studio.dev/schemas/dialogue.schema.json',
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'PAL Studio dialogue example (one line of a .dialogues.jsonl file)',
  type: 'object',
  required: ['history', 'response', 'persona_index', 'split'],
  properties: {
    id: { type: 'string', description: 'A stable identifier of the example.' },
    personas: { type: 'array', items: nonEmptyText('A persona sentence.'), description: 'The persona sentences, inline (or give persona_id).' },
    persona_id: { type: 'string', minLength: 1, description: 'The id of a persona file whose facts are the persona sentences (or give personas).' },
    history: { type: 'array', items: { type: 'string' }, description: 'The dialogue so far, oldest first; the last turn is the partner’s.' },
    response: nonEmptyText('The gold response.'),
    persona_index,
    split: { enum: ['train', 'valid', 'test'], description: 'Which split the example belongs to.' },
    source: { type: 'string', description: 'Where the example came from.' },
  },
};

const chatMessage: Schema = {
  type: 'object',
  required: ['role', 'content'],
  properties: { role: nonEmptyText('system, user or assistant.'), content: { type: 'string', description: 'The message text.' } },
};
const textOrMessages = (description: string): Schema => ({ type: ['string', 'array'], items: chatMessage, description });

export const pairSchema: Schema = {
  $id: 'https://pal-studio.dev/schemas/pair.schema.json',
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'PAL Studio preference pair (one line of a .pairs.jsonl file, TRL-compatible)',
  type: 'object',
  required: ['prompt', 'chosen', 'rejected'],
  properties: {
    prompt: textOrMessages('The prompt: text (standard) or a list of messages (conversational).'),
    chosen: textOrMessages('The preferred response.'),
    rejected: textOrMessages('The dispreferred response.'),
    persona_ids: { type: 'array', items: { type: 'string' }, description: 'Personas the pair is about.' },
    dialogue: {
      type: 'object',
      description: 'The dialogue example the pair was made from.',
      properties: { file: { type: 'string' }, line: { type: 'integer', minimum: 1 }, id: { type: 'string' } },
    },
    origin: { enum: ['annotated', 'pal-stage2', 'imported'], description: 'Written by an annotator, generated by PAL stage 2, or imported.' },
    annotator: { type: 'string', description: 'Who judged the pair.' },
    time: { type: 'string', description: 'When it was judged (ISO 8601).' },
    rationale: { type: 'string', description: 'Why the chosen response is better.' },
    status: { enum: ['pending', 'chosen', 'skipped', 'tie'], description: 'pending: not judged yet; chosen: judged as given; skipped; tie.' },
  },
};

const lora = {
  type: ['object', 'null'],
  description: 'LoRA adapters instead of full fine-tuning (null: full fine-tuning).',
  properties: {
    r: { type: 'integer', minimum: 1, default: 16, description: 'Rank.' },
    alpha: { type: 'number', exclusiveMinimum: 0, default: 32, description: 'Scaling numerator (scale = alpha / r).' },
    dropout: { type: 'number', minimum: 0, maximum: 1, default: 0.05 },
    targets: { type: 'array', items: { type: 'string' }, default: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], description: 'Module names to adapt.' },
  },
} as const satisfies Schema;

const common = (lr: number, epochs: number) =>
  ({
    epochs: { type: 'integer', minimum: 1, default: epochs, description: 'Passes over the data.' },
    lr: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: lr, description: 'Peak learning rate (AdamW).' },
    warmup_steps: { type: 'integer', minimum: 0, default: 100, description: 'Linear warm-up steps.' },
    schedule: { enum: ['constant', 'cosine'], default: 'constant', description: 'After warm-up: constant (as PAL’s code) or cosine decay.' },
    grad_clip: { type: 'number', exclusiveMinimum: 0, default: 10, description: 'Gradient norm clip.' },
    batch_size: { type: 'integer', minimum: 1, default: 8, description: 'Examples per step per process.' },
    grad_accum: { type: 'integer', minimum: 1, default: 1, description: 'Steps accumulated before each update.' },
    max_length: { type: 'integer', minimum: 16, default: 512, description: 'Tokens per example; the prompt’s start is cut, never the target.' },
    weight_decay: { type: 'number', minimum: 0, default: 0, description: 'AdamW weight decay (PAL’s code and TRL: 0).' },
    group_by_length: {
      type: 'boolean',
      default: true,
      description:
        'Batches of examples of about one length (transformers’ group_by_length): much less padding on dialogue rows of mixed lengths. false: batches drawn at random.',
    },
  }) as const satisfies Record<string, Schema>;

export const runConfigSchema = {
  $id: 'https://pal-studio.dev/schemas/palrun.schema.json',
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'PAL Studio alignment run',
  description: 'A PAL run: stage 1 (persona-aware learning) then stage 2 (DPO against the stage-1 model’s persona-blind responses).',
  type: 'object',
  required: ['model', 'data'],
  properties: {
    name: { type: 'string', minLength: 1, description: 'Run name (default: the file name).' },
    method: {
      enum: ['pal', 'finetune'],
      default: 'pal',
      description:
        'pal: stage 1 (select + generate) then stage 2 (DPO), select then generate at inference. finetune: the paper’s baseline, plain fine-tuning on persona + history -> response (stage 1 settings, no stage 2), for comparisons.',
    },
    model: {
      type: 'object',
      required: ['base'],
      properties: {
        base: nonEmptyText('The base model: a local folder (config.json + weights), or hf:<repo> when the hub is allowed.'),
        tokenizer: { type: 'string', description: 'A tokenizer folder, when not the model’s own.' },
      },
    },
    data: {
      type: 'object',
      required: ['dialogues'],
      properties: {
        dialogues: { type: 'array', items: { type: 'string' }, minItems: 1, description: '.dialogues.jsonl files (globs allowed), relative to this file.' },
        pairs: { type: 'array', items: { type: 'string' }, default: [], description: 'Writers’ .pairs.jsonl files that join the stage-2 pairs.' },
        personas: { type: 'array', items: { type: 'string' }, default: [], description: 'Persona files or folders for persona_id references.' },
      },
    },
    stage1: {
      type: 'object',
      default: {},
      description: 'Persona-aware learning: select + generate, 1:1.',
      properties: {
        ...common(2e-5, 3),
        lora: { ...lora, default: null },
        select_none_max: {
          type: 'number',
          exclusiveMinimum: 0,
          maximum: 1,
          description:
            'At most this fraction of select items answer "none": extra ones (drawn with the run’s seed) give their place to repeats of select items that name a fact, so that select and generate items stay 1:1. For data whose labels are mostly "none" (heuristic labels), so that select learns to name facts. Absent: one select item per example, as PAL does.',
        },
      },
    },
    stage2: {
      type: 'object',
      default: {},
      description: 'Persona alignment: DPO with the stage-1 model as the frozen reference.',
      properties: {
        ...common(1e-6, 3),
        beta: { type: 'number', exclusiveMinimum: 0, default: 0.1, description: 'DPO temperature.' },
        loss: { enum: ['sigmoid', 'ipo'], default: 'sigmoid', description: 'sigmoid (DPO) or IPO.' },
        label_smoothing: { type: 'number', minimum: 0, maximum: 0.5, default: 0, description: 'Conservative DPO smoothing.' },
        lora: { ...lora, default: null },
        examples: {
          type: 'integer',
          minimum: 1,
          description: 'How many training examples (drawn with the run’s seed) get a sampled rejection and a pair; absent: all of them.',
        },
        rejected: {
          type: 'object',
          default: {},
          description: 'Sampling of rejected responses from history-only prompts (PAL’s code: T=1, 40 new tokens).',
          properties: {
            temperature: { type: 'number', minimum: 0, default: 1, description: '0 = greedy.' },
            top_k: { type: 'integer', minimum: 0, default: 0, description: '0 = off.' },
            top_p: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 1 },
            max_new_tokens: { type: 'integer', minimum: 1, default: 40 },
          },
        },
      },
    },
    evaluation: {
      type: 'object',
      default: {},
      description: 'How the held-out examples are answered, before and after alignment alike: greedy (or beam search), deterministic.',
      properties: {
        max_new_tokens: { type: 'integer', minimum: 1, default: 40, description: 'Longest response (PAL’s code: 40).' },
        num_beams: { type: 'integer', minimum: 1, maximum: 16, default: 1, description: '1 = greedy; PAL’s GPT-2 code used 3.' },
        repetition_penalty: {
          type: 'number',
          minimum: 1,
          default: 1,
          description: 'Above 1, tokens already in the response are made less likely (Hugging Face’s repetition_penalty, response only). 1 = off.',
        },
        no_repeat_ngram_size: {
          type: 'integer',
          minimum: 0,
          default: 0,
          description: 'Above 0, no n-gram of this size occurs twice in a response (Hugging Face’s no_repeat_ngram_size, response only). 0 = off.',
        },
        no_repeat_ngram_from: {
          enum: NO_REPEAT_SOURCES,
          default: 'reply',
          description:
            'Where no_repeat_ngram_size also looks: reply (the response alone), partner (the partner’s turns too: no parroting), or prompt (the whole prompt, facts too, as Hugging Face’s generate does for a decoder-only model).',
        },
        prefer_selected_fact: {
          type: 'boolean',
          default: false,
          description:
            'With num_beams above 1: answer with the best reply of the beam that uses the selected persona sentence (the labeller’s word-overlap rule), where one does. false = PAL’s protocol (the best reply).',
        },
      },
    },
    device: { type: 'string', pattern: '^(auto|cpu|cuda(:\\d+)?|mps)$', default: 'auto', description: 'auto, cpu, cuda, cuda:N or mps.' },
    precision: {
      enum: ['auto', 'fp32', 'bf16', 'fp16'],
      default: 'auto',
      description:
        'auto: bf16 on GPUs that have it, else fp32. bf16 on the CPU too: a LoRA step of a 135M model ran 1.8x faster on a CPU with AVX512-BF16 (AMX too); where bf16 is emulated it is slower.',
    },
    output: { type: 'string', minLength: 1, default: 'runs', description: 'Folder for the run directory, relative to this file.' },
    seed: { type: 'integer', minimum: 0, default: 42 },
  },
} as const satisfies Schema;

export const SCHEMAS = {
  persona: personaSchema,
  dialogue: dialogueSchema,
  pair: pairSchema,
  palrun: runConfigSchema,
} as const;
