/**
 * Importer of Google's Synthetic-Persona-Chat CSV: one conversation a row, with the columns
 * `user 1 personas` and `user 2 personas` (one sentence a line) and `Best Generated Conversation`
 * (lines "User 1: ..." / "User 2: ...").
 *
 * Every turn that answers the other speaker becomes an example, with that speaker's personas and
 * all earlier turns as history. The conversations were written by a language model and are not
 * always tidy; what this importer does with the untidy parts (seen in the published test split):
 *
 * - "* * User 1: * * text" (markdown bold around the label) counts as "User 1: text";
 * - blank lines, and narration lines wholly inside [...], (...) or *...* ("[The next day]",
 *   "* * *"), are left out;
 * - any other line without a label continues the turn above it (a list, a recipe);
 * - two turns in a row by the same speaker are one turn, their lines joined, so that the history
 *   keeps alternating as PAL's examples require;
 * - a conversation with no "User 1:"/"User 2:" label at all cannot be attributed: the row is
 *   skipped with a warning rather than guessed (one row of the test split is like this, and one
 *   has an empty conversation).
 */
import { parse } from 'csv-parse/sync';
import { problem } from '../formats/problems';
import type { DialogueExample, Problem, Split } from '../formats/types';
import { labelPersona, type LabelOptions } from '../labeller';
import type { DialogueImport } from './parlai';

export interface SpcImportOptions {
  /** The split the examples belong to (default "test", the split Google published this file as). */
  split?: Split;
  /** `source` of every example (default "synthetic-persona-chat"). */
  source?: string;
  labeller?: LabelOptions;
}

export const SPC_COLUMNS = {
  user1Personas: 'user 1 personas',
  user2Personas: 'user 2 personas',
  conversation: 'Best Generated Conversation',
} as const;

type Speaker = '1' | '2';

export interface SpcTurn {
  speaker: Speaker;
  text: string;
}

/** Why a conversation could not be read, for the writer. */
export interface ConversationProblem {
  /** 0-based line inside the conversation cell. */
  lineInCell: number;
  severity: Problem['severity'];
  code: string;
  message: string;
}

const SPEAKER_LINE = /^[*\s]*user\s*([12])[*\s]*:[*\s]*(.*)$/i;
const NARRATION_LINE = /^(\[.*\]|\(.*\)|\*.*\*|[*\s]+)$/;

/** The turns of one `Best Generated Conversation` cell (see the rules at the top of this file). */
export function parseSpcConversation(cell: string): { turns: SpcTurn[]; problems: ConversationProblem[] } {
  const turns: SpcTurn[] = [];
  const problems: ConversationProblem[] = [];
  cell.split(/\r?\n/).forEach((rawLine, lineInCell) => {
    const line = rawLine.trim();
    if (line === '' || NARRATION_LINE.test(line)) return;
    const labelled = SPEAKER_LINE.exec(line);
    const last = turns[turns.length - 1];
    if (labelled) {
      const speaker = labelled[1] as Speaker;
      const text = (labelled[2] ?? '').trim();
      if (last && last.speaker === speaker) {
        if (text !== '') last.text = last.text === '' ? text : `${last.text}\n${text}`;
      } else {
        turns.push({ speaker, text });
      }
    } else if (last) {
      last.text = last.text === '' ? line : `${last.text}\n${line}`;
    } else {
      if (!problems.some((p) => p.code === 'spc/text-before-first-turn')) {
        problems.push({
          lineInCell,
          severity: 'warning',
          code: 'spc/text-before-first-turn',
          message: 'This line comes before any "User 1:" or "User 2:" label, so it belongs to no speaker; it was left out.',
        });
      }
    }
  });
  if (turns.length === 0) {
    problems.length = 0;
    problems.push(
      cell.trim() === ''
        ? { lineInCell: 0, severity: 'warning', code: 'spc/empty-conversation', message: 'This row has no conversation; it was skipped.' }
        : {
            lineInCell: 0,
            severity: 'warning',
            code: 'spc/no-speaker-labels',
            message: 'This conversation has no "User 1:" or "User 2:" label, so its turns cannot be given to a speaker; the row was skipped.',
          },
    );
  }
  // A turn left empty ("User 2:" and nothing more) answers nothing; drop it and merge around it.
  const kept: SpcTurn[] = [];
  for (const turn of turns) {
    if (turn.text === '') continue;
    const last = kept[kept.length - 1];
    if (last && last.speaker === turn.speaker) last.text = `${last.text}\n${turn.text}`;
    else kept.push({ ...turn });
  }
  return { turns: kept, problems };
}

function sentences(cell: string): string[] {
  return cell
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function countNewlines(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 10) n++;
  return n;
}

interface CsvRecord {
  record: string[];
  info: { lines: number };
}

interface CsvSkip {
  code?: string;
  message: string;
  lines?: number;
}

