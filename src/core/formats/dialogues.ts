/**
 * Dialogue sets (`*.dialogues.jsonl`): one PAL example a line. Checked line by line, so one bad
 * line never hides the others, and written back losslessly (see jsonl.ts).
 */
import { parseJsonl, type JsonlDocument } from './jsonl';
import { problem } from './problems';
import type { DialogueExample, Problem } from './types';
import { validateAgainstSchema } from './validate';

export function isDialogueFile(file: string): boolean {
  return /\.dialogues\.jsonl$/i.test(file);
}

export function parseDialogues(text: string, file: string): JsonlDocument<DialogueExample> {
  const doc = parseJsonl<DialogueExample>(text, file, (value, { file, locator }) => {
    const problems = validateAgainstSchema('dialogue', value, file, locator);
    if (problems.some((p) => p.severity === 'error')) return { problems };
    const ex = value as DialogueExample;
    const hasInline = ex.personas !== undefined;
    const hasRef = ex.persona_id !== undefined;
    if (hasInline === hasRef) {
      problems.push(
        problem(
          file,
          locator.locate([]),
          'error',
          'dialogue/personas',
          hasInline
            ? "Give either 'personas' (the sentences) or 'persona_id' (a persona file's id), not both."
            : "Missing the personas: give 'personas' (a list of sentences) or 'persona_id' (a persona file's id).",
        ),
      );
    } else if (hasInline && ex.persona_index >= ex.personas!.length) {
      problems.push(
        problem(
          file,
          locator.locate(['persona_index']),
          'error',
          'dialogue/persona-index',
          `'persona_index' is ${ex.persona_index} but there are only ${ex.personas!.length} persona sentences (0 to ${ex.personas!.length - 1}, or -1 for none).`,
        ),
      );
    }
    if (ex.history.length === 0) {
      problems.push(
        problem(
          file,
          locator.locate(['history']),
          'warning',
          'dialogue/empty-history',
          'The history is empty: PAL examples answer a partner, so the last history turn should be what the partner said.',
        ),
      );
    }
    if (problems.some((p) => p.severity === 'error')) return { problems };
    return { value: ex, problems };
  });
  flagDuplicateIds(doc, (v) => v.id, 'dialogue/duplicate-id', 'example');
  return doc;
}

/** Ids must be unique within a file: pairs and reports refer to examples by id. */
export function flagDuplicateIds<T>(doc: JsonlDocument<T>, idOf: (v: T) => string | undefined, code: string, what: string): void {
  const firstLine = new Map<string, number>();
  for (const line of doc.lines) {
    const id = line.value !== undefined ? idOf(line.value) : undefined;
    if (id === undefined) continue;
    const first = firstLine.get(id);
    if (first === undefined) firstLine.set(id, line.number);
    else
      line.problems.push(
        problem(
          doc.file,
          { line: line.number, column: 1, endColumn: line.text.length + 1 },
          'warning',
          code,
          `Another ${what} on line ${first} has the id "${id}".`,
        ),
      );
  }
}

export type { Problem };
