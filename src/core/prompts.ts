/**
 * PAL's prompt templates: the one place that decides what a model sees, used identically when
 * training (stage 1 and 2) and at inference (select then generate). Our own wording, PAL's
 * structure (docs/pal-method): a numbered persona block, the dialogue with alternating speaker
 * tags, and a task line.
 *
 * - select:       persona + dialogue -> "k. <sentence>" of the relevant persona, or "none"
 * - generate:     persona + dialogue + the highlighted persona -> the response
 * - history-only: dialogue alone -> the response (how stage 2 samples persona-blind rejections)
 * - plain:        persona + dialogue -> the response (the plain fine-tuning baseline, not PAL)
 *
 * Two formats carry the same structure. `text` is PAL's plain template, for models trained from
 * scratch (the embedded default model). `chat` is for chat models (a pretrained instruct base):
 * the same blocks as messages, rendered by the model's own chat template, so that the base's
 * instruction tuning is used rather than fought.
 *
 * Prompts end where the target begins; in the text format targets start with a space so that a
 * word-level tokenizer splits prompt and target at the same place in training and inference (a
 * chat prompt ends with the assistant turn's opener and a newline, so its targets do not). The
 * EOS token is added by the tokenizer step, not written here.
 */

/**
 * Bumped whenever a template's text changes: a model records the version it was trained with.
 * 2: the persona block is headed "Facts:". Version 1 headed it "Persona:", the character's own
 * speaker tag, so in every training prompt "Persona:" was followed by a numbered list, and a small
 * model replied to the generate prompt (which ends "Persona:") with "2. i have …" or "none".
 */
export const PROMPT_TEMPLATE_VERSION = 2;

/** The persona block's header: not the speaker tag (see PROMPT_TEMPLATE_VERSION 2). */
export const FACTS_HEADER = 'Facts:';

/**
 * The chat format's version, recorded like PROMPT_TEMPLATE_VERSION. 1: a system message with the
 * numbered facts, the dialogue as user/assistant turns, then a system message with the task.
 * 2: the generate task names the highlighted fact by its words alone. Version 1 wrote "uses this
 * fact: 4. my bike is older than i am .", and pal-smollm2-135m, given a fact, often replied with
 * that line, number and all ("4. my bike is older than i am").
 */
export const CHAT_PROMPT_VERSION = 2;

export const NO_PERSONA = 'none';
export const PARTNER_TAG = 'User';
export const PERSONA_TAG = 'Persona';

export type ChatRole = 'system' | 'user' | 'assistant';
export interface ChatTurn {
  readonly role: ChatRole;
  readonly content: string;
}

/**
 * How prompts are written for a model: PAL's plain text template, or messages rendered by the
 * model's chat template (`render` ends with the assistant turn opened, as Hugging Face's
 * `apply_chat_template(..., add_generation_prompt=True)` does).
 */
export type PromptFormat = { readonly kind: 'text' } | { readonly kind: 'chat'; readonly render: (messages: readonly ChatTurn[]) => string };

export const TEXT_FORMAT: PromptFormat = { kind: 'text' };

/** The template version a model trained in `kind` records in its pal.json. */
export function promptVersion(kind: PromptFormat['kind']): number {
  return kind === 'chat' ? CHAT_PROMPT_VERSION : PROMPT_TEMPLATE_VERSION;
}

export interface PromptInput {
  readonly personas: readonly string[];
  /** Oldest first; the last turn is the partner's. */
  readonly history: readonly string[];
}

