/**
 * The pair annotator: a custom text editor on `*.pairs.jsonl`. It shows one pair at a time and
 * turns each judgement or response edit into a replacement of exactly that line of the text
 * document (a WorkspaceEdit), so undo/redo, save, hot exit and "Reopen Editor With… Text Editor"
 * all work and every other line stays byte for byte. The webview gets only the pair on screen and
 * counts; the index of the whole file lives here and follows each document change line by line.
 */
import { performance } from 'node:perf_hooks';
import * as os from 'node:os';
import * as vscode from 'vscode';
import {
  DEFAULT_FILTER,
  editedResponseLine,
  judgedLine,
  lineView,
  mapLine,
  PairIndex,
  type Judgement,
  type LineChange,
  type PairFilter,
} from '../core/annotator';
import { parsePersona } from '../core/formats/persona';
import { judgementTime } from '../core/pairAppend';
import { parseFromPairAnnotator, type FromPairAnnotator, type Move, type ToPairAnnotator } from '../../webview/pair-annotator/protocol';
import type { TestReport } from './testReport';
import { webviewHtml, webviewOptions } from './webviewHtml';

type PersonaLookup = Map<string, { name: string; facts: readonly string[] }>;

export class PairAnnotatorProvider implements vscode.CustomTextEditorProvider {
  static readonly viewType = 'palStudio.pairAnnotator';

  /** The annotator in front, for the palette's commands (its keys in the view do the same). */
  private static active: AnnotatorSession | undefined;

  static register(extensionUri: vscode.Uri, output: vscode.LogOutputChannel, report: TestReport): vscode.Disposable {
    const command = (id: string, message: (s: AnnotatorSession) => FromPairAnnotator) =>
      vscode.commands.registerCommand(id, () => {
        const session = PairAnnotatorProvider.active;
        if (!session) throw new Error('No pair annotator is open in front: open a *.pairs.jsonl file first.');
        session.enqueue(message(session));
      });
    const judge =
      (judgement: Judgement) =>
      (s: AnnotatorSession): FromPairAnnotator => ({ type: 'judge', line: s.line, judgement });
    return vscode.Disposable.from(
      vscode.window.registerCustomEditorProvider(PairAnnotatorProvider.viewType, new PairAnnotatorProvider(extensionUri, output, report), {
        webviewOptions: { retainContextWhenHidden: false },
      }),
      command('palStudio.annotator.first', judge('first')),
      command('palStudio.annotator.second', judge('second')),
      command('palStudio.annotator.tie', judge('tie')),
      command('palStudio.annotator.skip', judge('skip')),
      command('palStudio.annotator.next', () => ({ type: 'move', to: 'next' })),
      command('palStudio.annotator.previous', () => ({ type: 'move', to: 'previous' })),
      command('palStudio.annotator.undo', () => ({ type: 'undo' })),
    );
  }

  private constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly output: vscode.LogOutputChannel,
    private readonly report: TestReport,
  ) {}

  resolveCustomTextEditor(document: vscode.TextDocument, panel: vscode.WebviewPanel): void {
    panel.webview.options = webviewOptions(this.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, 'pair-annotator', 'Pair annotator');
    const session = new AnnotatorSession(document, panel, this.output, this.report);
    const subscriptions = [
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (e.document === document && e.contentChanges.length > 0) session.documentChanged(e);
      }),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('palStudio.annotator.blind')) session.refresh();
      }),
      panel.webview.onDidReceiveMessage((raw: unknown) => {
        const message = parseFromPairAnnotator(raw);
        if (!message) {
          this.output.warn(`Ignored a malformed message from the pair annotator: ${JSON.stringify(raw)?.slice(0, 200)}`);
          return;
        }
        session.enqueue(message);
      }),
    ];
    if (panel.active) PairAnnotatorProvider.active = session;
    subscriptions.push(
      panel.onDidChangeViewState(() => {
        if (panel.active) PairAnnotatorProvider.active = session;
        else if (PairAnnotatorProvider.active === session) PairAnnotatorProvider.active = undefined;
      }),
    );
    panel.onDidDispose(() => {
      if (PairAnnotatorProvider.active === session) PairAnnotatorProvider.active = undefined;
      subscriptions.forEach((d) => d.dispose());
    });
    void loadPersonas().then(
      (personas) => session.setPersonas(personas),
      (err) => this.output.warn(`Pair annotator: could not read the personas: ${(err as Error).message}`),
    );
  }
}

