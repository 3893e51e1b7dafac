/**
 * The pair annotator's view: one pair at a time, the responses side by side. It shows what the
 * extension posts and asks for actions; the document (and undo) stays with VS Code. Keys: 1 / 2
 * (left / right is better), t (tie), s (skip), e (edit the focused response), z (undo), Shift+Z
 * (redo), ← / → (previous / next in the filter), Home / End; each is also a button. Keys do nothing
 * while a text field or a list has the focus.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-textarea/index.js';
import type { FromPairAnnotator, Judgement, LineView, PairFilter, ResponseSide, StatusFilter, ToPairAnnotator } from './protocol';
import { h, keepSelectAllInTextFields } from '../shared/dom';
import { blindFlip } from '../../src/core/annotator';

keepSelectAllInTextFields();

declare function acquireVsCodeApi(): { postMessage(message: FromPairAnnotator): void };
const vscode = acquireVsCodeApi();
const app = document.getElementById('app')!;

type View = ToPairAnnotator;
type Pair = Extract<LineView, { kind: 'pair' }>;

const STATUS_LABELS: Record<StatusFilter, string> = {
  pending: 'Pending only',
  all: 'All lines',
  chosen: 'Chosen',
  tie: 'Ties',
  skipped: 'Skipped',
  invalid: 'Invalid lines',
};
const SIDE_LABELS: Record<ResponseSide, string> = { chosen: 'Left: chosen in the file now', rejected: 'Right: rejected in the file now' };
const BLIND_LABELS = { left: 'Response A', right: 'Response B' } as const;
/** The pair on screen is shown blind with its rejected response on the left (palStudio.annotator.blind). */
let flipped = false;

let view: View | undefined;
/** Set while a judgement or an edit is on its way: keys wait for the view it brings back. */
let busyUntil = 0;
let focusedSide: ResponseSide = 'chosen';
let editing: { side: ResponseSide; field: HTMLElement & { value: string } } | undefined;
/** When the last key was pressed, until the view answering it is on screen (the test report's key time). */
let keyPressedAt: number | undefined;

const post = (m: FromPairAnnotator) => vscode.postMessage(m);
const busy = () => Date.now() < busyUntil;

/** `first`/`second`: the left/right response on screen is better; the file's order is what the line gets. */
function judge(judgement: Judgement): void {
  if (view?.item?.kind !== 'pair' || busy() || editing) return;
  busyUntil = Date.now() + 3000;
  const inFile = flipped && (judgement === 'first' || judgement === 'second') ? (judgement === 'first' ? 'second' : 'first') : judgement;
  post({ type: 'judge', line: view.item.line, judgement: inFile });
}

function button(key: string, label: string, description: string, onClick: () => void): HTMLElement {
  const b = h(
    'vscode-button',
    { secondary: '', 'aria-label': `${label} (key ${description})`, 'aria-keyshortcuts': description, title: `${label} (${description})`, 'data-key': key },
    h('kbd', {}, description),
    ` ${label}`,
  );
  b.addEventListener('click', onClick);
  return b;
}

// The frame: built once; render() fills it in.
const progress = h('vscode-progress-bar', { 'aria-label': 'Pairs judged', max: '1', value: '0' }) as HTMLElement & { value?: number; max: number };
const progressText = h('div', { class: 'progress-text', 'data-testid': 'progress' });
const fileTitle = h('span', { class: 'muted', 'data-testid': 'file' });
const filters = h('div', { class: 'annotator-filters', role: 'group', 'aria-label': 'Filters' });
const position = h('div', { class: 'muted', 'data-testid': 'position' });
const statusLine = h('div', { class: 'annotator-status', role: 'status', 'aria-live': 'polite', 'data-testid': 'status' });
const itemArea = h('section', { class: 'annotator-item', 'aria-label': 'The pair' });
const openText = h('vscode-button', { icon: 'go-to-file', secondary: '', 'aria-label': 'Show this line in the text editor' }, 'Show in text');
openText.addEventListener('click', () => view?.item && post({ type: 'openText', line: view.item.line }));
const actions = h(
  'div',
  { class: 'toolbar annotator-actions', role: 'toolbar', 'aria-label': 'Judge the pair' },
  button('1', 'Left is better', '1', () => judge('first')),
  button('2', 'Right is better', '2', () => judge('second')),
  button('t', 'Tie', 'T', () => judge('tie')),
  button('s', 'Skip', 'S', () => judge('skip')),
  button('e', 'Edit response', 'E', () => startEdit(focusedSide)),
  button('z', 'Undo', 'Z', () => post({ type: 'undo' })),
  button('ArrowLeft', 'Previous', '←', () => post({ type: 'move', to: 'previous' })),
  button('ArrowRight', 'Next', '→', () => post({ type: 'move', to: 'next' })),
);
app.replaceChildren(
  h('header', { class: 'toolbar' }, h('h1', {}, 'Pair annotator ', fileTitle), openText),
  h('div', { class: 'annotator-progress' }, progress, progressText),
  filters,
  actions,
  h('div', { class: 'annotator-where' }, position, statusLine),
  itemArea,
);

