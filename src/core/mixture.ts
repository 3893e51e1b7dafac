/**
 * From writers' files to PAL's training text: stage 1's select/generate mixture, the
 * history-only prompts stage 2 samples rejections from, and stage 2's preference pairs. Text
 * only: the engine tokenizes, the trainer trains.
 */
import type { ChatMessage, DialogueExample, Persona, PreferencePair } from './formats/types';
import { labelPersona } from './labeller';
import { mulberry32 } from './random';
import { generatePrompt, historyOnlyPrompt, plainPrompt, responseTarget, selectPrompt, selectTarget, TEXT_FORMAT, type PromptFormat } from './prompts';

/** An example with its persona sentences in hand (persona_id looked up). */
export interface ResolvedExample {
  readonly id: string;
  readonly personas: readonly string[];
  readonly history: readonly string[];
  readonly response: string;
  readonly personaIndex: number;
  readonly split: DialogueExample['split'];
  /** Where it was read (the resolver's `at`: "file:line"), for messages about it. */
  readonly source?: string;
}

export interface TextItem {
  readonly kind: 'select' | 'generate' | 'plain';
  readonly exampleId: string;
  readonly prompt: string;
  readonly target: string;
}

export interface TextPair {
  readonly id: string;
  readonly prompt: string;
  readonly chosen: string;
  readonly rejected: string;
  readonly origin: 'pal-stage2' | 'annotated';
  /** The rejection was cut before the model ended it: it gets no end-of-sequence token. */
  readonly rejectedCut?: boolean;
}

/** A persona-blind sample, as stage 2 reads it: its text, and whether the model ended it itself. */
export interface Rejection {
  readonly text: string;
  readonly ended: boolean;
}

/** Looks persona ids up; an unknown id is an error that names the example. */
export function resolveExample(ex: DialogueExample, at: string, personas: ReadonlyMap<string, Persona>): ResolvedExample {
  const id = ex.id ?? at;
  let sentences = ex.personas;
  if (!sentences) {
    const persona = personas.get(ex.persona_id ?? '');
    if (!persona) throw new Error(`example ${id}: no persona file has the id "${ex.persona_id}" (data.personas in the run config says where to look)`);
    sentences = persona.facts;
  }
  return { id, personas: sentences, history: ex.history, response: ex.response, personaIndex: ex.persona_index, split: ex.split, source: at };
}

/** Stage 1: every example gives one select and one generate item (PAL's 1:1 mixture). */
export function stage1Items(examples: readonly ResolvedExample[], format: PromptFormat = TEXT_FORMAT): TextItem[] {
  return examples.flatMap((ex) => [
    { kind: 'select' as const, exampleId: ex.id, prompt: selectPrompt(ex, format), target: selectTarget(ex.personas, ex.personaIndex, format) },
    // Training highlights the gold persona; inference highlights the one the model selected.
    { kind: 'generate' as const, exampleId: ex.id, prompt: generatePrompt(ex, ex.personaIndex, format), target: responseTarget(ex.response, format) },
  ]);
}

/**
 * How many select items each example gives, so that at most `maxFraction` of them answer "none"
 * while there are still exactly as many select items as generate items (PAL's 1:1 mixture): the
 * "none" examples beyond the limit (drawn with `seed`) give none, and their places go to repeats
 * of the examples that name a fact, spread evenly (the remainder drawn with the seed). Leaving
 * the extra "none" items out, as version 1 did, made the mixture lean to generate.
 * Every example gives one when `maxFraction` is absent or no example names a fact.
 */
export function selectCounts(examples: readonly ResolvedExample[], maxFraction: number | undefined, seed: number): Map<string, number> {
  const counts = new Map(examples.map((ex) => [ex.id, 1]));
  const isNone = (ex: ResolvedExample) => ex.personaIndex < 0 || ex.personaIndex >= ex.personas.length;
  const none = examples.filter(isNone);
  const named = examples.filter((ex) => !isNone(ex));
  const keepNone = Math.min(none.length, Math.floor((maxFraction ?? 1) * examples.length));
  if (maxFraction === undefined || maxFraction >= 1 || named.length === 0 || keepNone === none.length) return counts;
  const kept = new Set(sampleExamples(none, keepNone, seed).map((ex) => ex.id));
  for (const ex of none) counts.set(ex.id, kept.has(ex.id) ? 1 : 0);
  const slots = examples.length - keepNone;
  const extra = new Set(sampleExamples(named, slots % named.length, seed + 1).map((ex) => ex.id));
  for (const ex of named) counts.set(ex.id, Math.floor(slots / named.length) + (extra.has(ex.id) ? 1 : 0));
  return counts;
}