function clean(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/**
 * The input with its oldest turns dropped until `fits` says the prompt fits the model's context;
 * the partner's last turn always stays. Training and inference trim alike, so a long dialogue
 * loses its oldest turns and never its persona block (cutting a prompt's start would cut the
 * personas, which PAL's tasks are about).
 */
export function trimHistory<T extends PromptInput>(input: T, fits: (input: T) => boolean): T {
  for (let drop = 0; drop < input.history.length - 1; drop++) {
    const trimmed = drop === 0 ? input : { ...input, history: input.history.slice(drop) };
    if (fits(trimmed)) return trimmed;
  }
  return input.history.length > 1 ? { ...input, history: input.history.slice(-1) } : input;
}

export function personaBlock(personas: readonly string[]): string {
  return personas.map((p, i) => `${i + 1}. ${clean(p)}`).join('\n');
}

/**
 * A whole dialogue laid out as PAL's text prompts lay one out: the facts of one speaker, then every
 * turn tagged by who says it (that speaker's turns are the persona's). Pre-training text, so that a
 * base trained by PAL Studio has seen the format its prompts use before stage 1 (issue 16).
 */
export function factsAndDialogueText(personas: readonly string[], turns: readonly { readonly own: boolean; readonly text: string }[]): string {
  const lines = turns.map((t) => `${t.own ? PERSONA_TAG : PARTNER_TAG}: ${clean(t.text)}`);
  return `${FACTS_HEADER}\n${personaBlock(personas)}\n\nDialogue:\n${lines.join('\n')}`;
}

/** Whether turn `i` of a history is the partner's: the last turn is, then they alternate back. */
export function isPartnerTurn(history: readonly unknown[], i: number): boolean {
  return (history.length - 1 - i) % 2 === 0;
}

/** Speaker tags counted back from the end: the last turn is the partner's, then they alternate. */
export function dialogueBlock(history: readonly string[]): string {
  return history.map((turn, i) => `${isPartnerTurn(history, i) ? PARTNER_TAG : PERSONA_TAG}: ${clean(turn)}`).join('\n');
}

/** The persona sentence as the select task names it: "k. sentence", or "none". */
export function selectionText(personas: readonly string[], index: number): string {
  return index >= 0 && index < personas.length ? `${index + 1}. ${clean(personas[index]!)}` : NO_PERSONA;
}

// The chat format's wording. The facts open the conversation and the task closes it (PAL's
// order: persona block, dialogue, task), so the select and generate prompts share everything but
// their last message, and select then generate computes that shared start once.
const CHAT_FACTS = 'You are the person these facts describe. Stay in character and reply in one or two short sentences.';
const CHAT_SELECT = 'Which fact does your next reply use? Answer with its number and text, or none.';
const chatUse = (fact: string | undefined) =>
  fact === undefined ? 'Your next reply uses none of the facts.' : `Your next reply uses this fact, in your own words: ${fact}`;

/** The dialogue as chat turns: the partner's last turn is the user's, and the turns alternate back from it. */
export function dialogueTurns(history: readonly string[]): ChatTurn[] {
  return history.map((turn, i) => ({ role: isPartnerTurn(history, i) ? 'user' : 'assistant', content: clean(turn) }));
}

function chatPrompt(format: { render: (m: readonly ChatTurn[]) => string }, input: PromptInput, task?: string): string {
  const facts: ChatTurn = { role: 'system', content: `${CHAT_FACTS}\n${FACTS_HEADER}\n${personaBlock(input.personas)}` };
  return format.render([facts, ...dialogueTurns(input.history), ...(task ? [{ role: 'system' as const, content: task }] : [])]);
}

export function selectPrompt(input: PromptInput, format: PromptFormat = TEXT_FORMAT): string {
  if (format.kind === 'chat') return chatPrompt(format, input, CHAT_SELECT);
  return `${FACTS_HEADER}\n${personaBlock(input.personas)}\n\nDialogue:\n${dialogueBlock(input.history)}\n\nWhich fact does ${PERSONA_TAG}'s next reply use?\nAnswer:`;
}

export function selectTarget(personas: readonly string[], index: number, format: PromptFormat = TEXT_FORMAT): string {
  return format.kind === 'chat' ? selectionText(personas, index) : ` ${selectionText(personas, index)}`;
}

export function generatePrompt(input: PromptInput, selected: number, format: PromptFormat = TEXT_FORMAT): string {
  if (format.kind === 'chat')
    return chatPrompt(format, input, chatUse(selected >= 0 && selected < input.personas.length ? clean(input.personas[selected]!) : undefined));
  return `${FACTS_HEADER}\n${personaBlock(input.personas)}\n\nDialogue:\n${dialogueBlock(input.history)}\n\nUsing: ${selectionText(input.personas, selected)}\n${PERSONA_TAG}:`;
}

/**
 * The paper's baseline, plain fine-tuning: personas and dialogue straight to the reply, with no
 * select task and no highlighted persona (a model trained on it is not a PAL model).
 */
export function plainPrompt(input: PromptInput, format: PromptFormat = TEXT_FORMAT): string {
  if (format.kind === 'chat') return chatPrompt(format, input);
  return `${FACTS_HEADER}\n${personaBlock(input.personas)}\n\nDialogue:\n${dialogueBlock(input.history)}\n\n${PERSONA_TAG}:`;
}

/** The dialogue alone; in the chat format the model's own default system message (if its template has one) stands. */
export function historyOnlyPrompt(history: readonly string[], format: PromptFormat = TEXT_FORMAT): string {
  if (format.kind === 'chat') return format.render(dialogueTurns(history));
  return `Dialogue:\n${dialogueBlock(history)}\n\n${PERSONA_TAG}:`;
}

export function responseTarget(response: string, format: PromptFormat = TEXT_FORMAT): string {
  return format.kind === 'chat' ? clean(response) : ` ${clean(response)}`;
}

/**
 * Reads a select answer back into an index: "k. sentence" (the number decides; the sentence is how
 * the model was taught to say it), a bare number, the text of one of the sentences, or "none".
 * Anything else is -1 (no persona), which is the safe reading for the generate step.
 */
export function parseSelection(answer: string, personas: readonly string[]): number {
  const text = clean(answer).toLowerCase();
  const numbered = /^(\d+)\s*[.)]?/.exec(text);
  if (numbered) {
    const k = Number(numbered[1]) - 1;
    return k >= 0 && k < personas.length ? k : -1;
  }
  if (text.startsWith(NO_PERSONA)) return -1;
  const exact = personas.findIndex((p) => text.startsWith(clean(p).toLowerCase()));
  return exact;
}
