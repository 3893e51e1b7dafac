/** "PAL: Compare Evaluation Reports": two `pal eval` reports side by side in a webview. */
import * as vscode from 'vscode';
import { CompareReportsRequest } from '../engine/protocol';
import type { EngineHost } from './engineHost';
import { webviewHtml, webviewOptions } from './webviewHtml';
import { parseFromCompareView, type ToCompareView } from '../../webview/compare/protocol';

export async function compareReports(extensionUri: vscode.Uri, host: EngineHost): Promise<void> {
  const found = await vscode.workspace.findFiles('**/report.json', '**/node_modules/**');
  // Two questions rather than one multi-pick: which report is the baseline must be the writer's
  // choice, not an accident of file order or modification times.
  const pick = async (title: string, exclude?: vscode.Uri): Promise<vscode.Uri | undefined> => {
    const items = found.filter((u) => u.toString() !== exclude?.toString()).map((u) => ({ label: vscode.workspace.asRelativePath(u), uri: u }));
    if (items.length === 0)
      return (await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'Evaluation reports': ['json'] }, openLabel: 'Compare', title }))?.[0];
    // Kept open when focus moves: a webview taking its focus back between the two questions
    // closed the second one before the writer saw it.
    return (await vscode.window.showQuickPick(items, { title, placeHolder: 'A report.json written by pal eval --out (or by a run)', ignoreFocusOut: true }))
      ?.uri;
  };
  const a = await pick('PAL Studio: compare reports (1/2): the baseline (before)');
  if (!a) return;
  const b = await pick('PAL Studio: compare reports (2/2): the run to compare (after)', a);
  if (!b) return;
  const comparison = await host.client.request(CompareReportsRequest, { a: a.fsPath, b: b.fsPath });
  const panel = vscode.window.createWebviewPanel('palStudio.compare', 'PAL Studio: Runs Compared', vscode.ViewColumn.Active, webviewOptions(extensionUri));
  panel.webview.html = webviewHtml(panel.webview, extensionUri, 'compare', 'PAL Studio: Runs Compared');
  panel.webview.onDidReceiveMessage((raw: unknown) => {
    // The only message this view sends; anything else is ignored.
    if (parseFromCompareView(raw)) {
      const message: ToCompareView = { type: 'comparison', comparison };
      void panel.webview.postMessage(message);
    }
  });
}
