import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { cacheRoot } from '../../src/engine/paths';
import {
  discoverPython,
  listCandidates,
  palVenvPython,
  probeCandidate,
  type PythonCandidate,
  type ProbeResult,
  type SearchEnvironment,
} from '../../src/engine/python';

const linux = (env: NodeJS.ProcessEnv): SearchEnvironment => ({ env, platform: 'linux', home: '/home/ada' });

describe('listCandidates', () => {
  test('an explicit setting is the only candidate (no silent fallback), with ~ expanded', () => {
    assert.deepEqual(listCandidates('~/envs/pal/bin/python', linux({ PATH: '/usr/bin' })), [{ path: '/home/ada/envs/pal/bin/python', source: 'setting' }]);
  });

  test("search order: PAL_PYTHON, virtualenv, conda, PAL Studio's own venv, every PATH match, then well-known places", () => {
    const c = listCandidates(
      '  ',
      linux({ PAL_PYTHON: '/opt/pal/python', VIRTUAL_ENV: '/work/.venv', CONDA_PREFIX: '/opt/conda/envs/x', PATH: '/home/ada/.pyenv/shims:/usr/bin' }),
    );
    assert.deepEqual(c.slice(0, 8), [
      { path: '/opt/pal/python', source: 'PAL_PYTHON' },
      { path: '/work/.venv/bin/python', source: 'VIRTUAL_ENV' },
      { path: '/opt/conda/envs/x/bin/python', source: 'CONDA_PREFIX' },
      { path: '/home/ada/.cache/pal-studio/python/bin/python', source: 'pal-venv' },
      { path: '/home/ada/.pyenv/shims/python3', source: 'PATH' },
      { path: '/home/ada/.pyenv/shims/python', source: 'PATH' },
      { path: '/usr/bin/python3', source: 'PATH' },
      { path: '/usr/bin/python', source: 'PATH' },
    ]);
    assert.equal(c.filter((x) => x.source === 'pal-venv').length, 1);
    // /usr/bin/python3 came from PATH already: listed once, not again as a well-known place.
    assert.equal(c.filter((x) => x.path === '/usr/bin/python3').length, 1);
    assert.ok(c.some((x) => x.path === '/home/ada/miniconda3/bin/python' && x.source === 'well-known'));
  });

  test("PAL Studio's venv: first when nothing is named, in PAL_STUDIO_CACHE or XDG_CACHE_HOME when set; Windows: Scripts\\python.exe", () => {
    const first = (env: NodeJS.ProcessEnv) => listCandidates(undefined, linux({ PATH: '/usr/bin', ...env }))[0];
    assert.deepEqual(first({}), { path: '/home/ada/.cache/pal-studio/python/bin/python', source: 'pal-venv' });
    assert.deepEqual(first({ XDG_CACHE_HOME: '/var/cache/ada' }), { path: '/var/cache/ada/pal-studio/python/bin/python', source: 'pal-venv' });
    assert.deepEqual(first({ XDG_CACHE_HOME: '/var/cache/ada', PAL_STUDIO_CACHE: '/srv/pal' }), { path: '/srv/pal/python/bin/python', source: 'pal-venv' });
    assert.equal(cacheRoot({ XDG_CACHE_HOME: '/var/cache/ada' }, '/home/ada'), '/var/cache/ada/pal-studio');
    assert.equal(palVenvPython(linux({ PAL_STUDIO_CACHE: '/srv/pal' })), '/srv/pal/python/bin/python');
    const win = listCandidates(undefined, { env: { CONDA_PREFIX: 'C:\\conda', Path: 'C:\\Python312' }, platform: 'win32', home: 'C:\\Users\\ada' });
    assert.deepEqual(win.slice(0, 3), [
      { path: 'C:\\conda\\python.exe', source: 'CONDA_PREFIX' },
      { path: 'C:\\Users\\ada\\.cache\\pal-studio\\python\\Scripts\\python.exe', source: 'pal-venv' },
      { path: 'C:\\Python312\\python.exe', source: 'PATH' },
    ]);
    // An explicit setting is still the only candidate.
    assert.deepEqual(
      listCandidates('/x/python', linux({ PATH: '/usr/bin' })).map((x) => x.source),
      ['setting'],
    );
  });

  test("Debian's /usr/bin/python3 is searched even when PATH does not contain it", () => {
    const c = listCandidates(undefined, linux({ PATH: '/somewhere/else' }));
    assert.ok(c.some((x) => x.path === '/usr/bin/python3' && x.source === 'well-known'));
  });

  test('Windows: Scripts\\python.exe for virtualenvs, python.exe on Path, case-insensitive duplicates dropped', () => {
    const c = listCandidates(undefined, {
      env: { VIRTUAL_ENV: 'C:\\proj\\.venv', Path: 'C:\\Python312;c:\\python312', LOCALAPPDATA: 'C:\\Users\\ada\\AppData\\Local' },
      platform: 'win32',
      home: 'C:\\Users\\ada',
    });
    assert.deepEqual(c[0], { path: 'C:\\proj\\.venv\\Scripts\\python.exe', source: 'VIRTUAL_ENV' });
    assert.equal(c.filter((x) => x.path.toLowerCase() === 'c:\\python312\\python.exe').length, 1);
    assert.ok(c.some((x) => x.path === 'C:\\Users\\ada\\AppData\\Local\\Programs\\Python\\Python312\\python.exe'));
  });
});