function select(id: string, label: string, options: { value: string; label: string }[], selected: string, onChange: (value: string) => void): HTMLElement {
  const el = h(
    'vscode-single-select',
    { id, 'aria-label': label },
    ...options.map((o) => h('vscode-option', { value: o.value, ...(o.value === selected ? { selected: '' } : {}) }, o.label)),
  ) as HTMLElement & { value: string };
  el.addEventListener('change', () => onChange(el.value));
  return h('div', { class: 'annotator-filter' }, h('span', { id: `${id}-label`, class: 'muted' }, label), el);
}

/** The filter lists are rebuilt only when what they offer changes (counts move with every key). */
let filtersKey = '';
function renderFilters(v: View): void {
  const any = '\u0000any';
  const personas = v.counts.personas.map((p) => ({ value: p.id, label: p.id === '' ? `(no persona) · ${p.count}` : `${p.id} · ${p.count}` }));
  const origins = v.counts.origins.map((o) => ({ value: o.id, label: o.id === '' ? `(no origin) · ${o.count}` : `${o.id} · ${o.count}` }));
  const key = JSON.stringify([v.filter, personas.map((p) => p.value), origins.map((o) => o.value)]);
  if (key === filtersKey) return;
  filtersKey = key;
  const set = (change: Partial<PairFilter>) => post({ type: 'filter', filter: { ...v.filter, ...change } });
  const focused = document.activeElement?.id;
  filters.replaceChildren(
    select(
      'filter-status',
      'Show',
      Object.entries(STATUS_LABELS).map(([value, label]) => ({ value, label })),
      v.filter.status,
      (s) => set({ status: s as StatusFilter }),
    ),
    select('filter-persona', 'Persona', [{ value: any, label: 'Any persona' }, ...personas], v.filter.persona ?? any, (p) =>
      set({ persona: p === any ? null : p }),
    ),
    select('filter-origin', 'Origin', [{ value: any, label: 'Any origin' }, ...origins], v.filter.origin ?? any, (o) => set({ origin: o === any ? null : o })),
  );
  if (focused) document.getElementById(focused)?.focus();
}

function renderProgress(v: View): void {
  const c = v.counts;
  const judged = c.pairs - c.byStatus.pending;
  progress.max = Math.max(c.pairs, 1);
  progress.value = judged;
  progress.setAttribute('aria-label', `${judged} of ${c.pairs} pairs judged`);
  const parts = [
    `${judged} of ${c.pairs} judged`,
    `${c.byStatus.pending} pending`,
    `${c.byStatus.chosen} chosen`,
    `${c.byStatus.tie} tie`,
    `${c.byStatus.skipped} skipped`,
  ];
  if (c.invalid) parts.push(`${c.invalid} invalid line${c.invalid === 1 ? '' : 's'}`);
  progressText.textContent = parts.join(' · ');
}

function promptBlock(prompt: Pair['prompt']): HTMLElement {
  const body =
    typeof prompt === 'string'
      ? h('p', { class: 'annotator-text' }, prompt)
      : h('ol', { class: 'annotator-messages' }, ...prompt.map((m) => h('li', {}, h('strong', {}, `${m.role}: `), m.content)));
  return h('div', { class: 'annotator-prompt' }, h('h2', {}, 'Prompt'), body);
}

function personasBlock(pair: Pair): HTMLElement | string {
  if (!pair.personas.length) return h('p', { class: 'muted' }, 'No persona named (persona_ids).');
  return h(
    'div',
    { class: 'annotator-personas' },
    ...pair.personas.map((p) =>
      h(
        'details',
        { open: '' },
        h('summary', {}, p.name ? `${p.name} (${p.id})` : `${p.id} (no persona file with this id in the workspace)`),
        h('ul', {}, ...p.facts.map((f) => h('li', {}, f))),
      ),
    ),
  );
}

