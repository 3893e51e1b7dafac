/**
 * "PAL: Start Alignment Run": pick a *.palrun.yaml, start it in the engine, follow it in a
 * progress notification that can cancel it. (The training dashboard comes with the studio work.)
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { fileKind } from '../core/formats/index';
import { CancelRunRequest, RunFinishedNotification, RunProgressNotification, StartRunRequest, type RunFinishedParams, type RunProgressParams } from '../engine/protocol';
import type { EngineHost } from './engineHost';

const STAGE_NAMES: Record<RunProgressParams['stage'], string> = {
  prepare: 'Preparing',
  stage1: 'Stage 1 (persona-aware learning)',
  generate: 'Sampling rejected responses',
  stage2: 'Stage 2 (DPO)',
  export: 'Exporting',
  evaluate: 'Evaluating (before vs after)',
};

export class RunFollower implements vscode.Disposable {
  private readonly progress = new Map<string, (p: RunProgressParams) => void>();
  private readonly finished = new Map<string, (p: RunFinishedParams) => void>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly host: EngineHost) {
    this.disposables.push(
      host.client.onNotification(RunProgressNotification, (p) => this.progress.get(p.runId)?.(p)),
      host.client.onNotification(RunFinishedNotification, (p) => this.finished.get(p.runId)?.(p)),
      host.onDidBecomeReady(() => {
        // A new engine knows nothing of the old one's runs: each was stopped at a checkpoint.
        for (const [id, done] of this.finished) done({ runId: id, outcome: 'failed', error: 'the engine restarted; start the run again to resume it from its last checkpoint' });
      }),
    );
  }


  async start(resource?: vscode.Uri): Promise<void> {
    let config = resource ?? vscode.window.activeTextEditor?.document.uri;
    if (!config || fileKind(config.fsPath) !== 'palrun') {
      const found = await vscode.workspace.findFiles('**/*.{palrun.yaml,palrun.yml}', '**/node_modules/**');
      const pick = await vscode.window.showQuickPick(found.map((u) => ({ label: vscode.workspace.asRelativePath(u), uri: u })), { title: 'PAL Studio: start an alignment run', placeHolder: 'Which run config?' });
      if (!pick) return;
      config = pick.uri;
    }
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === config!.toString());
    if (doc?.isDirty) await doc.save();
    const { runId } = await this.host.client.request(StartRunRequest, { config: config.fsPath });
    const name = path.basename(config.fsPath);
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `PAL run ${name}`, cancellable: true }, (report, token) =>
      new Promise<void>((resolve) => {
        token.onCancellationRequested(() => void this.host.client.request(CancelRunRequest, { runId }).catch(() => undefined));
        this.progress.set(runId, (p) => {
          const eta = p.etaSeconds !== undefined ? `, about ${formatEta(p.etaSeconds)} left` : '';
          const loss = p.metrics?.loss !== undefined ? `, loss ${p.metrics.loss.toFixed(3)}` : '';
          report.report({ message: `${STAGE_NAMES[p.stage]}: ${p.message}${eta}${loss}` });
        });
        this.finished.set(runId, (p) => {
          this.progress.delete(runId);
          this.finished.delete(runId);
          resolve();
          if (p.outcome === 'done') void vscode.window.showInformationMessage(`PAL run ${name} finished. The aligned model is in ${p.model}.`);
          else if (p.outcome === 'cancelled') void vscode.window.showInformationMessage(`PAL run ${name} was stopped at a checkpoint. Start it again to resume.`);
          else void vscode.window.showErrorMessage(`PAL run ${name} failed: ${p.error}`);
        });
      }),
    );
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

function formatEta(seconds: number): string {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
