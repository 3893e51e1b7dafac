/**
 * The persona editor's form. It shows what the extension posts (the persona as the file holds it,
 * and its problems) and asks for edits; it never keeps its own copy of the truth, so undo, the text
 * view and other editors stay in step. Everything is reachable from the keyboard: Tab through the
 * fields, Alt+Up/Alt+Down move a fact, Enter in "New fact" adds it.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textarea/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type { FromPersonaEditor, PersonaPath, PersonaProblem, ToPersonaEditor } from './protocol';
import { h, howSelected, keepSelectAllInTextFields } from '../shared/dom';

keepSelectAllInTextFields();

declare function acquireVsCodeApi(): { postMessage(message: FromPersonaEditor): void };
const vscode = acquireVsCodeApi();
const app = document.getElementById('app')!;

type Turn = { speaker: string; text: string };
type Example = { turns: Turn[]; [key: string]: unknown };
let persona: Record<string, unknown> = {};

const edit = (path: PersonaPath, value: unknown) => vscode.postMessage({ type: 'edit', path, value });
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);
const examples = (): Example[] => (Array.isArray(persona.examples) ? structuredClone(persona.examples as Example[]) : []);

type Field = HTMLElement & { value: string };

/** Rows for a text box: the whole text shown (at about 80 characters a line), 4 at least, 14 at most. */
function rowsFor(text: string): number {
  const lines = text.split('\n').reduce((n, line) => n + Math.max(1, Math.ceil(line.length / 80)), 0);
  return Math.min(14, Math.max(4, lines + 1));
}

function textField(path: string, label: string, value: unknown, multiline = false): Field {
  const text = typeof value === 'string' ? value : '';
  const el = h(multiline ? 'vscode-textarea' : 'vscode-textfield', {
    'data-path': path,
    'aria-label': label,
    ...(multiline ? { rows: String(rowsFor(text)), resize: 'vertical' } : {}),
  }) as Field;
  el.value = text;
  return el;
}

function iconButton(icon: string, label: string, onClick: () => void, disabled = false): HTMLElement {
  const b = h('vscode-button', { icon, secondary: '', 'aria-label': label, title: label, ...(disabled ? { disabled: '' } : {}) });
  b.addEventListener('click', onClick);
  return b;
}

function labelled(id: string, label: string, field: HTMLElement, hint?: string): HTMLElement {
  field.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), field, ...(hint ? [h('div', { class: 'hint' }, hint)] : []));
}

function scalar(field: 'id' | 'name' | 'description' | 'style', label: string, multiline: boolean, optional: boolean, hint?: string): HTMLElement {
  const el = textField(field, label, persona[field], multiline);
  el.addEventListener('change', () => edit([field], optional && el.value.trim() === '' ? null : el.value));
  return labelled(`field-${field}`, label, el, hint);
}

function factsSection(): HTMLElement {
  const facts = strings(persona.facts);
  const move = (from: number, to: number) => {
    const next = [...facts];
    const [f] = next.splice(from, 1);
    next.splice(to, 0, f!);
    edit(['facts'], next);
    pendingFocus = `facts.${to}`;
  };
  const items = facts.map((fact, i) => {
    const el = textField(`facts.${i}`, `Fact ${i + 1}`, fact);
    el.addEventListener('change', () => edit(['facts', i], el.value));
    el.addEventListener('keydown', (e: KeyboardEvent) => {
      if (e.altKey && e.key === 'ArrowUp' && i > 0) move(i, i - 1);
      else if (e.altKey && e.key === 'ArrowDown' && i < facts.length - 1) move(i, i + 1);
      else return;
      e.preventDefault();
    });
    return h(
      'li',
      { class: 'fact', 'data-number': String(i + 1) },
      h('span', { class: 'fact-number', 'aria-hidden': 'true' }, `${i + 1}.`),
      el,
      h('span', { class: 'fact-used', 'data-testid': 'fact-used' }, 'used in the reply'),
      iconButton('arrow-up', `Move fact ${i + 1} up`, () => move(i, i - 1), i === 0),
      iconButton('arrow-down', `Move fact ${i + 1} down`, () => move(i, i + 1), i === facts.length - 1),
      iconButton('trash', `Remove fact ${i + 1}`, () =>
        edit(
          ['facts'],
          facts.filter((_, j) => j !== i),
        ),
      ),
    );
  });
  const add = textField('facts.new', 'New fact', '');
  add.setAttribute('placeholder', 'i keep bees on the roof .');
  const addFact = () => {
    if (add.value.trim() === '') return;
    edit(['facts'], [...facts, add.value.trim()]);
    pendingFocus = 'facts.new';
  };
  add.addEventListener('keydown', (e: KeyboardEvent) => {
    if (e.key === 'Enter') addFact();
  });
  return h(
    'section',
    { 'aria-labelledby': 'facts-title' },
    h('h2', { id: 'facts-title' }, `Persona facts (${facts.length})`),
    h('div', { class: 'hint' }, 'Short first-person sentences, one fact each: what PAL selects from. Alt+Up / Alt+Down moves a fact.'),
    h('ol', { class: 'facts' }, ...items),
    h('div', { class: 'fact add' }, add, h('vscode-button', { icon: 'add', 'aria-label': 'Add the new fact', id: 'add-fact' }, 'Add fact')),
  );
}

