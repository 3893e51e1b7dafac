import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  blindFlip,
  DEFAULT_FILTER,
  documentLines,
  editedResponseLine,
  indexLine,
  judgedLine,
  lineView,
  mapLine,
  PairIndex,
  type LineChange,
  type PairFilter,
} from '../../src/core/annotator';
import { parsePairs } from '../../src/core/formats/pairs';
import { parseFromPairAnnotator } from '../../webview/pair-annotator/protocol';

const TIME = '2026-11-27T10:00:00.000Z';
const pair = (fields: Record<string, unknown>) => JSON.stringify({ prompt: 'hi ?', chosen: 'a .', rejected: 'b .', ...fields });

// Pairs of two personas and two origins, a blank line, an invalid line and one without a status.
const LINES = [
  pair({ persona_ids: ['mara'], origin: 'annotated', status: 'pending' }),
  pair({ persona_ids: ['dev'], origin: 'pal-stage2', status: 'pending' }),
  '',
  '{"prompt": "broken", "chosen": ',
  pair({ persona_ids: ['mara', 'dev'], origin: 'pal-stage2', status: 'tie' }),
  pair({ origin: 'imported' }),
  pair({ persona_ids: ['mara'], status: 'pending' }),
];
const filter = (f: Partial<PairFilter>): PairFilter => ({ ...DEFAULT_FILTER, ...f });
const matching = (index: PairIndex, f: PairFilter) => {
  const out: number[] = [];
  for (let i = index.first(f); i !== undefined; i = index.step(i, f, 1)) out.push(i);
  return out;
};

test('the index counts pairs by status, persona and origin, and knows blank and invalid lines', () => {
  const index = new PairIndex(LINES);
  const c = index.counts();
  assert.equal(c.pairs, 5);
  assert.deepEqual(c.byStatus, { pending: 3, chosen: 1, skipped: 0, tie: 1 });
  assert.equal(c.invalid, 1);
  assert.deepEqual(c.personas, [
    { id: '', count: 1 },
    { id: 'dev', count: 2 },
    { id: 'mara', count: 3 },
  ]);
  assert.deepEqual(c.origins, [
    { id: '', count: 1 },
    { id: 'annotated', count: 1 },
    { id: 'imported', count: 1 },
    { id: 'pal-stage2', count: 2 },
  ]);
  assert.equal(index.entry(2), null);
  assert.equal(index.entry(3)?.kind, 'invalid');
  assert.deepEqual(index.entry(5), { kind: 'pair', status: 'chosen', personas: [], origin: 'imported' }, 'no status counts as chosen');
});

test('filters: pending, all, by status, by persona (and none), by origin; invalid lines only unfiltered', () => {
  const index = new PairIndex(LINES);
  assert.deepEqual(matching(index, DEFAULT_FILTER), [0, 1, 6]);
  assert.deepEqual(matching(index, filter({ status: 'all' })), [0, 1, 3, 4, 5, 6]);
  assert.deepEqual(matching(index, filter({ status: 'invalid' })), [3]);
  assert.deepEqual(matching(index, filter({ status: 'tie' })), [4]);
  assert.deepEqual(matching(index, filter({ status: 'all', persona: 'dev' })), [1, 4]);
  assert.deepEqual(matching(index, filter({ status: 'all', persona: '' })), [5]);
  assert.deepEqual(matching(index, filter({ status: 'pending', persona: 'mara' })), [0, 6]);
  assert.deepEqual(matching(index, filter({ status: 'all', origin: 'pal-stage2' })), [1, 4]);
  assert.deepEqual(matching(index, filter({ status: 'all', origin: '' })), [6]);
  assert.deepEqual(index.position(6, DEFAULT_FILTER), { index: 2, count: 3 });
  assert.deepEqual(index.position(4, DEFAULT_FILTER), { index: -1, count: 3 });
  assert.equal(index.last(filter({ status: 'all' })), 6);
  assert.equal(index.step(6, DEFAULT_FILTER, 1), undefined, 'no wrapping at the end');
  assert.equal(index.step(0, DEFAULT_FILTER, -1), undefined);
});

test('after a judgement the next pending pair is the one after it, wrapping to the start', () => {
  const index = new PairIndex(LINES);
  assert.equal(index.nextPending(0, DEFAULT_FILTER), 1);
  assert.equal(index.nextPending(6, DEFAULT_FILTER), 0);
  assert.equal(index.nextPending(0, filter({ persona: 'mara' })), 6);
  assert.equal(index.nextPending(0, filter({ status: 'all', origin: 'imported' })), undefined);
});

