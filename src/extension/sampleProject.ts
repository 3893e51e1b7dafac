/**
 * The sample project and the walkthrough's steps: "Open the Sample Project" copies the sample the
 * extension ships (samples/studio: two personas, dialogues, pairs and a run config written for
 * PAL Studio) into a new folder and opens it; the other steps open the first file of a kind in
 * the workspace with its PAL Studio editor.
 */
import * as os from 'node:os';
import * as vscode from 'vscode';

/** Copies the sample into `<parent>/pal-studio-sample` (or -2, -3… when taken) and opens it. */
export async function openSampleProject(extensionUri: vscode.Uri): Promise<void> {
  const parent = await vscode.window.showOpenDialog({
    title: 'PAL Studio: where should the sample project go?',
    openLabel: 'Create the sample project here',
    canSelectFolders: true,
    canSelectFiles: false,
    defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri ?? vscode.Uri.file(os.homedir()),
  });
  if (!parent?.[0]) return;
  const target = await freeFolder(parent[0], 'pal-studio-sample');
  // copy() never overwrites: the folder is new, so nothing a user wrote can be replaced.
  await vscode.workspace.fs.copy(vscode.Uri.joinPath(extensionUri, 'samples', 'studio'), target, { overwrite: false });
  // The walkthrough's first step ticks on this command (package.json, completionEvents), which runs
  // only once a folder was chosen and the sample copied: ticking on palStudio.openSampleProject
  // itself ticked it when the folder dialog was cancelled (issue 17). vscode.openFolder is the
  // window's command, so the walkthrough sees it run; a command of this extension, run from here,
  // never reaches the window. (An onContext key set on activation did not work either: a key that
  // already holds when the walkthrough is registered never ticks its step in VS Code 1.139.)
  await vscode.commands.executeCommand('vscode.openFolder', target, { forceNewWindow: vscode.workspace.workspaceFolders !== undefined });
}

async function freeFolder(parent: vscode.Uri, name: string): Promise<vscode.Uri> {
  for (let i = 1; ; i++) {
    const candidate = vscode.Uri.joinPath(parent, i === 1 ? name : `${name}-${i}`);
    try {
      await vscode.workspace.fs.stat(candidate);
    } catch {
      return candidate;
    }
  }
}

const KINDS = {
  persona: { glob: '**/*.persona.{yaml,yml,json}', what: 'persona (*.persona.yaml)' },
  pairs: { glob: '**/*.pairs.jsonl', what: 'preference-pairs file (*.pairs.jsonl)' },
  run: { glob: '**/*.palrun.{yaml,yml}', what: 'run config (*.palrun.yaml)' },
} as const;

/** Opens the workspace's first persona, pairs file or run config (walkthrough links pass the kind). */
export async function openFirst(kind: unknown): Promise<void> {
  if (typeof kind !== 'string' || !(kind in KINDS)) throw new Error(`Unknown kind of PAL file: ${String(kind)}`);
  const { glob, what } = KINDS[kind as keyof typeof KINDS];
  const [first] = await vscode.workspace.findFiles(glob, '**/{node_modules,runs}/**', 1);
  if (!first) throw new Error(`This workspace has no ${what}. "PAL: Open the Sample Project" creates one with everything the walkthrough uses.`);
  await vscode.commands.executeCommand('vscode.open', first);
}