export function importSyntheticPersonaChat(text: string, file: string, options: SpcImportOptions = {}): DialogueImport {
  const split = options.split ?? 'test';
  const source = options.source ?? 'synthetic-persona-chat';
  const problems: Problem[] = [];
  const examples: DialogueExample[] = [];
  // Syntax errors are collected while parsing, before the rows are read: give all in file order.
  const done = (): DialogueImport => {
    problems.sort((a, b) => a.line - b.line || a.column - b.column);
    return { examples, problems };
  };

  // csv-parse counts lines of "\r\n" files inconsistently; with "\n" alone, `info.lines` is the
  // line a record ends on, which with the record's own line breaks gives the line it starts on.
  const normalized = text.replace(/\r\n?/g, '\n');
  const skipped: CsvSkip[] = [];
  const records = parse(normalized, {
    bom: true,
    info: true,
    relax_column_count: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    on_skip: (err) => {
      if (err) skipped.push(err as unknown as CsvSkip);
      return undefined;
    },
  }) as unknown as CsvRecord[];

  // csv-parse cannot find the next row after a broken quote (a quoted cell may hold line breaks),
  // so everything after the first such error is lost; the messages say so.
  for (const err of skipped) {
    const message =
      err.code === 'CSV_QUOTE_NOT_CLOSED'
        ? 'The file ends inside a quoted cell: a quote opened above was never closed, so the rows after it could not be read.'
        : `This row is not valid CSV (${err.message}); it and the rows after it could not be read. ` +
          'A cell with line breaks, commas or quotes is wrapped in "...", and a quote inside it is written "".';
    problems.push(problem(file, { line: err.lines ?? 1, column: 1 }, 'error', 'spc/csv-syntax', message));
  }

  const [header, ...rows] = records;
  if (!header) {
    problems.push(problem(file, { line: 1, column: 1 }, 'error', 'spc/empty', 'The file has no header row and no conversations.'));
    return done();
  }
  const columnIndex = (name: string) => header.record.findIndex((h) => h.trim().toLowerCase() === name.toLowerCase());
  const user1Column = columnIndex(SPC_COLUMNS.user1Personas);
  const user2Column = columnIndex(SPC_COLUMNS.user2Personas);
  const conversationColumn = columnIndex(SPC_COLUMNS.conversation);
  const missing = [
    [user1Column, SPC_COLUMNS.user1Personas],
    [user2Column, SPC_COLUMNS.user2Personas],
    [conversationColumn, SPC_COLUMNS.conversation],
  ]
    .filter(([index]) => index === -1)
    .map(([, name]) => `"${name}"`);
  if (missing.length > 0) {
    problems.push(
      problem(
        file,
        { line: startLine(header), column: 1 },
        'error',
        'spc/header',
        `The header row lacks the column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}; is this a Synthetic-Persona-Chat CSV?`,
      ),
    );
    return done();
  }

  rows.forEach((row, rowIndex) => {
    const line = startLine(row);
    const cell = (index: number) => row.record[index];
    const user1 = cell(user1Column);
    const user2 = cell(user2Column);
    const conversation = cell(conversationColumn);
    if (user1 === undefined || user2 === undefined || conversation === undefined) {
      problems.push(
        problem(
          file,
          { line, column: 1 },
          'error',
          'spc/missing-column',
          `This row has ${row.record.length} cell${row.record.length === 1 ? '' : 's'} where the header names ${header.record.length}; it was skipped.`,
        ),
      );
      return;
    }
    const personas = { '1': sentences(user1), '2': sentences(user2) };
    const parsed = parseSpcConversation(conversation);
    // The conversation cell starts on the row's line plus the line breaks of the cells before it.
    const cellLine = line + row.record.slice(0, conversationColumn).reduce((n, c) => n + countNewlines(c), 0);
    for (const p of parsed.problems) {
      problems.push(problem(file, { line: cellLine + p.lineInCell, column: 1 }, p.severity, p.code, p.message));
    }
    for (const speaker of ['1', '2'] as const) {
      if (personas[speaker].length === 0 && parsed.turns.some((t, i) => i > 0 && t.speaker === speaker)) {
        problems.push(
          problem(
            file,
            { line, column: 1 },
            'warning',
            'spc/no-persona',
            `User ${speaker} has no persona sentence in this row, so their examples have no persona to rely on.`,
          ),
        );
      }
    }
    parsed.turns.forEach((turn, turnIndex) => {
      if (turnIndex === 0) return; // nothing to answer yet
      const speakerPersonas = personas[turn.speaker];
      examples.push({
        id: `${rowIndex}-${turnIndex}`,
        personas: [...speakerPersonas],
        history: parsed.turns.slice(0, turnIndex).map((t) => t.text),
        response: turn.text,
        persona_index: labelPersona(speakerPersonas, turn.text, options.labeller),
        split,
        source,
      });
    });
  });
  return done();
}

function startLine(row: CsvRecord): number {
  return row.info.lines - row.record.reduce((n, c) => n + countNewlines(c), 0);
}