/** Every persona file in the workspace, by id: names and facts to show beside a pair. */
async function loadPersonas(): Promise<PersonaLookup> {
  const lookup: PersonaLookup = new Map();
  for (const uri of await vscode.workspace.findFiles('**/*.persona.{yaml,yml,json}', '**/node_modules/**', 1000)) {
    const text = new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
    const persona = parsePersona(text, uri.fsPath).persona;
    if (persona?.id) lookup.set(persona.id, { name: persona.name, facts: persona.facts ?? [] });
  }
  return lookup;
}

const JUDGED: Record<Judgement, string> = {
  first: 'chosen as given (left better)',
  second: 'chosen with the responses swapped (right better)',
  tie: 'a tie',
  skip: 'skipped',
};

/** One open annotator: the document's index, where the writer is, and what the webview shows. */
class AnnotatorSession {
  private readonly index: PairIndex;
  private current: number;
  private filter: PairFilter = DEFAULT_FILTER;
  private personas: PersonaLookup = new Map();
  private ready = false;
  private seq = 0;
  private queue: Promise<void> = Promise.resolve();
  /** True while this session's own edit is applied: its change event does not post a view. */
  private editing = false;
  /** Key presses (and the open) waiting for the webview to say it has shown their view: for the test report. */
  private readonly timings = new Map<number, { action: string; start: number; handledMs: number }>();
  private readonly openStart = performance.now();
  /** Judgements waiting for the webview to show their view before they edit the document. */
  private readonly waiting = new Map<number, () => void>();
  /** When the webview's undo (or redo) key arrived, while VS Code runs it. */
  private undoStart: number | undefined;
  private readonly indexMs: number;

  constructor(
    private readonly document: vscode.TextDocument,
    private readonly panel: vscode.WebviewPanel,
    private readonly output: vscode.LogOutputChannel,
    private readonly report: TestReport,
  ) {
    const lines: string[] = new Array(document.lineCount);
    for (let i = 0; i < document.lineCount; i++) lines[i] = document.lineAt(i).text;
    this.index = new PairIndex(lines);
    this.indexMs = performance.now() - this.openStart;
    this.current = this.index.first(this.filter) ?? this.index.first({ ...this.filter, status: 'all' }) ?? 0;
  }

  /** The pair on screen (1-based, as messages number lines). */
  get line(): number {
    return this.current + 1;
  }

  setPersonas(personas: PersonaLookup): void {
    this.personas = personas;
    this.refresh();
  }

  /** Shows the pair on screen again (the personas or a setting changed). */
  refresh(): void {
    if (this.ready) this.post('');
  }

  /** Messages are handled one at a time, in order: a key press never overtakes the edit before it. */
  enqueue(message: FromPairAnnotator): void {
    const start = performance.now();
    if (message.type === 'rendered') return this.rendered(message.seq, message.keyMs); // never waits: a judgement may be waiting for it
    this.queue = this.queue
      .then(() => this.handle(message, start))
      .catch((err: unknown) => {
        const text = err instanceof Error ? err.message : String(err);
        this.output.error(`Pair annotator: ${text}`);
        this.post(`Nothing was changed: ${text}`);
      });
  }

  private async handle(message: FromPairAnnotator, start: number): Promise<void> {
    switch (message.type) {
      case 'ready': {
        this.ready = true;
        this.post('', 'open', this.openStart);
        const pairs = this.index.counts().pairs;
        this.output.info(
          `Pair annotator: ${vscode.workspace.asRelativePath(this.document.uri)}: ${this.document.lineCount} lines, ${pairs} pairs indexed in ${this.indexMs.toFixed(0)} ms.`,
        );
        return;
      }
      case 'judge':
        return this.judge(message.line - 1, message.judgement, start);
      case 'edit':
        return this.editResponse(message.line - 1, message.side, message.text, start);
      case 'undo':
      case 'redo':
        // VS Code's own undo of the document; the change event moves the view to the line it touched.
        this.undoStart = start;
        await vscode.commands.executeCommand(message.type);
        this.undoStart = undefined;
        return;
      case 'move': {
        const moved = this.move(message.to);
        this.post(moved ? `Line ${this.current + 1}.` : 'No further line in this filter.', 'move', start);
        return;
      }
      case 'filter':
        this.setFilter(message.filter);
        this.post('', 'filter', start);
        return;
      case 'openText': {
        const line = Math.min(message.line - 1, this.document.lineCount - 1);
        const range = this.document.lineAt(line).range;
        await vscode.window.showTextDocument(this.document, { viewColumn: vscode.ViewColumn.Beside, selection: range });
        return;
      }
    }
  }

