/**
 * Importer of dialogue corpora in JSON lines, one dialogue a line:
 * `{"id", "source", "turns": [{"speaker", "text"}], "persona_a"?, "persona_b"?}` (the layout of
 * the corpora the default model is pre-trained on; Synthetic-Persona-Chat's carry personas).
 *
 * - The first speaker to talk has `persona_a`, the second `persona_b` (Synthetic-Persona-Chat:
 *   user1 then user2, as its CSV's "user 1 personas" / "user 2 personas").
 * - Two turns in a row by one speaker are one turn, so that the history alternates.
 * - Every turn after the first, by a speaker who has personas, is an example: that speaker's
 *   personas, all earlier turns as history, the labeller's persona index.
 * - Dialogues without personas give no examples (a persona task needs personas); they are counted
 *   in one note rather than a warning each.
 */
import { problem } from '../formats/problems';
import type { DialogueExample, Problem, Split } from '../formats/types';
import { labelPersona, type LabelOptions } from '../labeller';
import type { DialogueImport } from './parlai';

export interface CorpusImportOptions {
  /** The split of every example (default "train"). */
  split?: Split;
  labeller?: LabelOptions;
}

interface CorpusTurn {
  speaker: string;
  text: string;
}

/**
 * A corpus dialogue's personas as the importer reads them: `a` is the first speaker's, `b` the
 * second's, each a list of non-empty trimmed sentences; absent when the dialogue gives none.
 */
export function dialoguePersonas(d: { persona_a?: unknown; persona_b?: unknown }): { a?: string[]; b?: string[] } {
  const a = stringList(d.persona_a);
  const b = stringList(d.persona_b);
  return { ...(a?.length ? { a } : {}), ...(b?.length ? { b } : {}) };
}

function stringList(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((s) => typeof s === 'string') ? value.map((s) => s.trim()).filter((s) => s !== '') : undefined;
}

/** True when the first non-empty line is a corpus dialogue (an object with a `turns` list). */
export function looksLikeCorpusLine(line: string): boolean {
  try {
    const value = JSON.parse(line) as unknown;
    return typeof value === 'object' && value !== null && Array.isArray((value as { turns?: unknown }).turns);
  } catch {
    return false;
  }
}

export function importCorpus(text: string, file: string, options: CorpusImportOptions = {}): DialogueImport {
  const split = options.split ?? 'train';
  const problems: Problem[] = [];
  const examples: DialogueExample[] = [];
  let withoutPersonas = 0;
  let firstWithout = 0;
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      problems.push(problem(file, { line, column: 1 }, 'error', 'corpus/json', `This line is not JSON (${(err as Error).message}); the dialogue was skipped.`));
      return;
    }
    const d = value as { id?: unknown; source?: unknown; turns?: unknown; persona_a?: unknown; persona_b?: unknown };
    if (typeof d !== 'object' || d === null || !Array.isArray(d.turns)) {
      problems.push(
        problem(file, { line, column: 1 }, 'error', 'corpus/shape', 'A dialogue is an object with "turns": [{"speaker", "text"}, ...]; this line was skipped.'),
      );
      return;
    }
    const turns: CorpusTurn[] = [];
    for (const t of d.turns as unknown[]) {
      const turn = t as { speaker?: unknown; text?: unknown };
      if (typeof turn?.speaker !== 'string' || typeof turn.text !== 'string') {
        problems.push(
          problem(file, { line, column: 1 }, 'error', 'corpus/turn', 'Every turn needs a "speaker" and a "text" string; the dialogue was skipped.'),
        );
        return;
      }
      const textOfTurn = turn.text.trim();
      if (textOfTurn === '') continue;
      const last = turns[turns.length - 1];
      if (last && last.speaker === turn.speaker) last.text = `${last.text}\n${textOfTurn}`;
      else turns.push({ speaker: turn.speaker, text: textOfTurn });
    }
    const speakers = [...new Set(turns.map((t) => t.speaker))];
    const personas = new Map<string, string[]>();
    const { a, b } = dialoguePersonas(d);
    if (speakers[0] !== undefined && a) personas.set(speakers[0], a);
    if (speakers[1] !== undefined && b) personas.set(speakers[1], b);
    if (personas.size === 0) {
      if (withoutPersonas++ === 0) firstWithout = line;
      return;
    }
    const id = typeof d.id === 'string' ? d.id : `line-${line}`;
    const source = typeof d.source === 'string' ? d.source : undefined;
    turns.forEach((turn, i) => {
      const own = personas.get(turn.speaker);
      if (i === 0 || !own) return;
      examples.push({
        id: `${id}#${i}`,
        personas: [...own],
        history: turns.slice(0, i).map((t) => t.text),
        response: turn.text,
        persona_index: labelPersona(own, turn.text, options.labeller),
        split,
        ...(source ? { source } : {}),
      });
    });
  });
  if (withoutPersonas > 0) {
    problems.push(
      problem(
        file,
        { line: firstWithout, column: 1 },
        'info',
        'corpus/no-personas',
        `${withoutPersonas} dialogue${withoutPersonas > 1 ? 's have' : ' has'} no persona_a/persona_b (the first on this line) and gave no examples.`,
      ),
    );
  }
  return { examples, problems };
}
