/**
 * The training dashboard: one webview per run folder, showing the run as the engine reads it from
 * its folder (run/folder: state.json, stage1/ and stage2/metrics.jsonl, eval/report.json) and,
 * while the run is live, its progress and each
 * trainer step as it comes. Stop, Resume and "Use this model" act on it. The view keeps only the
 * run folder (vscode.setState), so it re-renders from the extension whenever it is shown again,
 * and the serializer reopens it after VS Code restarts.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { runHints } from '../core/dpoHints';
import { staticPage } from '../core/html';
import type { RunVerdict } from '../core/runVerdict';
import { appendRecord, stageStatuses, toMetricRecord, type EvalRow, type MetricRecord } from '../core/runHistory';
import { parseRunState, type RunStage, type RunState, type TrainingStage } from '../core/runFolder';
import {
  parseFromRunDashboard,
  parseRunDashboardSavedState,
  type RunDashboardAction,
  type RunDashboardState,
  type ToRunDashboard,
} from '../../webview/run-dashboard/protocol';
import { ReadRunFolderRequest } from '../engine/protocol';
import type { EngineHost } from './engineHost';
import type { LiveRun, RunFollower } from './runCommands';
import type { TestReport } from './testReport';
import { webviewHtml, webviewOptions } from './webviewHtml';

const MODEL_SETTING = 'models.default';
/** Live steps are batched into one message at most this often. */
const UPDATE_INTERVAL_MS = 250;

