/**
 * The generation panel: pick personas, write a dialogue, set the decoding, and sample several
 * select-then-generate responses side by side; then judge two of them and save the judgement as a
 * preference pair in a `*.pairs.jsonl` file. The panel only asks; the extension keeps the samples
 * (a saved pair holds only what the model wrote) and appends through the text document, so the
 * append is undoable and never overwrites what a writer has open and unsaved.
 */
import { INTERACTIVE_DECODING } from '../core/decoding';
import { RUN_STATE_FILE } from '../core/runFolder';
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { parsePersona } from '../core/formats/persona';
import { jsonlAppend, sampledPair } from '../core/pairAppend';
import { GenerateTextNotification, SelectThenGenerateRequest, type SelectThenGenerateResult } from '../engine/protocol';
import type { EngineHost } from './engineHost';
import { defaultModel, modelLabel, modelName } from './models';
import { webviewHtml, webviewOptions } from './webviewHtml';
import {
  parseFromGenerationPanel,
  type Decoding,
  type FromGenerationPanel,
  type PanelPersona,
  type ToGenerationPanel,
} from '../../webview/generation-panel/protocol';

const PERSONA_GLOB = '**/*.persona.{yaml,yml,json}';
const LAST_PAIRS_FILE = 'palStudio.generationPanel.lastPairsFile';

interface Generation {
  readonly id: number;
  readonly history: readonly string[];
  readonly personaIds: readonly string[];
  readonly decoding: Decoding;
  readonly model: string;
  readonly seeds: readonly number[];
  readonly results: (SelectThenGenerateResult | undefined)[];
}

export class GenerationPanel {
  private static current: GenerationPanel | undefined;

  /** Opens the panel (or brings it forward), with `persona` picked when given. */
  static show(context: vscode.ExtensionContext, host: EngineHost, output: vscode.LogOutputChannel, persona?: vscode.Uri): void {
    const select = persona instanceof vscode.Uri ? [persona.toString()] : undefined;
    if (GenerationPanel.current) {
      GenerationPanel.current.panel.reveal();
      if (select) void GenerationPanel.current.postPersonas(select);
      return;
    }
    const panel = vscode.window.createWebviewPanel('palStudio.generationPanel', 'PAL Generation', vscode.ViewColumn.Active, {
      ...webviewOptions(context.extensionUri),
      // Samples keep streaming in while the panel is in a background tab.
      retainContextWhenHidden: true,
    });
    GenerationPanel.current = new GenerationPanel(panel, context, host, output, select);
  }

