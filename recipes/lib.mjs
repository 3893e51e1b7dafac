// What the model recipes share: running `pal` commands and trainer modules, and steps that are
// skipped when done and timed in <work>/recipe.json.
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const data = path.resolve(process.env.PAL_SHARED_DATA ?? path.join(root, '..', 'shared', 'data'));
const cli = path.join(root, 'dist', 'cli.js');

export async function readJson(file, fallback) {
  return JSON.parse(await fs.readFile(file, 'utf8').catch(() => JSON.stringify(fallback)));
}

/** Runs `pal <args>` from the repository root; resolves to its stdout when `capture`. */
export function pal(args, { capture = false } = {}) {
  return new Promise((resolve, reject) => {
    console.error(`\n$ pal ${args.map((a) => (a.includes(' ') ? JSON.stringify(a) : path.isAbsolute(a) ? path.relative(root, a) || '.' : a)).join(' ')}`);
    const child = spawn(process.execPath, [cli, ...args], { cwd: root, stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'] });
    let out = '';
    child.stdout?.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`pal ${args[0]} exited with ${code}`))));
  });
}

/** Runs `python -m <module> <args>` with the interpreter `pal info` selects; resolves to its stdout. */
export async function trainerModule(module, args) {
  const python = JSON.parse(await pal(['info', '--json'], { capture: true })).python?.selected?.path;
  if (!python) throw new Error('no usable Python/torch (pal info says why)');
  return new Promise((resolve, reject) => {
    const child = spawn(python, ['-m', module, ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, PYTHONPATH: path.join(root, 'src', 'trainer') },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${module} exited with ${code}`))));
  });
}

/**
 * A recipe working in `work`: `step(name, done, run)` runs `run` unless `done()` says it is done,
 * and records how long it took; `--until <step>` on the command line stops after that step.
 */
export async function recipe(work) {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build" first.`);
  await fs.mkdir(work, { recursive: true });
  const logFile = path.join(work, 'recipe.json');
  const until = process.argv.includes('--until') ? process.argv[process.argv.indexOf('--until') + 1] : undefined;
  return {
    async step(name, done, run) {
      const log = await readJson(logFile, { steps: {} });
      if (done()) {
        console.error(`[${name}] done already`);
      } else {
        const t0 = Date.now();
        await run();
        log.steps[name] = {
          seconds: Math.round((Date.now() - t0) / 1000),
          finished: new Date().toISOString(),
          machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}`,
        };
        await fs.writeFile(logFile, `${JSON.stringify(log, null, 2)}\n`);
      }
      if (until === name) {
        console.error(`Stopped after "${name}" (--until).`);
        process.exit(0);
      }
    },
  };
}