  private async judge(line: number, judgement: Judgement, start: number): Promise<void> {
    if (line !== this.current || this.index.entry(line)?.kind !== 'pair') {
      this.post(`Line ${line + 1} is no longer the pair on screen; nothing was changed.`);
      return;
    }
    const before = this.document.lineAt(line).text;
    const text = judgedLine(before, judgement, judgementTime(new Date()), annotatorName());
    // The index takes the new line first, so the next pair can be on screen while VS Code applies
    // the edit (a round trip through the window); the next message waits for the edit all the same.
    this.index.setLine(line, text);
    const pending = this.index.nextPending(line, this.filter);
    // Where the next pending pair is; browsing judged pairs (All, Chosen…), there is nothing to say
    // when none is left (the note said "No pending pair is left" at every judgement).
    const next =
      pending !== undefined ? ` Next pending pair: line ${pending + 1}.` : this.filter.status === 'pending' ? ' No pending pair is left in this filter.' : '';
    const note = `Line ${line + 1}: ${JUDGED[judgement]}.${next}`;
    if (pending !== undefined) {
      this.current = pending;
      // The window applies the edit of a large document slowly (~80 ms for 100,000 lines): let the
      // next pair reach the screen first.
      await this.shown(this.post(note, `judge-${judgement}`, start), 250);
    }
    if (!(await this.replaceLine(line, text, before))) {
      this.current = line;
      return;
    }
    if (pending === undefined) this.post(note, `judge-${judgement}`, start); // the judged line stays on screen: show it as saved
  }

  private async editResponse(line: number, side: 'chosen' | 'rejected', text: string, start: number): Promise<void> {
    if (line !== this.current || this.index.entry(line)?.kind !== 'pair') {
      this.post(`Line ${line + 1} is no longer the pair on screen; the edit was not made.`);
      return;
    }
    const before = this.document.lineAt(line).text;
    if (!(await this.replaceLine(line, editedResponseLine(before, side, text), before))) return;
    this.post(`Line ${line + 1}: the ${side === 'chosen' ? 'left (chosen)' : 'right (rejected)'} response was edited.`, 'edit', start);
  }

  /** Replaces the text of one line (its line ending stays) through the document, if it still reads `before`. */
  private async replaceLine(line: number, text: string, before: string): Promise<boolean> {
    const old = line < this.document.lineCount ? this.document.lineAt(line) : undefined;
    if (old?.text !== before) {
      // Someone else changed the document meanwhile (another editor on the same file).
      if (old) this.index.setLine(line, old.text);
      this.post(`Line ${line + 1} changed in the meantime; nothing was changed.`);
      return false;
    }
    if (old.text === text) return true;
    const edit = new vscode.WorkspaceEdit();
    edit.replace(this.document.uri, old.range, text);
    this.editing = true;
    let applied: boolean;
    try {
      applied = await vscode.workspace.applyEdit(edit);
    } finally {
      this.editing = false;
    }
    this.index.setLine(line, this.document.lineAt(line).text); // the change event did this already; cheap and certain
    if (!applied) this.post(`VS Code did not apply the edit of line ${line + 1} (is the file read-only?); nothing was changed.`);
    return applied;
  }

