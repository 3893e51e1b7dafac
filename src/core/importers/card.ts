/**
 * Character cards (the JSON that SillyTavern, chub.ai and other role-play front ends share) to and
 * from PAL Studio personas.
 *
 * - V1: a flat object `{ name, description, personality, scenario, first_mes, mes_example }`.
 * - V2: `{ spec: "chara_card_v2", spec_version: "2.0", data: { name, description, personality,
 *   scenario, first_mes, mes_example, creator_notes, system_prompt, post_history_instructions,
 *   alternate_greetings, character_book, tags, creator, character_version, extensions } }`.
 * - V3: `spec: "chara_card_v3"`, the V2 fields plus `nickname, creator_notes_multilingual, source,
 *   group_only_greetings, creation_date, modification_date, assets`.
 *
 * Import keeps the whole card, untouched, in `persona.extensions.character_card`; export starts
 * from that copy and writes back only what a persona can edit (name, description, personality as
 * `style`, tags, and the example dialogues). So a card that goes through PAL Studio unedited comes
 * out deep-equal to what went in, and nothing PAL Studio does not understand (lorebooks, assets,
 * other tools' extensions) is lost. Only JSON text is read: a card embedded in a PNG must be
 * extracted first.
 *
 * A card has no field for what PAL Studio adds (facts, the id, a persona's own fields): when the
 * card's fields alone would not import back as the persona, export also writes the persona into
 * the card's `extensions.pal_studio` (the spec's place for one tool's data), with the card fields
 * as written; import takes the persona from there, and a field edited since in another tool from
 * the card. So persona -> card -> persona keeps every field (issue 18.2: edited facts, `id` and
 * unknown fields were lost, and re-importing a new card's description added a bogus fact).
 */
