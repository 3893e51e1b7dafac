/** The run comparison view: two evaluation reports side by side, posted by the extension. */
import type { ToCompareView } from './protocol';
import { h } from '../shared/dom';

declare function acquireVsCodeApi(): { postMessage(message: { type: 'ready' }): void };
const vscode = acquireVsCodeApi();
const app = document.getElementById('app')!;

function fmt(v: number | null): string {
  return v === null ? 'n/a' : Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(4);
}

/** Metrics where more is not better: their changes are shown without a verdict colour. */
const NEUTRAL = new Set(['avgLength', 'count']);

window.addEventListener('message', (event: MessageEvent<ToCompareView>) => {
  if (event.data?.type !== 'comparison') return;
  const c = event.data.comparison;
  app.replaceChildren(
    h('h1', {}, 'Runs compared'),
    h(
      'table',
      { 'aria-label': 'Metrics of the two runs', 'data-testid': 'comparison' },
      h('tr', {}, h('th', { scope: 'col' }, 'Metric'), h('th', { scope: 'col' }, c.a), h('th', { scope: 'col' }, c.b), h('th', { scope: 'col' }, 'Change')),
      ...c.rows.map((r) =>
        h(
          'tr',
          { 'data-metric': r.key },
          h('th', { scope: 'row' }, r.label),
          h('td', {}, fmt(r.a)),
          h('td', {}, fmt(r.b)),
          h(
            'td',
            { class: r.delta === null || NEUTRAL.has(r.key) ? '' : r.delta > 0 ? 'up' : r.delta < 0 ? 'down' : '' },
            r.delta === null ? '' : `${r.delta > 0 ? '+' : ''}${fmt(r.delta)}`,
          ),
        ),
      ),
    ),
    ...c.warnings.map((w) => h('p', { class: 'warning', role: 'status' }, `Warning: ${w}.`)),
  );
  app.setAttribute('aria-busy', 'false');
});
vscode.postMessage({ type: 'ready' });
