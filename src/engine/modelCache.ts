/**
 * Loaded models, kept for the next request (the engine's Try it, generation panel and pal chat):
 * a model is read once per folder, and a load that failed is tried again next time.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { loadModel, respond, type LoadedModel } from './inference';
import { DECODING_SETTINGS, type DecodingSettings, type SelectThenGenerateParams, type SelectThenGenerateResult } from './protocol';

export class ModelCache {
  private readonly models = new Map<string, Promise<LoadedModel>>();

  constructor(private readonly allowHub: () => boolean = () => false) {}

  get(folder: string): Promise<LoadedModel> {
    // A hub id ("org/name") is read from the hub only when the user allowed it and no local folder
    // of that name exists; everything else is a path.
    const hub = this.allowHub() && /^[\w.-]+\/[\w.-]+$/.test(folder) && !existsSync(path.resolve(folder));
    const key = hub ? folder : path.resolve(folder);
    let m = this.models.get(key);
    if (!m) {
      m = loadModel(key, { allowRemote: hub });
      this.models.set(key, m);
      m.catch(() => this.models.delete(key));
    }
    return m;
  }

  async selectThenGenerate(p: SelectThenGenerateParams, signal: AbortSignal, onText: (piece: string) => void): Promise<SelectThenGenerateResult> {
    const m = await this.get(p.model);
    // The decoding settings by name, and nothing else a client may have sent.
    const decoding = Object.fromEntries(DECODING_SETTINGS.filter((k) => p[k] !== undefined).map((k) => [k, p[k]])) as DecodingSettings;
    const r = await respond(
      m,
      { personas: p.personas, history: p.history },
      { ...decoding, signal, onText, ...(p.selection ? { selection: p.selection } : {}) },
    );
    return {
      selected: r.selected,
      selectedText: r.selectedText,
      selectionSource: r.selectionSource,
      ...(r.selectAnswer !== undefined ? { selectAnswer: r.selectAnswer } : {}),
      ...(r.selectProbabilities ? { selectProbabilities: r.selectProbabilities } : {}),
      response: r.response,
      device: m.device,
      ...(m.deviceNote ? { deviceNote: m.deviceNote } : {}),
    };
  }
}
