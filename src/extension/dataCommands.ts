/**
 * Palette commands over the authoring formats: validate the workspace, import other data sets,
 * export pairs and personas. The work is done by the engine (the same code as `pal import`,
 * `pal export` and `pal validate`); this file asks the questions.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { fileKind } from '../core/formats/index';
import { ExportRequest, ImportRequest } from '../engine/protocol';
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

const IMPORT_KINDS: readonly (vscode.QuickPickItem & {
  from: 'persona-chat' | 'spc' | 'corpus' | 'card';
  suffix: string;
  filters: Record<string, string[]>;
})[] = [
  { label: 'PERSONA-CHAT / ConvAI2 (ParlAI text)', from: 'persona-chat', suffix: '.dialogues.jsonl', filters: { 'ParlAI text': ['txt'] } },
  { label: 'Synthetic-Persona-Chat (CSV)', from: 'spc', suffix: '.dialogues.jsonl', filters: { CSV: ['csv'] } },
  { label: 'Dialogue corpus with personas (JSON lines, .gz too)', from: 'corpus', suffix: '.dialogues.jsonl', filters: { 'JSON lines': ['jsonl', 'gz'] } },
  { label: 'Character Card V1/V2/V3 (JSON)', from: 'card', suffix: '.persona.yaml', filters: { JSON: ['json'] } },
];

export async function importData(host: EngineHost): Promise<void> {
  const kind = await vscode.window.showQuickPick(IMPORT_KINDS, { title: 'PAL Studio: import', placeHolder: 'What kind of file?' });
  if (!kind) return;
  const picked = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { ...kind.filters, 'All files': ['*'] }, openLabel: 'Import' });
  const input = picked?.[0];
  if (!input) return;
  const base = path.basename(input.fsPath).replace(/\.(txt|csv|json|jsonl|jsonl\.gz)$/i, '');
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri ?? vscode.Uri.file(path.dirname(input.fsPath));
  const target = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.joinPath(folder, `${base}${kind.suffix}`), saveLabel: 'Import into' });
  if (!target) return;
  // The save dialog already asked about replacing an existing file.
  // Labelling a large corpus by meaning takes minutes (Synthetic-Persona-Chat's 400,000 turns: 8 on
  // 2 cores), so the import shows that it is working.
  const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Importing ${path.basename(input.fsPath)}…` }, () =>
    host.client.request(ImportRequest, { input: input.fsPath, from: kind.from, out: target.fsPath, force: true }),
  );
  const skipped = result.problems.length
    ? ` ${result.problems.length} part${result.problems.length === 1 ? '' : 's'} could not be read (see the PAL Studio output).`
    : '';
  for (const p of result.problems) host.log(`import ${p.file}:${p.line}:${p.column}: ${p.message}`);
  if (result.count === 0) {
    await vscode.window.showWarningMessage(`Nothing to import from ${path.basename(input.fsPath)}: ${path.basename(result.out)} was not written.${skipped}`);
    return;
  }
  const split = result.split ? ` (split ${result.split.split}${result.split.from === 'file name' ? ', from the file name' : ''})` : '';
  const labelled = !result.labeller
    ? ''
    : result.labeller.kind === 'semantic'
      ? ` Persona sentences labelled by shared words, then by meaning (${result.labeller.semanticLabels ?? 0} by meaning).`
      : ' Persona sentences labelled by shared words.';
  const choice = await vscode.window.showInformationMessage(
    `Imported ${result.count} ${result.format === 'card' ? 'persona' : 'examples'}${split} into ${path.basename(result.out)}.${labelled}${skipped}`,
    'Open',
  );
  if (choice) await vscode.window.showTextDocument(vscode.Uri.file(result.out));
}

const EXPORT_TARGETS: readonly (vscode.QuickPickItem & { to: 'trl' | 'llama-factory' | 'axolotl' | 'card' })[] = [
  { label: 'TRL', description: 'DPO JSONL: prompt, chosen, rejected', to: 'trl' },
  { label: 'LLaMA-Factory', description: 'ranking data set + dataset_info.json', to: 'llama-factory' },
  { label: 'axolotl', description: 'DPO chat_template.default + dataset entry', to: 'axolotl' },
];

export async function exportData(host: EngineHost, resource?: vscode.Uri): Promise<void> {
  let input = resource ?? vscode.window.activeTextEditor?.document.uri;
  const kind = input ? fileKind(input.fsPath) : undefined;
  if (!input || (kind !== 'pairs' && kind !== 'persona')) {
    const found = await vscode.workspace.findFiles('**/*.{pairs.jsonl,persona.yaml,persona.yml,persona.json}', '**/node_modules/**');
    const pick = await vscode.window.showQuickPick(
      found.map((u) => ({ label: vscode.workspace.asRelativePath(u), uri: u })),
      { title: 'PAL Studio: export', placeHolder: 'A preference-pairs file (for TRL, LLaMA-Factory, axolotl) or a persona (as a Character Card)' },
    );
    if (!pick) return;
    input = pick.uri;
  }
  const isPersona = fileKind(input.fsPath) === 'persona';
  const target = isPersona
    ? { to: 'card' as const }
    : await vscode.window.showQuickPick(EXPORT_TARGETS, { title: `Export ${path.basename(input.fsPath)} for…` });
  if (!target) return;
  const base = path.basename(input.fsPath).replace(/\.(pairs\.jsonl|persona\.(ya?ml|json))$/i, '');
  const out = isPersona
    ? await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(path.join(path.dirname(input.fsPath), `${base}.card.json`)), saveLabel: 'Export card' })
    : (
        await vscode.window.showOpenDialog({
          canSelectFolders: true,
          canSelectFiles: false,
          defaultUri: vscode.Uri.file(path.dirname(input.fsPath)),
          openLabel: 'Export into this folder',
        })
      )?.[0];
  if (!out) return;
  let result;
  try {
    result = await host.client.request(ExportRequest, { input: input.fsPath, to: target.to, out: out.fsPath, force: isPersona });
  } catch (err) {
    const message = (err as Error).message;
    if (!/already exists/.test(message)) throw err;
    const replace = await vscode.window.showWarningMessage(`${message.replace(/; choose.*$/, '')}. Replace the exported files?`, { modal: true }, 'Replace');
    if (!replace) return;
    result = await host.client.request(ExportRequest, { input: input.fsPath, to: target.to, out: out.fsPath, force: true });
  }
  const left = result.leftOut?.total ? ` ${result.leftOut.total} left out (pending, skipped, tie or not expressible).` : '';
  host.log(`Export of ${input.fsPath} to ${target.to}: ${result.written.join(', ')}\n${result.usage}`);
  void vscode.window.showInformationMessage(`Exported ${result.exported} to ${target.to}: ${result.written.map((w) => path.basename(w)).join(', ')}.${left}`);
}
