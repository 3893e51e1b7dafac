/**
 * transformers.js, loaded on first use. It is a large library (a 7 MB bundle) that only inference,
 * tokenization and evaluation need: built into dist/transformers.js of its own (scripts/build.mjs)
 * and required from there when asked for, so the engine and the CLI start without parsing it.
 * Every caller gets the same settings: local folders, and the hub only when allowed.
 */
import * as path from 'node:path';
import { packageRoot } from './paths';

export type Transformers = typeof import('@huggingface/transformers');

let loaded: Transformers | undefined;

export function transformers(options: { allowRemote?: boolean } = {}): Transformers {
  // A computed path: bundlers leave it to run time (dist/transformers.js from every bundle).
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a synchronous load of a path known at run time only
  loaded ??= require(path.join(packageRoot(), 'dist', 'transformers.js')) as Transformers;
  loaded.env.allowRemoteModels = options.allowRemote === true;
  loaded.env.allowLocalModels = true;
  loaded.env.localModelPath = '';
  return loaded;
}
