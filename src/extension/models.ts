import * as vscode from 'vscode';

/** The model the studio answers with: the `palStudio.models.default` setting, else the embedded default model. */
export function defaultModel(extensionUri: vscode.Uri): string {
  const configured = vscode.workspace.getConfiguration('palStudio').get<string>('models.default')?.trim();
  return configured || vscode.Uri.joinPath(extensionUri, 'models', 'pal-default').fsPath;
}