  documentChanged(e: vscode.TextDocumentChangeEvent): void {
    const changes: LineChange[] = e.contentChanges.map((c) => ({ startLine: c.range.start.line, endLine: c.range.end.line, text: c.text }));
    this.index.applyChanges(changes, (i) => this.document.lineAt(i).text);
    this.current = Math.min(mapLine(this.current, changes), this.index.lineCount - 1);
    if (this.editing) return;
    let note = '';
    if (e.reason === vscode.TextDocumentChangeReason.Undo || e.reason === vscode.TextDocumentChangeReason.Redo) {
      // Follow the undo: show the line it changed back.
      const touched = Math.min(...changes.map((c) => c.startLine));
      if (this.index.entry(touched)) this.current = touched;
      note = `${e.reason === vscode.TextDocumentChangeReason.Undo ? 'Undone' : 'Redone'}: line ${touched + 1}.`;
    }
    if (this.ready) this.post(note, this.undoStart === undefined ? undefined : 'undo', this.undoStart);
  }

  private move(to: Move): boolean {
    const f = this.filter;
    const target =
      to === 'next'
        ? this.index.step(this.current, f, 1)
        : to === 'previous'
          ? this.index.step(this.current, f, -1)
          : to === 'first'
            ? this.index.first(f)
            : this.index.last(f);
    if (target === undefined) return false;
    this.current = target;
    return true;
  }

  private setFilter(filter: PairFilter): void {
    this.filter = filter;
    if (this.index.entry(this.current) && this.index.position(this.current, filter).index >= 0) return;
    this.current = this.index.step(this.current, filter, 1) ?? this.index.step(this.current, filter, -1) ?? this.current;
  }

  /** Resolves when the webview has shown view `seq`, or after `timeoutMs`. */
  private shown(seq: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(seq);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiting.set(seq, done);
    });
  }

  private post(note: string, action?: string, start?: number): number {
    const seq = ++this.seq;
    const line = this.current;
    const position = this.index.position(line, this.filter);
    // Off the filter (the pair just judged out of "pending"), the line stays on screen while others match.
    const shown = position.index >= 0 || (position.count > 0 && this.index.entry(line) !== null);
    const item = shown
      ? lineView(this.document.lineAt(line).text, line, vscode.workspace.asRelativePath(this.document.uri), (id) => this.personas.get(id))
      : null;
    if (item?.kind === 'invalid' && this.index.entry(line)?.kind === 'pair') this.index.markInvalid(line, item.problems[0] ?? 'invalid');
    const message: ToPairAnnotator = {
      type: 'view',
      seq,
      file: vscode.workspace.asRelativePath(this.document.uri),
      item,
      filter: this.filter,
      position,
      counts: this.index.counts(),
      note,
      blind: blindOrder(),
    };
    void this.panel.webview.postMessage(message);
    if (action && start !== undefined && this.report.enabled) this.timings.set(seq, { action, start, handledMs: performance.now() - start });
    return seq;
  }

  /**
   * The webview has shown view `seq`. `renderedMs` runs from the message's arrival here to that
   * acknowledgement (one trip more than the person waits); `keyMs`, measured in the webview, from
   * the key press to the view on screen.
   */
  private rendered(seq: number, keyMs: number | null): void {
    this.waiting.get(seq)?.();
    const timing = this.timings.get(seq);
    if (!timing) return;
    this.timings.delete(seq);
    const renderedMs = performance.now() - timing.start;
    if (timing.action === 'open') {
      this.report.write({
        event: 'pair-annotator-open',
        file: this.document.uri.fsPath,
        lines: this.document.lineCount,
        pairs: this.index.counts().pairs,
        indexMs: this.indexMs,
        firstViewMs: timing.handledMs,
        renderedMs,
      });
    } else {
      this.report.write({ event: 'pair-annotator-key', action: timing.action, lines: this.document.lineCount, handledMs: timing.handledMs, renderedMs, keyMs });
    }
  }
}

/** Who judges: the palStudio.annotator.name setting, else this machine's user name. */
function annotatorName(): string | undefined {
  const configured = vscode.workspace.getConfiguration('palStudio').get<string>('annotator.name')?.trim();
  if (configured) return configured;
  try {
    return os.userInfo().username || undefined;
  } catch {
    return undefined;
  }
}

/** The blind order's seed when palStudio.annotator.blind is on (the default), else null. */
function blindOrder(): { readonly seed: number } | null {
  return vscode.workspace.getConfiguration('palStudio').get<boolean>('annotator.blind', true) ? { seed: 1 } : null;
}
