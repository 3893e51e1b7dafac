/**
 * Problems of PAL Studio files in the Problems panel, from the same validators as `pal validate`.
 * Checking runs in the engine process (large dialogue sets take a while), so typing never waits
 * for it; an edit is checked once the writer pauses.
 */
import * as vscode from 'vscode';
import { fileKind } from '../core/formats/index';
import type { Problem } from '../core/formats/types';
import { ValidateRequest } from '../engine/protocol';
import type { EngineHost } from './engineHost';

const DEBOUNCE_MS = 250;
const LARGE_FILE_LINES = 10_000;
const LARGE_FILE_DEBOUNCE_MS = 3_000;
const GLOB = '**/*.{persona.yaml,persona.yml,persona.json,dialogues.jsonl,pairs.jsonl,palrun.yaml,palrun.yml}';

export class PalDiagnostics implements vscode.Disposable {
  private readonly collection = vscode.languages.createDiagnosticCollection('pal-studio');
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** The document version each answer was computed for: a late answer for an old version is dropped. */
  private readonly pending = new Map<string, number>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly host: EngineHost) {
    this.disposables.push(
      this.collection,
      vscode.workspace.onDidOpenTextDocument((d) => this.schedule(d, 0)),
      // A large file (the annotator's 100,000 pairs) waits for a pause: each check copies its whole
      // text out of the extension host, which would hold up every key press in between.
      vscode.workspace.onDidChangeTextDocument((e) =>
        this.schedule(e.document, e.document.lineCount > LARGE_FILE_LINES ? LARGE_FILE_DEBOUNCE_MS : DEBOUNCE_MS),
      ),
      vscode.workspace.onDidCloseTextDocument((d) => {
        // A closed file's problems stay only if it still exists (Validate All keeps showing them).
        this.cancel(d.uri);
        if (d.isUntitled) this.collection.delete(d.uri);
      }),
      vscode.workspace.onDidDeleteFiles((e) => e.files.forEach((u) => this.collection.delete(u))),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('palStudio.lint')) vscode.workspace.textDocuments.forEach((d) => this.schedule(d, 0));
      }),
      host.onDidBecomeReady(() => vscode.workspace.textDocuments.forEach((d) => this.schedule(d, 0))),
    );
  }

  /** Checks every PAL file in the workspace; returns how many files and problems there were. */
  async validateWorkspace(token?: vscode.CancellationToken): Promise<{ files: number; errors: number; warnings: number }> {
    const uris = await vscode.workspace.findFiles(GLOB, '**/node_modules/**', undefined, token);
    let errors = 0;
    let warnings = 0;
    for (const uri of uris) {
      if (token?.isCancellationRequested) break;
      const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
      const problems = await this.check(uri, open?.getText());
      errors += problems.filter((p) => p.severity === 'error').length;
      warnings += problems.filter((p) => p.severity === 'warning').length;
    }
    return { files: uris.length, errors, warnings };
  }

  private schedule(doc: vscode.TextDocument, delay: number): void {
    if (doc.uri.scheme !== 'file' && doc.uri.scheme !== 'untitled') return;
    if (!fileKind(doc.fileName)) return;
    this.cancel(doc.uri);
    const key = doc.uri.toString();
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        const version = doc.version;
        this.pending.set(key, version);
        void this.check(doc.uri, doc.getText(), () => this.pending.get(key) === version);
      }, delay),
    );
  }

  private cancel(uri: vscode.Uri): void {
    const key = uri.toString();
    const t = this.timers.get(key);
    if (t) clearTimeout(t);
    this.timers.delete(key);
  }

  private async check(uri: vscode.Uri, text: string | undefined, stillCurrent: () => boolean = () => true): Promise<Problem[]> {
    const config = vscode.workspace.getConfiguration('palStudio.lint');
    try {
      const { problems } = await this.host.client.request(ValidateRequest, {
        file: uri.fsPath,
        ...(text !== undefined ? { text } : {}),
        lint: { maxFactWords: config.get<number>('maxFactWords', 25), contextTokens: config.get<number>('contextTokens', 256) },
      });
      if (stillCurrent()) this.collection.set(uri, problems.map(toDiagnostic));
      return [...problems];
    } catch {
      // The engine is restarting or stopped: its ready event re-checks open files.
      return [];
    }
  }

  dispose(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    for (const d of this.disposables) d.dispose();
  }
}

const SEVERITY: Record<Problem['severity'], vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  info: vscode.DiagnosticSeverity.Information,
};

export function toDiagnostic(p: Problem): vscode.Diagnostic {
  const start = new vscode.Position(Math.max(0, p.line - 1), Math.max(0, p.column - 1));
  const end = new vscode.Position(Math.max(0, p.endLine - 1), Math.max(0, p.endColumn - 1));
  const range = end.isAfter(start) ? new vscode.Range(start, end) : new vscode.Range(start, start.translate(0, 1));
  const d = new vscode.Diagnostic(range, p.message, SEVERITY[p.severity]);
  d.source = 'PAL Studio';
  d.code = p.code;
  return d;
}
