/**
 * "PAL: Show Engine Info": a webview with what the engine reports (versions, devices, the Python
 * and torch the trainer will use, every interpreter tried) and the actions that fix what it shows.
 */
import * as vscode from 'vscode';
import { formatEngineInfo } from '../engine/format';
import type { EngineInfo } from '../engine/protocol';
import { parseFromEngineInfoView, type EngineInfoAction, type ToEngineInfoView } from '../../webview/engine-info/protocol';
import type { EngineHost } from './engineHost';
import { webviewHtml, webviewOptions } from './webviewHtml';

export class EngineInfoPanel implements vscode.Disposable {
  static readonly viewType = 'palStudio.engineInfo';
  private static current: EngineInfoPanel | undefined;

  private readonly disposables: vscode.Disposable[] = [];
  private latest: EngineInfo | undefined;

  static show(extensionUri: vscode.Uri, host: EngineHost, output: vscode.LogOutputChannel): EngineInfoPanel {
    if (EngineInfoPanel.current) {
      EngineInfoPanel.current.panel.reveal();
      void EngineInfoPanel.current.load(false);
      return EngineInfoPanel.current;
    }
    const panel = vscode.window.createWebviewPanel(EngineInfoPanel.viewType, 'PAL Studio: Engine', vscode.ViewColumn.Active, {
      ...webviewOptions(extensionUri),
      retainContextWhenHidden: false,
    });
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.png');
    EngineInfoPanel.current = new EngineInfoPanel(panel, extensionUri, host, output);
    return EngineInfoPanel.current;
  }

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    private readonly host: EngineHost,
    private readonly output: vscode.LogOutputChannel,
  ) {
    panel.webview.html = webviewHtml(panel.webview, extensionUri, 'engine-info', 'PAL Studio: Engine');
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((raw: unknown) => {
        const message = parseFromEngineInfoView(raw);
        if (!message) {
          this.output.warn(`Ignored a malformed message from the engine-info view: ${JSON.stringify(raw)?.slice(0, 200)}`);
          return;
        }
        if (message.type === 'ready') void this.load(false);
        else void this.act(message.action);
      }),
      host.onDidReceiveInfo((info) => this.post({ type: 'info', info, engineState: host.state })),
      // A restarted engine is a new process: show its pid and report.
      host.onDidBecomeReady(() => void this.load(false)),
    );
  }

  private async load(refresh: boolean): Promise<void> {
    await this.post({ type: 'loading', what: refresh ? 'Searching for Python again…' : 'Asking the engine…' });
    try {
      // The answer reaches the view through host.onDidReceiveInfo.
      this.latest = await this.host.info({ refresh });
    } catch (err) {
      await this.post({ type: 'error', message: (err as Error).message });
    }
  }

  private async act(action: EngineInfoAction): Promise<void> {
    switch (action) {
      case 'refresh':
        return this.load(true);
      case 'selectPython':
        await vscode.commands.executeCommand('palStudio.selectPython');
        return;
      case 'showLog':
        this.output.show(true);
        return;
      case 'restartEngine':
        await vscode.commands.executeCommand('palStudio.restartEngine');
        return;
      case 'copy':
        if (this.latest) {
          await vscode.env.clipboard.writeText(formatEngineInfo(this.latest));
          void vscode.window.showInformationMessage('PAL Studio: engine report copied.');
        }
        return;
    }
  }

  private post(message: ToEngineInfoView): Thenable<boolean> {
    return this.panel.webview.postMessage(message);
  }

  dispose(): void {
    EngineInfoPanel.current = undefined;
    this.panel.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}