  private personas: PanelPersona[] = [];
  private generation: Generation | undefined;
  private nextId = 1;
  /** Stops the generation running now (or about to start). */
  private stopSource: vscode.CancellationTokenSource | undefined;

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly context: vscode.ExtensionContext,
    private readonly host: EngineHost,
    private readonly output: vscode.LogOutputChannel,
    private pendingSelect: readonly string[] | undefined,
  ) {
    panel.iconPath = vscode.Uri.joinPath(context.extensionUri, 'media', 'icon.png');
    panel.webview.html = webviewHtml(panel.webview, context.extensionUri, 'generation-panel', 'PAL Generation');
    const watcher = vscode.workspace.createFileSystemWatcher(PERSONA_GLOB);
    const refresh = () => void this.postPersonas();
    const subscriptions = [
      watcher,
      watcher.onDidCreate(refresh),
      watcher.onDidChange(refresh),
      watcher.onDidDelete(refresh),
      // "Use this model" (the dashboard) and the setting itself: the panel names the model that answers.
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('palStudio.models.default')) refresh();
      }),
      panel.webview.onDidReceiveMessage((raw: unknown) => {
        const message = parseFromGenerationPanel(raw);
        if (!message) {
          this.output.warn(`Ignored a malformed message from the generation panel: ${JSON.stringify(raw)?.slice(0, 200)}`);
          return;
        }
        this.handle(message).catch((err: Error) => {
          this.output.error(`Generation panel: ${err.message}`);
          this.post({ type: 'problem', message: err.message });
        });
      }),
    ];
    panel.onDidDispose(() => {
      this.stopSource?.cancel();
      subscriptions.forEach((d) => d.dispose());
      GenerationPanel.current = undefined;
    });
  }

  private post(message: ToGenerationPanel): void {
    void this.panel.webview.postMessage(message);
  }

  private async handle(message: FromGenerationPanel): Promise<void> {
    if (message.type === 'ready') return this.postPersonas(this.pendingSelect);
    if (message.type === 'stop') return void this.stopSource?.cancel();
    if (message.type === 'generate') return this.generate(message.personas, message.history, message.decoding);
    return this.save(message.generation, message.chosen, message.rejected);
  }

  private async postPersonas(select?: readonly string[]): Promise<void> {
    this.pendingSelect = undefined;
    const files = await vscode.workspace.findFiles(PERSONA_GLOB, '**/node_modules/**');
    this.personas = (await Promise.all(files.map(readPersona))).sort((a, b) => a.file.localeCompare(b.file));
    const model = defaultModel();
    this.post({ type: 'personas', personas: this.personas, model: modelName(model), modelLabel: modelLabel(model), ...(select ? { select } : {}) });
  }

  /** Samples `decoding.samples` responses at once (seeds seed, seed + 1, …), streamed into their cards. */
  private async generate(keys: readonly string[], history: readonly string[], decoding: Decoding): Promise<void> {
    // Made before the first await, so that a Stop right behind this message stops this generation.
    this.stopSource?.cancel();
    const cancel = new vscode.CancellationTokenSource();
    this.stopSource = cancel;
    const personas: PanelPersona[] = [];
    for (const key of keys) {
      // Read again: the facts as they are now, unsaved edits included (as "Try it" uses them).
      const known = this.personas.find((p) => p.key === key);
      const persona = known && (await readPersona(vscode.Uri.parse(key)));
      if (!persona || persona.error || !persona.id) throw new Error(`${known?.file ?? key}: ${persona?.error ?? 'not a persona file of this workspace'}`);
      personas.push(persona);
    }
    const facts = personas.flatMap((p) => p.facts);
    if (facts.length === 0) throw new Error('The personas picked have no facts: add some in the persona editor first.');
    const model = defaultModel();
    const seeds = Array.from({ length: decoding.samples }, (_, i) => decoding.seed + i);
    const generation: Generation = {
      id: this.nextId++,
      history,
      personaIds: personas.map((p) => p.id!),
      decoding,
      model,
      seeds,
      results: seeds.map(() => undefined),
    };
    if (cancel.token.isCancellationRequested) return;
    this.generation = generation;
    const streams = seeds.map(() => randomBytes(8).toString('hex'));
    const stream = this.host.client.onNotification(GenerateTextNotification, (p) => {
      const index = streams.indexOf(p.streamId);
      if (index >= 0) this.post({ type: 'sample', generation: generation.id, index, state: 'text', piece: p.piece });
    });
    this.post({ type: 'generation', state: 'started', generation: generation.id, seeds, facts });
    this.output.info(`Generation panel: ${seeds.length} samples from ${model} (personas ${generation.personaIds.join(', ')}, seeds ${seeds.join(', ')})`);
    const { temperature, topK, topP, maxNewTokens, repetitionPenalty, noRepeatNgramSize } = decoding;
    try {
      await Promise.all(
        seeds.map(async (seed, index) => {
          const params = {
            model,
            personas: facts,
            history,
            temperature,
            topK,
            topP,
            maxNewTokens,
            repetitionPenalty,
            noRepeatNgramSize,
            ...(noRepeatNgramSize > 0 ? { noRepeatNgramFrom: INTERACTIVE_DECODING.noRepeatNgramFrom } : {}),
            seed,
            streamId: streams[index]!,
          };
          try {
            const r = await this.host.client.request(SelectThenGenerateRequest, params, cancel.token);
            generation.results[index] = r;
            const { response, selected, selectedText, selectionSource } = r;
            this.post({ type: 'sample', generation: generation.id, index, state: 'done', response, selected, selectedText, selectionSource });
          } catch (err) {
            const stopped = cancel.token.isCancellationRequested;
            const message = stopped
              ? 'Stopped.'
              : `${(err as Error).message} (model: ${modelLabel(model)}; the palStudio.models.default setting chooses another)`;
            this.post({ type: 'sample', generation: generation.id, index, state: 'error', message });
          }
        }),
      );
    } finally {
      stream.dispose();
      this.post({ type: 'generation', state: 'finished', generation: generation.id, stopped: cancel.token.isCancellationRequested });
      if (this.stopSource === cancel) this.stopSource = undefined;
      cancel.dispose();
    }
  }

  private async save(id: number, chosenIndex: number, rejectedIndex: number): Promise<void> {
    const g = this.generation;
    const chosen = g?.id === id ? g.results[chosenIndex] : undefined;
    const rejected = g?.id === id ? g.results[rejectedIndex] : undefined;
    if (!g || !chosen || !rejected) throw new Error('Those samples are gone or unfinished: generate again, then mark one chosen and one rejected.');
    const target = await this.pickPairsFile(g.personaIds[0]!);
    if (!target) return;
    const record = sampledPair({
      history: g.history,
      personaIds: g.personaIds,
      chosen: chosen.response,
      rejected: rejected.response,
      time: new Date(),
      sampling: {
        model: modelName(g.model),
        temperature: g.decoding.temperature,
        top_k: g.decoding.topK,
        top_p: g.decoding.topP,
        max_new_tokens: g.decoding.maxNewTokens,
        ...(g.decoding.repetitionPenalty !== 1 ? { repetition_penalty: g.decoding.repetitionPenalty } : {}),
        ...(g.decoding.noRepeatNgramSize !== 0
          ? { no_repeat_ngram_size: g.decoding.noRepeatNgramSize, no_repeat_ngram_from: INTERACTIVE_DECODING.noRepeatNgramFrom }
          : {}),
        seeds: [g.seeds[chosenIndex]!, g.seeds[rejectedIndex]!],
        // The fact each reply was generated with highlighted (-1: none), among the personas' facts in order.
        selected: [
          { index: chosen.selected, text: chosen.selectedText },
          { index: rejected.selected, text: rejected.selectedText },
        ],
      },
    });
    const { line, saved } = await appendLine(target, record);
    await this.context.workspaceState.update(LAST_PAIRS_FILE, target.toString());
    const file = vscode.workspace.asRelativePath(target);
    this.output.info(`Generation panel: added a preference pair to ${file}, line ${line}`);
    this.post({ type: 'saved', file, line });
    const note = saved ? '' : ' The file had unsaved changes, so it is left unsaved.';
    void vscode.window.showInformationMessage(`Added the preference pair to ${file}, line ${line}.${note}`, 'Open').then(async (choice) => {
      if (choice !== 'Open') return;
      const document = await vscode.workspace.openTextDocument(target);
      const range = document.lineAt(line - 1).range;
      await vscode.window.showTextDocument(document, { selection: range, preview: false });
    });
  }

  /** The model as a writer knows it: `pal-default` for the embedded one, else the setting's value. */
  /** The workspace's pairs files, the last one used first, or a new file. */
  private async pickPairsFile(personaId: string): Promise<vscode.Uri | undefined> {
    const last = this.context.workspaceState.get<string>(LAST_PAIRS_FILE);
    // A run's own stage2.pairs.jsonl (beside its state.json) is the run's output, not a writer's file.
    const found = await vscode.workspace.findFiles('**/*.pairs.jsonl', '**/node_modules/**');
    const inRunFolder = await Promise.all(
      found.map((uri) =>
        vscode.workspace.fs.stat(vscode.Uri.joinPath(uri, '..', RUN_STATE_FILE)).then(
          () => true,
          () => false,
        ),
      ),
    );
    const files = found.filter((_, i) => !inRunFolder[i]).map((uri) => ({ uri, label: vscode.workspace.asRelativePath(uri) }));
    files.sort((a, b) => Number(b.uri.toString() === last) - Number(a.uri.toString() === last) || a.label.localeCompare(b.label));
    const items = [
      ...files.map((f) => ({ ...f, description: f.uri.toString() === last ? 'last used' : undefined })),
      { uri: undefined, label: '$(new-file) New pairs file…' },
    ];
    const picked = await vscode.window.showQuickPick(items, {
      title: 'Save the preference pair to',
      placeHolder: 'A *.pairs.jsonl file: the pair is added as its last line',
    });
    if (!picked) return undefined;
    if (picked.uri) return picked.uri;
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const chosen = await vscode.window.showSaveDialog({
      title: 'New pairs file',
      saveLabel: 'Create',
      filters: { 'Preference pairs': ['jsonl'] },
      ...(folder ? { defaultUri: vscode.Uri.joinPath(folder, 'pairs', `${personaId}.pairs.jsonl`) } : {}),
    });
    if (!chosen) return undefined;
    return /\.pairs\.jsonl$/i.test(chosen.path) ? chosen : chosen.with({ path: chosen.path.replace(/(\.jsonl)?$/i, '.pairs.jsonl') });
  }
}

