/**
 * The security boundary of a run: every path a run config names, and every data file a run opens,
 * lies inside the workspace (the allowed roots) unless the user allowed otherwise. Paths are
 * resolved through symbolic links first, so a link cannot lead out.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { RunConfig } from '../core/formats/types';
import { resolveModelSpec } from './baseModels';
import { cacheRoot, embeddedModelDir } from './paths';

/** A path's real location: its longest existing ancestor's real path, plus the rest (an output folder may not exist yet). */
async function realLocation(p: string): Promise<string> {
  const rest: string[] = [];
  let at = path.resolve(p);
  for (;;) {
    const r = await fs.realpath(at).catch(() => undefined);
    if (r) return path.join(r, ...rest.reverse());
    const parent = path.dirname(at);
    if (parent === at) return path.resolve(p);
    rest.push(path.basename(at));
    at = parent;
  }
}

const isInside = (p: string, root: string) => p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);

function outsideError(configFile: string, key: string, where: string, allowed: readonly string[]): Error {
  return new Error(
    `${configFile}: ${key} points outside the workspace (${where}). A run reads and writes only inside the workspace (${allowed.join(', ')}) unless you allow it: the setting palStudio.runs.allowOutsideWorkspace, or pal train --allow-outside.`,
  );
}

/**
 * Every path a run config names, resolved (symbolic links followed, so a link cannot lead out)
 * and checked against the allowed roots; the embedded default model may always be read.
 */
export async function checkRunPaths(configFile: string, config: RunConfig, baseDir: string, roots: readonly string[]): Promise<void> {
  // Each root once (pal train allows the current folder and the config's, often the same one).
  const allowed = [...new Set(await Promise.all(roots.map(realLocation)))];
  // PAL Studio's own models may always be read: the embedded one, and those fetched by name into the cache.
  const ownModels = await Promise.all([embeddedModelDir(), path.join(cacheRoot(), 'models')].map(realLocation));
  const named: [string, string, boolean][] = [
    ['model.base', resolveModelSpec(baseDir, config.model.base), true],
    ...(config.model.tokenizer ? [['model.tokenizer', resolveModelSpec(baseDir, config.model.tokenizer), true] as [string, string, boolean]] : []),
    ...(['dialogues', 'pairs', 'personas'] as const).flatMap((k) =>
      config.data[k].map((e): [string, string, boolean] => [`data.${k}`, path.resolve(baseDir, e), false]),
    ),
    ['output', path.resolve(baseDir, config.output, config.name), false],
  ];
  for (const [key, p, model] of named) {
    const r = await realLocation(p);
    if (allowed.some((root) => isInside(r, root)) || (model && ownModels.some((m) => isInside(r, m)))) continue;
    throw outsideError(configFile, key, r, allowed);
  }
}

/**
 * A check for each data file a run is about to read (a file in a data folder may itself be a link
 * out of the workspace): it throws before the file is opened. Undefined when runs are not confined.
 */
export function fileConfinement(configFile: string, roots: readonly string[] | undefined): ((file: string, key: string) => Promise<void>) | undefined {
  if (!roots) return undefined;
  const allowed = Promise.all(roots.map(realLocation)).then((r) => [...new Set(r)]);
  return async (file, key) => {
    const r = await realLocation(file);
    const inside = await allowed;
    if (!inside.some((root) => isInside(r, root))) throw outsideError(configFile, `${key} (${file})`, r, inside);
  };
}