import { parse as parseJsonc, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { positionAt, problem } from '../formats/problems';
import type { DialogueTurn, Persona, Problem } from '../formats/types';

export const CARD_SPEC_V2 = 'chara_card_v2';
export const CARD_SPEC_V3 = 'chara_card_v3';

/** Where in `persona.extensions` the original card is kept. */
export const CARD_EXTENSION_KEY = 'character_card';

/** Where in a card's `extensions` PAL Studio keeps the persona (see above). */
export const PAL_CARD_EXTENSION = 'pal_studio';

/** The card fields a persona shows, as export wrote them: one edited later in another tool wins on import. */
const CARD_TEXT_FIELDS = ['name', 'description', 'personality', 'tags', 'mes_example'] as const;

interface PalCardData {
  version: 1;
  /** The persona as it was exported, without its copy of the card. */
  persona: Persona;
  /** The card's fields as written with it. */
  card: Partial<Record<(typeof CARD_TEXT_FIELDS)[number], unknown>>;
}

/** The most facts derived from a card: PAL selects among a handful, as in PERSONA-CHAT. */
export const MAX_CARD_FACTS = 10;
/** Longer sentences are prose, not facts (and would crowd the model's context). */
export const MAX_FACT_WORDS = 20;

type CardObject = Record<string, unknown>;
type Example = NonNullable<Persona['examples']>[number];

export interface CardImport {
  persona?: Persona;
  problems: Problem[];
}

/** The object holding the character's fields: `data` in V2/V3, the card itself in V1. */
function fieldsOf(card: CardObject): CardObject | undefined {
  if (card.spec === undefined) return card;
  const data = card.data;
  return isObject(data) ? data : undefined;
}

function isObject(value: unknown): value is CardObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

interface CardFields {
  name: string;
  description: string;
  personality: string;
  tags: string[];
  examples: Example[];
}

/** What a persona shows of a card's fields; `onWrongType` hears of a field of the wrong type. */
function readCardFields(fields: CardObject, onWrongType: (key: string) => void = () => {}): CardFields {
  const text = (key: string): string => {
    const value = fields[key];
    if (value === undefined || value === null) return '';
    if (typeof value !== 'string') {
      onWrongType(key);
      return '';
    }
    return value;
  };
  let tags: string[] = [];
  if (Array.isArray(fields.tags)) tags = fields.tags.filter((t): t is string => typeof t === 'string');
  else if (fields.tags !== undefined && fields.tags !== null) onWrongType('tags');
  return {
    name: text('name'),
    description: text('description'),
    personality: text('personality'),
    tags,
    examples: parseMesExample(text('mes_example')),
  };
}

const JSON_ERROR_TEXT: Record<string, string> = {
  InvalidSymbol: 'an unexpected character',
  InvalidNumberFormat: 'a malformed number',
  PropertyNameExpected: 'a property name in double quotes is expected here',
  ValueExpected: 'a value is expected here',
  ColonExpected: 'a ":" is expected here',
  CommaExpected: 'a "," is expected here',
  CloseBraceExpected: 'a "}" is expected here',
  CloseBracketExpected: 'a "]" is expected here',
  EndOfFileExpected: 'nothing should follow the end of the card',
  InvalidCommentToken: 'comments are not allowed in JSON',
  UnexpectedEndOfComment: 'comments are not allowed in JSON',
  UnexpectedEndOfString: 'a string is not closed',
  UnexpectedEndOfNumber: 'a number is cut short',
  InvalidUnicode: 'a malformed \\u escape',
  InvalidEscapeCharacter: 'a malformed escape in a string',
  InvalidCharacter: 'a control character inside a string (write it as an escape, e.g. \\n)',
};

/** A problem at the first JSON syntax error of `text`, found with jsonc-parser (which gives offsets). */
function jsonSyntaxProblem(text: string, file: string, fallback: string): Problem {
  const errors: ParseError[] = [];
  parseJsonc(text, errors, { disallowComments: true, allowTrailingComma: false });
  const first = errors[0];
  if (!first) return problem(file, { line: 1, column: 1 }, 'error', 'card/invalid-json', `The card is not valid JSON: ${fallback}.`);
  const start = positionAt(text, first.offset);
  const end = positionAt(text, first.offset + Math.max(first.length, 1));
  const what = JSON_ERROR_TEXT[printParseErrorCode(first.error)] ?? printParseErrorCode(first.error);
  return problem(file, { ...start, endLine: end.line, endColumn: end.column }, 'error', 'card/invalid-json', `The card is not valid JSON: ${what}.`);
}

/** A persona id from a name: lower-case ASCII letters and digits joined by "-". */
export function slugify(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return slug === '' ? 'character' : slug;
}

export function importCharacterCard(text: string, file: string): CardImport {
  const problems: Problem[] = [];
  let card: unknown;
  try {
    card = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    problems.push(jsonSyntaxProblem(text.replace(/^\uFEFF/, ''), file, (err as Error).message));
    return { problems };
  }
  const at = { line: 1, column: 1 };
  if (!isObject(card)) {
    problems.push(problem(file, at, 'error', 'card/not-an-object', 'A character card is a JSON object ({ ... }); this file holds something else.'));
    return { problems };
  }
  if (card.spec !== undefined && card.spec !== CARD_SPEC_V2 && card.spec !== CARD_SPEC_V3) {
    problems.push(
      problem(
        file,
        at,
        'warning',
        'card/unknown-spec',
        `The card says spec "${String(card.spec)}"; PAL Studio knows "${CARD_SPEC_V2}" and "${CARD_SPEC_V3}" and reads it as those.`,
      ),
    );
  }
  const fields = fieldsOf(card);
  if (!fields) {
    problems.push(problem(file, at, 'error', 'card/no-data', `A "${String(card.spec)}" card keeps the character in a "data" object, which this card lacks.`));
    return { problems };
  }
  const read = readCardFields(fields, (key) =>
    problems.push(
      problem(
        file,
        at,
        'warning',
        'card/field-type',
        `The card's "${key}" is not of the type the spec gives it; PAL Studio ignores it (it stays in the card).`,
      ),
    ),
  );
  const { name, description, personality, tags, examples } = read;
  const stored = takePalData(card, fields, () =>
    problems.push(
      problem(
        file,
        at,
        'warning',
        'card/pal-data',
        `The card's extensions.${PAL_CARD_EXTENSION} is not what PAL Studio writes; the persona is read from the card's fields (the extension stays in the card).`,
      ),
    ),
  );
  if (stored) return { persona: personaFromPalData(stored, card, fields, read), problems };
  if (name.trim() === '') {
    problems.push(problem(file, at, 'error', 'card/no-name', 'The card has no "name": a persona needs one.'));
    return { problems };
  }

  const persona: Persona = {
    id: slugify(name),
    name,
    facts: deriveFacts(name, personality, description),
  };
  if (description !== '') persona.description = description;
  if (personality !== '') persona.style = personality;
  if (examples.length > 0) persona.examples = examples;
  if (tags.length > 0) persona.tags = tags;
  persona.extensions = { [CARD_EXTENSION_KEY]: structuredClone(card) };
  if (persona.facts.length === 0) {
    problems.push(
      problem(file, at, 'info', 'card/no-facts', `No short sentence about ${name} was found in the personality or description; write a few facts by hand.`),
    );
  }
  return { persona, problems };
}

/**
 * The persona as a character card (JSON text). A persona imported from a card gives back that
 * card with the persona's name, description, style (personality), tags and examples (mes_example)
 * written over the originals; unchanged, the result is deep-equal to the imported card. A persona
 * written in PAL Studio gives a new V2 card. Facts have no field of their own in a card: a new
 * card carries them after its description.
 */
export function exportCharacterCard(persona: Persona): string {
  const card = cardFields(persona);
  const fields = fieldsOf(card)!;
  if (isObject(fields.extensions)) delete fields.extensions[PAL_CARD_EXTENSION]; // written afresh below
  // What the card's fields cannot say goes with it, so that it imports back as this persona.
  const own = withoutCardCopy(persona);
  const plain = importCharacterCard(JSON.stringify(card), 'card').persona;
  if (!plain || canonicalJson(withoutCardCopy(plain)) !== canonicalJson(own)) {
    const written = Object.fromEntries(CARD_TEXT_FIELDS.filter((k) => fields[k] !== undefined).map((k) => [k, structuredClone(fields[k])]));
    const data: PalCardData = { version: 1, persona: own, card: written };
    fields.extensions = { ...(isObject(fields.extensions) ? fields.extensions : {}), [PAL_CARD_EXTENSION]: data };
  }
  return `${JSON.stringify(card, null, 2)}\n`;
}

/** The card with the persona's name, description, style, tags and examples in its fields. */
function cardFields(persona: Persona): CardObject {
  const original = persona.extensions?.[CARD_EXTENSION_KEY];
  if (!isObject(original)) return newV2Card(persona);
  const card: CardObject = structuredClone(original);
  let fields = fieldsOf(card);
  if (!fields) {
    fields = {};
    card.data = fields;
  }
  // Only what the persona changed is written: a field the persona still shows as it was read
  // stays exactly as it is in the card (even a null, or tags that are not all strings).
  const read = readCardFields(fields);
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (persona.name !== read.name) fields.name = persona.name;
  if ((persona.description ?? '') !== read.description) fields.description = persona.description ?? '';
  if ((persona.style ?? '') !== read.personality) fields.personality = persona.style ?? '';
  if (!same(persona.tags ?? [], read.tags)) fields.tags = persona.tags ?? [];
  if (!same(persona.examples ?? [], read.examples)) fields.mes_example = renderMesExample(persona.examples ?? []);
  return card;
}

/** The persona without its copy of the card (the card itself carries that). */
function withoutCardCopy(persona: Persona): Persona {
  const own: Persona = structuredClone(persona);
  if (own.extensions && CARD_EXTENSION_KEY in own.extensions) {
    const { [CARD_EXTENSION_KEY]: _card, ...rest } = own.extensions;
    if (Object.keys(rest).length > 0) own.extensions = rest;
    else delete own.extensions;
  }
  return own;
}

/**
 * PAL Studio's data in a card, taken out of it (the card is left as the other tools see it).
 * `undefined` when there is none, or when it is not what PAL Studio writes (then it stays in the
 * card, and `onInvalid` hears of it).
 */
function takePalData(card: CardObject, fields: CardObject, onInvalid: () => void): PalCardData | undefined {
  const extensions = fields.extensions;
  if (!isObject(extensions) || !(PAL_CARD_EXTENSION in extensions)) return undefined;
  const data = extensions[PAL_CARD_EXTENSION];
  const persona = isObject(data) ? data.persona : undefined;
  const valid =
    isObject(data) &&
    data.version === 1 &&
    isObject(data.card) &&
    isObject(persona) &&
    typeof persona.id === 'string' &&
    typeof persona.name === 'string' &&
    Array.isArray(persona.facts) &&
    persona.facts.every((f) => typeof f === 'string');
  if (!valid) {
    onInvalid();
    return undefined;
  }
  delete extensions[PAL_CARD_EXTENSION];
  // A V1 card has no `extensions` of its own: export made it, import takes it away again.
  if (card.spec === undefined && Object.keys(extensions).length === 0) delete fields.extensions;
  return data as unknown as PalCardData;
}

/** JSON text with every object's keys in order: equal values, equal text. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    isObject(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, v[k]]),
        )
      : v,
  );
}

/**
 * The persona a card exported by PAL Studio holds, with any field edited since in another tool
 * taken from the card. The copy of the card is kept unless the card is exactly the new card
 * PAL Studio made of that persona (so a persona written in PAL Studio comes back as it was).
 */
function personaFromPalData(data: PalCardData, card: CardObject, fields: CardObject, read: CardFields): Persona {
  const persona: Persona = structuredClone(data.persona);
  const edited = (key: (typeof CARD_TEXT_FIELDS)[number]) => canonicalJson(fields[key]) !== canonicalJson(data.card[key]);
  if (edited('name') && read.name.trim() !== '') persona.name = read.name;
  if (edited('description')) {
    // A new card carries the facts after the description; they are the persona's facts already.
    const factsParagraph = persona.facts.join(' ');
    let description = read.description;
    if (factsParagraph !== '' && description.endsWith(factsParagraph)) description = description.slice(0, -factsParagraph.length).trimEnd();
    if (description !== '') persona.description = description;
    else delete persona.description;
  }
  if (edited('personality')) {
    if (read.personality !== '') persona.style = read.personality;
    else delete persona.style;
  }
  if (edited('tags')) {
    if (read.tags.length > 0) persona.tags = read.tags;
    else delete persona.tags;
  }
  if (edited('mes_example')) {
    if (read.examples.length > 0) persona.examples = read.examples;
    else delete persona.examples;
  }
  if (canonicalJson(card) === canonicalJson(newV2Card(persona))) return persona;
  persona.extensions = { ...(persona.extensions ?? {}), [CARD_EXTENSION_KEY]: structuredClone(card) };
  return persona;
}

function newV2Card(persona: Persona): CardObject {
  return {
    spec: CARD_SPEC_V2,
    spec_version: '2.0',
    data: {
      name: persona.name,
      // A card has no field for facts: they follow the description, so a front-end still sees them.
      description: [persona.description ?? '', persona.facts.join(' ')].filter((t) => t.trim() !== '').join('\n\n'),
      personality: persona.style ?? '',
      scenario: '',
      first_mes: '',
      mes_example: renderMesExample(persona.examples ?? []),
      creator_notes: '',
      system_prompt: '',
      post_history_instructions: '',
      alternate_greetings: [],
      tags: persona.tags ?? [],
      creator: '',
      character_version: '',
      extensions: {},
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Example dialogues: `mes_example` is a series of blocks, each opened by "<START>", of lines
// "{{user}}: ..." and "{{char}}: ..." (V1 front ends also wrote "<USER>:" and "<BOT>:").

const START = /^\s*<start>\s*$/i;
const USER_LABEL = /^\s*(?:\{\{user\}\}|<user>)\s*:\s?(.*)$/i;
const CHAR_LABEL = /^\s*(?:\{\{char\}\}|<bot>)\s*:\s?(.*)$/i;

/** The example dialogues of a `mes_example`; speakers are "user" and "persona". */
export function parseMesExample(mesExample: string): Example[] {
  const examples: Example[] = [];
  let turns: DialogueTurn[] = [];
  const close = () => {
    const kept = turns.filter((t) => t.text !== '');
    if (kept.length > 0) examples.push({ turns: kept });
    turns = [];
  };
  for (const line of mesExample.split(/\r?\n/)) {
    if (START.test(line)) {
      close();
      continue;
    }
    const user = USER_LABEL.exec(line);
    const char = user ? null : CHAR_LABEL.exec(line);
    const label = user ?? char;
    if (label) {
      turns.push({ speaker: user ? 'user' : 'persona', text: (label[1] ?? '').trim() });
      continue;
    }
    // A line without a label continues the turn above it (a turn may run over several lines).
    const last = turns[turns.length - 1];
    if (last && line.trim() !== '') last.text = last.text === '' ? line.trim() : `${last.text}\n${line.trim()}`;
  }
  close();
  return examples;
}

/** `mes_example` text for example dialogues (the inverse of `parseMesExample`). */
export function renderMesExample(examples: readonly Example[]): string {
  return examples
    .map((example) => {
      const lines = example.turns.map((turn) => {
        const label = turn.speaker === 'user' ? '{{user}}' : turn.speaker === 'persona' ? '{{char}}' : turn.speaker;
        return `${label}: ${turn.text}`;
      });
      return ['<START>', ...lines].join('\n');
    })
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// Facts. A heuristic, not an understanding of the text: cards are free prose written for another
// kind of model, so PAL Studio proposes facts for the writer to check. It splits the personality
// and the description into sentences, keeps the short plain ones (no markup such as W++'s
// `[character("..."){...}]`), and turns third-person sentences about the character into first
// person where the pattern is simple ("{{char}} is a knight." -> "I am a knight.",
// "Aria loves cats." -> "I love cats.", "Her sword is old." -> "My sword is old."). A personality
// that is a bare list of traits ("grumpy, loyal, curious") becomes "I am grumpy, loyal, curious."

const ADVERB = '(?:always|often|never|usually|sometimes|really|also|still|rarely|secretly)';

function firstPersonVerb(verb: string): string {
  const lower = verb.toLowerCase();
  const irregular: Record<string, string> = { is: 'am', was: 'was', has: 'have', does: 'do', goes: 'go' };
  if (irregular[lower]) return irregular[lower];
  if (/[^aeiou]ies$/.test(lower)) return `${lower.slice(0, -3)}y`;
  if (/(?:sh|ch|x|ss|z)es$/.test(lower)) return lower.slice(0, -2);
  if (lower.endsWith('s') && !lower.endsWith('ss')) return lower.slice(0, -1);
  return lower;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function toFirstPerson(sentence: string, name: string): string {
  const subject = `(?:\\{\\{char\\}\\}|<bot>|${escapeRegExp(name)}|he|she)`;
  let s = sentence.replace(new RegExp(`^(?:\\{\\{char\\}\\}|<bot>|${escapeRegExp(name)})'s\\s+`, 'i'), 'My ');
  s = s.replace(/^(?:his|her)\s+/i, 'My ');
  const subjectVerb = new RegExp(`^${subject}\\s+(${ADVERB}\\s+)?([a-z]+s)\\b`, 'i');
  const converted = subjectVerb.test(s);
  s = s.replace(subjectVerb, (_all, adverb: string | undefined, verb: string) => `I ${adverb ?? ''}${firstPersonVerb(verb)}`);
  // A second verb of the same subject: "… and has not left" -> "… and have not left". Only the
  // auxiliaries: after "and", a word ending in s is as often a plural noun ("cats and dogs").
  if (converted)
    s = s.replace(
      new RegExp(`\\b(and|but|or)\\s+(${ADVERB}\\s+)?(is|has|does|was)\\b`, 'gi'),
      (_all, conj: string, adverb: string | undefined, verb: string) => `${conj} ${adverb ?? ''}${firstPersonVerb(verb)}`,
    );
  return s.replace(/\{\{char\}\}|<bot>/gi, name).replace(/\{\{user\}\}|<user>/gi, 'you');
}

function looksLikeTraitList(text: string): boolean {
  const items = text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  return items.length >= 2 && !/[.!?]/.test(text) && items.every((t) => t.split(/\s+/).length <= 3);
}

export function deriveFacts(name: string, personality: string, description: string): string[] {
  const facts: string[] = [];
  const seen = new Set<string>();
  const add = (fact: string) => {
    const key = fact
      .toLowerCase()
      .replace(/[^\p{L}\p{N}]+/gu, ' ')
      .trim();
    if (key === '' || seen.has(key) || facts.length >= MAX_CARD_FACTS) return;
    seen.add(key);
    facts.push(fact);
  };
  const fromProse = (text: string) => {
    for (const paragraph of text.split(/\n+/)) {
      for (const raw of paragraph.split(/(?<=[.!?])\s+/)) {
        const sentence = raw.trim();
        const words = sentence.split(/\s+/).length;
        if (words < 3 || words > MAX_FACT_WORDS) continue;
        if (/[[\]{}+="]/.test(sentence.replace(/\{\{(?:char|user)\}\}/gi, ''))) continue; // markup, quotes
        add(toFirstPerson(sentence, name));
      }
    }
  };
  const trimmed = personality.trim();
  if (looksLikeTraitList(trimmed)) add(`I am ${trimmed}.`);
  else fromProse(personality);
  fromProse(description);
  return facts;
}
