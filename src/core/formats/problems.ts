import type { Problem } from './types';

/** A problem at one position (1-based line and column), optionally spanning to an end position. */
export function problem(
  file: string,
  at: { line: number; column: number; endLine?: number; endColumn?: number },
  severity: Problem['severity'],
  code: string,
  message: string,
): Problem {
  return {
    file,
    line: at.line,
    column: at.column,
    endLine: at.endLine ?? at.line,
    endColumn: at.endColumn ?? at.column,
    severity,
    code,
    message,
  };
}

/** `file:line:column: severity: message`, the convention compilers use, so editors and CI link it. */
export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.severity}: ${p.message}`;
}

/** Line and column (1-based) of a 0-based offset in `text`. */
export function positionAt(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}

export function hasErrors(problems: readonly Problem[]): boolean {
  return problems.some((p) => p.severity === 'error');
}