export class RunDashboards implements vscode.Disposable {
  static readonly viewType = 'palStudio.runDashboard';
  private readonly panels = new Map<string, RunDashboardPanel>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly runs: RunFollower,
    private readonly host: EngineHost,
    private readonly output: vscode.LogOutputChannel,
    private readonly report: TestReport,
  ) {
    this.disposables.push(
      vscode.window.registerWebviewPanelSerializer(RunDashboards.viewType, {
        deserializeWebviewPanel: async (panel, saved: unknown) => {
          const runDir = await checkRunDir(parseRunDashboardSavedState(saved)?.runDir);
          if (!runDir || this.panels.has(runDir)) {
            this.output.warn(
              `Not restoring a training dashboard: ${JSON.stringify(saved)?.slice(0, 300)} is not a run folder (with a state.json) inside this workspace.`,
            );
            panel.dispose();
            return;
          }
          this.adopt(panel, runDir);
        },
      }),
      runs.onDidProgress((run) => run.runDir && this.panels.get(run.runDir)?.onProgress(run)),
      runs.onDidFinish(({ run, finished }) => run.runDir && this.panels.get(run.runDir)?.onFinished(run, finished.outcome, finished.error)),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration(`palStudio.${MODEL_SETTING}`)) for (const p of this.panels.values()) p.postState();
      }),
    );
  }

  /** "PAL: Open Training Dashboard…": the run folder given (the status bar's), or one picked from the workspace. */
  async open(arg?: unknown): Promise<void> {
    if (typeof arg === 'string' && this.runs.liveRun(arg)) {
      this.show(arg); // a live run's folder may not have its state.json yet
      return;
    }
    if (arg !== undefined) {
      const runDir = await checkRunDir(typeof arg === 'string' ? arg : arg instanceof vscode.Uri ? arg.fsPath : undefined);
      if (!runDir) throw new Error(`${String(arg)} is not a run folder (with a state.json) inside this workspace.`);
      this.show(runDir);
      return;
    }
    const states = await vscode.workspace.findFiles('**/state.json', '**/node_modules/**', 500);
    const items: (vscode.QuickPickItem & { runDir: string; started: string })[] = [];
    for (const uri of states) {
      const runDir = path.dirname(uri.fsPath);
      let state: RunState;
      try {
        state = parseRunState(await fs.readFile(uri.fsPath, 'utf8'), uri.fsPath);
      } catch {
        continue; // another tool's state.json
      }
      const live = this.runs.liveRun(runDir);
      const status = live ? 'running now' : state.done.includes('export') ? 'finished' : `stopped (done: ${state.done.join(', ') || 'nothing yet'})`;
      items.push({
        label: path.basename(runDir),
        description: vscode.workspace.asRelativePath(runDir),
        detail: status,
        runDir,
        started: state.startedAt ?? '',
      });
    }
    if (!items.length)
      throw new Error('There are no alignment runs in this workspace yet (a run folder holds a state.json). Start one with "PAL: Start Alignment Run".');
    items.sort((a, b) => b.started.localeCompare(a.started));
    const pick = await vscode.window.showQuickPick(items, {
      title: 'PAL Studio: open a training dashboard',
      placeHolder: 'Which run?',
      matchOnDescription: true,
    });
    if (pick) this.show(pick.runDir);
  }

  show(runDir: string): void {
    const existing = this.panels.get(runDir);
    if (existing) {
      existing.panel.reveal();
      return;
    }
    const panel = vscode.window.createWebviewPanel(RunDashboards.viewType, `PAL run: ${path.basename(runDir)}`, vscode.ViewColumn.Active, {
      ...webviewOptions(this.extensionUri),
      // The view re-renders from the extension's copy of the run whenever it is shown again.
      retainContextWhenHidden: false,
    });
    this.adopt(panel, runDir);
  }

  private adopt(panel: vscode.WebviewPanel, runDir: string): void {
    panel.title = `PAL run: ${path.basename(runDir)}`;
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'icon.png');
    panel.webview.options = webviewOptions(this.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, 'run-dashboard', `PAL run: ${path.basename(runDir)}`);
    const dashboard = new RunDashboardPanel(panel, runDir, this.runs, this.host, this.output, this.report, () => this.panels.delete(runDir));
    this.panels.set(runDir, dashboard);
  }

  dispose(): void {
    for (const p of [...this.panels.values()]) p.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

/**
 * A run's eval/report.html in a webview tab next to the dashboard's, the same in a local and a remote
 * window (a remote window, code-server included, opened its HTML source). The report is static:
 * no script runs, and its own Content-Security-Policy allows nothing but its inline style.
 */
async function showReport(runDir: string): Promise<void> {
  const file = vscode.Uri.file(path.join(runDir, 'eval', 'report.html'));
  const html = new TextDecoder().decode(await vscode.workspace.fs.readFile(file));
  const panel = vscode.window.createWebviewPanel('palStudio.evaluationReport', `PAL report: ${path.basename(runDir)}`, vscode.ViewColumn.Active, {
    enableScripts: false,
    localResourceRoots: [],
  });
  panel.webview.html = staticPage(html);
}

/** The folder, resolved, when it is inside a workspace folder and holds a state.json. */
async function checkRunDir(runDir: string | undefined): Promise<string | undefined> {
  if (!runDir || !path.isAbsolute(runDir)) return undefined;
  const resolved = path.resolve(runDir);
  const inside = (vscode.workspace.workspaceFolders ?? []).some((f) => {
    const rel = path.relative(f.uri.fsPath, resolved);
    return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
  });
  if (!inside) return undefined;
  const stat = await fs.stat(path.join(resolved, 'state.json')).catch(() => undefined);
  return stat?.isFile() ? resolved : undefined;
}

class RunDashboardPanel {
  private readonly disposables: vscode.Disposable[] = [];
  private metrics: Record<TrainingStage, MetricRecord[]> = { stage1: [], stage2: [] };
  /** Steps not yet posted to the view. */
  private added: Record<TrainingStage, MetricRecord[]> = { stage1: [], stage2: [] };
  private state: RunState = { done: [], config: null, startedAt: null };
  private warnings: string[] = [];
  private evaluation: EvalRow[] | null = null;
  private verdict: RunVerdict | null = null;
  private hasReportHtml = false;
  private hasModel = false;
  /** How the live run this panel followed ended (cleared when it is resumed). */
  private ended: { stage: RunStage; outcome: 'stopped' | 'failed'; error: string | null } | null = null;
  private stopping = false;
  private lastStage: RunStage | undefined;
  /** Live steps that arrived while the folder was being read, applied after it. */
  private queued: [TrainingStage, MetricRecord][] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private loaded = false;

  constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly runDir: string,
    private readonly runs: RunFollower,
    private readonly host: EngineHost,
    private readonly output: vscode.LogOutputChannel,
    private readonly report: TestReport,
    private readonly onDispose: () => void,
  ) {
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((raw: unknown) => {
        const message = parseFromRunDashboard(raw);
        if (!message) {
          this.output.warn(`Ignored a malformed message from the training dashboard: ${JSON.stringify(raw)?.slice(0, 200)}`);
          return;
        }
        if (message.type === 'ready') void (this.loaded ? this.postSnapshot() : this.load());
        else void this.act(message.action).catch((err: Error) => void vscode.window.showErrorMessage(`PAL Studio: ${err.message}`));
      }),
    );
  }

  /** Reads the run folder again (through the engine, which reads every run file) and shows it from scratch. */
  async load(): Promise<void> {
    this.queued = [];
    const warnings: string[] = [];
    try {
      const view = await this.host.client.request(ReadRunFolderRequest, { runDir: this.runDir, shownAs: vscode.workspace.asRelativePath(this.runDir) });
      this.state = view.state;
      // JSON-RPC carries a NaN as null: toMetricRecord reads null back as NaN.
      for (const stage of ['stage1', 'stage2'] as const) this.metrics[stage] = view.metrics[stage].flatMap((r) => toMetricRecord(r) ?? []);
      this.evaluation = view.evaluation ? [...view.evaluation] : null;
      this.verdict = view.verdict;
      this.hasReportHtml = view.hasReportHtml;
      warnings.push(...view.warnings);
    } catch (err) {
      warnings.push(`The engine could not read ${vscode.workspace.asRelativePath(this.runDir)}: ${(err as Error).message}`);
    }
    this.hasModel = this.state.done.includes('export');
    this.warnings = warnings;
    for (const w of warnings) this.output.warn(`Training dashboard: ${w}`);
    for (const [stage, record] of this.queued) appendRecord(this.metrics[stage], record);
    this.queued = undefined;
    this.loaded = true;
    await this.postSnapshot();
  }

  onProgress(run: LiveRun): void {
    const p = run.progress;
    if (!p) return;
    this.ended = null;
    // A new stage means state.json changed: read the folder again.
    const stageChanged = this.lastStage !== undefined && this.lastStage !== p.stage;
    this.lastStage = p.stage;
    if ((p.stage === 'stage1' || p.stage === 'stage2') && p.metrics && typeof p.step === 'number') {
      // JSON-RPC carries a NaN as null: toMetricRecord reads null back as NaN.
      const record = toMetricRecord({ ...p.metrics, step: p.step });
      if (record) {
        if (this.queued) this.queued.push([p.stage, record]);
        else {
          appendRecord(this.metrics[p.stage], record);
          appendRecord(this.added[p.stage], record);
        }
      }
    }
    // A trainer's warning is kept in the run folder (warnings.jsonl), which load() reads.
    if ((stageChanged || p.warning) && this.loaded) void this.load();
    else this.scheduleUpdate();
  }

  onFinished(run: LiveRun, outcome: 'done' | 'cancelled' | 'failed', error: string | undefined): void {
    this.stopping = false;
    this.lastStage = undefined;
    this.ended =
      outcome === 'done' ? null : { stage: run.progress?.stage ?? 'prepare', outcome: outcome === 'cancelled' ? 'stopped' : 'failed', error: error ?? null };
    void this.load();
  }

  private view(): RunDashboardState {
    const live = this.runs.liveRun(this.runDir);
    const p = live?.progress;
    const model = path.join(this.runDir, 'model');
    const current = p ? { stage: p.stage, outcome: 'running' as const } : this.ended;
    return {
      runDir: this.runDir,
      name: path.basename(this.runDir),
      config: live?.config ?? this.state.config,
      status: live ? 'running' : this.ended?.outcome === 'failed' ? 'failed' : this.state.done.includes('export') ? 'done' : 'stopped',
      stages: stageStatuses(this.state.done, current),
      progress: p
        ? {
            stage: p.stage,
            message: this.stopping ? 'Stopping at the next checkpoint…' : p.message,
            ...(p.step !== undefined ? { step: p.step } : {}),
            ...(p.total !== undefined ? { total: p.total } : {}),
            ...(p.etaSeconds !== undefined ? { etaSeconds: p.etaSeconds } : {}),
          }
        : null,
      error: this.ended?.error ?? null,
      hints: runHints(this.metrics),
      warnings: this.warnings,
      evaluation: this.evaluation,
      verdict: this.verdict,
      hasReportHtml: this.hasReportHtml,
      model: this.hasModel ? model : null,
      modelInUse: this.hasModel && vscode.workspace.getConfiguration('palStudio').get<string>(MODEL_SETTING) === model,
    };
  }

  private postSnapshot(): Thenable<boolean> {
    this.added = { stage1: [], stage2: [] };
    return this.post({ type: 'snapshot', state: this.view(), metrics: this.metrics });
  }

  /** The state without new steps (a setting changed, or Stop was pressed). */
  postState(): void {
    if (this.loaded) this.scheduleUpdate();
  }

  private scheduleUpdate(): void {
    if (this.timer || !this.loaded) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const added = this.added;
      this.added = { stage1: [], stage2: [] };
      void this.post({ type: 'update', state: this.view(), added });
    }, UPDATE_INTERVAL_MS);
  }

  private post(message: ToRunDashboard): Thenable<boolean> {
    return this.panel.webview.postMessage(message);
  }

  private async act(action: RunDashboardAction): Promise<void> {
    const live = this.runs.liveRun(this.runDir);
    switch (action) {
      case 'stop':
        if (live && (await this.runs.stop(live.runId))) {
          this.stopping = true;
          this.scheduleUpdate();
        }
        return;
      case 'resume': {
        if (live) return;
        const config = this.state.config;
        if (!config) throw new Error(`${vscode.workspace.asRelativePath(path.join(this.runDir, 'state.json'))} does not name the run config to resume.`);
        if (!vscode.workspace.isTrusted)
          throw new Error('Training runs need Python, which PAL Studio does not start in Restricted Mode; trust the workspace first.');
        const run = await this.runs.startConfig(config);
        this.report.write({ event: 'run-resumed', runDir: this.runDir, config });
        this.ended = null;
        if (run.runDir && run.runDir !== this.runDir)
          throw new Error(`${path.basename(config)} now writes to ${run.runDir}, not ${this.runDir}: it started there.`);
        return this.load();
      }
      case 'useModel': {
        if (!this.hasModel) return;
        const model = path.join(this.runDir, 'model');
        // A machine-scoped setting: the user's (Global) settings of this machine.
        await vscode.workspace.getConfiguration('palStudio').update(MODEL_SETTING, model, vscode.ConfigurationTarget.Global);
        this.report.write({ event: 'use-model', model });
        void vscode.window.showInformationMessage(
          `PAL Studio now answers with the model of run ${path.basename(this.runDir)} (palStudio.models.default = ${model}).`,
        );
        return;
      }
      case 'openReport':
        await showReport(this.runDir);
        return;
      case 'openConfig':
        if (this.state.config ?? live?.config) await vscode.commands.executeCommand('vscode.open', vscode.Uri.file((live?.config ?? this.state.config)!));
        return;
    }
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.onDispose();
    this.panel.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}
