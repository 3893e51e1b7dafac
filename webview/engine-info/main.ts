/**
 * The engine-info view: renders what the extension posts (see ../protocol.ts) and posts back the
 * actions the user picks. It holds no state of its own beyond the last report shown.
 */
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-divider/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import type { EngineInfo, PythonAttempt } from '../../src/engine/protocol';
import { formatBytes } from '../../src/core/units';
import type { EngineInfoAction, FromEngineInfoView, ToEngineInfoView } from './protocol';
import { h } from '../shared/dom';

declare function acquireVsCodeApi(): { postMessage(message: FromEngineInfoView): void };
const vscode = acquireVsCodeApi();
const app = document.getElementById('app')!;

const OUTCOME_TEXT: Record<PythonAttempt['outcome'], string> = {
  usable: 'usable',
  'no-torch': 'no torch',
  'old-torch': 'torch too old',
  missing: 'missing',
  failed: 'failed',
  skipped: 'not tried',
};

function button(label: string, action: EngineInfoAction, icon: string, secondary = true): HTMLElement {
  const b = h('vscode-button', { icon, 'aria-label': label, ...(secondary ? { secondary: '' } : {}) }, label);
  b.addEventListener('click', () => vscode.postMessage({ type: 'action', action }));
  return b;
}

function row(label: string, ...value: (Node | string)[]): HTMLElement {
  return h('tr', {}, h('th', { scope: 'row' }, label), h('td', {}, ...value));
}

function render(info: EngineInfo, engineState: string): void {
  const { engine, runtime, python } = info;
  const toolbar = h(
    'div',
    { class: 'toolbar', role: 'toolbar', 'aria-label': 'Engine actions' },
    button('Search again', 'refresh', 'refresh', false),
    button('Select Python…', 'selectPython', 'settings-gear'),
    button('Show log', 'showLog', 'output'),
    button('Restart engine', 'restartEngine', 'debug-restart'),
    button('Copy report', 'copy', 'copy'),
  );

  const engineTable = h(
    'table',
    { 'aria-label': 'Engine' },
    row('Version', `${engine.version} (protocol ${engine.protocolVersion})`),
    row('State', h('vscode-badge', { variant: 'counter', 'data-testid': 'engine-state' }, engineState)),
    row('Process', h('span', { 'data-testid': 'engine-pid' }, String(engine.pid)), ` (parent ${engine.ppid})`),
    row('Node', `${runtime.node} on ${runtime.platform}/${runtime.arch}`),
  );

  const devices = h(
    'table',
    { 'aria-label': 'Devices' },
    h(
      'tr',
      {},
      h('th', { scope: 'col' }, 'Device'),
      h('th', { scope: 'col' }, 'Name'),
      h('th', { scope: 'col' }, 'Memory'),
      h('th', { scope: 'col' }, 'Details'),
    ),
    ...info.devices.map((d) =>
      d.kind === 'cpu'
        ? h('tr', { 'data-device': 'cpu' }, h('td', {}, 'CPU'), h('td', {}, d.name), h('td', {}, formatBytes(d.memoryBytes)), h('td', {}, `${d.cores} cores`))
        : h(
            'tr',
            { 'data-device': `cuda:${d.index}` },
            h('td', {}, `cuda:${d.index}`),
            h('td', {}, d.name),
            h('td', {}, formatBytes(d.memoryBytes)),
            h('td', {}, `compute ${d.capability}${d.bf16 ? ', bf16' : ''}`),
          ),
    ),
  );

  const pythonSummary =
    python.found && python.selected && python.torch
      ? h(
          'table',
          { 'aria-label': 'Python for training', 'data-testid': 'python-found' },
          row(
            'Interpreter',
            h('code', { 'data-testid': 'python-path' }, python.selected.path),
            ` (Python ${python.selected.version}, found via ${python.selected.source})`,
          ),
          row('torch', h('span', { 'data-testid': 'torch-version' }, python.torch.version), ` at ${python.torch.location}`),
          row(
            'GPU',
            python.torch.cuda.usable
              ? `CUDA ${python.torch.cudaBuild}: ${python.torch.cuda.devices.map((d) => d.name).join(', ')}`
              : python.torch.cudaBuild
                ? `CUDA build ${python.torch.cudaBuild}, but no usable GPU${python.torch.cuda.error ? `: ${python.torch.cuda.error}` : ''}`
                : 'CPU-only build of torch',
          ),
          row('BLAS', python.torch.blasLibraries.length ? python.torch.blasLibraries.join(', ') : 'not reported'),
        )
      : h(
          'div',
          { class: 'problem', role: 'alert', 'data-testid': 'python-missing' },
          h('p', {}, h('strong', {}, 'Training is not available. '), python.reason ?? ''),
          python.hint ? h('p', {}, python.hint) : '',
        );

  const warnings = python.warnings.map((w) =>
    h('p', { class: 'warning', role: 'status' }, h('span', { class: 'codicon codicon-warning', 'aria-hidden': 'true' }), ' ', w),
  );

  const tried = python.tried.length
    ? h(
        'table',
        { 'aria-label': 'Interpreters tried', 'data-testid': 'python-tried' },
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Interpreter'),
          h('th', { scope: 'col' }, 'From'),
          h('th', { scope: 'col' }, 'Result'),
          h('th', { scope: 'col' }, 'Details'),
        ),
        ...python.tried.map((t) =>
          h(
            'tr',
            { class: `outcome-${t.outcome}` },
            h('td', {}, h('code', {}, t.path)),
            h('td', {}, t.source),
            h('td', {}, OUTCOME_TEXT[t.outcome]),
            h('td', {}, t.detail),
          ),
        ),
      )
    : h('p', {}, 'No interpreter was probed.');

  app.replaceChildren(
    h('h1', {}, 'PAL Studio engine'),
    toolbar,
    h('h2', {}, 'Engine'),
    engineTable,
    h('h2', {}, 'Devices'),
    devices,
    h('h2', {}, 'Python for training'),
    pythonSummary,
    ...warnings,
    h('h2', {}, 'Interpreters tried, in order'),
    tried,
    h('p', { class: 'muted' }, `Searched ${new Date(python.probedAt).toLocaleString()}.`),
  );
  app.setAttribute('aria-busy', 'false');
}

window.addEventListener('message', (event: MessageEvent<ToEngineInfoView>) => {
  const message = event.data;
  switch (message.type) {
    case 'info':
      render(message.info, message.engineState);
      break;
    case 'loading':
      app.setAttribute('aria-busy', 'true');
      if (!app.firstChild) app.replaceChildren(h('p', { class: 'loading' }, h('vscode-progress-ring', { 'aria-label': message.what }), ' ', message.what));
      break;
    case 'error':
      app.setAttribute('aria-busy', 'false');
      app.replaceChildren(
        h('h1', {}, 'PAL Studio engine'),
        h('div', { class: 'problem', role: 'alert' }, h('p', {}, message.message)),
        h(
          'div',
          { class: 'toolbar' },
          button('Try again', 'refresh', 'refresh', false),
          button('Restart engine', 'restartEngine', 'debug-restart'),
          button('Show log', 'showLog', 'output'),
        ),
      );
      break;
  }
});

vscode.postMessage({ type: 'ready' });
