// code-server, driven from scripts: find it, install the extension into a throw-away profile,
// start it on loopback in its own process group, and stop the whole group. Shared by the
// real-VS-Code tests (test/e2e) and `npm run studio`.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CODE_SERVER_VERSION = process.env.PAL_CODE_SERVER_VERSION || '4.139.1';

/** The code-server launcher that scripts/setup-code-server.sh installed. */
export function findCodeServer() {
  if (process.env.PAL_CODE_SERVER) return process.env.PAL_CODE_SERVER;
  // <cache root>/tools, the cache root computed as src/engine/paths.ts cacheRoot() does (this plain
  // script cannot import it) but without PAL_STUDIO_CACHE, like scripts/setup-code-server.sh.
  const tools = process.env.PAL_TOOLS_DIR || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'pal-studio', 'tools');
  const bin = path.join(tools, `code-server-${CODE_SERVER_VERSION}`, 'bin', 'code-server');
  if (!existsSync(bin)) {
    throw new Error(`code-server ${CODE_SERVER_VERSION} is not installed (looked for ${bin}). Run: bash scripts/setup.sh --e2e`);
  }
  return bin;
}

export function findVsix() {
  const pkg = JSON.parse(execFileSync(process.execPath, ['-p', 'JSON.stringify(require("./package.json"))'], { cwd: repoRoot, encoding: 'utf8' }));
  const vsix = path.join(repoRoot, 'out', `${pkg.name}-${pkg.version}.vsix`);
  if (!existsSync(vsix)) throw new Error(`${vsix} is missing; run: npm run package`);
  return { vsix, id: `${pkg.publisher}.${pkg.name}`, version: pkg.version };
}

/** A profile of its own: user data, extensions, config, so nothing touches ~/.config or ~/.local. */
export function createProfile(dir, settings = {}) {
  const profile = {
    dir,
    userDataDir: path.join(dir, 'user-data'),
    extensionsDir: path.join(dir, 'extensions'),
    configFile: path.join(dir, 'config.yaml'),
  };
  mkdirSync(path.join(profile.userDataDir, 'User'), { recursive: true });
  mkdirSync(profile.extensionsDir, { recursive: true });
  writeFileSync(profile.configFile, 'auth: none\ncert: false\n');
  writeFileSync(
    path.join(profile.userDataDir, 'User', 'settings.json'),
    JSON.stringify(
      {
        // Offline machines: no telemetry, AI features, update checks or welcome pages (each costs seconds).
        'telemetry.telemetryLevel': 'off',
        'chat.disableAIFeatures': true,
        'workbench.startupEditor': 'none',
        'workbench.tips.enabled': false,
        'extensions.autoUpdate': false,
        'extensions.autoCheckUpdates': false,
        'update.mode': 'none',
        'security.workspace.trust.enabled': false,
        ...settings,
      },
      null,
      2,
    ),
  );
  return profile;
}

export function installExtension(bin, profile, vsix) {
  execFileSync(
    bin,
    ['--install-extension', vsix, '--force', '--extensions-dir', profile.extensionsDir, '--user-data-dir', profile.userDataDir, '--config', profile.configFile],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
      env: { ...process.env, XDG_CONFIG_HOME: path.join(profile.dir, 'xdg-config'), XDG_DATA_HOME: path.join(profile.dir, 'xdg-data') },
    },
  );
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts code-server on 127.0.0.1 in a new process group (it leaves file watchers and helpers
 * behind if only its pid is killed) and waits until /healthz answers.
 */
/** `workspaceTrust: true` keeps VS Code's workspace trust on (Restricted Mode tests); off otherwise. */
export async function startCodeServer(bin, profile, { port, env = {}, logFile, extraArgs = [], workspaceTrust = false } = {}) {
  port ??= await freePort();
  const log = openSync(logFile ?? path.join(profile.dir, 'code-server.log'), 'a');
  const child = spawn(
    bin,
    [
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--auth',
      'none',
      '--disable-telemetry',
      '--disable-update-check',
      ...(workspaceTrust ? [] : ['--disable-workspace-trust']),
      '--disable-getting-started-override',
      '--ignore-last-opened',
      '--config',
      profile.configFile,
      '--user-data-dir',
      profile.userDataDir,
      '--extensions-dir',
      profile.extensionsDir,
      ...extraArgs,
    ],
    {
      detached: true, // its own process group, stopped as a whole
      stdio: ['ignore', log, log],
      env: { ...process.env, XDG_CONFIG_HOME: path.join(profile.dir, 'xdg-config'), XDG_DATA_HOME: path.join(profile.dir, 'xdg-data'), ...env },
    },
  );
  const url = `http://127.0.0.1:${port}`;
  let exited = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));
  const stop = async () => {
    if (exited) return;
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const deadline = Date.now() + 5000;
    while (!exited && Date.now() < deadline) await sleep(100);
    try {
      process.kill(-child.pid, 'SIGKILL'); // whatever of the group is still there
    } catch {
      // already gone
    }
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`code-server exited at start (${JSON.stringify(exited)}); see ${logFile ?? path.join(profile.dir, 'code-server.log')}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error('code-server did not answer /healthz within 60 s');
    }
    await sleep(250);
  }
  return { url, port, pid: child.pid, stop };
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
