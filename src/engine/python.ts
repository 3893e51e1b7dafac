/**
 * Finding a Python interpreter with a usable torch for the trainer.
 *
 * The search is explicit and reported: every candidate is listed with what happened to it, so
 * "torch not found" always comes with the list of places that were looked at and why each one was
 * not good enough. A user's explicit setting is the only candidate when present: silently using
 * another interpreter than the one they chose would be a surprise.
 */
import { execFile } from 'node:child_process';
import { promises as fs, constants as fsConstants } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isAtLeast } from '../core/versions';
import type { PythonAttempt, PythonReport, PythonSource, TorchInfo } from './protocol';
import { cacheRoot, trainerDir } from './paths';

export const MIN_TORCH = '1.13';
/** Importing torch cold takes seconds on a slow disk; CUDA initialisation can take longer. */
const PROBE_TIMEOUT_MS = 90_000;

export interface PythonCandidate {
  readonly path: string;
  readonly source: PythonSource;
}

export interface SearchEnvironment {
  readonly env: NodeJS.ProcessEnv;
  readonly platform: NodeJS.Platform;
  readonly home: string;
}

export function currentSearchEnvironment(): SearchEnvironment {
  return { env: process.env, platform: process.platform, home: os.homedir() };
}

/**
 * The interpreters to consider, in order, without duplicates. Pure: the file system is not
 * consulted here (missing files are reported by the probe), so the order is easy to test.
 */
export function listCandidates(setting: string | undefined, search: SearchEnvironment): PythonCandidate[] {
  const { env, platform, home } = search;
  if (setting && setting.trim()) {
    return [{ path: expandHome(setting.trim(), home), source: 'setting' }];
  }
  const win = platform === 'win32';
  const pathApi = win ? path.win32 : path.posix;
  const exe = (dir: string, name: string) => pathApi.join(dir, win ? `${name}.exe` : name);
  const envBin = (prefix: string) => (win ? exe(prefix, 'python') : exe(pathApi.join(prefix, 'bin'), 'python'));

  const out: PythonCandidate[] = [];
  const add = (p: string | undefined, source: PythonSource) => {
    if (!p) return;
    const key = win ? p.toLowerCase() : p;
    if (!out.some((c) => (win ? c.path.toLowerCase() : c.path) === key)) out.push({ path: p, source });
  };

  add(env.PAL_PYTHON ? expandHome(env.PAL_PYTHON, home) : undefined, 'PAL_PYTHON');
  if (env.VIRTUAL_ENV) add(win ? pathApi.join(env.VIRTUAL_ENV, 'Scripts', 'python.exe') : envBin(env.VIRTUAL_ENV), 'VIRTUAL_ENV');
  if (env.CONDA_PREFIX) add(envBin(env.CONDA_PREFIX), 'CONDA_PREFIX');
  // PAL Studio's own environment (set-up makes it: scripts/setup-python.sh): after anything the
  // user pointed at, before whatever happens to be on PATH.
  add(palVenvPython(search), 'pal-venv');

  // Every match on PATH, not only the first: a pyenv or Homebrew python3 often comes first and
  // lacks torch while the system one further down has it.
  const pathVar = env.PATH ?? env.Path ?? '';
  const names = win ? ['python', 'python3'] : ['python3', 'python'];
  for (const dir of pathVar.split(win ? ';' : ':').filter(Boolean)) {
    for (const name of names) add(exe(dir, name), 'PATH');
  }

  const wellKnown = win
    ? [
        env.LOCALAPPDATA && pathApi.join(env.LOCALAPPDATA, 'Programs', 'Python', 'Python312', 'python.exe'),
        env.LOCALAPPDATA && pathApi.join(env.LOCALAPPDATA, 'Programs', 'Python', 'Python311', 'python.exe'),
        env.LOCALAPPDATA && pathApi.join(env.LOCALAPPDATA, 'Programs', 'Python', 'Python310', 'python.exe'),
        pathApi.join(home, 'miniconda3', 'python.exe'),
        pathApi.join(home, 'anaconda3', 'python.exe'),
      ]
    : [
        '/usr/bin/python3', // Debian/Ubuntu: where python3-torch installs torch
        '/usr/local/bin/python3',
        '/opt/homebrew/bin/python3',
        '/opt/conda/bin/python',
        pathApi.join(home, 'miniconda3', 'bin', 'python'),
        pathApi.join(home, 'miniforge3', 'bin', 'python'),
        pathApi.join(home, 'anaconda3', 'bin', 'python'),
        pathApi.join(home, '.venv', 'bin', 'python'),
      ];
  for (const p of wellKnown) add(p || undefined, 'well-known');
  return out;
}

/** The interpreter of PAL Studio's own virtual environment, <cacheRoot()>/python (whether or not it exists). */
export function palVenvPython({ env, platform, home }: SearchEnvironment): string {
  const win = platform === 'win32';
  const pathApi = win ? path.win32 : path.posix;
  const venv = pathApi.join(cacheRoot(env, home, pathApi), 'python');
  return win ? pathApi.join(venv, 'Scripts', 'python.exe') : pathApi.join(venv, 'bin', 'python');
}