test('the light index check agrees with the full validation on what is a pair', () => {
  const samples = [
    ...LINES,
    '[1, 2]',
    '"text"',
    pair({ status: 'maybe' }),
    pair({ persona_ids: 'mara' }),
    pair({ chosen: 3 }),
    JSON.stringify({ prompt: 'p', chosen: 'c' }),
    '\uFEFF' + pair({}),
  ];
  for (const line of samples) {
    const full = parsePairs(line, 'x.pairs.jsonl').lines[0]!;
    const light = indexLine(line);
    if (line.trim() === '') assert.equal(light, null);
    else assert.equal(light?.kind === 'pair', full.value !== undefined, line);
  }
  assert.match((indexLine('{"prompt": ') as { problem: string }).problem, /^not valid JSON/);
  assert.equal((indexLine(pair({ status: 'maybe' })) as { problem: string }).problem, `'status' is "maybe", not one of pending, chosen, skipped, tie`);
});

test('judgements: 1 keeps the order, 2 swaps chosen and rejected, t and s set their status; time is set, the rest byte for byte', () => {
  // Spacing, key order, escapes and unknown fields as a person wrote them.
  const line = '{"prompt": "caf\\u00e9 ?",  "chosen": "yes .", "rejected": ["not", "text"], "status": "pending", "x-note": {"k": 1.50}}';
  assert.equal(
    judgedLine(line, 'first', TIME),
    `{"prompt": "caf\\u00e9 ?",  "chosen": "yes .", "rejected": ["not", "text"], "status": "chosen", "x-note": {"k": 1.50}, "time": "${TIME}"}`,
  );
  assert.equal(
    judgedLine(line, 'second', TIME),
    `{"prompt": "caf\\u00e9 ?",  "chosen": ["not", "text"], "rejected": "yes .", "status": "chosen", "x-note": {"k": 1.50}, "time": "${TIME}"}`,
  );
  assert.match(judgedLine(line, 'tie', TIME), /"status": "tie", "x-note": \{"k": 1\.50\}, "time": /);
  assert.match(judgedLine(line, 'skip', TIME), /"status": "skipped"/);
  // Compact lines stay compact; an existing time is replaced, not duplicated; a BOM stays.
  assert.equal(
    judgedLine('{"prompt":"p","chosen":"c","rejected":"r","time":"old"}', 'second', TIME),
    `{"prompt":"p","chosen":"r","rejected":"c","time":"${TIME}","status":"chosen"}`,
  );
  assert.equal(
    judgedLine('\uFEFF{"prompt": "p", "chosen": "c", "rejected": "r"}', 'tie', TIME),
    `\uFEFF{"prompt": "p", "chosen": "c", "rejected": "r", "status": "tie", "time": "${TIME}"}`,
  );
  // What it writes is a valid pair that says what was judged.
  const judged = parsePairs(judgedLine(LINES[1]!, 'second', TIME), 'x').lines[0]!.value!;
  assert.deepEqual([judged.chosen, judged.rejected, judged.status, judged.time, judged.origin], ['b .', 'a .', 'chosen', TIME, 'pal-stage2']);
  assert.throws(() => judgedLine('{"prompt": ', 'first', TIME), /not a JSON object/);
  assert.throws(() => judgedLine('[1]', 'first', TIME), /not a JSON object/);
});

test('a judgement in a document changes that one line: every other line (blank, invalid, CRLF, no final newline) stays byte for byte', () => {
  const text = `${LINES[0]}\r\n${LINES[1]}\n\n{broken\r\n${LINES[6]}`;
  const lines = documentLines(text);
  const judged = judgedLine(lines[1]!, 'second', TIME);
  const after = `${LINES[0]}\r\n${judged}\n\n{broken\r\n${LINES[6]}`;
  const before = parsePairs(text, 'x').lines;
  const now = parsePairs(after, 'x').lines;
  assert.equal(now.length, before.length);
  for (let i = 0; i < before.length; i++) {
    if (i === 1) continue;
    assert.deepEqual([now[i]!.text, now[i]!.eol], [before[i]!.text, before[i]!.eol], `line ${i + 1}`);
  }
});

test('editing a response replaces that text only; a conversational one gets its last message edited', () => {
  assert.equal(
    editedResponseLine('{"prompt": "p", "chosen": "c", "rejected": "r"}', 'rejected', 'new "one"\nline'),
    '{"prompt": "p", "chosen": "c", "rejected": "new \\"one\\"\\nline"}',
  );
  const conversational = JSON.stringify({
    prompt: [{ role: 'user', content: 'hi' }],
    chosen: [
      { role: 'assistant', content: 'one' },
      { role: 'assistant', content: 'two' },
    ],
    rejected: [{ role: 'assistant', content: 'r' }],
  });
  const edited = JSON.parse(editedResponseLine(conversational, 'chosen', 'deux'));
  assert.deepEqual(edited.chosen, [
    { role: 'assistant', content: 'one' },
    { role: 'assistant', content: 'deux' },
  ]);
  assert.throws(() => editedResponseLine('{"prompt": "p", "chosen": [], "rejected": "r"}', 'chosen', 'x'), /no message/);
});