describe('discoverPython', () => {
  const usable = (c: PythonCandidate): ProbeResult => ({
    attempt: { ...c, outcome: 'usable', detail: 'ok', pythonVersion: '3.11.2', torchVersion: '2.3.0' },
    output: {
      probe: 1,
      executable: c.path,
      version: '3.11.2',
      torch: { version: '2.3.0', location: '/x/torch', threads: 2, cudaBuild: null, cuda: { usable: false, devices: [] }, mps: false, blasLibraries: [] },
    },
  });
  const noTorch = (c: PythonCandidate): ProbeResult => ({ attempt: { ...c, outcome: 'no-torch', detail: 'no torch', pythonVersion: '3.12.0' } });

  test('stops at the first usable interpreter and lists the rest as skipped', async () => {
    const probed: string[] = [];
    const candidates: PythonCandidate[] = [
      { path: '/a/python3', source: 'PATH' },
      { path: '/b/python3', source: 'PATH' },
      { path: '/c/python3', source: 'well-known' },
    ];
    const report = await discoverPython(candidates, {
      resolve: async (c) => c.path,
      probe: async (c) => {
        probed.push(c.path);
        return c.path === '/b/python3' ? usable(c) : noTorch(c);
      },
    });
    assert.deepEqual(probed, ['/a/python3', '/b/python3']);
    assert.equal(report.found, true);
    assert.equal(report.selected?.path, '/b/python3');
    assert.deepEqual(
      report.tried.map((t) => [t.path, t.outcome]),
      [
        ['/a/python3', 'no-torch'],
        ['/b/python3', 'usable'],
        ['/c/python3', 'skipped'],
      ],
    );
  });

  test('missing names on PATH are not listed, missing explicit places are; one interpreter under two names is probed once', async () => {
    const report = await discoverPython(
      [
        { path: '/nope/python3', source: 'PATH' },
        { path: '/opt/pal/python', source: 'PAL_PYTHON' },
        { path: '/bin/python3', source: 'PATH' },
        { path: '/usr/bin/python3', source: 'well-known' },
      ],
      {
        resolve: async (c) => (c.path.includes('nope') || c.path.startsWith('/opt') ? undefined : '/usr/bin/python3.11'),
        probe: async (c) => noTorch(c),
      },
    );
    assert.deepEqual(
      report.tried.map((t) => [t.path, t.outcome]),
      [
        ['/opt/pal/python', 'missing'],
        ['/bin/python3', 'no-torch'],
      ],
    );
    assert.equal(report.found, false);
    assert.match(report.reason!, /Python was found \(\/bin\/python3\), but none of these interpreters has torch 1\.13 or newer/);
    assert.match(report.hint!, /pip install torch/);
    assert.match(report.hint!, /scripts\/setup\.sh makes \S*python\S* with torch/);
  });

  test('a broken setting is reported as the setting, with how to fix it', async () => {
    const report = await discoverPython([{ path: '/home/ada/py', source: 'setting' }], { resolve: async () => undefined, probe: async (c) => noTorch(c) });
    assert.equal(report.found, false);
    assert.match(report.reason!, /chosen interpreter .*\/home\/ada\/py is not usable: No such file/);
    assert.match(report.hint!, /Select Python Interpreter/);
  });

  test('nothing at all found says so, with the number of places tried', async () => {
    const report = await discoverPython([{ path: '/usr/bin/python3', source: 'well-known' }], {
      resolve: async () => undefined,
      probe: async (c) => noTorch(c),
    });
    assert.match(report.reason!, /No Python interpreter was found \(1 places tried\)/);
  });
});

