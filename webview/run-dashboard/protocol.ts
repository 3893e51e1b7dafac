/**
 * Messages between the extension and the training dashboard. The dashboard shows one run folder:
 * the extension reads it from disk and follows the live run, and posts what to show; the view
 * posts back the buttons pressed. Every message from the view goes through
 * `parseFromRunDashboard` before the extension acts on it.
 */
import type { Hint } from '../../src/core/dpoHints';
import type { EvalRow, MetricRecord, StageStatus } from '../../src/core/runHistory';
import type { RunStage } from '../../src/core/runFolder';
import type { RunVerdict } from '../../src/core/runVerdict';

export interface RunDashboardProgress {
  readonly stage: RunStage;
  readonly message: string;
  readonly step?: number;
  readonly total?: number;
  readonly etaSeconds?: number;
}

/** Everything the dashboard shows except the metric records (those arrive in batches). */
export interface RunDashboardState {
  readonly runDir: string;
  readonly name: string;
  /** The run config it was started from (state.json), when known: what Resume starts again. */
  readonly config: string | null;
  readonly status: 'running' | 'done' | 'stopped' | 'failed';
  readonly stages: Readonly<Record<RunStage, StageStatus>>;
  readonly progress: RunDashboardProgress | null;
  readonly error: string | null;
  readonly hints: readonly Hint[];
  /** Lines of the run folder that could not be read (file:line: why). */
  readonly warnings: readonly string[];
  readonly evaluation: readonly EvalRow[] | null;
  /** Replies before and after on held-out prompts and the signs of collapse, in words (once evaluated). */
  readonly verdict: RunVerdict | null;
  readonly hasReportHtml: boolean;
  /** The exported model folder, once the export stage is done. */
  readonly model: string | null;
  /** palStudio.models.default already names this run's model. */
  readonly modelInUse: boolean;
}

export interface RunMetrics {
  readonly stage1: readonly MetricRecord[];
  readonly stage2: readonly MetricRecord[];
}

export type ToRunDashboard =
  /** Everything, from scratch (the view opened, was shown again, or the run was re-read from disk). */
  | { readonly type: 'snapshot'; readonly state: RunDashboardState; readonly metrics: RunMetrics }
  /** The state now, and the steps since the last message, to append. */
  | { readonly type: 'update'; readonly state: RunDashboardState; readonly added: RunMetrics };

export const RUN_DASHBOARD_ACTIONS = ['stop', 'resume', 'useModel', 'openReport', 'openConfig'] as const;
export type RunDashboardAction = (typeof RUN_DASHBOARD_ACTIONS)[number];

export type FromRunDashboard = { readonly type: 'ready' } | { readonly type: 'action'; readonly action: RunDashboardAction };

export function parseFromRunDashboard(message: unknown): FromRunDashboard | undefined {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return undefined;
  const m = message as Record<string, unknown>;
  const keys = Object.keys(m);
  if (m.type === 'ready' && keys.length === 1) return { type: 'ready' };
  if (m.type === 'action' && keys.length === 2 && typeof m.action === 'string' && (RUN_DASHBOARD_ACTIONS as readonly string[]).includes(m.action)) {
    return { type: 'action', action: m.action as RunDashboardAction };
  }
  return undefined;
}

/** What the view saves with vscode.setState, so that a restarted VS Code can reopen it. */
export interface RunDashboardSavedState {
  readonly runDir: string;
}

/**
 * The saved state handed to the panel serializer. Only its shape is checked here; the extension
 * then checks that the folder is inside the workspace and holds a state.json.
 */
export function parseRunDashboardSavedState(state: unknown): RunDashboardSavedState | undefined {
  if (typeof state !== 'object' || state === null || Array.isArray(state)) return undefined;
  const runDir = (state as Record<string, unknown>).runDir;
  if (typeof runDir !== 'string' || runDir.length === 0 || runDir.length > 4096 || runDir.includes('\0')) return undefined;
  return { runDir };
}
