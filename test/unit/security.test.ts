// Security properties that hold for the whole code base, checked on the sources and on a running
// engine: no shell command lines, every webview message parsed before use, every webview page
// from the one CSP-carrying shell, and an engine that listens on nothing (only its parent, over
// the stdio pipes, can talk to it).
import assert from 'node:assert/strict';
import { STATIC_PAGE_CSP, STATIC_PAGE_THEME, staticPage } from '../../src/core/html';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { EngineClient } from '../../src/engine/client';
import { engineEntry, packageRoot } from '../../src/engine/paths';
import { EngineInfoRequest } from '../../src/engine/protocol';

const root = packageRoot();

function sources(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) sources(rel, out);
    else if (/\.(ts|mjs|py)$/.test(entry.name)) out.push(rel);
  }
  return out;
}

const code = [...sources('src'), ...sources('webview'), ...sources('scripts')].map((file) => ({ file, text: readFileSync(path.join(root, file), 'utf8') }));

test('no shell command lines: processes start from argument arrays (spawn/execFile), never exec or shell: true', () => {
  assert.ok(code.length > 50, `the sources were found (${code.length} files)`);
  for (const { file, text } of code) {
    assert.doesNotMatch(text, /shell\s*:\s*true/, `${file} starts a shell`);
    assert.doesNotMatch(
      text,
      /import\s*\{[^}]*\bexec(Sync)?\b[^}]*\}\s*from\s*'(node:)?child_process'|child_process'?\)?\.exec(Sync)?\(/,
      `${file} runs a command line through a shell (child_process.exec)`,
    );
    assert.doesNotMatch(text, /\bos\.system\s*\(|subprocess\.\w+\([^)]*shell\s*=\s*True/, `${file} runs a shell from Python`);
  }
});

test('every message from a webview is parsed by its checker before the extension acts on it', () => {
  const handlers = code
    .filter(({ file }) => file.startsWith(path.join('src', 'extension')))
    .flatMap(({ file, text }) => [...text.matchAll(/onDidReceiveMessage\(/g)].map((m) => ({ file, body: text.slice(m.index, m.index + 400) })));
  assert.ok(handlers.length >= 6, `every webview's handler was found (${handlers.length})`);
  for (const { file, body } of handlers) {
    // The handler's parameter is `unknown`, and the first thing it does is call a parseFrom… checker.
    const code = body.replace(/^\s*\/\/.*$/gm, ''); // comment lines
    assert.match(code, /^onDidReceiveMessage\(\s*(async\s*)?\(\w+: unknown\) => \{\s*(const \w+ = |if \()?parseFrom\w+\(/, `${file}: ${body.slice(0, 160)}`);
  }
});

test('every webview page is the shared shell with its Content-Security-Policy and nonce', () => {
  const pages = code
    .filter(({ file }) => file.startsWith(path.join('src', 'extension')))
    .flatMap(({ file, text }) => [...text.matchAll(/\.html\s*=\s*([^;]+);/g)].map((m) => ({ file, value: m[1]! })));
  assert.ok(pages.length >= 6);
  // A page is the shell (scripts by nonce), or a static page (a report: no script, nothing loads).
  for (const { file, value } of pages) assert.match(value, /^(webviewHtml|staticPage)\(/, `${file} builds its own page`);
  const source = readFileSync(path.join(root, 'src', 'extension', 'webviewHtml.ts'), 'utf8');
  const shell = (/const csp = \[[^\]]*\]/.exec(source)?.[0] ?? '').replace(/^\s*\/\/.*$/gm, '');
  assert.match(shell, /default-src 'none'/);
  assert.match(shell, /script-src 'nonce-\$\{nonce\}'/);
  assert.doesNotMatch(shell, /unsafe-inline|unsafe-eval/);
});

let client: EngineClient | undefined;
after(() => client?.stop());

test(
  'the engine listens on no port and no named socket: only its parent, over stdio, can reach it',
  { skip: process.platform !== 'linux' && 'reads /proc' },
  async () => {
    client = new EngineClient({
      enginePath: engineEntry(),
      client: { name: 'security test', version: '0' },
      settings: () => ({ allowPython: false, logLevel: 'error' }),
    });
    await client.start();
    const info = await client.request(EngineInfoRequest, {});
    const pid = info.engine.pid;
    assert.equal(info.engine.ppid, process.pid, "the engine is this process's child");
    const fdDir = `/proc/${pid}/fd`;
    const sockets = new Set(
      readdirSync(fdDir)
        .map((fd) => {
          try {
            return readlinkSync(path.join(fdDir, fd));
          } catch {
            return '';
          }
        })
        .flatMap((link) => /^socket:\[(\d+)\]$/.exec(link)?.[1] ?? []),
    );
    // Internet sockets in any state, of either family: none is the engine's.
    for (const table of ['tcp', 'tcp6', 'udp', 'udp6']) {
      const rows = readFileSync(`/proc/net/${table}`, 'utf8').trim().split('\n').slice(1);
      for (const row of rows) assert.ok(!sockets.has(row.trim().split(/\s+/)[9]!), `the engine has a ${table} socket: ${row}`);
    }
    // Unix sockets: only unnamed ones (the stdio pipes Node makes as socket pairs); nothing to connect to.
    let unnamed = 0;
    for (const row of readFileSync('/proc/net/unix', 'utf8').trim().split('\n').slice(1)) {
      const cols = row.trim().split(/\s+/);
      if (!sockets.has(cols[6]!)) continue;
      assert.equal(cols[7], undefined, `the engine has a named unix socket ${cols[7]}`);
      unnamed++;
    }
    // The check saw the engine's sockets at all: its stdin and stdout are among them.
    assert.ok(unnamed >= 2, `the stdio socket pairs were found (${unnamed})`);
  },
);

test('a static page (a report) shown in a webview runs nothing and loads nothing, whatever policy it came with', () => {
  const page = staticPage(
    '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src *"><title>r</title></head><body><h1>r</h1></body></html>',
  );
  assert.equal([...page.matchAll(/Content-Security-Policy/g)].length, 1, 'one policy');
  assert.ok(page.includes(`content="${STATIC_PAGE_CSP}"`));
  assert.ok(!page.includes('default-src *'));
  assert.ok(staticPage('<p>no head</p>').startsWith('<meta http-equiv="Content-Security-Policy"'));
  assert.throws(() => staticPage('<html><head></head><body><script>alert(1)</script></body></html>'), /holds a script/);
});

test("a static page takes the window's colours after its own style, so that they win (a white report in a dark window)", () => {
  const page = staticPage('<html><head><style>body { background: #fff; }</style></head><body><p>r</p></body></html>');
  assert.ok(page.includes(STATIC_PAGE_THEME));
  assert.ok(page.indexOf(STATIC_PAGE_THEME) > page.indexOf('background: #fff'), "after the page's own style");
  assert.ok(page.indexOf(STATIC_PAGE_THEME) < page.indexOf('<body>'), 'in the head');
  assert.match(STATIC_PAGE_THEME, /background: var\(--vscode-editor-background\)/);
  assert.ok(staticPage('<p>no head</p>').endsWith(STATIC_PAGE_THEME));
});