function responsePanel(pair: Pair, side: ResponseSide, place: 'left' | 'right', blind: boolean): HTMLElement {
  const key = place === 'left' ? '1' : '2';
  const text = side === 'chosen' ? pair.chosen : pair.rejected;
  const label = blind ? BLIND_LABELS[place] : SIDE_LABELS[side];
  const edit = h('vscode-button', {
    icon: 'edit',
    secondary: '',
    'aria-label': `Edit the ${place} response (key E)`,
    title: 'Edit (E)',
  });
  edit.addEventListener('click', () => startEdit(side));
  const panel = h(
    'div',
    {
      class: `annotator-response ${side}`,
      tabindex: '0',
      role: 'group',
      'data-side': side,
      'data-place': place,
      'aria-label': `${label}. Key ${key}: this one is better.`,
    },
    h('h2', {}, h('kbd', {}, key), ` ${label}`, edit),
    h('p', { class: 'annotator-text', 'data-testid': `response-${side}` }, text),
  );
  panel.addEventListener('focusin', () => (focusedSide = side));
  return panel;
}

function renderItem(v: View): void {
  const item = v.item;
  openText.toggleAttribute('disabled', !item);
  if (!item) {
    const none = v.position.count === 0 ? (v.filter.status === 'pending' ? 'No pending pair in this filter: all judged.' : 'Nothing matches this filter.') : '';
    itemArea.replaceChildren(h('p', { class: 'annotator-empty' }, none));
    return;
  }
  if (item.kind === 'invalid') {
    itemArea.replaceChildren(
      h(
        'div',
        { class: 'problem', role: 'alert', 'data-testid': 'invalid' },
        h('p', {}, `Line ${item.line} of ${v.file} is not a pair PAL Studio can read. It is kept exactly as it is; fix it in the text editor.`),
        h('ul', {}, ...item.problems.map((p) => h('li', {}, `Line ${item.line}, ${p}`))),
      ),
      h('pre', { class: 'annotator-raw' }, item.text),
    );
    return;
  }
  // Pending pairs are judged blind when the setting says so; judged ones show the file's order.
  const blind = v.blind !== null && item.status === 'pending';
  flipped = blind && blindFlip(item.line, item.prompt, v.blind!.seed);
  if (!itemArea.contains(document.activeElement)) focusedSide = flipped ? 'rejected' : 'chosen'; // E edits the left one
  const meta = [`status: ${item.status}${item.statusGiven ? '' : ' (no status in the file: used as given)'}`];
  if (item.origin) meta.push(`origin: ${item.origin}`);
  if (item.annotator) meta.push(`annotator: ${item.annotator}`);
  if (item.time) meta.push(`judged ${item.time}`);
  itemArea.replaceChildren(
    h('div', { class: 'muted', 'data-testid': 'meta' }, meta.join(' · ')),
    ...(item.warnings.length ? [h('ul', { class: 'annotator-warnings' }, ...item.warnings.map((w) => h('li', { class: 'warning' }, w)))] : []),
    personasBlock(item),
    promptBlock(item.prompt),
    h(
      'div',
      { class: 'annotator-responses' },
      ...(flipped
        ? [responsePanel(item, 'rejected', 'left', true), responsePanel(item, 'chosen', 'right', true)]
        : [responsePanel(item, 'chosen', 'left', blind), responsePanel(item, 'rejected', 'right', blind)]),
    ),
    h(
      'p',
      { class: 'hint', 'data-testid': 'order' },
      blind
        ? `A blind judgement: responses A and B in a seeded order, not the file's${item.conversational ? ' (the last message of each)' : ''}. 1: A is better. 2: B is better. The file then holds the better one as chosen.`
        : `Left is the response the file now holds as chosen, right the rejected one${item.conversational ? ' (the last message of each)' : ''}. 1: the left is better. 2: the right is better, and the file swaps them so the better one is chosen.`,
    ),
    ...(item.rationale ? [h('p', { class: 'hint' }, `Rationale: ${item.rationale}`)] : []),
  );
}