function expandHome(p: string, home: string): string {
  return p === '~' ? home : p.startsWith('~/') ? path.join(home, p.slice(2)) : p;
}

/** The JSON object `pal_trainer/probe.py` prints. */
interface ProbeOutput {
  probe: number;
  executable: string;
  version: string;
  torch: TorchInfo | null;
  torchError?: string;
  probeError?: string;
}

export interface ProbeResult {
  readonly attempt: PythonAttempt;
  readonly output?: ProbeOutput;
}

/**
 * Environment for any Python the engine starts. Debian's torch does its matrix products in
 * OpenBLAS, whose thread count comes from OPENBLAS_NUM_THREADS: one thread per core trained ~2x
 * faster than one thread on 2 cores (bench/trainer_bench.py: 7M model 1,074 -> 2,161 tokens/s,
 * 30M 355 -> 692). The element-wise and attention kernels run on torch's own OpenMP pool, which
 * Debian's build starts with one thread unless OMP_NUM_THREADS says otherwise (measured: 4M model,
 * 1,270 tokens/s with one OpenMP thread). A user's explicit settings win.
 */
function cpuCount(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

export function pythonEnvironment(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const dir = trainerDir();
  return {
    ...base,
    PYTHONPATH: base.PYTHONPATH ? `${dir}${path.delimiter}${base.PYTHONPATH}` : dir,
    PYTHONDONTWRITEBYTECODE: '1',
    PYTHONUNBUFFERED: '1',
    OPENBLAS_NUM_THREADS: base.OPENBLAS_NUM_THREADS ?? String(cpuCount()),
    OMP_NUM_THREADS: base.OMP_NUM_THREADS ?? String(cpuCount()),
  };
}

export async function probeCandidate(
  candidate: PythonCandidate,
  { timeoutMs = PROBE_TIMEOUT_MS, signal }: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<ProbeResult> {
  const base = { path: candidate.path, source: candidate.source };
  try {
    await fs.access(candidate.path, process.platform === 'win32' ? fsConstants.F_OK : fsConstants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const detail = code === 'ENOENT' ? 'No such file.' : code === 'EACCES' ? 'Not executable.' : `Cannot be used (${code}).`;
    return { attempt: { ...base, outcome: 'missing', detail } };
  }
  const script = path.join(trainerDir(), 'pal_trainer', 'probe.py');
  let stdout: string;
  try {
    stdout = await run(candidate.path, ['-B', script], timeoutMs, signal);
  } catch (err) {
    return { attempt: { ...base, outcome: 'failed', detail: `Did not run the probe: ${(err as Error).message}` } };
  }
  const line = stdout.trim().split('\n').pop() ?? '';
  let output: ProbeOutput;
  try {
    output = JSON.parse(line) as ProbeOutput;
    if (typeof output !== 'object' || output === null || output.probe !== 1) throw new Error('not a probe report');
  } catch {
    return { attempt: { ...base, outcome: 'failed', detail: `Answered something other than the probe's report: ${JSON.stringify(line.slice(0, 200))}` } };
  }
  const pythonVersion = output.version;
  if (!isAtLeast(pythonVersion, '3.8')) {
    return { attempt: { ...base, outcome: 'failed', pythonVersion, detail: `Python ${pythonVersion} is too old (3.8 or newer is needed).` }, output };
  }
  if (!output.torch) {
    const why = output.probeError ?? output.torchError ?? 'torch is not installed';
    return { attempt: { ...base, outcome: 'no-torch', pythonVersion, detail: `Python ${pythonVersion} runs, but torch cannot be imported (${why}).` }, output };
  }
  const torchVersion = output.torch.version;
  if (!isAtLeast(torchVersion, MIN_TORCH)) {
    return {
      attempt: { ...base, outcome: 'old-torch', pythonVersion, torchVersion, detail: `torch ${torchVersion} is older than ${MIN_TORCH}.` },
      output,
    };
  }
  const gpus = output.torch.cuda.devices.length;
  const device = output.torch.cuda.usable ? `CUDA with ${gpus} GPU${gpus === 1 ? '' : 's'}` : 'CPU';
  return {
    attempt: { ...base, outcome: 'usable', pythonVersion, torchVersion, detail: `Python ${pythonVersion} with torch ${torchVersion} (${device}).` },
    output,
  };
}

function run(file: string, args: string[], timeout: number, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    // An argument array and no shell: the path is the user's, never a command line.
    execFile(file, args, { timeout, signal, env: pythonEnvironment(), windowsHide: true, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const tail = String(stderr).trim().split('\n').slice(-3).join(' ').slice(0, 400);
        const what = (err as NodeJS.ErrnoException & { killed?: boolean }).killed
          ? `timed out after ${timeout >= 1000 ? `${Math.round(timeout / 1000)} s` : `${timeout} ms`}`
          : err.message.split('\n')[0];
        reject(new Error(tail ? `${what}: ${tail}` : what));
      } else {
        resolve(String(stdout));
      }
    });
  });
}

