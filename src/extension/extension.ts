/**
 * PAL Studio's VS Code side: commands, the engine host, views. Everything that computes lives in
 * the engine process; this file only wires VS Code to it.
 */
import * as vscode from 'vscode';
import type { EngineInfo } from '../engine/protocol';
import { PAL_STUDIO_VERSION } from '../core/version';
import { EngineHost } from './engineHost';
import { compareReports } from './comparePanel';
import { registerCompletion } from './completion';
import { exportData, importData, validateWorkspace } from './dataCommands';
import { PalDiagnostics } from './diagnostics';
import { EngineInfoPanel } from './engineInfoPanel';
import { GenerationPanel } from './generationPanel';
import { PairAnnotatorProvider } from './pairAnnotator';
import { PersonaEditorProvider } from './personaEditor';
import { selectPython } from './pythonPicker';
import { RunFollower } from './runCommands';
import { openFirst, openSampleProject } from './sampleProject';
import { RunDashboards } from './runDashboard';
import { TestReport } from './testReport';

/** What the extension exports to other extensions (and to tests that can reach the host). */
export interface PalStudioApi {
  readonly version: string;
  engineInfo(refresh?: boolean): Promise<EngineInfo>;
}

let activeHost: EngineHost | undefined;

export function activate(context: vscode.ExtensionContext): PalStudioApi {
  const output = vscode.window.createOutputChannel('PAL Studio', { log: true });
  const report = TestReport.fromEnvironment();
  const host = new EngineHost(output, report);
  activeHost = host;
  const diagnostics = new PalDiagnostics(host);
  const runs = new RunFollower(host);
  const dashboards = new RunDashboards(context.extensionUri, runs, host, output, report);
  context.subscriptions.push(dashboards);
  context.subscriptions.push(PairAnnotatorProvider.register(context.extensionUri, output, report));
  context.subscriptions.push(output, host, diagnostics, runs, registerCompletion(), PersonaEditorProvider.register(context.extensionUri, output, host));

  // Menus pass the file they were opened on: `run` gets the command's arguments.
  const command = (id: string, run: (...args: unknown[]) => unknown) =>
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async (...args: unknown[]) => {
        report.write({ event: 'command', id });
        try {
          await run(...args);
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          output.error(`${id}: ${message}`);
          void vscode.window.showErrorMessage(`PAL Studio: ${message}`, 'Show Log').then((c) => c && output.show(true));
        }
      }),
    );
  command('palStudio.showEngineInfo', () => EngineInfoPanel.show(context.extensionUri, host, output));
  command('palStudio.restartEngine', () => host.restart());
  command('palStudio.showLog', () => output.show(true));
  command('palStudio.validateWorkspace', () => validateWorkspace(diagnostics));
  command('palStudio.importData', () => importData(host));
  command('palStudio.exportData', () => exportData(host));
  command('palStudio.compareReports', () => compareReports(context.extensionUri, host));
  command('palStudio.openSampleProject', () => openSampleProject(context.extensionUri));
  command('palStudio.openFirst', (kind) => openFirst(kind));
  command('palStudio.openGenerationPanel', (persona) => GenerationPanel.show(context, host, output, persona instanceof vscode.Uri ? persona : undefined));
  command('palStudio.startRun', (resource) => {
    if (!vscode.workspace.isTrusted)
      throw new Error('Training runs need Python, which PAL Studio does not start in Restricted Mode; trust the workspace first.');
    // The dashboard follows the run (and stops it).
    return runs.start(resource instanceof vscode.Uri ? resource : undefined).then((run) => run?.runDir && dashboards.show(run.runDir));
  });
  command('palStudio.openRunDashboard', (runDir) => dashboards.open(runDir));
  command('palStudio.selectPython', () => {
    if (!vscode.workspace.isTrusted) throw new Error('Python is not used in Restricted Mode; trust the workspace first.');
    return selectPython(host);
  });

  output.info(`PAL Studio ${PAL_STUDIO_VERSION} in VS Code ${vscode.version} (extension host pid ${process.pid}).`);
  report.write({ event: 'activated', extensionHostPid: process.pid, vscodeVersion: vscode.version, extensionVersion: PAL_STUDIO_VERSION });
  host.start();

  return { version: PAL_STUDIO_VERSION, engineInfo: (refresh = false) => host.info({ refresh }) };
}

/** VS Code waits for this: the engine gets to shut down cleanly before the host goes away. */
export function deactivate(): Promise<void> | undefined {
  const host = activeHost;
  activeHost = undefined;
  return host?.client.stop();
}
