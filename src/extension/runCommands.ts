/**
 * Alignment runs on the VS Code side: "PAL: Start Alignment Run" (pick a *.palrun.yaml, start it
 * in the engine), the runs going on now with their latest progress, stopping them, and a
 * status-bar item while any runs. The training dashboard (runDashboard.ts) shows and stops them.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { fileKind } from '../core/formats/index';
import { STAGE_NAMES } from '../core/runFolder';
import { formatEta } from '../core/runHistory';
import {
  CancelRunRequest,
  RunFinishedNotification,
  RunProgressNotification,
  StartRunRequest,
  type RunFinishedParams,
  type RunProgressParams,
} from '../engine/protocol';
import type { EngineHost } from './engineHost';

/** A run this window started and the engine is still doing. */
export interface LiveRun {
  readonly runId: string;
  /** The run folder; absent only when the engine could not read the config (the run then fails at once). */
  readonly runDir: string | undefined;
  readonly config: string;
  readonly name: string;
  progress: RunProgressParams | undefined;
}

export class RunFollower implements vscode.Disposable {
  private readonly live = new Map<string, LiveRun>();
  private readonly progressEmitter = new vscode.EventEmitter<LiveRun>();
  private readonly finishedEmitter = new vscode.EventEmitter<{ run: LiveRun; finished: RunFinishedParams }>();
  /** After a run's progress changed (its `progress` is the latest). */
  readonly onDidProgress = this.progressEmitter.event;
  /** After a run ended; it is no longer live. */
  readonly onDidFinish = this.finishedEmitter.event;
  private readonly statusItem: vscode.StatusBarItem;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly host: EngineHost) {
    this.statusItem = vscode.window.createStatusBarItem('palStudio.runs', vscode.StatusBarAlignment.Left, 9);
    this.statusItem.name = 'PAL Studio Runs';
    this.disposables.push(
      this.statusItem,
      this.progressEmitter,
      this.finishedEmitter,
      host.client.onNotification(RunProgressNotification, (p) => {
        const run = this.live.get(p.runId);
        if (!run) return;
        run.progress = p;
        this.showStatus();
        this.progressEmitter.fire(run);
      }),
      host.client.onNotification(RunFinishedNotification, (p) => this.finish(p)),
      host.onDidBecomeReady(() => {
        // A new engine knows nothing of the old one's runs: each was stopped at a checkpoint.
        for (const id of [...this.live.keys()])
          this.finish({ runId: id, outcome: 'failed', error: 'the engine restarted; start the run again to resume it from its last checkpoint' });
      }),
    );
  }

  /** The live run writing this folder, if any. */
  liveRun(runDir: string): LiveRun | undefined {
    return [...this.live.values()].find((r) => r.runDir === runDir);
  }

  /** Picks a run config (the resource, the active editor's, or one from a list) and starts it. */
  async start(resource?: vscode.Uri): Promise<LiveRun | undefined> {
    let config = resource ?? vscode.window.activeTextEditor?.document.uri;
    if (!config || fileKind(config.fsPath) !== 'palrun') {
      const found = await vscode.workspace.findFiles('**/*.{palrun.yaml,palrun.yml}', '**/node_modules/**');
      const pick = await vscode.window.showQuickPick(
        found.map((u) => ({ label: vscode.workspace.asRelativePath(u), uri: u })),
        { title: 'PAL Studio: start an alignment run', placeHolder: 'Which run config?' },
      );
      if (!pick) return undefined;
      config = pick.uri;
    }
    return this.startConfig(config.fsPath);
  }

  /** Starts (or resumes: the pipeline carries on from its checkpoints) the run of a config file. */
  async startConfig(config: string): Promise<LiveRun> {
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.fsPath === config);
    if (doc?.isDirty) await doc.save();
    const { runId, runDir } = await this.host.client.request(StartRunRequest, { config, ...runRoots() });
    const run: LiveRun = { runId, runDir, config, name: path.basename(config), progress: undefined };
    this.live.set(runId, run);
    this.showStatus();
    return run;
  }

  /** Asks the engine to stop a run at its next checkpoint; false when it was not running. */
  async stop(runId: string): Promise<boolean> {
    if (!this.live.has(runId)) return false;
    return (await this.host.client.request(CancelRunRequest, { runId })).cancelled;
  }

  private finish(p: RunFinishedParams): void {
    const run = this.live.get(p.runId);
    if (!run) return;
    this.live.delete(p.runId);
    this.showStatus();
    this.finishedEmitter.fire({ run, finished: p });
    if (p.outcome === 'done') void vscode.window.showInformationMessage(`PAL run ${run.name} finished. The aligned model is in ${p.model}.`);
    else if (p.outcome === 'cancelled')
      void vscode.window.showInformationMessage(`PAL run ${run.name} was stopped at a checkpoint. Resume it from its training dashboard, or start it again.`);
    else void vscode.window.showErrorMessage(`PAL run ${run.name} failed: ${p.error}`);
  }

  /** "$(sync~spin) PAL run tiny-sample · stage 2 · 40%" while runs go on; hidden otherwise. */
  private showStatus(): void {
    const runs = [...this.live.values()];
    const run = runs[0];
    if (!run) {
      this.statusItem.hide();
      return;
    }
    const p = run.progress;
    const name = run.runDir ? path.basename(run.runDir) : run.name;
    const percent = p?.step !== undefined && p.total ? ` · ${Math.floor((100 * p.step) / p.total)}%` : '';
    const more = runs.length > 1 ? ` (+${runs.length - 1} more)` : '';
    this.statusItem.text = `$(sync~spin) PAL run ${name}${p ? ` · ${STAGE_NAMES[p.stage].short}${percent}` : ''}${more}`;
    const tooltip = runs.map((r) => {
      const q = r.progress;
      if (!q) return `${r.name}: starting`;
      const step = q.step !== undefined ? `, step ${q.step}${q.total ? ` of ${q.total}` : ''}` : '';
      const eta = q.etaSeconds !== undefined ? `, about ${formatEta(q.etaSeconds)} left in this stage` : '';
      return `${r.name}: ${STAGE_NAMES[q.stage].progress}${step}${eta}`;
    });
    this.statusItem.tooltip = `${tooltip.join('\n')}\nClick to open the training dashboard.`;
    this.statusItem.command = run.runDir ? { title: 'Open Training Dashboard', command: 'palStudio.openRunDashboard', arguments: [run.runDir] } : undefined;
    this.statusItem.show();
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/**
 * The folders a run may touch: the workspace's, unless the user allowed more. The setting is
 * application-scoped, so a workspace's own settings cannot lift the limit for themselves.
 */
function runRoots(): { allowedRoots?: string[] } {
  if (vscode.workspace.getConfiguration('palStudio').get<boolean>('runs.allowOutsideWorkspace', false)) return {};
  return { allowedRoots: (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath) };
}