function render(v: View): void {
  view = v;
  busyUntil = 0;
  fileTitle.textContent = v.file;
  renderProgress(v);
  renderFilters(v);
  const where = v.item ? `line ${v.item.line}` : '';
  position.textContent =
    v.position.index >= 0
      ? `${v.position.index + 1} of ${v.position.count} in this filter · ${where}`
      : v.item
        ? `${where} (no longer in this filter; ${v.position.count} left in it)`
        : '';
  statusLine.textContent = v.note;
  const hadFocus = itemArea.contains(document.activeElement) ? (document.activeElement as HTMLElement).closest('[data-side]')?.getAttribute('data-side') : null;
  renderItem(v);
  if (hadFocus) (itemArea.querySelector(`[data-side="${hadFocus}"]`) as HTMLElement | null)?.focus();
  app.setAttribute('aria-busy', 'false');
  post({ type: 'rendered', seq: v.seq, keyMs: keyPressedAt === undefined ? null : performance.now() - keyPressedAt });
  keyPressedAt = undefined;
}

function startEdit(side: ResponseSide): void {
  const item = view?.item;
  if (item?.kind !== 'pair' || editing || busy()) return;
  const panel = itemArea.querySelector(`[data-side="${side}"]`) as HTMLElement | null;
  const text = panel?.querySelector('.annotator-text');
  if (!panel || !text) return;
  const field = h('vscode-textarea', {
    rows: '4',
    resize: 'vertical',
    'aria-label': `Edit the ${side === 'chosen' ? 'left' : 'right'} response. Enter saves, Shift+Enter starts a new line, Escape cancels.`,
    'data-testid': `edit-${side}`,
  }) as HTMLElement & { value: string };
  field.value = side === 'chosen' ? item.chosen : item.rejected;
  editing = { side, field };
  const done = (save: boolean) => {
    if (editing?.field !== field) return;
    editing = undefined;
    if (save && field.value !== (side === 'chosen' ? item.chosen : item.rejected)) {
      busyUntil = Date.now() + 3000;
      post({ type: 'edit', line: item.line, side, text: field.value });
    } else if (view) render(view);
    (itemArea.querySelector(`[data-side="${side}"]`) as HTMLElement | null)?.focus();
  };
  field.addEventListener('keydown', (e: KeyboardEvent) => {
    if (e.key === 'Enter' && !e.shiftKey) done(true);
    else if (e.key === 'Escape') done(false);
    else return;
    e.preventDefault();
    e.stopPropagation();
  });
  text.replaceWith(
    h('div', { class: 'annotator-editing' }, field, h('div', { class: 'hint' }, 'Enter or Ctrl+Enter saves · Shift+Enter: new line · Escape cancels')),
  );
  statusLine.textContent = `Editing the ${side === 'chosen' ? 'left' : 'right'} response.`;
  requestAnimationFrame(() => field.focus());
}

/** Keys belong to text fields and lists while they have the focus. */
function typingIn(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || /^(INPUT|TEXTAREA|SELECT|VSCODE-TEXTAREA|VSCODE-TEXTFIELD|VSCODE-SINGLE-SELECT|VSCODE-OPTION)$/.test(target.tagName);
}

window.addEventListener('keydown', (e) => {
  if (editing || typingIn(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
  const act: Record<string, () => void> = {
    '1': () => judge('first'),
    '2': () => judge('second'),
    t: () => judge('tie'),
    s: () => judge('skip'),
    e: () => startEdit(focusedSide),
    z: () => post({ type: 'undo' }),
    Z: () => post({ type: 'redo' }),
    ArrowRight: () => post({ type: 'move', to: 'next' }),
    ArrowLeft: () => post({ type: 'move', to: 'previous' }),
    Home: () => post({ type: 'move', to: 'first' }),
    End: () => post({ type: 'move', to: 'last' }),
  };
  const run = act[e.key.length === 1 && e.key !== 'Z' ? e.key.toLowerCase() : e.key];
  if (!run) return;
  e.preventDefault();
  keyPressedAt = performance.now();
  run();
});

window.addEventListener('message', (event: MessageEvent<ToPairAnnotator>) => {
  if (event.data?.type !== 'view') return;
  if (editing) {
    // Keep the writer's edit; what came in is shown when it ends.
    view = event.data;
    post({ type: 'rendered', seq: event.data.seq, keyMs: null });
    return;
  }
  render(event.data);
});
post({ type: 'ready' });
