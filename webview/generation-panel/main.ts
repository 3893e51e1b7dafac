/**
 * The generation panel: personas, a dialogue and decoding settings on the left of the writer's
 * attention, sampled responses side by side below, each with the persona fact it was generated
 * with. Judging is one gesture with two samples ("Prefer this" rejects the other). The extension
 * keeps the samples; this view names them by index when it asks to save a pair.
 *
 * Keyboard: Ctrl+Enter generates, Escape stops; on a focused sample card c prefers it, r rejects
 * it, Left/Right move between cards.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-textarea/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import { judge, type Judgement } from '../../src/core/judgement';
import {
  DECODING_LIMITS,
  DEFAULT_DECODING,
  MAX_TURN_LENGTH,
  MAX_TURNS,
  type Decoding,
  type FromGenerationPanel,
  type PanelPersona,
  type ToGenerationPanel,
} from './protocol';
import { h, howSelected, keepSelectAllInTextFields } from '../shared/dom';

keepSelectAllInTextFields();

declare function acquireVsCodeApi(): { postMessage(message: FromGenerationPanel): void };
const vscode = acquireVsCodeApi();
const app = document.getElementById('app')!;

type Field = HTMLElement & { value: string; checked?: boolean };

interface Sample {
  text: string;
  state: 'running' | 'done' | 'error';
  message?: string;
  selectedText?: string;
  selectionSource?: string;
}

let personas: readonly PanelPersona[] = [];
const picked = new Set<string>();
const turns: string[] = [''];
let generation: { id: number; seeds: readonly number[]; samples: Sample[]; running: boolean } | undefined;
let judgement: Judgement = {};
let savedAs: string | undefined;

// ---- the sections, built once; the parts that change are re-rendered in place -------------------

const modelLine = h('div', { class: 'hint', 'data-testid': 'model' });
const personaList = h('div', { class: 'gen-personas', role: 'group', 'aria-labelledby': 'personas-title' });
const factList = h('ol', { class: 'gen-facts', 'aria-label': 'Persona facts, as the model sees them', 'data-testid': 'facts' });
const turnList = h('div', { class: 'gen-turns' });
const decodingFields = new Map<keyof Decoding, Field>();
const problemLine = h('div', { class: 'gen-problem', role: 'alert', 'data-testid': 'problem' });
const cards = h('div', { class: 'gen-samples', 'data-testid': 'samples' });
const judgementLine = h('div', { class: 'hint', 'aria-live': 'polite', 'data-testid': 'judgement' });
const savedLine = h('div', { class: 'hint', role: 'status', 'data-testid': 'saved' });

function button(label: string, icon: string, onClick: () => void, attrs: Record<string, string> = {}): HTMLElement {
  const b = h('vscode-button', { icon, ...attrs }, label);
  b.addEventListener('click', onClick);
  return b;
}
const generateButton = button('Generate', 'sparkle', () => generate(), {
  'aria-label': 'Generate: sample responses with these personas and settings (Ctrl+Enter)',
  title: 'Ctrl+Enter',
});
const stopButton = button('Stop', 'debug-stop', () => vscode.postMessage({ type: 'stop' }), {
  secondary: '',
  disabled: '',
  'aria-label': 'Stop generating (Escape)',
  title: 'Escape',
});
const saveButton = button('Save as preference pair…', 'save', () => save(), {
  disabled: '',
  'aria-label': 'Save the chosen and the rejected sample as a preference pair in a pairs file',
});

function setEnabled(el: HTMLElement, enabled: boolean): void {
  if (enabled) el.removeAttribute('disabled');
  else el.setAttribute('disabled', '');
}

const characterName = () => personas.find((p) => picked.has(p.key))?.name ?? 'Character';

function renderPersonas(): void {
  personaList.replaceChildren(
    ...(personas.length === 0 ? [h('p', { class: 'hint' }, 'No persona files (*.persona.yaml) in this workspace yet.')] : []),
    ...personas.map((p) => {
      const label = p.name ? `${p.name} (${p.id ?? 'no id'})` : p.file;
      const box = h(
        'vscode-checkbox',
        { 'data-key': p.key, 'aria-label': `Use persona ${label}`, ...(picked.has(p.key) ? { checked: '' } : {}), ...(p.error ? { disabled: '' } : {}) },
        label,
      ) as Field;
      box.addEventListener('change', () => {
        if (box.checked) picked.add(p.key);
        else picked.delete(p.key);
        renderFacts();
        renderTurns();
      });
      return h('div', { class: 'gen-persona' }, box, h('div', { class: p.error ? 'hint gen-error' : 'hint' }, p.error ? `${p.file}: ${p.error}` : p.file));
    }),
  );
  renderFacts();
}

/** The picked personas' facts, numbered in the order the model sees them. */
function renderFacts(): void {
  const facts = personas.filter((p) => picked.has(p.key)).flatMap((p) => p.facts);
  factList.replaceChildren(...facts.map((f) => h('li', {}, f)));
  factList.hidden = facts.length === 0;
  updateButtons();
}

