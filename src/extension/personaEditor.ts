/**
 * The persona editor: a custom text editor on `*.persona.yaml` (and `.persona.json`). The webview
 * shows a form; every edit it asks for is made in the text document with PAL Studio's minimal
 * YAML edits (comments, key order and untouched values stay as written), so undo/redo, save, hot
 * exit and "Reopen Editor With… Text Editor" work, and the form follows the text whoever changes
 * it. The webview never writes anything itself.
 */
import { TRY_IT_DECODING, TRY_IT_DECODING_LABELS, type TryItDecoding } from '../core/decoding';
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { editPersona, parsePersona } from '../core/formats/persona';
import { GenerateTextNotification, SelectThenGenerateRequest } from '../engine/protocol';
import type { EngineHost } from './engineHost';
import { defaultModel, modelLabel } from './models';
import { parseFromPersonaEditor, type ToPersonaEditor } from '../../webview/persona-editor/protocol';
import { webviewHtml, webviewOptions } from './webviewHtml';

export class PersonaEditorProvider implements vscode.CustomTextEditorProvider {
  static readonly viewType = 'palStudio.personaEditor';

  static register(extensionUri: vscode.Uri, output: vscode.LogOutputChannel, host: EngineHost): vscode.Disposable {
    return vscode.window.registerCustomEditorProvider(PersonaEditorProvider.viewType, new PersonaEditorProvider(extensionUri, output, host), {
      webviewOptions: { retainContextWhenHidden: false },
    });
  }

  private constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly output: vscode.LogOutputChannel,
    private readonly host: EngineHost,
  ) {}

  resolveCustomTextEditor(document: vscode.TextDocument, panel: vscode.WebviewPanel): void {
    panel.webview.options = webviewOptions(this.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, 'persona-editor', 'Persona');
    const post = () => void panel.webview.postMessage(view(document));
    const postModel = () => {
      const message: ToPersonaEditor = { type: 'tryIt', state: 'model', model: modelLabel(this.model()), decoding: TRY_IT_DECODING_LABELS[tryItDecoding()] };
      void panel.webview.postMessage(message);
    };
    const subscriptions = [
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('palStudio.models.default') || e.affectsConfiguration(TRY_IT_DECODING_SETTING)) postModel();
      }),
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (e.document.uri.toString() === document.uri.toString() && e.contentChanges.length > 0) post();
      }),
      panel.webview.onDidReceiveMessage(async (raw: unknown) => {
        const message = parseFromPersonaEditor(raw);
        if (!message) {
          this.output.warn(`Ignored a malformed message from the persona editor: ${JSON.stringify(raw)?.slice(0, 200)}`);
          return;
        }
        if (message.type === 'ready') {
          post();
          postModel();
        } else if (message.type === 'openText') await vscode.commands.executeCommand('vscode.openWith', document.uri, 'default');
        else if (message.type === 'tryIt') await this.tryIt(document, panel, message.message);
        else await this.edit(document, message.path, message.value);
      }),
    ];
    panel.onDidDispose(() => subscriptions.forEach((d) => d.dispose()));
  }

  /** The model "Try it" answers with (see defaultModel). */
  private model(): string {
    return defaultModel();
  }

  /** Select then generate with the persona as it is now (saved or not), streaming into the view. */
  private async tryIt(document: vscode.TextDocument, panel: vscode.WebviewPanel, message: string): Promise<void> {
    const facts = parsePersona(document.getText(), document.uri.fsPath).persona?.facts;
    const post = (m: ToPersonaEditor) => void panel.webview.postMessage(m);
    if (!facts?.length) {
      post({ type: 'tryIt', state: 'error', message: 'The persona needs at least one fact (and no errors) to try it.' });
      return;
    }
    const model = this.model();
    const streamId = randomBytes(8).toString('hex');
    const stream = this.host.client.onNotification(GenerateTextNotification, (p) => {
      if (p.streamId === streamId) post({ type: 'tryIt', state: 'text', piece: p.piece });
    });
    post({ type: 'tryIt', state: 'started', model: modelLabel(model) });
    const decoding = tryItDecoding();
    this.output.info(`Try it (${vscode.workspace.asRelativePath(document.uri)}): select then generate with ${model}, ${TRY_IT_DECODING_LABELS[decoding]}`);
    try {
      const r = await this.host.client.request(SelectThenGenerateRequest, {
        model,
        personas: facts,
        history: [message],
        streamId,
        ...TRY_IT_DECODING[decoding],
      });
      this.output.info(`Try it: fact ${r.selected + 1} selected (${r.selectionSource}), ${r.response.length} characters on ${r.device}`);
      post({ type: 'tryIt', state: 'done', selected: r.selected, selectedText: r.selectedText, selectionSource: r.selectionSource, response: r.response });
    } catch (err) {
      this.output.warn(`Try it failed: ${(err as Error).message}`);
      post({
        type: 'tryIt',
        state: 'error',
        message: `${(err as Error).message} (model: ${modelLabel(model)}; the palStudio.models.default setting chooses another)`,
      });
    } finally {
      stream.dispose();
    }
  }

  private async edit(document: vscode.TextDocument, path: readonly (string | number)[], value: unknown): Promise<void> {
    const before = document.getText();
    let after: string;
    try {
      after = editPersona(parsePersona(before, document.uri.fsPath), [...path], value === null ? undefined : value).text;
    } catch (err) {
      void vscode.window.showErrorMessage(`PAL Studio: ${(err as Error).message}`);
      return;
    }
    if (after === before) return;
    const edit = new vscode.WorkspaceEdit();
    edit.replace(document.uri, new vscode.Range(document.positionAt(0), document.positionAt(before.length)), after);
    await vscode.workspace.applyEdit(edit);
  }
}

const TRY_IT_DECODING_SETTING = 'palStudio.tryIt.decoding';

/** Try it's decoding as the setting names it ('beam' for anything else: package.json lists the two). */
function tryItDecoding(): TryItDecoding {
  const value = vscode.workspace.getConfiguration().get<string>(TRY_IT_DECODING_SETTING);
  return value === 'streamed' ? 'streamed' : 'beam';
}

/** What the form shows: the persona as parsed (null when the text is not readable as one) and its problems. */
export function view(document: vscode.TextDocument): ToPersonaEditor {
  const doc = parsePersona(document.getText(), document.uri.fsPath);
  const problems = doc.problems.map((p) => ({ line: p.line, column: p.column, severity: p.severity, code: p.code, message: p.message }));
  // The form shows what the file holds even when the schema finds problems in it (a missing name),
  // as long as it is a readable object; syntax errors send the writer to the text.
  let value: unknown;
  try {
    value = doc.format === 'yaml' ? (doc.yaml && !doc.yaml.doc.errors.length ? doc.yaml.doc.toJS() : undefined) : JSON.parse(doc.text);
  } catch {
    value = undefined;
  }
  const readable = typeof value === 'object' && value !== null && !Array.isArray(value);
  return readable
    ? { type: 'document', persona: value as Record<string, unknown>, problems }
    : { type: 'document', persona: null, problems, error: 'The file cannot be read as a persona (see the problems); fix it in the text editor.' };
}