/** A persona file as the panel lists it: its facts, or why it cannot be used (with file and line). */
async function readPersona(uri: vscode.Uri): Promise<PanelPersona> {
  const file = vscode.workspace.asRelativePath(uri);
  let text: string;
  try {
    const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
    text = open ? open.getText() : new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
  } catch (err) {
    return { key: uri.toString(), file, facts: [], error: `cannot be read: ${(err as Error).message}` };
  }
  const doc = parsePersona(text, uri.fsPath);
  const error = doc.problems.find((p) => p.severity === 'error');
  if (!doc.persona || error) {
    return { key: uri.toString(), file, facts: [], error: error ? `line ${error.line}: ${error.message}` : 'not a persona' };
  }
  const { id, name, facts } = doc.persona;
  return { key: uri.toString(), file, id, name, facts };
}

/**
 * Appends one JSON line to the document (created when new) as an undoable edit, and saves it
 * unless it already held unsaved changes: those are the writer's to save or drop.
 */
async function appendLine(uri: vscode.Uri, record: unknown): Promise<{ line: number; saved: boolean }> {
  const exists = await vscode.workspace.fs.stat(uri).then(
    () => true,
    () => false,
  );
  if (!exists) {
    const create = new vscode.WorkspaceEdit();
    create.createFile(uri, { ignoreIfExists: true });
    if (!(await vscode.workspace.applyEdit(create))) throw new Error(`Could not create ${vscode.workspace.asRelativePath(uri)}.`);
  }
  const document = await vscode.workspace.openTextDocument(uri);
  const wasDirty = document.isDirty;
  const text = document.getText();
  const { insert, line } = jsonlAppend(text, record);
  const edit = new vscode.WorkspaceEdit();
  edit.insert(uri, document.positionAt(text.length), insert);
  if (!(await vscode.workspace.applyEdit(edit))) throw new Error(`Could not add the pair to ${vscode.workspace.asRelativePath(uri)}.`);
  if (!wasDirty && !(await document.save())) throw new Error(`Added the pair to ${vscode.workspace.asRelativePath(uri)}, but could not save it.`);
  return { line, saved: !wasDirty };
}
