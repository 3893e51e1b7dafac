/**
 * Preference pairs (`*.pairs.jsonl`): TRL's preference format (standard: text; conversational:
 * message lists) with PAL Studio's annotation fields. Unknown fields are kept.
 */
import { parseJsonl, type JsonlDocument } from './jsonl';
import { problem } from './problems';
import type { ChatMessage, PreferencePair } from './types';
import { validateAgainstSchema } from './validate';

export function isPairsFile(file: string): boolean {
  return /\.pairs\.jsonl$/i.test(file);
}

/** The text of a response, standard or conversational (the messages' contents joined). */
export function responseText(r: string | ChatMessage[]): string {
  return typeof r === 'string' ? r : r.map((m) => m.content).join('\n');
}

export function isConversational(pair: PreferencePair): boolean {
  return Array.isArray(pair.prompt);
}

export function parsePairs(text: string, file: string): JsonlDocument<PreferencePair> {
  return parseJsonl<PreferencePair>(text, file, (value, { file, locator }) => {
    const problems = validateAgainstSchema('pair', value, file, locator);
    if (problems.some((p) => p.severity === 'error')) return { problems };
    const pair = value as PreferencePair;
    const fields = ['prompt', 'chosen', 'rejected'] as const;
    const conversational = fields.filter((k) => Array.isArray(pair[k])).length;
    if (conversational === 1 || conversational === 2) {
      // Point at the odd one out: the field whose kind differs from the other two.
      const odd = fields.find((k) => Array.isArray(pair[k]) !== conversational >= 2)!;
      problems.push(
        problem(
          file,
          locator.locate([odd]),
          'error',
          'pair/mixed-format',
          "'prompt', 'chosen' and 'rejected' must all be text (standard format) or all be lists of messages (conversational format), as TRL expects.",
        ),
      );
      return { problems };
    }
    if (responseText(pair.chosen).trim() === responseText(pair.rejected).trim()) {
      problems.push(
        problem(
          file,
          locator.locate(['rejected']),
          'warning',
          'pair/chosen-equals-rejected',
          "'chosen' and 'rejected' are the same text: the pair teaches the model nothing.",
        ),
      );
    }
    if (pair.time !== undefined && Number.isNaN(Date.parse(pair.time))) {
      problems.push(
        problem(
          file,
          locator.locate(['time']),
          'warning',
          'pair/time',
          `'time' is not a date and time PAL Studio can read (ISO 8601, e.g. "2026-11-26T09:30:00Z"): ${JSON.stringify(pair.time)}.`,
        ),
      );
    }
    return { value: pair, problems };
  });
}