function examplesSection(): HTMLElement {
  const list = examples();
  const set = (next: Example[]) => edit(['examples'], next.length ? next : null);
  const blocks = list.map((ex, i) =>
    h(
      'fieldset',
      { class: 'example' },
      h('legend', {}, `Example dialogue ${i + 1}`),
      ...ex.turns.map((turn, j) => {
        const speaker = textField(`examples.${i}.${j}.speaker`, `Example ${i + 1}, turn ${j + 1}, speaker`, turn.speaker);
        const text = textField(`examples.${i}.${j}.text`, `Example ${i + 1}, turn ${j + 1}, text`, turn.text);
        speaker.classList.add('speaker');
        speaker.addEventListener('change', () => {
          const next = examples();
          next[i]!.turns[j]!.speaker = speaker.value;
          set(next);
        });
        text.addEventListener('change', () => {
          const next = examples();
          next[i]!.turns[j]!.text = text.value;
          set(next);
        });
        return h(
          'div',
          { class: 'turn' },
          speaker,
          text,
          iconButton('trash', `Remove turn ${j + 1} of example ${i + 1}`, () => {
            const next = examples();
            next[i]!.turns.splice(j, 1);
            set(next[i]!.turns.length ? next : next.filter((_, k) => k !== i));
          }),
        );
      }),
      h(
        'div',
        { class: 'toolbar' },
        iconButton('add', `Add a turn to example ${i + 1}`, () => {
          const next = examples();
          const last = next[i]!.turns.at(-1)?.speaker;
          next[i]!.turns.push({ speaker: last === 'user' ? 'persona' : 'user', text: '' });
          set(next);
        }),
        iconButton('trash', `Remove example ${i + 1}`, () => set(examples().filter((_, k) => k !== i))),
      ),
    ),
  );
  const add = h('vscode-button', { icon: 'add', secondary: '', 'aria-label': 'Add an example dialogue' }, 'Add example dialogue');
  add.addEventListener('click', () =>
    set([
      ...list,
      {
        turns: [
          { speaker: 'user', text: 'hello !' },
          { speaker: 'persona', text: '' },
        ],
      },
    ]),
  );
  return h('section', { 'aria-labelledby': 'examples-title' }, h('h2', { id: 'examples-title' }, 'Example dialogues'), ...blocks, add);
}

function problemsSection(problems: readonly PersonaProblem[]): HTMLElement | string {
  if (!problems.length) return '';
  return h(
    'section',
    { class: 'problems', role: 'status', 'aria-label': 'Problems in this file' },
    h(
      'ul',
      {},
      ...problems.map((p) =>
        h(
          'li',
          { class: p.severity },
          h('span', { class: `codicon codicon-${p.severity === 'info' ? 'info' : p.severity}`, 'aria-hidden': 'true' }),
          ` line ${p.line}: ${p.message}`,
        ),
      ),
    ),
  );
}

let pendingFocus: string | undefined;

type DocumentMessage = Extract<ToPersonaEditor, { type: 'document' }>;
type TryItMessage = Extract<ToPersonaEditor, { type: 'tryIt' }>;