/** The candidate's real path (symbolic links resolved), or undefined when there is no such file. */
export async function resolveCandidate(candidate: PythonCandidate): Promise<string | undefined> {
  try {
    return await fs.realpath(candidate.path);
  } catch {
    return undefined;
  }
}

export interface DiscoveryProbes {
  readonly probe: (c: PythonCandidate) => Promise<ProbeResult>;
  readonly resolve: (c: PythonCandidate) => Promise<string | undefined>;
}

/**
 * Tries the candidates in order and stops at the first usable one. The report lists every
 * interpreter that exists (those after the winner as skipped) and every explicitly named place
 * that does not; names on PATH that do not exist, and second names for an interpreter already
 * listed (/bin/python3 and /usr/bin/python3 on a merged-/usr system), would only be noise.
 */
export async function discoverPython(
  candidates: readonly PythonCandidate[],
  { probe, resolve }: DiscoveryProbes = { probe: (c) => probeCandidate(c), resolve: resolveCandidate },
): Promise<PythonReport> {
  const tried: PythonAttempt[] = [];
  const seen = new Set<string>();
  let winner: ProbeResult | undefined;
  for (const candidate of candidates) {
    const real = await resolve(candidate);
    if (real === undefined) {
      if (candidate.source !== 'PATH' && !winner) tried.push({ path: candidate.path, source: candidate.source, outcome: 'missing', detail: 'No such file.' });
      continue;
    }
    if (seen.has(real)) continue;
    seen.add(real);
    if (winner) {
      tried.push({ path: candidate.path, source: candidate.source, outcome: 'skipped', detail: 'Not tried: an earlier interpreter has a usable torch.' });
      continue;
    }
    const result = await probe(candidate);
    tried.push(result.attempt);
    if (result.attempt.outcome === 'usable') winner = result;
  }
  const probedAt = new Date().toISOString();
  if (winner?.output?.torch) {
    const out = winner.output;
    const torch = out.torch!;
    return {
      found: true,
      selected: { path: winner.attempt.path, executable: out.executable, version: out.version, source: winner.attempt.source },
      torch,
      tried,
      warnings: torchWarnings(torch),
      probedAt,
    };
  }
  return { found: false, tried, warnings: [], probedAt, ...explainNotFound(candidates, tried) };
}

function torchWarnings(torch: TorchInfo): string[] {
  const warnings: string[] = [];
  const reference = torch.blasLibraries.find((lib) => /\/blas\/libblas\.so/.test(lib));
  if (reference && !torch.blasLibraries.some((lib) => /openblas|mkl/.test(lib))) {
    warnings.push(
      `torch uses the reference BLAS (${reference}), which trains 5-14x slower than OpenBLAS. On Debian/Ubuntu: sudo apt-get install libopenblas0-pthread`,
    );
  }
  if (torch.cudaBuild && !torch.cuda.usable) {
    warnings.push(
      `torch was built with CUDA ${torch.cudaBuild} but cannot use a GPU${torch.cuda.error ? ` (${torch.cuda.error})` : ''}; training will run on the CPU.`,
    );
  }
  return warnings;
}

function explainNotFound(candidates: readonly PythonCandidate[], tried: readonly PythonAttempt[]): { reason: string; hint: string } {
  const venv = palVenvPython(currentSearchEnvironment());
  const install =
    `From a PAL Studio checkout, bash scripts/setup.sh makes ${venv} with torch. Or pip install torch (https://pytorch.org/get-started/locally/) into any Python 3` +
    (process.platform === 'linux' ? '; on Debian/Ubuntu, sudo apt-get install python3-torch libopenblas0-pthread also works.' : '.');
  const setting = candidates[0]?.source === 'setting';
  const attempt = tried[0];
  if (setting && attempt) {
    return {
      reason: `The chosen interpreter (palStudio.python.path, or pal --python) ${attempt.path} is not usable: ${attempt.detail}`,
      hint: `Fix or clear the setting (PAL: Select Python Interpreter). ${attempt.outcome === 'no-torch' || attempt.outcome === 'old-torch' ? install : ''}`.trim(),
    };
  }
  const running = tried.filter((t) => t.outcome === 'no-torch' || t.outcome === 'old-torch');
  if (running.length > 0) {
    return {
      reason: `Python was found (${running.map((t) => t.path).join(', ')}), but none of these interpreters has torch ${MIN_TORCH} or newer.`,
      hint: `${install} Or set palStudio.python.path to an interpreter that has it.`,
    };
  }
  return {
    reason: `No Python interpreter was found (${tried.length} places tried).`,
    hint: `Install Python 3 and PyTorch. ${install} Or set palStudio.python.path.`,
  };
}
