/**
 * Which importer a file needs, judged from its content: files are renamed and shared under any
 * name, while their first lines rarely lie. The file name only settles what the content leaves
 * open (an empty file, or a broken one).
 */
import { looksLikeCorpusLine } from './corpus';
import { SPC_COLUMNS } from './spc';

export type ImportFormat = 'persona-chat' | 'spc' | 'card' | 'corpus';

/** Enough of the start of a file to recognise it, without reading megabytes. */
const SNIFF_CHARS = 64 * 1024;

const PARLAI_LINE = /^\d+ (?:your persona:|partner's persona:|[^\t\n]*\t)/;

function firstNonEmptyLines(text: string, count: number): string[] {
  const lines: string[] = [];
  for (const line of text.slice(0, SNIFF_CHARS).split(/\r?\n/)) {
    if (line.trim() === '') continue;
    lines.push(line);
    if (lines.length === count) break;
  }
  return lines;
}

function looksLikeCard(text: string): boolean | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined; // broken JSON: let the file name decide
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const card = value as Record<string, unknown>;
  if (typeof card.spec === 'string' && card.spec.startsWith('chara_card')) return true;
  // V1: the flat object. A name plus one of the fields only character cards have.
  return typeof card.name === 'string' && ['first_mes', 'mes_example', 'personality', 'scenario'].some((k) => k in card);
}

function byFileName(fileName: string): ImportFormat | undefined {
  const name = fileName.toLowerCase();
  if (name.endsWith('.jsonl') || name.endsWith('.jsonl.gz')) return 'corpus';
  if (name.endsWith('.json') || name.endsWith('.card')) return 'card';
  if (name.endsWith('.csv')) return 'spc';
  if (name.endsWith('.txt')) return 'persona-chat';
  return undefined;
}

export function guessImportFormat(text: string, fileName: string): ImportFormat | undefined {
  const body = text.replace(/^\uFEFF/, '');
  const start = body.trimStart();
  if (start.startsWith('{')) {
    // JSON lines of dialogues (a corpus) before a card: a card is one object over many lines.
    const firstLine = start.split('\n', 1)[0]!;
    if (looksLikeCorpusLine(firstLine)) return 'corpus';
    const card = looksLikeCard(body);
    if (card !== undefined) return card ? 'card' : undefined;
    return byFileName(fileName) === 'card' ? 'card' : undefined;
  }

  const lines = firstNonEmptyLines(body, 3);
  const first = lines[0];
  if (first === undefined) return byFileName(fileName);
  if (lines.every((line) => PARLAI_LINE.test(line))) return 'persona-chat';

  const header = first.toLowerCase();
  const spcColumns = [SPC_COLUMNS.user1Personas, SPC_COLUMNS.user2Personas, SPC_COLUMNS.conversation];
  if (spcColumns.every((column) => header.includes(column.toLowerCase()))) return 'spc';

  // Neither shape matched outright: a file that starts like one of them but is damaged further on
  // is still worth importing (the importer reports what is wrong), if its name agrees.
  const fromName = byFileName(fileName);
  if (fromName === 'persona-chat' && /^\d+ /.test(first)) return 'persona-chat';
  if (fromName === 'spc' && spcColumns.some((column) => header.includes(column.toLowerCase()))) return 'spc';
  return undefined;
}
