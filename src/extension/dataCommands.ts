/**
 * Palette commands over the authoring formats: validate the workspace, import other data sets,
 * export pairs and personas. The work is done by the engine (the same code as `pal import`,
 * `pal export` and `pal validate`); this file asks the questions.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ImportRequest } from '../engine/protocol';
import type { PalDiagnostics } from './diagnostics';
import type { EngineHost } from './engineHost';

export async function validateWorkspace(diagnostics: PalDiagnostics): Promise<void> {
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'PAL Studio: checking persona, dialogue, pair and run files…', cancellable: true },
    (_p, token) => diagnostics.validateWorkspace(token),
  );
  const summary = `PAL Studio checked ${result.files} file${result.files === 1 ? '' : 's'}: ${result.errors} error${result.errors === 1 ? '' : 's'}, ${result.warnings} warning${result.warnings === 1 ? '' : 's'}.`;
  if (result.errors + result.warnings > 0) {
    const choice = await vscode.window.showWarningMessage(summary, 'Show Problems');
    if (choice) await vscode.commands.executeCommand('workbench.actions.view.problems');
  } else {
    void vscode.window.showInformationMessage(summary);
  }
}

const IMPORT_KINDS: readonly (vscode.QuickPickItem & { from: 'persona-chat' | 'spc' | 'card'; suffix: string; filters: Record<string, string[]> })[] = [
  { label: 'PERSONA-CHAT / ConvAI2 (ParlAI text)', from: 'persona-chat', suffix: '.dialogues.jsonl', filters: { 'ParlAI text': ['txt'] } },
  { label: 'Synthetic-Persona-Chat (CSV)', from: 'spc', suffix: '.dialogues.jsonl', filters: { CSV: ['csv'] } },
  { label: 'Character Card V1/V2/V3 (JSON)', from: 'card', suffix: '.persona.yaml', filters: { JSON: ['json'] } },
];

export async function importData(host: EngineHost): Promise<void> {
  const kind = await vscode.window.showQuickPick(IMPORT_KINDS, { title: 'PAL Studio: import', placeHolder: 'What kind of file?' });
  if (!kind) return;
  const picked = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { ...kind.filters, 'All files': ['*'] }, openLabel: 'Import' });
  const input = picked?.[0];
  if (!input) return;
  const base = path.basename(input.fsPath).replace(/\.(txt|csv|json)$/i, '');
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri ?? vscode.Uri.file(path.dirname(input.fsPath));
  const target = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.joinPath(folder, `${base}${kind.suffix}`), saveLabel: 'Import into' });
  if (!target) return;
  // The save dialog already asked about replacing an existing file.
  const result = await host.client.request(ImportRequest, { input: input.fsPath, from: kind.from, out: target.fsPath, force: true });
  const skipped = result.problems.length ? ` ${result.problems.length} part${result.problems.length === 1 ? '' : 's'} could not be read (see the PAL Studio output).` : '';
  for (const p of result.problems) host.log(`import ${p.file}:${p.line}:${p.column}: ${p.message}`);
  const choice = await vscode.window.showInformationMessage(`Imported ${result.count} ${result.format === 'card' ? 'persona' : 'examples'} into ${path.basename(result.out)}.${skipped}`, 'Open');
  if (choice) await vscode.window.showTextDocument(vscode.Uri.file(result.out));
}
