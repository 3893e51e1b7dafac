import * as path from 'node:path';
import * as vscode from 'vscode';
import { ALIGNED_MODELS, DEFAULT_ALIGNED_MODEL, fetchedModelDir, isFetched, resolveModelSpec } from '../engine/baseModels';
import { EMBEDDED_MODEL_NAME, embeddedModelDir } from '../engine/paths';

/**
 * The model the studio answers with: the `palStudio.models.default` setting (a folder, or a name
 * PAL Studio knows: pal-default, pal-smollm2-135m), else the aligned pretrained model when set-up
 * fetched it, else the embedded default model, which always works offline.
 */
export function defaultModel(): string {
  const configured = vscode.workspace.getConfiguration('palStudio').get<string>('models.default')?.trim();
  if (configured) return resolveModelSpec(vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.cwd(), configured);
  return isFetched(DEFAULT_ALIGNED_MODEL) ? fetchedModelDir(DEFAULT_ALIGNED_MODEL) : embeddedModelDir();
}

/** A model folder by the name PAL Studio knows it by (pal-default, pal-smollm2-135m), else its path: what a saved pair records. */
export function modelName(folder: string): string {
  if (folder === embeddedModelDir()) return EMBEDDED_MODEL_NAME;
  return Object.keys(ALIGNED_MODELS).find((name) => folder === fetchedModelDir(name)) ?? folder;
}

/** What a person reads for a model folder: its name and what it is, never only a path. */
export function modelLabel(folder: string): string {
  if (folder === embeddedModelDir()) return `${EMBEDDED_MODEL_NAME}, embedded`;
  const name = modelName(folder);
  const aligned = Object.hasOwn(ALIGNED_MODELS, name) ? ALIGNED_MODELS[name] : undefined;
  return aligned ? `${name}, ${aligned.short}` : vscode.workspace.asRelativePath(folder) || path.basename(folder);
}