function renderTurns(): void {
  const focused = document.activeElement?.getAttribute('data-turn');
  turnList.replaceChildren(
    ...turns.map((text, i) => {
      const speaker = i % 2 === 0 ? 'User' : characterName();
      const field = h('vscode-textarea', {
        'data-turn': String(i),
        // Room for a real turn (one row was too small to read back what was typed).
        rows: '3',
        resize: 'vertical',
        maxlength: String(MAX_TURN_LENGTH),
        'aria-label': `Turn ${i + 1}, ${speaker}`,
        placeholder: i % 2 === 0 ? 'what the user says' : 'what the character said',
      }) as Field;
      field.value = text;
      field.addEventListener('input', () => {
        turns[i] = field.value;
        updateButtons();
      });
      return h('div', { class: 'gen-turn' }, h('span', { class: 'speaker', 'aria-hidden': 'true' }, speaker), field);
    }),
  );
  if (focused !== null && focused !== undefined)
    (turnList.querySelector(`[data-turn="${Math.min(Number(focused), turns.length - 1)}"]`) as HTMLElement | null)?.focus();
  updateButtons();
}

function decodingSection(): HTMLElement {
  const labels: Record<keyof Decoding, string> = {
    temperature: 'Temperature',
    topK: 'Top-k',
    topP: 'Top-p',
    maxNewTokens: 'Max new tokens',
    repetitionPenalty: 'Repetition penalty',
    noRepeatNgramSize: 'No repeat n-gram',
    samples: 'Samples',
    seed: 'Seed',
  };
  const hints: Partial<Record<keyof Decoding, string>> = {
    temperature: '0: greedy',
    topK: '0: no limit',
    repetitionPenalty: '1: off',
    noRepeatNgramSize: "0: off; no n tokens of the partner's turns either",
    seed: 'seed, seed + 1, … per sample',
  };
  const fields = (Object.keys(labels) as (keyof Decoding)[]).map((k) => {
    const { min, max, integer } = DECODING_LIMITS[k];
    const field = h('vscode-textfield', {
      id: `decoding-${k}`,
      type: 'number',
      min: String(min),
      max: String(max),
      step: integer ? '1' : '0.01',
      'data-decoding': k,
    }) as Field;
    field.value = String(DEFAULT_DECODING[k]);
    field.addEventListener('input', updateButtons);
    decodingFields.set(k, field);
    return h('div', { class: 'field' }, h('label', { for: `decoding-${k}` }, labels[k]), field, h('div', { class: 'hint' }, hints[k] ?? `${min}–${max}`));
  });
  return h('section', { 'aria-labelledby': 'decoding-title' }, h('h2', { id: 'decoding-title' }, 'Decoding'), h('div', { class: 'gen-decoding' }, ...fields));
}

/** The settings as numbers, or what is wrong with them. */
function readDecoding(): Decoding | string {
  const out: Partial<Record<keyof Decoding, number>> = {};
  for (const [k, field] of decodingFields) {
    const { min, max, integer } = DECODING_LIMITS[k];
    const v = Number(field.value);
    const ok = field.value.trim() !== '' && Number.isFinite(v) && v >= min && v <= max && (!integer || Number.isInteger(v));
    if (ok) field.removeAttribute('invalid');
    else field.setAttribute('invalid', '');
    if (!ok)
      return `${field.parentElement?.querySelector('label')?.textContent ?? k} must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}.`;
    out[k] = v;
  }
  return out as Decoding;
}

/** Why Generate cannot run now, or undefined when it can. */
function blocker(): string | undefined {
  if (![...picked].some((k) => personas.some((p) => p.key === k))) return 'Pick at least one persona.';
  if (turns.some((t) => t.trim() === '')) return 'Write every turn of the dialogue (or remove the empty last one).';
  if (turns.length % 2 === 0) return 'The last turn is the user’s: the character answers it. Add a user turn.';
  const d = readDecoding();
  return typeof d === 'string' ? d : undefined;
}

