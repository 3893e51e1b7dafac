/**
 * Preference pairs made from sampled responses (the generation panel): the record, in the shape
 * stage 2 reads writers' pairs (mixture.ts `annotatedPairs`), and the one line that appends it to
 * a `*.pairs.jsonl` file without changing any byte already there.
 */
import type { NoRepeatSource } from './decoding';
import type { ChatMessage, PreferencePair } from './formats/types';
import { isPartnerTurn } from './prompts';

/** How the two responses were sampled: kept with the pair, so a writer knows what produced them. */
export interface SamplingRecord {
  readonly model: string;
  readonly temperature: number;
  readonly top_k: number;
  readonly top_p: number;
  readonly max_new_tokens: number;
  /** Present only when on (above 1, or above 0). */
  readonly repetition_penalty?: number;
  readonly no_repeat_ngram_size?: number;
  /** Where that ban took its n-grams from (core/decoding.ts), with it. */
  readonly no_repeat_ngram_from?: NoRepeatSource;
  /** The seeds of the chosen and the rejected response. */
  readonly seeds: readonly [number, number];
  /** The persona fact each was generated with (chosen, rejected): index among the facts of persona_ids in order (-1: none), and its words. */
  readonly selected?: readonly [SelectedFact, SelectedFact];
}

export interface SelectedFact {
  readonly index: number;
  readonly text: string;
}

export interface SampledPairInput {
  /** The dialogue so far, oldest first; the last turn is the partner's (the user's). */
  readonly history: readonly string[];
  readonly personaIds: readonly string[];
  readonly chosen: string;
  readonly rejected: string;
  readonly time: Date;
  readonly sampling?: SamplingRecord;
}

/** When a pair was judged, as every pair records it: ISO 8601 in UTC to the second ("2026-12-01T10:20:30Z"). */
export function judgementTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * A judged pair. One turn of history is TRL's standard format (text); longer dialogues are its
 * conversational format, with roles counted back from the last turn (the user's), as PAL's prompts
 * tag speakers. Origin `annotated`: a writer judged it, and stage 2 trains on it.
 */
export function sampledPair(input: SampledPairInput): PreferencePair {
  const { history } = input;
  if (history.length === 0) throw new Error('A preference pair needs at least one turn of dialogue.');
  const reply = (content: string): ChatMessage[] => [{ role: 'assistant', content }];
  const conversational = history.length > 1;
  return {
    prompt: conversational ? history.map((content, i) => ({ role: isPartnerTurn(history, i) ? 'user' : 'assistant', content })) : history[0]!,
    chosen: conversational ? reply(input.chosen) : input.chosen,
    rejected: conversational ? reply(input.rejected) : input.rejected,
    persona_ids: [...input.personaIds],
    origin: 'annotated',
    time: judgementTime(input.time),
    status: 'chosen',
    ...(input.sampling
      ? {
          sampling: {
            ...input.sampling,
            seeds: [...input.sampling.seeds],
            ...(input.sampling.selected ? { selected: input.sampling.selected.map((s) => ({ ...s })) } : {}),
          },
        }
      : {}),
  };
}

/**
 * What to insert at the very end of `text` to append `record` as one JSON line, and the 1-based
 * line it lands on. A file without a final newline gets one first; the file's own line ending
 * (CRLF or LF, by its first line) is used, so nothing before the insertion changes.
 */
export function jsonlAppend(text: string, record: unknown): { insert: string; line: number } {
  const eol = /\r\n/.test(text.slice(0, text.indexOf('\n') + 1)) ? '\r\n' : '\n';
  const json = JSON.stringify(record);
  if (json === undefined || json.includes('\n')) throw new Error('A JSON Lines record must serialise to one line.');
  const newlines = text.split('\n').length - 1;
  // An empty file (a byte-order mark alone is empty too) takes the record as its first line.
  if (text === '' || text === '\uFEFF') return { insert: json + eol, line: 1 };
  if (text.endsWith('\n')) return { insert: json + eol, line: newlines + 1 };
  return { insert: eol + json + eol, line: newlines + 2 };
}