describe('probeCandidate on real processes', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pal-python-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A fake interpreter: a shell script that prints what the probe would, or misbehaves. */
  function fake(name: string, body: string): PythonCandidate {
    const p = path.join(dir, name);
    writeFileSync(p, `#!/bin/sh\n${body}\n`);
    chmodSync(p, 0o755);
    return { path: p, source: 'PATH' };
  }
  const torch = (version: string, cuda = '{"usable": false, "devices": []}', cudaBuild = 'null', blas = '[]') =>
    `{"version": "${version}", "location": "/t", "threads": 4, "cudaBuild": ${cudaBuild}, "cuda": ${cuda}, "mps": false, "blasLibraries": ${blas}}`;

  test('an interpreter with a recent torch is usable, and its GPUs are described', async () => {
    const gpu = '{"usable": true, "devices": [{"index": 0, "name": "NVIDIA H100", "memoryBytes": 85000000000, "capability": "9.0", "bf16": true}]}';
    const c = fake('good', `echo '{"probe": 1, "executable": "/x/python", "version": "3.12.1", "torch": ${torch('2.4.0+cu121', gpu, '"12.1"')}}'`);
    const r = await probeCandidate(c);
    assert.equal(r.attempt.outcome, 'usable');
    assert.equal(r.attempt.torchVersion, '2.4.0+cu121');
    assert.match(r.attempt.detail, /torch 2\.4\.0\+cu121 \(CUDA with 1 GPU\)/);
  });

  test('torch older than 1.13 is reported as such', async () => {
    const r = await probeCandidate(fake('old', `echo '{"probe": 1, "executable": "/x", "version": "3.9.0", "torch": ${torch('1.12.1')}}'`));
    assert.equal(r.attempt.outcome, 'old-torch');
    assert.match(r.attempt.detail, /torch 1\.12\.1 is older than 1\.13/);
  });

  test('no torch: the import error is passed on', async () => {
    const r = await probeCandidate(
      fake(
        'notorch',
        `echo '{"probe": 1, "executable": "/x", "version": "3.11.0", "torch": null, "torchError": "ModuleNotFoundError: No module named torch"}'`,
      ),
    );
    assert.equal(r.attempt.outcome, 'no-torch');
    assert.match(r.attempt.detail, /No module named torch/);
  });

  test('a crashing interpreter, a liar and a hanging one fail with a reason, never throw', async () => {
    const crash = await probeCandidate(fake('crash', 'echo "Fatal Python error: init_fs_encoding" >&2; exit 1'));
    assert.equal(crash.attempt.outcome, 'failed');
    assert.match(crash.attempt.detail, /init_fs_encoding/);
    const liar = await probeCandidate(fake('liar', 'echo "Python 2.7.18"'));
    assert.equal(liar.attempt.outcome, 'failed');
    assert.match(liar.attempt.detail, /something other than the probe's report/);
    const hang = await probeCandidate(fake('hang', 'exec sleep 30'), { timeoutMs: 300 });
    assert.equal(hang.attempt.outcome, 'failed');
    assert.match(hang.attempt.detail, /timed out/);
  });

  test('missing and non-executable files', async () => {
    assert.equal((await probeCandidate({ path: path.join(dir, 'absent'), source: 'setting' })).attempt.outcome, 'missing');
    const p = path.join(dir, 'noexec');
    writeFileSync(p, '#!/bin/sh\n');
    chmodSync(p, 0o644);
    const r = await probeCandidate({ path: p, source: 'setting' });
    assert.equal(r.attempt.outcome, 'missing');
    assert.match(r.attempt.detail, /Not executable/);
  });

  test('the probe is given the trainer on PYTHONPATH and an OpenBLAS thread per core', async () => {
    const c = fake(
      'env',
      `echo "{\\"probe\\": 1, \\"executable\\": \\"$PYTHONPATH|$OPENBLAS_NUM_THREADS|$2\\", \\"version\\": \\"3.11.0\\", \\"torch\\": null}"`,
    );
    const r = await probeCandidate(c);
    const [pythonPath, threads, script] = r.output!.executable.split('|');
    assert.match(pythonPath!, /src[/\\]trainer/);
    assert.equal(threads, process.env.OPENBLAS_NUM_THREADS ?? String(os.availableParallelism()));
    assert.match(script!, /pal_trainer[/\\]probe\.py$/);
  });

  test('a symbolic link to an interpreter is probed once with its name kept', async () => {
    const target = fake('real', `echo '{"probe": 1, "executable": "/x", "version": "3.11.0", "torch": null}'`);
    const link = path.join(dir, 'python3-link');
    symlinkSync(target.path, link);
    const report = await discoverPython([{ path: link, source: 'PATH' }, target]);
    assert.deepEqual(
      report.tried.map((t) => t.path),
      [link],
    );
  });
});

// The real thing, where the machine has Debian's torch (CI installs python3-torch). Elsewhere it
// is skipped unless PAL_REQUIRE_TORCH=1 demands it.
const requireTorch = process.env.CI === 'true' || process.env.PAL_REQUIRE_TORCH === '1';
test(
  'the real probe in /usr/bin/python3 finds torch and its BLAS',
  { skip: !requireTorch && 'set PAL_REQUIRE_TORCH=1 (CI does) to require torch here' },
  async () => {
    const r = await probeCandidate({ path: '/usr/bin/python3', source: 'well-known' });
    assert.equal(r.attempt.outcome, 'usable', r.attempt.detail);
    assert.match(r.output!.torch!.version, /^\d+\.\d+/);
    assert.ok(r.output!.torch!.blasLibraries.length > 0, 'the loaded BLAS is reported');
    assert.ok(
      r.output!.torch!.blasLibraries.some((l) => /openblas/.test(l)),
      `OpenBLAS is loaded: ${r.output!.torch!.blasLibraries.join(', ')}`,
    );
  },
);
