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
