/**
 * The training dashboard view: renders what the extension posts (./protocol.ts) and posts back
 * the buttons pressed. It keeps the run's metric records to append live steps to, and saves only
 * the run folder (for the panel serializer); everything else comes again from the extension.
 */
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import type { Hint } from '../../src/core/dpoHints';
import { appendRecord, formatEta, series, type MetricRecord, type StageStatus } from '../../src/core/runHistory';
import { RUN_STAGES, STAGE_NAMES, type TrainingStage } from '../../src/core/runFolder';
import { formatChange, shownChange } from '../../src/core/units';
import { h } from '../shared/dom';
import { lineChart } from './chart';
import type { FromRunDashboard, RunDashboardAction, RunDashboardSavedState, RunDashboardState, ToRunDashboard } from './protocol';

declare function acquireVsCodeApi(): { postMessage(message: FromRunDashboard): void; setState(state: RunDashboardSavedState): void };
const vscode = acquireVsCodeApi();
const app = document.getElementById('app')!;

const STATUS_TEXT: Record<StageStatus, string> = {
  done: 'done',
  running: 'running',
  stopped: 'stopped here',
  failed: 'failed here',
  skipped: 'skipped',
  pending: 'to do',
};
const STATUS_ICON: Record<StageStatus, string> = {
  done: 'pass-filled',
  running: 'sync codicon-modifier-spin',
  stopped: 'debug-pause',
  failed: 'error',
  skipped: 'circle-slash',
  pending: 'circle-large-outline',
};
const RUN_STATUS_TEXT: Record<RunDashboardState['status'], string> = { running: 'running', done: 'finished', stopped: 'stopped', failed: 'failed' };

/** Charts per training stage: which metrics go together. */
const CHARTS: Record<TrainingStage, { id: string; title: string; keys: [string, string][]; yRange?: [number, number] }[]> = {
  stage1: [
    { id: 'loss', title: 'Loss', keys: [['loss', 'loss']] },
    { id: 'lr', title: 'Learning rate', keys: [['learning_rate', 'learning rate']] },
    { id: 'grad-norm', title: 'Gradient norm', keys: [['grad_norm', 'grad norm']] },
    { id: 'tokens', title: 'Tokens per second', keys: [['tokens_per_s', 'tokens/s']] },
  ],
  stage2: [
    { id: 'loss', title: 'Loss', keys: [['loss', 'loss']] },
    {
      id: 'rewards',
      title: 'Rewards',
      keys: [
        ['rewards/chosen', 'chosen'],
        ['rewards/rejected', 'rejected'],
        ['rewards/margins', 'margin'],
      ],
    },
    { id: 'accuracy', title: 'Reward accuracy', keys: [['rewards/accuracies', 'accuracy']], yRange: [0, 1] },
    { id: 'lr', title: 'Learning rate', keys: [['learning_rate', 'learning rate']] },
    { id: 'grad-norm', title: 'Gradient norm', keys: [['grad_norm', 'grad norm']] },
    { id: 'tokens', title: 'Tokens per second', keys: [['tokens_per_s', 'tokens/s']] },
  ],
};

let metrics: Record<TrainingStage, MetricRecord[]> = { stage1: [], stage2: [] };

// The page's parts, filled in place so that a live update never moves keyboard focus.
const parts = {
  header: h('header', {}),
  toolbar: h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Run actions' }),
  error: h('div', {}),
  stages: h('section', { 'aria-labelledby': 'stages-heading' }),
  hints: h('section', { 'aria-labelledby': 'hints-heading', 'data-testid': 'hints' }),
  charts: h('section', { 'aria-label': 'Training charts' }),
  verdict: h('section', { 'data-testid': 'verdict' }),
  evaluation: h('section', {}),
  warnings: h('section', {}),
};
let toolbarKey = '';

function button(label: string, action: RunDashboardAction, icon: string, secondary: boolean, disabled = false): HTMLElement {
  const b = h(
    'vscode-button',
    { icon, 'aria-label': label, 'data-action': action, ...(secondary ? { secondary: '' } : {}), ...(disabled ? { disabled: '' } : {}) },
    label,
  );
  b.addEventListener('click', () => vscode.postMessage({ type: 'action', action }));
  return b;
}

function renderToolbar(s: RunDashboardState): void {
  const buttons: [string, RunDashboardAction, string, boolean, boolean?][] = [];
  if (s.status === 'running') buttons.push(['Stop', 'stop', 'debug-stop', false, s.progress?.message.startsWith('Stopping') ?? false]);
  else if (s.status !== 'done' && s.config) buttons.push(['Resume', 'resume', 'debug-continue', false]);
  if (s.model) buttons.push([s.modelInUse ? 'This model is in use' : 'Use this model', 'useModel', 'check', s.status === 'running', s.modelInUse]);
  if (s.hasReportHtml) buttons.push(['Open report', 'openReport', 'link-external', true]);
  if (s.config) buttons.push(['Open run config', 'openConfig', 'go-to-file', true]);
  const key = JSON.stringify(buttons);
  if (key === toolbarKey) return;
  toolbarKey = key;
  parts.toolbar.replaceChildren(...buttons.map(([label, action, icon, secondary, disabled]) => button(label, action, icon, secondary, disabled)));
}

