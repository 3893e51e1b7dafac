/**
 * "PAL: Select Python Interpreter": every candidate the engine knows, probed, with whether it has
 * a usable torch; or a path typed or browsed by the user; or back to searching automatically.
 */
import * as vscode from 'vscode';
import { ListPythonsRequest, type PythonAttempt } from '../engine/protocol';
import type { EngineHost } from './engineHost';

type Item = vscode.QuickPickItem & { readonly pick: { kind: 'path'; path: string } | { kind: 'auto' } | { kind: 'browse' } | { kind: 'enter' } };

const ICON: Record<PythonAttempt['outcome'], string> = {
  usable: '$(check)',
  'no-torch': '$(warning)',
  'old-torch': '$(warning)',
  missing: '$(circle-slash)',
  failed: '$(error)',
  skipped: '$(dash)',
};

export async function selectPython(host: EngineHost): Promise<void> {
  const config = vscode.workspace.getConfiguration('palStudio');
  const current = config.get<string>('python.path', '').trim();
  const quickPick = vscode.window.createQuickPick<Item>();
  quickPick.title = 'PAL Studio: Python interpreter for the trainer';
  quickPick.placeholder = 'Looking for interpreters and checking which have torch…';
  quickPick.busy = true;
  const fixed: Item[] = [
    {
      label: '$(search) Search automatically',
      description: current ? '' : 'current',
      detail: 'Use the first interpreter found with torch >= 1.13 (clears the setting).',
      pick: { kind: 'auto' },
    },
    { label: '$(edit) Enter interpreter path…', pick: { kind: 'enter' } },
    { label: '$(folder-opened) Browse…', pick: { kind: 'browse' } },
  ];
  quickPick.items = fixed;
  quickPick.show();

  host.client
    .request(ListPythonsRequest)
    .then(({ candidates }) => {
      const found: Item[] = candidates
        .filter((c) => c.outcome !== 'missing')
        .map((c) => ({
          label: `${ICON[c.outcome]} ${c.path}`,
          description: `${c.source}${c.path === current ? ' · current' : ''}`,
          detail: c.detail,
          pick: { kind: 'path', path: c.path },
        }));
      quickPick.items = [...fixed, { label: 'Found', kind: vscode.QuickPickItemKind.Separator, pick: { kind: 'auto' } }, ...found];
      quickPick.placeholder = found.length ? 'Pick an interpreter (✓ = has a usable torch)' : 'No interpreter found: enter or browse to one';
    })
    .catch((err: Error) => {
      quickPick.placeholder = `Could not list interpreters: ${err.message}`;
    })
    .finally(() => {
      quickPick.busy = false;
    });

  const chosen = await new Promise<Item | undefined>((resolve) => {
    quickPick.onDidAccept(() => resolve(quickPick.selectedItems[0]));
    quickPick.onDidHide(() => resolve(undefined));
  });
  quickPick.dispose();
  if (!chosen) return;

  let value: string | undefined;
  switch (chosen.pick.kind) {
    case 'auto':
      value = '';
      break;
    case 'path':
      value = chosen.pick.path;
      break;
    case 'enter':
      value = await vscode.window.showInputBox({ title: 'Python interpreter path', value: current, prompt: 'An interpreter that can import torch (>= 1.13).' });
      break;
    case 'browse': {
      const uris = await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: 'Use this interpreter', title: 'Python interpreter' });
      value = uris?.[0]?.fsPath;
      break;
    }
  }
  if (value === undefined) return;
  await config.update('python.path', value, vscode.ConfigurationTarget.Global);
  const info = await host.info({ refresh: true });
  if (info.python.found) {
    void vscode.window.showInformationMessage(`PAL Studio will train with ${info.python.selected?.path} (torch ${info.python.torch?.version}).`);
  } else {
    void vscode.window.showWarningMessage(`That interpreter cannot train: ${info.python.reason} ${info.python.hint ?? ''}`);
  }
}