function updateButtons(): void {
  const why = blocker();
  const running = generation?.running === true;
  setEnabled(generateButton, !why && !running);
  setEnabled(stopButton, running);
  generateButton.setAttribute('title', why ?? 'Ctrl+Enter');
  problemLine.textContent = why && !running ? why : (problemLine.dataset.fromExtension ?? '');
  const { chosen, rejected } = judgement;
  const ready = generation !== undefined && chosen !== undefined && rejected !== undefined;
  setEnabled(saveButton, ready && savedAs !== `${generation!.id}:${chosen}:${rejected}`);
  judgementLine.textContent = !generation
    ? ''
    : chosen === undefined && rejected === undefined
      ? generation.samples.length === 2
        ? '“Prefer this” on one sample marks it chosen and the other rejected (keys: c, r).'
        : 'Mark one sample “Prefer this” (c) and one “Reject” (r).'
      : `Chosen: ${chosen === undefined ? '—' : `sample ${chosen + 1}`} · Rejected: ${rejected === undefined ? '—' : `sample ${rejected + 1}`}`;
}

function generate(): void {
  const decoding = readDecoding();
  if (blocker() || typeof decoding === 'string' || generation?.running) return;
  delete problemLine.dataset.fromExtension;
  const keys = personas.filter((p) => picked.has(p.key)).map((p) => p.key);
  vscode.postMessage({ type: 'generate', personas: keys, history: turns.map((t) => t.trim()), decoding });
}

function save(): void {
  const { chosen, rejected } = judgement;
  if (!generation || chosen === undefined || rejected === undefined) return;
  vscode.postMessage({ type: 'save', generation: generation.id, chosen, rejected });
}

// ---- sample cards ------------------------------------------------------------------------------

function mark(index: number, how: 'chosen' | 'rejected'): void {
  if (!generation) return;
  judgement = judge(
    judgement,
    index,
    how,
    generation.samples.map((s) => s.state === 'done'),
  );
  renderCards();
}

function renderCards(): void {
  if (!generation) return;
  const focused = document.activeElement?.closest?.('.sample')?.getAttribute('data-index');
  const g = generation;
  cards.replaceChildren(
    ...g.samples.map((s, i) => {
      const verdict = judgement.chosen === i ? 'chosen' : judgement.rejected === i ? 'rejected' : '';
      const how = howSelected(s.selectionSource);
      const done = s.state === 'done';
      const card = h(
        'article',
        {
          class: `sample ${verdict}`,
          tabindex: '0',
          'data-index': String(i),
          'aria-label': `Sample ${i + 1}, seed ${g.seeds[i]}${verdict ? `, ${verdict}` : ''}`,
          'aria-busy': String(s.state === 'running'),
        },
        h(
          'header',
          {},
          h('span', { class: 'sample-title' }, `Sample ${i + 1}`),
          h('span', { class: 'hint' }, `seed ${g.seeds[i]}`),
          verdict ? h('span', { class: `badge ${verdict}`, 'data-testid': 'mark' }, verdict === 'chosen' ? 'Chosen' : 'Rejected') : '',
        ),
        h(
          'div',
          { class: 'hint', 'data-testid': 'selected' },
          done ? `Persona fact used: ${s.selectedText} (${how})` : s.state === 'running' ? 'Selecting, then generating…' : '',
        ),
        h('div', { class: 'reply', 'data-testid': 'reply' }, s.text),
        s.state === 'error' ? h('div', { class: 'gen-error' }, s.message ?? '') : '',
        h(
          'div',
          { class: 'toolbar' },
          button('Prefer this', 'thumbsup', () => mark(i, 'chosen'), {
            'aria-label': `Prefer sample ${i + 1} (c)`,
            title: 'c',
            ...(done ? {} : { disabled: '' }),
          }),
          button('Reject', 'thumbsdown', () => mark(i, 'rejected'), {
            secondary: '',
            'aria-label': `Reject sample ${i + 1} (r)`,
            title: 'r',
            ...(done ? {} : { disabled: '' }),
          }),
        ),
      );
      card.addEventListener('keydown', (e: KeyboardEvent) => {
        if (e.ctrlKey || e.altKey || e.metaKey) return;
        const key = e.key.toLowerCase();
        if (key === 'c' || key === 'r') mark(i, key === 'c' ? 'chosen' : 'rejected');
        else if (e.key === 'ArrowRight' || e.key === 'ArrowLeft')
          (
            cards.querySelector(`[data-index="${(i + (e.key === 'ArrowRight' ? 1 : g.samples.length - 1)) % g.samples.length}"]`) as HTMLElement | null
          )?.focus();
        else return;
        e.preventDefault();
      });
      return card;
    }),
  );
  if (focused !== null && focused !== undefined) (cards.querySelector(`[data-index="${focused}"]`) as HTMLElement | null)?.focus();
  updateButtons();
}

