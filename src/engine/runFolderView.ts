/**
 * A run folder as the training dashboard shows it: the stages done (state.json), every step of
 * each training stage (metrics.jsonl), the before/after evaluation (eval/report.json). The engine
 * reads it and answers `run/folder`; the dashboard reads no file of a run itself. Each file's
 * problem becomes a warning naming it (as `shownAs` shows the folder), so one damaged file never
 * hides the rest of a run.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseRunState, RUN_STATE_FILE, type TrainingStage } from '../core/runFolder';
import { evaluationRows, parseMetrics } from '../core/runHistory';
import { runVerdict } from '../core/runVerdict';
import { readPredictions } from './eval';
import type { RunFolderView } from './protocol';

/** The run's folders the trainer writes into, one a job, in the order they run. */
const TRAINER_FOLDERS = ['stage1', 'generate', 'stage2'] as const;

/** A line of a trainer's warnings.jsonl, or undefined (a line cut short by a crash, say). */
function parseWarningLine(line: string): { kind: string; message: string } | undefined {
  try {
    const w = JSON.parse(line) as { kind?: unknown; message?: unknown } | null;
    return typeof w?.kind === 'string' && typeof w.message === 'string' ? { kind: w.kind, message: w.message } : undefined;
  } catch {
    return undefined;
  }
}

/** A file's text, or undefined when it does not exist (yet). */
async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function readRunFolder(runDir: string, shownAs: string = runDir): Promise<RunFolderView> {
  const warnings: string[] = [];
  const file = (...p: string[]) => path.join(runDir, ...p);
  const shown = (...p: string[]) => path.join(shownAs, ...p);
  let state: RunFolderView['state'] = { done: [], config: null, startedAt: null };
  try {
    const text = await readIfExists(file(RUN_STATE_FILE));
    if (text !== undefined) state = parseRunState(text, shown(RUN_STATE_FILE));
  } catch (err) {
    warnings.push((err as Error).message);
  }
  const metrics: Record<TrainingStage, RunFolderView['metrics']['stage1']> = { stage1: [], stage2: [] };
  for (const stage of ['stage1', 'stage2'] as const) {
    const text = await readIfExists(file(stage, 'metrics.jsonl')).catch((err: Error) => (warnings.push(err.message), undefined));
    const parsed = parseMetrics(text ?? '', shown(stage, 'metrics.jsonl'));
    metrics[stage] = parsed.records;
    warnings.push(...parsed.warnings);
  }
  // What the trainer warned of (warnings.jsonl in each job's folder), once a run for each kind:
  // every job measures the same machine again.
  const warnedKinds = new Set<string>();
  for (const stage of TRAINER_FOLDERS) {
    const name = shown(stage, 'warnings.jsonl');
    const text = await readIfExists(file(stage, 'warnings.jsonl')).catch((err: Error) => (warnings.push(err.message), undefined));
    for (const [i, line] of (text ?? '').split('\n').entries()) {
      if (!line.trim()) continue;
      const w = parseWarningLine(line);
      if (!w) warnings.push(`${name}:${i + 1}: not a trainer warning (a JSON object with kind and message)`);
      else if (!warnedKinds.has(w.kind)) {
        warnedKinds.add(w.kind);
        warnings.push(`${stage}: ${w.message}`);
      }
    }
  }
  let evaluation: RunFolderView['evaluation'] = null;
  try {
    const text = await readIfExists(file('eval', 'report.json'));
    evaluation = text === undefined ? null : evaluationRows(text, shown('eval', 'report.json'));
  } catch (err) {
    warnings.push((err as Error).message);
  }
  const hasReportHtml = (await fs.stat(file('eval', 'report.html')).catch(() => undefined))?.isFile() ?? false;
  let verdict: RunFolderView['verdict'] = null;
  if (evaluation) {
    try {
      const [before, after] = await Promise.all(['before', 'after'].map((w) => readPredictions(file('eval', `predictions-${w}.jsonl`))));
      verdict = runVerdict(before!, after!);
    } catch (err) {
      warnings.push(`The verdict needs the evaluation's predictions: ${(err as Error).message}`);
    }
  }
  return { state, metrics, evaluation, hasReportHtml, verdict, warnings };
}
