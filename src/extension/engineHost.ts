/**
 * The extension's side of the engine process: starts it, forwards its logs to the "PAL Studio"
 * output channel, tells the user in plain words when it crashed, and shows its state in the
 * status bar. All engine work happens in the child process; nothing here blocks the host.
 */
import * as vscode from 'vscode';
import { EngineClient, type EngineState } from '../engine/client';
import { engineEntry } from '../engine/paths';
import { EngineInfoRequest, type EngineInfo, type EngineInfoParams, type EngineSettings, type LogLevel } from '../engine/protocol';
import { PAL_STUDIO_VERSION } from '../core/version';
import type { TestReport } from './testReport';

export class EngineHost implements vscode.Disposable {
  readonly client: EngineClient;
  private readonly statusItem: vscode.StatusBarItem;
  private readonly disposables: vscode.Disposable[] = [];
  private crashNotified = false;
  private lastInfo: EngineInfo | undefined;
  private readonly infoEmitter = new vscode.EventEmitter<EngineInfo>();
  /** Fires with every engine/info answer, so open views stay current. */
  readonly onDidReceiveInfo = this.infoEmitter.event;
  /** Fires when a (re)started engine is ready. */
  readonly onDidBecomeReady: vscode.Event<{ pid: number }>;

  constructor(
    private readonly output: vscode.LogOutputChannel,
    private readonly report: TestReport,
  ) {
    this.client = new EngineClient({
      enginePath: engineEntry(),
      client: { name: `PAL Studio extension (VS Code ${vscode.version})`, version: PAL_STUDIO_VERSION },
      settings: () => currentSettings(),
      autoRestart: () => vscode.workspace.getConfiguration('palStudio').get<boolean>('engine.autoRestart', true),
    });
    this.onDidBecomeReady = this.client.onReady;

    this.statusItem = vscode.window.createStatusBarItem('palStudio.engine', vscode.StatusBarAlignment.Left, 10);
    this.statusItem.name = 'PAL Studio Engine';
    this.statusItem.command = 'palStudio.showEngineInfo';
    this.showState('stopped');
    this.statusItem.show();

    this.disposables.push(
      this.statusItem,
      this.infoEmitter,
      this.client.onLog(({ level, message }) => logTo(this.output, level, message)),
      this.client.onDidChangeState(({ state, detail }) => this.showState(state, detail)),
      this.client.onReady(({ pid }) => {
        this.report.write({ event: 'engine-ready', pid });
        // Ask for the info right away: the search for Python runs in the engine process and the
        // status bar can then say whether training is possible.
        void this.info().catch((err: Error) => this.output.warn(`engine/info failed: ${err.message}`));
      }),
      this.client.onCrash((crash) => {
        this.report.write({ event: 'engine-crash', ...crash });
        if (!crash.willRestart) {
          void this.notify('error', crash.message, 'Restart Engine', 'Show Log');
        } else if (!this.crashNotified) {
          // Once: a second crash in a session is logged, not announced again.
          this.crashNotified = true;
          void this.notify('warning', crash.message, 'Show Log');
        }
      }),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('palStudio')) this.client.settingsChanged();
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.client.settingsChanged()),
    );
  }

  start(): void {
    this.output.info(`Starting the engine (${engineEntry()}).`);
    this.client.start().catch((err: Error) => this.output.error(`The engine did not start: ${err.message}`));
  }

  async restart(): Promise<void> {
    this.output.info("Restarting the engine at the user's request.");
    await this.client.restart();
  }

  async info(params: EngineInfoParams = {}): Promise<EngineInfo> {
    const info = await this.client.request(EngineInfoRequest, params);
    this.lastInfo = info;
    this.report.write({ event: 'engine-info', extensionHostPid: process.pid, info });
    this.infoEmitter.fire(info);
    this.showState(this.client.currentState);
    return info;
  }

  /** A line in the "PAL Studio" output channel. */
  log(message: string): void {
    this.output.info(message);
  }

  get state(): EngineState {
    return this.client.currentState;
  }

  private async notify(kind: 'warning' | 'error', message: string, ...actions: string[]): Promise<void> {
    this.report.write({ event: 'notification', kind, message });
    const show = kind === 'error' ? vscode.window.showErrorMessage : vscode.window.showWarningMessage;
    const choice = await show(message, ...actions);
    if (choice === 'Show Log') this.output.show(true);
    if (choice === 'Restart Engine') await vscode.commands.executeCommand('palStudio.restartEngine');
  }

  private showState(state: EngineState, detail?: string): void {
    const python = this.lastInfo?.python;
    const gpu = this.lastInfo?.devices.some((d) => d.kind === 'cuda');
    const item = this.statusItem;
    item.backgroundColor = undefined;
    switch (state) {
      case 'starting':
      case 'restarting':
        item.text = '$(sync~spin) PAL';
        item.tooltip = state === 'starting' ? 'PAL Studio: the engine is starting…' : `PAL Studio: restarting the engine. ${detail ?? ''}`;
        break;
      case 'ready':
        item.text = python && !python.found ? '$(warning) PAL' : gpu ? '$(pulse) PAL · GPU' : '$(pulse) PAL';
        item.tooltip = python
          ? python.found
            ? `PAL Studio engine ready. Training with torch ${python.torch?.version} (${python.selected?.path}).`
            : `PAL Studio engine ready. Training is not available: ${python.reason}`
          : 'PAL Studio engine ready.';
        break;
      case 'failed':
        item.text = '$(error) PAL';
        item.tooltip = `PAL Studio: the engine is not running. ${detail ?? ''}`;
        item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
        break;
      case 'stopped':
        item.text = '$(circle-slash) PAL';
        item.tooltip = 'PAL Studio: the engine is stopped.';
        break;
    }
  }

  dispose(): void {
    this.client.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

export function currentSettings(): EngineSettings {
  const config = vscode.workspace.getConfiguration('palStudio');
  const pythonPath = config.get<string>('python.path', '').trim();
  return {
    ...(pythonPath ? { pythonPath } : {}),
    allowPython: vscode.workspace.isTrusted,
    logLevel: config.get<LogLevel>('engine.logLevel', 'info'),
    allowHub: config.get<boolean>('models.allowHub', false),
  };
}

function logTo(output: vscode.LogOutputChannel, level: LogLevel, message: string): void {
  switch (level) {
    case 'error':
      output.error(message);
      break;
    case 'warn':
      output.warn(message);
      break;
    case 'info':
      output.info(message);
      break;
    case 'debug':
      // The channel's own level filters debug lines; the engine already dropped what its setting excludes.
      output.info(`[debug] ${message}`);
      break;
  }
}