/** The plain fine-tuning baseline: one item per example, persona + history -> response. */
export function finetuneItems(examples: readonly ResolvedExample[], format: PromptFormat = TEXT_FORMAT): TextItem[] {
  return examples.map((ex) => ({ kind: 'plain' as const, exampleId: ex.id, prompt: plainPrompt(ex, format), target: responseTarget(ex.response, format) }));
}

/**
 * `count` of the examples, drawn without replacement by a generator seeded with `seed` and kept
 * in their original order (the same run config draws the same subset on every machine).
 */
export function sampleExamples<T>(examples: readonly T[], count: number | undefined, seed: number): T[] {
  if (count === undefined || count >= examples.length) return [...examples];
  const random = mulberry32(seed);
  const index = examples.map((_, i) => i);
  for (let i = index.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [index[i], index[j]] = [index[j]!, index[i]!];
  }
  return index
    .slice(0, count)
    .sort((a, b) => a - b)
    .map((i) => examples[i]!);
}

/** Stage 2's rejection prompts: the history alone, so the stage-1 model answers persona-blind. */
export function rejectionPrompts(examples: readonly ResolvedExample[], format: PromptFormat = TEXT_FORMAT): { id: string; prompt: string }[] {
  return examples.map((ex) => ({ id: ex.id, prompt: historyOnlyPrompt(ex.history, format) }));
}

/**
 * Stage 2's pairs: chosen = gold, rejected = the persona-blind sample, both scored under the
 * generate prompt with the gold persona highlighted. A sample that is empty or equals the gold
 * response teaches nothing and is dropped.
 */
export function stage2Pairs(examples: readonly ResolvedExample[], rejected: ReadonlyMap<string, Rejection>, format: PromptFormat = TEXT_FORMAT): TextPair[] {
  const out: TextPair[] = [];
  for (const ex of examples) {
    const sample = rejected.get(ex.id);
    const r = sample?.text.trim();
    if (!r || normalise(r) === normalise(ex.response)) continue;
    out.push({
      id: ex.id,
      prompt: generatePrompt(ex, ex.personaIndex, format),
      chosen: responseTarget(ex.response, format),
      rejected: responseTarget(r, format),
      origin: 'pal-stage2',
      ...(sample!.ended ? {} : { rejectedCut: true }),
    });
  }
  return out;
}

/**
 * Stage 2's examples: those whose response uses a persona sentence. The pair teaches the model to
 * prefer the persona-grounded reply to its persona-blind one, and with no sentence highlighted
 * (the examples answering "none") there is nothing persona-grounded to prefer: such pairs only
 * pull the model toward the gold wording. All examples when none is labelled (a writer's project
 * before its replies are tied to facts).
 */
export function stage2Candidates(examples: readonly ResolvedExample[]): readonly ResolvedExample[] {
  const named = examples.filter((ex) => ex.personaIndex >= 0);
  return named.length > 0 ? named : examples;
}

/**
 * Writers' annotated pairs join stage 2 under the same generate prompt: the personas are their
 * persona_ids' facts, the history the prompt's turns, and the highlighted persona the one the chosen
 * response uses (by the same labeller as imported data). Only judged pairs ("chosen", or no status)
 * count.
 */
export function annotatedPairs(pairs: readonly PreferencePair[], personas: ReadonlyMap<string, Persona>, format: PromptFormat = TEXT_FORMAT): TextPair[] {
  const out: TextPair[] = [];
  pairs.forEach((p, i) => {
    if (p.status !== undefined && p.status !== 'chosen') return;
    const facts = (p.persona_ids ?? []).flatMap((id) => personas.get(id)?.facts ?? []);
    const history = typeof p.prompt === 'string' ? [p.prompt] : p.prompt.filter((m) => m.role !== 'system').map((m) => m.content);
    const chosen = text(p.chosen);
    const rejected = text(p.rejected);
    if (normalise(chosen) === normalise(rejected)) return;
    const input = { personas: facts, history };
    out.push({
      id: p.dialogue?.id ?? `pair-${i + 1}`,
      prompt: generatePrompt(input, labelPersona(facts, chosen), format),
      chosen: responseTarget(chosen, format),
      rejected: responseTarget(rejected, format),
      origin: 'annotated',
    });
  });
  return out;
}

function text(r: string | ChatMessage[]): string {
  return typeof r === 'string' ? r : r.map((m) => m.content).join(' ');
}

function normalise(s: string): string {
  return s.toLowerCase().replace(/\s+/g, ' ').trim();
}
