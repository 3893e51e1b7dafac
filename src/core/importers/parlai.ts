/**
 * Importer of PERSONA-CHAT / ConvAI2 in ParlAI's text format ("self_original" and "both"):
 *
 *     1 your persona: i read twenty books a year.
 *     2 partner's persona: i like to ski.            (only in the "both" variants)
 *     3 hello what are doing today ?<TAB>i am good , i just got off work .
 *     4 ...<TAB>...<TAB><reward><TAB>cand 1|cand 2|...   (optional extra columns)
 *
 * Every line starts with its number in the episode; a line numbered 1 starts a new episode. Each
 * dialogue line holds the partner's utterance and "your" response, so each becomes one example.
 */
import { problem } from '../formats/problems';
import type { DialogueExample, Problem, Split } from '../formats/types';
import { labelPersona, type LabelOptions } from '../labeller';

export interface ParlaiImportOptions {
  /** The split the examples belong to (default "valid"). */
  split?: Split;
  /** `source` of every example (default "convai2"). */
  source?: string;
  labeller?: LabelOptions;
}

export interface DialogueImport {
  examples: DialogueExample[];
  problems: Problem[];
}

const YOUR_PERSONA = 'your persona:';
const PARTNER_PERSONA = "partner's persona:";

interface DialogueLine {
  partner: string;
  response: string;
}

interface Episode {
  /** Line of the episode's first line, for problems about the whole episode. */
  line: number;
  personas: string[];
  dialogue: DialogueLine[];
}

export function importParlai(text: string, file: string, options: ParlaiImportOptions = {}): DialogueImport {
  const split = options.split ?? 'valid';
  const source = options.source ?? 'convai2';
  const problems: Problem[] = [];
  const episodes: Episode[] = [];
  let episode: Episode | undefined;
  let previousNumber = 0;

  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((line, lineIndex) => {
    const lineNumber = lineIndex + 1;
    if (line.trim() === '') return;
    const at = (column: number, endColumn = line.length + 1) => ({ line: lineNumber, column, endColumn });

    const numbered = /^(\d+) (.*)$/s.exec(line);
    if (!numbered) {
      problems.push(
        problem(
          file,
          at(1),
          'error',
          'parlai/no-line-number',
          'This line does not start with its number in the episode and a space (e.g. "3 hello !\tnice to meet you ."); it was skipped.',
        ),
      );
      return;
    }
    const number = Number(numbered[1]);
    const body = numbered[2] ?? '';
    const bodyColumn = (numbered[1] ?? '').length + 2;

    if (number === 1 || episode === undefined) {
      if (number !== 1) {
        problems.push(
          problem(file, at(1, bodyColumn - 1), 'warning', 'parlai/episode-start', `The first episode starts at line number ${number} instead of 1.`),
        );
      }
      episode = { line: lineNumber, personas: [], dialogue: [] };
      episodes.push(episode);
    } else if (number !== previousNumber + 1) {
      // Numbering tells ParlAI where episodes start, so a gap hints at a lost or pasted line.
      problems.push(
        problem(
          file,
          at(1, bodyColumn - 1),
          'warning',
          'parlai/line-number',
          `Line number ${number} follows ${previousNumber}; expected ${previousNumber + 1}. Was a line lost or moved?`,
        ),
      );
    }
    previousNumber = number;

    if (body.startsWith(YOUR_PERSONA)) {
      const sentence = body.slice(YOUR_PERSONA.length).trim();
      if (sentence === '') {
        problems.push(problem(file, at(bodyColumn), 'warning', 'parlai/empty-persona', 'This persona line has no sentence.'));
      } else {
        episode.personas.push(sentence);
      }
      return;
    }
    // The "both" variants also give the partner's persona; PAL only needs the speaker's own.
    if (body.startsWith(PARTNER_PERSONA)) return;

    const columns = body.split('\t');
    if (columns.length < 2) {
      problems.push(
        problem(
          file,
          at(bodyColumn),
          'error',
          'parlai/no-tab',
          "This dialogue line has no tab: it needs the partner's utterance, a tab, then the response. It was skipped.",
        ),
      );
      return;
    }
    const partner = (columns[0] ?? '').trim();
    const response = (columns[1] ?? '').trim();
    // Any further columns (an empty reward, `|`-separated candidates) are not part of the example.
    if (response === '') {
      const tabColumn = bodyColumn + (columns[0] ?? '').length;
      problems.push(problem(file, at(tabColumn), 'error', 'parlai/empty-response', 'The response after the tab is empty; the line was skipped.'));
      return;
    }
    episode.dialogue.push({ partner, response });
  });

  const examples: DialogueExample[] = [];
  episodes.forEach((ep, episodeIndex) => {
    if (ep.dialogue.length > 0 && ep.personas.length === 0) {
      problems.push(
        problem(
          file,
          { line: ep.line, column: 1 },
          'warning',
          'parlai/no-persona',
          'This episode has no "your persona:" line, so its examples have no persona to rely on.',
        ),
      );
    }
    const history: string[] = [];
    ep.dialogue.forEach((turn, turnIndex) => {
      history.push(turn.partner);
      examples.push({
        id: `${episodeIndex}-${turnIndex}`,
        personas: [...ep.personas],
        history: [...history],
        response: turn.response,
        persona_index: labelPersona(ep.personas, turn.response, options.labeller),
        split,
        source,
      });
      history.push(turn.response);
    });
  });
  return { examples, problems };
}
