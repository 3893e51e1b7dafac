// `npm run studio`: PAL Studio in a real VS Code (code-server) on 127.0.0.1 with the sample
// project open, for a person on a headless machine. Prints the address and runs until Ctrl-C.
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { createProfile, findCodeServer, findVsix, freePort, installExtension, repoRoot, startCodeServer } from './code-server.mjs';

const stateDir = path.join(repoRoot, '.pal-studio');
const workspace = path.join(stateDir, 'workspace');
// The sample is copied once and then left alone: what a person writes in the studio is theirs and
// is never overwritten by a later start.
if (!existsSync(workspace)) {
  mkdirSync(stateDir, { recursive: true });
  cpSync(path.join(repoRoot, 'samples', 'studio'), workspace, { recursive: true });
}

const bin = findCodeServer();
const { vsix } = findVsix();
const profile = createProfile(path.join(stateDir, 'profile'));
installExtension(bin, profile, vsix);

const wanted = Number(process.env.PAL_STUDIO_PORT || 8080);
let port = wanted;
try {
  const probe = await import('node:net').then(
    (net) =>
      new Promise((resolve) => {
        const s = net
          .createServer()
          .once('error', () => resolve(false))
          .listen(wanted, '127.0.0.1', () => s.close(() => resolve(true)));
      }),
  );
  if (!probe) port = await freePort();
} catch {
  port = await freePort();
}

const server = await startCodeServer(bin, profile, { port, logFile: path.join(stateDir, 'code-server.log') });
const url = `${server.url}/?folder=${encodeURIComponent(workspace)}`;
console.log('');
console.log('PAL Studio is running in VS Code (code-server):');
console.log(`  ${url}`);
console.log('');
console.log(`Workspace: ${workspace} (your copy of samples/studio; delete it to start fresh)`);
console.log(`Logs:      ${path.join(stateDir, 'code-server.log')}`);
console.log('From another machine: ssh -L 8080:127.0.0.1:' + server.port + ' <this host>, then open http://127.0.0.1:8080/');
console.log('Press Ctrl-C to stop.');

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log('\nStopping code-server…');
  await server.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
process.on('SIGHUP', stop);
// Ctrl-C reaches the whole process group, but a parent killed on its own (npm under `timeout`, a
// closed ssh session) leaves us orphaned: then stop code-server rather than leave it running.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) void stop();
}, 1000);