test('the incremental update after a change equals indexing the changed document from scratch', () => {
  const cases: { text: string; change: LineChange; after: string }[] = [];
  const base = LINES.join('\n');
  const baseLines = documentLines(base);
  // A judgement (one line), a deleted line, two pasted lines, a joined pair of lines, and the whole text replaced.
  const judged = judgedLine(baseLines[0]!, 'skip', TIME);
  cases.push({ text: base, change: { startLine: 0, endLine: 0, text: judged }, after: [judged, ...baseLines.slice(1)].join('\n') });
  cases.push({ text: base, change: { startLine: 1, endLine: 2, text: '' }, after: [baseLines[0], ...baseLines.slice(2)].join('\n') });
  cases.push({
    text: base,
    change: { startLine: 3, endLine: 3, text: `${LINES[0]}\n${LINES[1]}` },
    after: [...baseLines.slice(0, 3), LINES[0], LINES[1], ...baseLines.slice(4)].join('\n'),
  });
  cases.push({ text: base, change: { startLine: 5, endLine: 6, text: LINES[4]! }, after: [...baseLines.slice(0, 5), LINES[4]].join('\n') });
  cases.push({ text: base, change: { startLine: 0, endLine: 6, text: `${LINES[3]}\r\n${LINES[2]}` }, after: `${LINES[3]}\r\n${LINES[2]}` });
  for (const { text, change, after } of cases) {
    const index = PairIndex.fromText(text);
    const afterLines = documentLines(after);
    index.applyChanges([change], (i) => afterLines[i]!);
    const fresh = PairIndex.fromText(after);
    assert.equal(index.lineCount, fresh.lineCount, JSON.stringify(change));
    assert.deepEqual(index.counts(), fresh.counts());
    for (let i = 0; i < fresh.lineCount; i++) assert.deepEqual(index.entry(i), fresh.entry(i), `line ${i}`);
  }
});

test('several changes in one event (reported bottom first, as VS Code does) update the right lines', () => {
  const base = documentLines(LINES.join('\n'));
  const index = new PairIndex(base);
  const j0 = judgedLine(base[0]!, 'tie', TIME);
  const j6 = judgedLine(base[6]!, 'first', TIME);
  // Line 6 judged, line 1 split into two lines (the second a new pending pair), line 0 judged.
  const changes: LineChange[] = [
    { startLine: 6, endLine: 6, text: j6 },
    { startLine: 1, endLine: 1, text: `${base[1]}\n${LINES[0]}` },
    { startLine: 0, endLine: 0, text: j0 },
  ];
  const after = [j0, base[1]!, LINES[0]!, ...base.slice(2, 6), j6];
  index.applyChanges(changes, (i) => after[i]!);
  const fresh = new PairIndex(after);
  assert.deepEqual(index.counts(), fresh.counts());
  for (let i = 0; i < after.length; i++) assert.deepEqual(index.entry(i), fresh.entry(i), `line ${i}`);
  assert.equal(mapLine(6, changes), 7, 'the line on screen moves down with the inserted line');
  assert.equal(mapLine(0, changes), 0);
  assert.equal(mapLine(1, [{ startLine: 0, endLine: 3, text: 'x' }]), 0, 'a line inside a removed range stays at the change');
  assert.equal(mapLine(2, [{ startLine: 1, endLine: 3, text: 'a\nb\nc' }]), 2, 'a line inside a rewritten range keeps its place in it');
});

test('a line the light check passed but the schema rejects is shown as invalid and can be marked so', () => {
  const line = pair({ dialogue: { line: 0 } }); // line must be >= 1
  const index = new PairIndex([line]);
  assert.equal(index.entry(0)?.kind, 'pair');
  const view = lineView(line, 0, 'p.pairs.jsonl', () => undefined);
  assert.equal(view?.kind, 'invalid');
  assert.match(view?.kind === 'invalid' ? view.problems[0]! : '', /^column \d+: /);
  index.markInvalid(0, 'x');
  assert.deepEqual([index.counts().pairs, index.counts().invalid], [0, 1]);
});