function renderStages(s: RunDashboardState): void {
  const p = s.progress;
  const list = h(
    'ol',
    { class: 'stages', 'data-testid': 'stages' },
    ...RUN_STAGES.map((stage) => {
      const status = s.stages[stage];
      const current = status === 'running' || status === 'stopped' || status === 'failed';
      return h(
        'li',
        { class: `stage stage-${status}`, 'data-stage': stage, 'data-status': status, ...(current ? { 'aria-current': 'step' } : {}) },
        h('span', { class: `codicon codicon-${STATUS_ICON[status]}`, 'aria-hidden': 'true' }),
        ` ${STAGE_NAMES[stage].title} `,
        h('span', { class: 'muted' }, `(${STATUS_TEXT[status]})`),
      );
    }),
  );
  const children: (Node | string)[] = [h('h2', { id: 'stages-heading' }, 'Stages'), list];
  if (p) {
    const step = p.step !== undefined ? `step ${p.step}${p.total ? ` of ${p.total}` : ''}` : '';
    const eta = p.etaSeconds !== undefined ? `about ${formatEta(p.etaSeconds)} left in this stage` : '';
    const line = [STAGE_NAMES[p.stage].title, step, eta].filter(Boolean).join(' · ');
    children.push(
      h('p', { class: 'progress-line', 'data-testid': 'progress', role: 'status' }, line, h('br'), h('span', { class: 'muted' }, p.message)),
      p.step !== undefined && p.total
        ? h('vscode-progress-bar', { value: String(p.step), max: String(p.total), 'aria-label': `${STAGE_NAMES[p.stage].title}: ${step}` })
        : h('vscode-progress-bar', { indeterminate: '', 'aria-label': `${STAGE_NAMES[p.stage].title}: working` }),
    );
  }
  parts.stages.replaceChildren(...children);
}

function renderHints(hints: readonly Hint[], running: boolean): void {
  const hasSteps = metrics.stage1.length + metrics.stage2.length > 0;
  parts.hints.replaceChildren(
    h('h2', { id: 'hints-heading' }, 'What the numbers say'),
    hints.length
      ? h(
          'ul',
          { class: 'hints' },
          ...hints.map((hint) =>
            h(
              'li',
              { class: `hint ${hint.severity}`, 'data-hint': hint.id },
              h('span', { class: `codicon codicon-${hint.severity === 'error' ? 'error' : 'warning'}`, 'aria-hidden': 'true' }),
              ' ',
              h('strong', {}, `${hint.severity === 'error' ? 'Problem' : 'Warning'}: `),
              hint.message,
              h('br'),
              h('span', { class: 'try' }, h('strong', {}, 'Try: '), hint.tryThis),
            ),
          ),
        )
      : h(
          'p',
          { class: 'muted' },
          !hasSteps
            ? 'Hints about the training appear here once it has taken some steps.'
            : running
              ? 'Nothing looks wrong in the training metrics so far.'
              : 'Nothing looked wrong in the training metrics.',
        ),
  );
}

/**
 * The charts of each stage that has steps; while stage 2 trains its charts come first, where they
 * are seen without scrolling. The stage list decides, as on screen: the progress line can still
 * name the stage before for a moment after stage 2 began.
 */
function renderCharts(s: RunDashboardState): void {
  const sections: HTMLElement[] = [];
  const stage2First = s.stages.stage2 === 'running' || s.progress?.stage === 'stage2';
  const order = stage2First ? (['stage2', 'stage1'] as const) : (['stage1', 'stage2'] as const);
  for (const stage of order) {
    const records = metrics[stage];
    if (!records.length) continue;
    const title = stage === 'stage1' ? STAGE_NAMES.stage1.title : STAGE_NAMES.stage2.title;
    const charts = CHARTS[stage]
      .filter((c) => c.keys.some(([key]) => records.some((r) => key in r)))
      .map((c) =>
        lineChart(
          { id: `${stage}-${c.id}`, title: c.title, ...(c.yRange ? { yRange: c.yRange } : {}) },
          c.keys.map(([key, label]) => ({ label, points: series(records, key) })),
        ),
      );
    sections.push(h('h2', {}, `${title}: ${records.length} steps`), h('div', { class: 'charts', 'data-stage': stage }, ...charts));
  }
  parts.charts.replaceChildren(...sections);
}

/** Metrics where more is not better: their changes get no verdict colour. */
const NEUTRAL = new Set(['avgLength', 'count']);

