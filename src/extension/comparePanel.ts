/** "PAL: Compare Evaluation Reports": two `pal eval` reports side by side in a webview. */
import * as vscode from 'vscode';
import { CompareReportsRequest } from '../engine/protocol';
import type { EngineHost } from './engineHost';
import { webviewHtml, webviewOptions } from './webviewHtml';

export async function compareReports(extensionUri: vscode.Uri, host: EngineHost): Promise<void> {
  const found = await vscode.workspace.findFiles('**/report.json', '**/node_modules/**');
  const items = found.map((u) => ({ label: vscode.workspace.asRelativePath(u), uri: u }));
  let picked: vscode.Uri[] | undefined;
  if (items.length >= 2) {
    const choice = await vscode.window.showQuickPick(items, { canPickMany: true, title: 'PAL Studio: compare two evaluation reports', placeHolder: 'Pick two report.json files (from pal eval --out)' });
    picked = choice?.map((c) => c.uri);
  } else {
    picked = await vscode.window.showOpenDialog({ canSelectMany: true, filters: { 'Evaluation reports': ['json'] }, openLabel: 'Compare' });
  }
  if (!picked) return;
  if (picked.length !== 2) throw new Error(`Pick exactly two reports (you picked ${picked.length}).`);
  // The older report is the baseline: changes read as "what the later run did".
  const [a, b] = (await Promise.all(picked.map(async (u) => ({ u, t: (await vscode.workspace.fs.stat(u)).mtime })))).sort((x, y) => x.t - y.t).map((x) => x.u);
  const comparison = await host.client.request(CompareReportsRequest, { a: a!.fsPath, b: b!.fsPath });
  const panel = vscode.window.createWebviewPanel('palStudio.compare', 'PAL Studio: Runs Compared', vscode.ViewColumn.Active, webviewOptions(extensionUri));
  panel.webview.html = webviewHtml(panel.webview, extensionUri, 'compare', 'PAL Studio: Runs Compared');
  panel.webview.onDidReceiveMessage((m: unknown) => {
    // The only message this view sends; anything else is ignored.
    if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'ready' && Object.keys(m).length === 1) {
      void panel.webview.postMessage({ type: 'comparison', comparison });
    }
  });
}
