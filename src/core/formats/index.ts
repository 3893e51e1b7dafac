/**
 * The authoring formats, by file name: which kind a file is, and its problems. The extension, the
 * engine and `pal validate` all go through here.
 */
import { parseDialogues, isDialogueFile } from './dialogues';
import { allProblems } from './jsonl';
import { parsePairs, isPairsFile } from './pairs';
import { DEFAULT_PERSONA_LINT, isPersonaFile, parsePersona, type PersonaLintOptions } from './persona';
import { isRunConfigFile, parseRunConfig } from './runConfig';
import type { Problem } from './types';

export type FileKind = 'persona' | 'dialogues' | 'pairs' | 'palrun';

export function fileKind(file: string): FileKind | undefined {
  if (isPersonaFile(file)) return 'persona';
  if (isDialogueFile(file)) return 'dialogues';
  if (isPairsFile(file)) return 'pairs';
  if (isRunConfigFile(file)) return 'palrun';
  return undefined;
}

export function validateText(file: string, text: string, lint: PersonaLintOptions = DEFAULT_PERSONA_LINT): Problem[] {
  const kind = fileKind(file);
  const problems = (() => {
    switch (kind) {
      case 'persona':
        return parsePersona(text, file, lint).problems;
      case 'dialogues':
        return allProblems(parseDialogues(text, file));
      case 'pairs':
        return allProblems(parsePairs(text, file));
      case 'palrun':
        return parseRunConfig(text, file).problems;
      default:
        throw new Error(`${file}: not a PAL Studio file (expected *.persona.yaml, *.persona.json, *.dialogues.jsonl, *.pairs.jsonl or *.palrun.yaml).`);
    }
  })();
  return problems.sort((a, b) => a.line - b.line || a.column - b.column);
}

export * from './types';
export { formatProblem, hasErrors } from './problems';
