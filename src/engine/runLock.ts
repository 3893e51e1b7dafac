/**
 * One process per run folder: a second VS Code window (its own engine) or a pal train on the same
 * run would race the first for the same checkpoints. The lock is `<runDir>/run.lock`, holding the
 * pid, host and start time of the process that runs it.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Takes `<runDir>/run.lock` for this process, or says who holds it. A lock left by a process that
 * is gone (killed, crashed) is taken over; one from another machine (a shared folder) is not
 * judged from here, so the message says how to clear it.
 */
export async function acquireRunLock(runDir: string): Promise<() => Promise<void>> {
  const file = path.join(runDir, 'run.lock');
  const mine = { pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.writeFile(file, `${JSON.stringify(mine)}\n`, { flag: 'wx' });
      return () => fs.rm(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    const held = parseLock(text);
    if (held && typeof held.pid === 'number' && held.host !== mine.host) {
      throw new Error(
        `${runDir} is being run on ${String(held.host)} (pid ${held.pid}, since ${String(held.startedAt)}). If that run is over, delete ${file}.`,
      );
    }
    if (held && typeof held.pid === 'number' && processAlive(held.pid)) {
      throw new Error(
        `${runDir} is already being run by another PAL Studio process (pid ${held.pid}, since ${String(held.startedAt)}): another VS Code window or a pal train. Stop it there or wait for it to finish.`,
      );
    }
    await fs.rm(file, { force: true }); // stale: its process is gone
  }
  throw new Error(`${file}: could not take the run's lock (it keeps changing); is another process starting this run?`);
}

/** A lock file's holder; null when it is not readable (half written by a process killed while writing it). */
function parseLock(text: string): { pid?: unknown; host?: unknown; startedAt?: unknown } | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as { pid?: unknown }) : null;
  } catch {
    return null;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, someone else's
  }
}