test('what the annotator shows of a pair: texts, personas by id, status, warnings; null for a blank line', () => {
  const line = JSON.stringify({ prompt: 'p', chosen: 'same', rejected: 'same', persona_ids: ['mara', 'ghost'], origin: 'annotated', time: 'soon' });
  const view = lineView(line, 4, 'p.pairs.jsonl', (id) => (id === 'mara' ? { name: 'Mara', facts: ['i keep a lighthouse .'] } : undefined));
  assert.equal(view?.kind, 'pair');
  const p = view as Extract<typeof view, { kind: 'pair' }>;
  assert.equal(p.line, 5);
  assert.deepEqual(p.personas, [
    { id: 'mara', name: 'Mara', facts: ['i keep a lighthouse .'] },
    { id: 'ghost', name: null, facts: [] },
  ]);
  assert.deepEqual([p.status, p.statusGiven, p.origin, p.time], ['chosen', false, 'annotated', 'soon']);
  assert.equal(p.warnings.length, 2, 'chosen equals rejected, and an unreadable time');
  assert.equal(
    lineView('', 0, 'p', () => undefined),
    null,
  );
  const invalid = lineView('{nope', 2, 'p.pairs.jsonl', () => undefined);
  assert.deepEqual([invalid?.kind, invalid?.line], ['invalid', 3]);
});

test('messages from the pair annotator: well-formed ones are accepted', () => {
  const ok: unknown[] = [
    { type: 'ready' },
    { type: 'undo' },
    { type: 'redo' },
    { type: 'rendered', seq: 0, keyMs: null },
    { type: 'rendered', seq: 12, keyMs: 3.5 },
    { type: 'judge', line: 3, judgement: 'second' },
    { type: 'edit', line: 1, side: 'rejected', text: '' },
    { type: 'move', to: 'last' },
    { type: 'filter', filter: { status: 'all', persona: '', origin: null } },
    { type: 'openText', line: 7 },
  ];
  for (const m of ok) assert.deepEqual(parseFromPairAnnotator(m), m);
});

test('messages from the pair annotator: anything else is rejected, including ones only a field check catches', () => {
  const bad: unknown[] = [
    null,
    'ready',
    [],
    { type: 'ready', extra: 1 },
    { type: 'judge', line: 0, judgement: 'first' },
    { type: 'judge', line: 1.5, judgement: 'first' },
    { type: 'judge', line: '1', judgement: 'first' },
    { type: 'judge', line: 1, judgement: 'third' },
    { type: 'judge', line: 1 },
    { type: 'edit', line: 1, side: 'prompt', text: 'x' },
    { type: 'edit', line: 1, side: 'chosen', text: 42 },
    { type: 'edit', line: 1, side: 'chosen', text: 'x'.repeat(100_001) },
    { type: 'rendered', seq: -1, keyMs: null },
    { type: 'rendered', seq: 1 },
    { type: 'rendered', seq: 1, keyMs: -4 },
    { type: 'rendered', seq: 1, keyMs: Number.NaN },
    { type: 'move', to: 'random' },
    { type: 'filter', filter: { status: 'everything', persona: null, origin: null } },
    { type: 'filter', filter: { status: 'all', persona: 3, origin: null } },
    { type: 'filter', filter: { status: 'all', persona: null } },
    { type: 'filter', filter: { status: 'all', persona: null, origin: null, extra: true } },
    { type: 'filter', filter: null },
    { type: 'openText', line: -2 },
    { type: 'save' },
  ];
  for (const m of bad) assert.equal(parseFromPairAnnotator(m), undefined, JSON.stringify(m)?.slice(0, 100));
});

test('a judgement names its annotator, replacing the one a re-judged line had (issue 17)', () => {
  const line = '{"prompt": "p", "chosen": "c", "rejected": "r", "annotator": "ana", "status": "chosen"}';
  assert.equal(
    judgedLine(line, 'second', TIME, 'ben'),
    `{"prompt": "p", "chosen": "r", "rejected": "c", "annotator": "ben", "status": "chosen", "time": "${TIME}"}`,
  );
  assert.equal(
    judgedLine('{"prompt":"p","chosen":"c","rejected":"r"}', 'tie', TIME, 'ben'),
    `{"prompt":"p","chosen":"c","rejected":"r","status":"tie","time":"${TIME}","annotator":"ben"}`,
  );
  // No name known: the line says nothing of who judged.
  assert.equal(judgedLine('{"prompt":"p","chosen":"c","rejected":"r"}', 'first', TIME).includes('annotator'), false);
});

test('the blind order is a seeded coin per pair: the same pair, the same side; both sides over many pairs', () => {
  const flips = Array.from({ length: 400 }, (_, i) => blindFlip(i + 1, `question ${i} ?`, 1));
  assert.deepEqual(
    Array.from({ length: 400 }, (_, i) => blindFlip(i + 1, `question ${i} ?`, 1)),
    flips,
    'the same seed and pair, the same order',
  );
  const left = flips.filter(Boolean).length;
  assert.ok(left > 160 && left < 240, `about half: ${left} of 400`);
  assert.notDeepEqual(
    Array.from({ length: 400 }, (_, i) => blindFlip(i + 1, `question ${i} ?`, 2)),
    flips,
    'another seed, another order',
  );
});
