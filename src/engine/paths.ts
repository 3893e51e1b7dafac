import * as os from 'node:os';
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

/**
 * PAL Studio's per-user cache: $PAL_STUDIO_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/pal-studio. It
 * holds the trainer's virtual environment (`python`, made by scripts/setup-python.sh) and tools
 * (`tools`: code-server for the tests). The shell scripts compute the same path, and so does
 * scripts/code-server.mjs (a plain script that cannot import this): keep them in step.
 */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env, home: string = os.homedir(), pathApi: path.PlatformPath = path): string {
  if (env.PAL_STUDIO_CACHE) return env.PAL_STUDIO_CACHE;
  return pathApi.join(env.XDG_CACHE_HOME || pathApi.join(home, '.cache'), 'pal-studio');
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