function renderEvaluation(s: RunDashboardState): void {
  if (!s.evaluation) {
    parts.evaluation.replaceChildren();
    return;
  }
  const fmt = (v: number | null, key: string) => (v === null ? 'n/a' : key === 'count' ? String(v) : v.toFixed(4));
  parts.evaluation.replaceChildren(
    h('h2', { id: 'evaluation-heading' }, 'Evaluation: before vs after alignment'),
    h(
      'table',
      { 'aria-labelledby': 'evaluation-heading', 'data-testid': 'evaluation' },
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, 'Metric'),
        h('th', { scope: 'col' }, 'Before'),
        h('th', { scope: 'col' }, 'After'),
        h('th', { scope: 'col' }, 'Change'),
      ),
      ...s.evaluation.map((r) => {
        const raw = r.before !== null && r.after !== null ? r.after - r.before : null;
        // A change too small to show (0.0000 at four places) is no change: no sign, no colour.
        const delta = raw === null ? null : shownChange(raw, r.key === 'count');
        const verdict = delta === null || delta === 0 || NEUTRAL.has(r.key) ? '' : delta > 0 ? 'up' : 'down';
        return h(
          'tr',
          { 'data-metric': r.key },
          h('th', { scope: 'row' }, r.label),
          h('td', {}, fmt(r.before, r.key)),
          h('td', {}, fmt(r.after, r.key)),
          h('td', { class: verdict }, raw === null ? '' : formatChange(raw, r.key === 'count')),
        );
      }),
    ),
  );
}

function renderWarnings(warnings: readonly string[]): void {
  parts.warnings.replaceChildren(
    ...(warnings.length
      ? [
          h('h2', {}, 'Lines that could not be read'),
          h('ul', { class: 'warnings', 'data-testid': 'warnings' }, ...warnings.map((w) => h('li', { class: 'warning' }, w))),
        ]
      : []),
  );
}

/** The run in words: does it collapse, and what do the replies look like before and after. */
function renderVerdict(s: RunDashboardState): void {
  const v = s.verdict;
  if (!v) {
    parts.verdict.replaceChildren();
    return;
  }
  parts.verdict.replaceChildren(
    h('h2', { id: 'verdict-heading' }, 'Verdict: the replies before and after'),
    v.collapse.length
      ? h(
          'ul',
          { class: 'hints', 'data-testid': 'collapse' },
          ...v.collapse.map((c) =>
            h(
              'li',
              { class: 'hint warning', 'data-sign': c.sign },
              h('span', { class: 'codicon codicon-warning', 'aria-hidden': 'true' }),
              ' ',
              h('strong', {}, 'Collapse: '),
              c.message,
            ),
          ),
        )
      : h(
          'p',
          { 'data-testid': 'no-collapse' },
          'No sign of collapse: the aligned model selects different facts, does not loop, and its replies are as long and as varied as before.',
        ),
    h(
      'table',
      { 'aria-labelledby': 'verdict-heading', class: 'verdict-examples' },
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, 'Held-out prompt'),
        h('th', { scope: 'col' }, 'Before'),
        h('th', { scope: 'col' }, 'After'),
        h('th', { scope: 'col' }, 'Fact selected'),
      ),
      ...v.examples.map((e) => h('tr', {}, h('td', {}, e.prompt), h('td', {}, e.before), h('td', {}, e.after), h('td', {}, e.selected ?? 'none'))),
    ),
  );
}

function render(s: RunDashboardState): void {
  vscode.setState({ runDir: s.runDir });
  parts.header.replaceChildren(
    h(
      'h1',
      {},
      `Training: ${s.name} `,
      h('vscode-badge', { 'data-testid': 'run-status', 'aria-label': `Run ${RUN_STATUS_TEXT[s.status]}` }, RUN_STATUS_TEXT[s.status]),
    ),
    h('p', { class: 'muted' }, h('code', {}, s.runDir), s.config ? ` · from ${s.config}` : ''),
  );
  renderToolbar(s);
  parts.error.replaceChildren(
    ...(s.error ? [h('div', { class: 'problem', role: 'alert' }, h('p', {}, `The run ${s.status === 'failed' ? 'failed' : 'stopped'}: ${s.error}`))] : []),
  );
  renderStages(s);
  renderHints(s.hints, s.status === 'running');
  renderCharts(s);
  renderVerdict(s);
  renderEvaluation(s);
  renderWarnings(s.warnings);
  if (!parts.header.isConnected) app.replaceChildren(...Object.values(parts));
  // While the run trains, its charts come before the hints: they are what moves, and a hint or two
  // above them pushed stage 2's charts below the fold. Once it is over, the hints are read first.
  // Moved only when the order changes: re-inserting a section on every live update would take the
  // keyboard focus out of it.
  const chartsFirst = s.status === 'running';
  if ((parts.charts.nextElementSibling === parts.hints) !== chartsFirst)
    app.insertBefore(chartsFirst ? parts.charts : parts.hints, chartsFirst ? parts.hints : parts.charts);
  app.setAttribute('aria-busy', 'false');
}

window.addEventListener('message', (event: MessageEvent<ToRunDashboard>) => {
  const message = event.data;
  if (message.type === 'snapshot') {
    metrics = { stage1: [...message.metrics.stage1], stage2: [...message.metrics.stage2] };
  } else if (message.type === 'update') {
    for (const stage of ['stage1', 'stage2'] as const) for (const r of message.added[stage]) appendRecord(metrics[stage], r);
  } else return;
  render(message.state);
});

app.replaceChildren(h('p', { class: 'loading' }, 'Reading the run folder…'));
vscode.postMessage({ type: 'ready' });
