import { existsSync } from 'node:fs';
import * as path from 'node:path';

/**
 * Every bundle (dist/extension.js, dist/engine.js, dist/cli.js and the test bundles in dist-test/)
 * sits one folder below the package root, in the repository and in the installed extension alike.
 */
export function packageRoot(): string {
  return path.resolve(__dirname, '..');
}

/** The Python trainer package's parent folder (what goes on PYTHONPATH). */
export function trainerDir(): string {
  return process.env.PAL_TRAINER_DIR || path.join(packageRoot(), 'src', 'trainer');
}

/** The engine process's entry point. */
export function engineEntry(): string {
  return path.join(packageRoot(), 'dist', 'engine.js');
}

/** The name a run config gives PAL Studio's embedded default model (`model: {base: pal-default}`). */
export const EMBEDDED_MODEL_NAME = 'pal-default';

/** The embedded default model's folder (ONNX for inference, fp16 safetensors as a training base). */
export function embeddedModelDir(): string {
  return path.join(packageRoot(), 'models', EMBEDDED_MODEL_NAME);
}

/**
 * A model path as a run config writes it: a folder relative to the config, or the name
 * `pal-default` for the embedded default model when no folder of that name is there (a copied
 * sample project then works wherever it is).
 */
export function resolveModelPath(baseDir: string, spec: string): string {
  const local = path.resolve(baseDir, spec);
  return spec === EMBEDDED_MODEL_NAME && !existsSync(local) ? embeddedModelDir() : local;
}