function render(message: DocumentMessage): void {
  // Keep the writer's place: the focused field (or the one an action moved) gets focus back.
  const active = document.activeElement as HTMLElement | null;
  const focusPath = pendingFocus ?? active?.getAttribute('data-path') ?? undefined;
  pendingFocus = undefined;
  const openText = h('vscode-button', { icon: 'go-to-file', secondary: '', 'aria-label': 'Open this file as text' }, 'Open as text');
  openText.addEventListener('click', () => vscode.postMessage({ type: 'openText' }));
  if (!message.persona) {
    app.replaceChildren(
      h('div', { class: 'toolbar' }, openText),
      h('p', { role: 'alert' }, message.error ?? 'This file cannot be shown as a form.'),
      problemsSection(message.problems),
    );
    app.setAttribute('aria-busy', 'false');
    return;
  }
  persona = message.persona as Record<string, unknown>;
  const tags = textField('tags', 'Tags', strings(persona.tags).join(', '));
  tags.addEventListener('change', () => {
    const list = tags.value
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    edit(['tags'], list.length ? list : null);
  });
  app.replaceChildren(
    h('header', { class: 'toolbar' }, h('h1', {}, typeof persona.name === 'string' && persona.name ? persona.name : 'Persona'), openText),
    problemsSection(message.problems),
    h(
      'section',
      { 'aria-label': 'About the character' },
      scalar('name', 'Name', false, false),
      scalar('id', 'Id', false, false, 'How dialogue sets and pairs refer to this persona (persona_id).'),
      scalar('description', 'Description', true, true),
      scalar('style', 'Style', true, true, 'How the character speaks.'),
      labelled('field-tags', 'Tags', tags, 'Comma-separated.'),
    ),
    factsSection(),
    examplesSection(),
  );
  document.getElementById('add-fact')?.addEventListener('click', () => {
    const add = app.querySelector('[data-path="facts.new"]') as Field | null;
    if (add && add.value.trim()) {
      edit(['facts'], [...strings(persona.facts), add.value.trim()]);
      pendingFocus = 'facts.new';
    }
  });
  if (focusPath) (app.querySelector(`[data-path="${CSS.escape(focusPath)}"]`) as HTMLElement | null)?.focus();
  app.setAttribute('aria-busy', 'false');
}

// "Try it" lives outside the form, so that re-rendering the form never loses a reply.
const tryIt = (() => {
  const input = textField('try.message', 'Message to the character', '');
  input.setAttribute('placeholder', 'do you ever get lonely out there ?');
  const ask = h('vscode-button', { icon: 'comment', 'aria-label': 'Ask: the model selects a fact, then replies with it' }, 'Ask');
  const modelLine = h('div', { class: 'hint', 'data-testid': 'try-model' });
  const selected = h('div', { class: 'hint', 'data-testid': 'try-selected', 'aria-live': 'polite' });
  const reply = h('div', { class: 'reply', 'data-testid': 'try-reply', 'aria-live': 'polite' });
  let busy = false;
  const go = () => {
    if (busy || input.value.trim() === '') return;
    busy = true;
    ask.setAttribute('disabled', '');
    vscode.postMessage({ type: 'tryIt', message: input.value.trim() });
  };
  ask.addEventListener('click', go);
  input.addEventListener('keydown', (e: KeyboardEvent) => {
    if (e.key === 'Enter') go();
  });
  const section = h(
    'section',
    { class: 'try-it', 'aria-labelledby': 'try-title' },
    h('h2', { id: 'try-title' }, 'Try it'),
    h('div', { class: 'hint' }, 'Ask the character something: the model picks the fact to use (saved or not), then replies with it highlighted.'),
    modelLine,
    h('div', { class: 'fact add' }, input, ask),
    selected,
    reply,
  );
  document.body.append(section);
  // The reply is what the writer waits for: keep it on screen, however long the form above is.
  const show = (el: HTMLElement) => el.scrollIntoView({ block: 'nearest' });
  const clearSelected = () => {
    for (const li of app.querySelectorAll('ol.facts > li.selected')) li.classList.remove('selected');
  };
  return (m: TryItMessage) => {
    if (m.state === 'model') {
      modelLine.textContent = `Answering: ${m.model}; ${m.decoding} (the settings palStudio.models.default and palStudio.tryIt.decoding choose)`;
    } else if (m.state === 'started') {
      reply.textContent = '';
      selected.textContent = `Thinking (${m.model})…`;
      clearSelected();
      show(reply);
    } else if (m.state === 'text') {
      reply.textContent += m.piece;
    } else {
      busy = false;
      ask.removeAttribute('disabled');
      if (m.state === 'error') {
        selected.textContent = '';
        reply.textContent = m.message;
        reply.setAttribute('role', 'alert');
        show(reply);
        return;
      }
      reply.removeAttribute('role');
      reply.textContent = m.response;
      const how = howSelected(m.selectionSource);
      selected.textContent = `Persona fact used: ${m.selectedText} (${how})`;
      if (m.selected >= 0) app.querySelectorAll('ol.facts > li')[m.selected]?.classList.add('selected');
      show(reply);
    }
  };
})();

window.addEventListener('message', (event: MessageEvent<ToPersonaEditor>) => {
  if (event.data?.type === 'document') render(event.data);
  else if (event.data?.type === 'tryIt') tryIt(event.data);
});
vscode.postMessage({ type: 'ready' });