/** Streaming text goes straight into its card, so a re-render never has to keep up with it. */
function appendText(index: number, piece: string): void {
  const sample = generation?.samples[index];
  if (!sample) return;
  sample.text += piece;
  const reply = cards.querySelector(`[data-index="${index}"] [data-testid="reply"]`);
  if (reply) reply.textContent = sample.text;
}

// ---- the page ----------------------------------------------------------------------------------

function layout(): void {
  const addTurn = button(
    'Add turn',
    'add',
    () => {
      if (turns.length >= MAX_TURNS) return;
      turns.push('');
      renderTurns();
      (turnList.querySelector(`[data-turn="${turns.length - 1}"]`) as HTMLElement | null)?.focus();
    },
    { secondary: '', 'aria-label': 'Add a turn to the dialogue' },
  );
  const removeTurn = button(
    'Remove last turn',
    'remove',
    () => {
      if (turns.length > 1) turns.pop();
      else turns[0] = '';
      renderTurns();
    },
    { secondary: '', 'aria-label': 'Remove the last turn of the dialogue' },
  );
  app.replaceChildren(
    h('header', { class: 'toolbar' }, h('h1', {}, 'Generation'), modelLine),
    h(
      'div',
      { class: 'gen-setup' },
      h('section', { 'aria-labelledby': 'personas-title' }, h('h2', { id: 'personas-title' }, 'Personas'), personaList, factList),
      h(
        'section',
        { 'aria-labelledby': 'dialogue-title' },
        h('h2', { id: 'dialogue-title' }, 'Dialogue'),
        h('div', { class: 'hint' }, 'Oldest turn first; the character answers the last (user) turn.'),
        turnList,
        h('div', { class: 'toolbar' }, addTurn, removeTurn),
      ),
      decodingSection(),
    ),
    h('div', { class: 'toolbar' }, generateButton, stopButton),
    problemLine,
    h(
      'section',
      { 'aria-labelledby': 'samples-title' },
      h('h2', { id: 'samples-title' }, 'Samples'),
      cards,
      judgementLine,
      h('div', { class: 'toolbar' }, saveButton),
      savedLine,
    ),
  );
  renderTurns();
  app.setAttribute('aria-busy', 'false');
}

document.addEventListener('keydown', (e: KeyboardEvent) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    generate();
  } else if (e.key === 'Escape' && generation?.running) {
    vscode.postMessage({ type: 'stop' });
  }
});

window.addEventListener('message', (event: MessageEvent<ToGenerationPanel>) => {
  const m = event.data;
  if (m?.type === 'personas') {
    personas = m.personas;
    if (m.select) picked.clear();
    for (const key of m.select ?? []) picked.add(key);
    for (const key of [...picked]) if (!personas.some((p) => p.key === key && !p.error)) picked.delete(key);
    modelLine.textContent = `Model: ${m.modelLabel} (the palStudio.models.default setting chooses another)`;
    renderPersonas();
    renderTurns();
  } else if (m?.type === 'generation') {
    if (m.state === 'started') {
      generation = { id: m.generation, seeds: m.seeds, samples: m.seeds.map(() => ({ text: '', state: 'running' })), running: true };
      judgement = {};
      savedLine.textContent = '';
      renderCards();
    } else if (generation?.id === m.generation) {
      generation.running = false;
      renderCards();
    }
  } else if (m?.type === 'sample') {
    const sample = generation?.id === m.generation ? generation.samples[m.index] : undefined;
    if (!sample) return;
    if (m.state === 'text') return appendText(m.index, m.piece);
    if (m.state === 'done') Object.assign(sample, { state: 'done', text: m.response, selectedText: m.selectedText, selectionSource: m.selectionSource });
    else Object.assign(sample, { state: 'error', message: m.message });
    renderCards();
  } else if (m?.type === 'saved') {
    savedAs = generation ? `${generation.id}:${judgement.chosen}:${judgement.rejected}` : undefined;
    savedLine.textContent = `Saved to ${m.file}, line ${m.line}.`;
    updateButtons();
  } else if (m?.type === 'problem') {
    problemLine.dataset.fromExtension = m.message;
    updateButtons();
  }
});

layout();
vscode.postMessage({ type: 'ready' });
