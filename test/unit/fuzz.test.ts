// Property-based fuzzing of every parser and importer (fast-check): random, truncated and mixed
// input never throws, saving gives back exactly what was read, and no parseable line is lost.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseDialogues } from '../../src/core/formats/dialogues';
import { records, serializeJsonl } from '../../src/core/formats/jsonl';
import { parsePairs } from '../../src/core/formats/pairs';
import { parsePersona, serializePersona } from '../../src/core/formats/persona';
import { parseRunConfig } from '../../src/core/formats/runConfig';
import { validateText } from '../../src/core/formats/index';
import { importCharacterCard } from '../../src/core/importers/card';
import { guessImportFormat } from '../../src/core/importers/guess';
import { importParlai } from '../../src/core/importers/parlai';
import { importSyntheticPersonaChat } from '../../src/core/importers/spc';
import { stringify as yamlStringify } from 'yaml';
import { documentLines, judgedLine, JUDGEMENTS, PairIndex } from '../../src/core/annotator';
import { importCorpus } from '../../src/core/importers/corpus';
import { jsonlAppend } from '../../src/core/pairAppend';
import { parseMetrics } from '../../src/core/runHistory';
import { parseRunState } from '../../src/core/runFolder';
import { parseFromGenerationPanel } from '../../webview/generation-panel/protocol';
import { parseFromPairAnnotator } from '../../webview/pair-annotator/protocol';
import { parseFromCompareView } from '../../webview/compare/protocol';
import { parseFromEngineInfoView } from '../../webview/engine-info/protocol';
import { parseFromPersonaEditor } from '../../webview/persona-editor/protocol';
import { parseFromRunDashboard } from '../../webview/run-dashboard/protocol';

const RUNS = Number(process.env.PAL_FUZZ_RUNS ?? 1000);
const params = { numRuns: RUNS };

const text = fc.string({ unit: 'binary', maxLength: 80 }).filter((s) => !s.includes('\n') && !s.includes('\r'));
const sentence = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => s.trim().length > 0);

const dialogueRecord = fc
  .record({
    personas: fc.array(sentence, { minLength: 1, maxLength: 5 }),
    history: fc.array(fc.string({ maxLength: 30 }), { minLength: 1, maxLength: 4 }),
    response: sentence,
    split: fc.constantFrom('train', 'valid', 'test'),
    extra: fc.option(fc.jsonValue(), { nil: undefined }),
  })
  .chain((r) => fc.integer({ min: -1, max: r.personas.length - 1 }).map((persona_index) => ({ ...r, persona_index })));

const pairRecord = fc.record({
  prompt: sentence,
  chosen: sentence,
  rejected: sentence,
  status: fc.constantFrom('pending', 'chosen', 'skipped', 'tie'),
  whatever: fc.option(fc.jsonValue(), { nil: undefined }),
});

/** A file of valid records mixed with garbage lines, blank lines and truncated records. */
function mixedFile<T>(record: fc.Arbitrary<T>) {
  return fc
    .array(
      fc.oneof(
        { weight: 3, arbitrary: record.map((r) => ({ valid: true as const, value: r, line: JSON.stringify(r) })) },
        { weight: 1, arbitrary: text.map((t) => ({ valid: false as const, line: t })) },
        { weight: 1, arbitrary: record.chain((r) => fc.nat().map((n) => ({ valid: false as const, line: JSON.stringify(r).slice(0, 1 + (n % 20)) }))) },
        { weight: 1, arbitrary: fc.constant({ valid: false as const, line: '' }) },
      ),
      { maxLength: 12 },
    )
    .chain((lines) => fc.record({ eol: fc.constantFrom('\n', '\r\n'), finalNewline: fc.boolean() }).map((f) => ({ lines, ...f })));
}

for (const [name, record, parse] of [
  ['dialogue sets', dialogueRecord, parseDialogues],
  ['preference pairs', pairRecord, parsePairs],
] as const) {
  test(`${name}: mixed files round-trip byte for byte and keep every valid record`, () => {
    fc.assert(
      fc.property(mixedFile(record as fc.Arbitrary<unknown>), ({ lines, eol, finalNewline }) => {
        const content = lines.map((l) => l.line).join(eol) + (finalNewline && lines.length ? eol : '');
        const doc = (parse as (t: string, f: string) => ReturnType<typeof parseDialogues>)(content, `fuzz.${name}`);
        assert.equal(serializeJsonl(doc), content);
        const expected = lines.filter((l) => l.valid).map((l) => JSON.parse(l.line));
        const got = records(doc).map((r) => r.value);
        // Garbage lines may happen to be valid records too; every generated valid one must be there.
        for (const e of expected)
          assert.ok(
            got.some((g) => JSON.stringify(g) === JSON.stringify(e)),
            JSON.stringify(e),
          );
        const validLineNumbers = lines.flatMap((l, i) => (l.valid ? [i + 1] : []));
        for (const n of validLineNumbers)
          assert.ok(
            records(doc).some((r) => r.line === n),
            `line ${n} kept`,
          );
      }),
      params,
    );
  });
}

test('a file cut at any byte parses without throwing, and every complete line before the cut is kept', () => {
  fc.assert(
    fc.property(fc.array(dialogueRecord, { minLength: 1, maxLength: 6 }), fc.nat(), (recs, cut) => {
      const full = recs.map((r) => `${JSON.stringify(r)}\n`).join('');
      const truncated = full.slice(0, cut % (full.length + 1));
      const doc = parseDialogues(truncated, 'cut.dialogues.jsonl');
      assert.equal(serializeJsonl(doc), truncated);
      const complete = truncated.split('\n').length - 1;
      assert.ok(records(doc).length >= complete);
    }),
    params,
  );
});

test('persona files: random text never throws and saves unchanged; generated personas read back equal', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), fc.constantFrom('x.persona.yaml', 'x.persona.json'), (t, file) => {
      const doc = parsePersona(t, file);
      assert.equal(serializePersona(doc), t);
    }),
    params,
  );
  const persona = fc.record({
    id: fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,12}$/),
    name: sentence,
    facts: fc.array(sentence, { maxLength: 6 }),
    tags: fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
    extensions: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.jsonValue(), { maxKeys: 3 }),
  });
  fc.assert(
    fc.property(persona, (p) => {
      const yamlDoc = parsePersona(yamlStringify(p), 'p.persona.yaml');
      assert.deepEqual(
        yamlDoc.problems.filter((x) => x.severity === 'error'),
        [],
      );
      assert.deepEqual(JSON.parse(JSON.stringify(yamlDoc.persona)), JSON.parse(JSON.stringify(p)));
      const jsonDoc = parsePersona(JSON.stringify(p, null, 2), 'p.persona.json');
      assert.deepEqual(JSON.parse(JSON.stringify(jsonDoc.persona)), JSON.parse(JSON.stringify(p)));
    }),
    params,
  );
});

test('run configs and validateText: random text and random YAML values never throw', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 200 }),
        fc.jsonValue().map((v) => yamlStringify(v)),
      ),
      (t) => {
        parseRunConfig(t, 'r.palrun.yaml');
        for (const f of ['a.persona.yaml', 'a.dialogues.jsonl', 'a.pairs.jsonl', 'a.palrun.yaml']) {
          const ps = validateText(f, t);
          for (const p of ps) assert.ok(p.line >= 1 && p.column >= 1 && p.message.length > 0);
        }
      },
    ),
    params,
  );
});

test('importers: random and truncated input never throws; guessing never throws', () => {
  const csvish = fc
    .array(fc.array(fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('User 1: hi', 'User 2: hey', '"', '""', ',')), { maxLength: 4 }), { maxLength: 5 })
    .map((rows) => ['user 1 personas,user 2 personas,Best Generated Conversation', ...rows.map((r) => r.join(','))].join('\n'));
  const parlaiish = fc
    .array(
      fc.oneof(
        fc.string({ maxLength: 30 }),
        fc.nat(20).map((n) => `${n} your persona: i like tea .`),
        fc.nat(20).map((n) => `${n} hi there\thello !`),
      ),
      { maxLength: 10 },
    )
    .map((l) => l.join('\n'));
  const cardish = fc.oneof(
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.jsonValue().map((v) => JSON.stringify({ spec: 'chara_card_v2', spec_version: '2.0', data: v })),
    fc.string({ maxLength: 100 }),
  );
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 300 }), csvish, parlaiish, cardish), fc.nat(), (t, cut) => {
      const s = t.slice(0, cut % (t.length + 1));
      for (const input of [t, s]) {
        importParlai(input, 'x.txt');
        importSyntheticPersonaChat(input, 'x.csv');
        importCharacterCard(input, 'x.json');
        guessImportFormat(input, 'x');
      }
    }),
    params,
  );
});

// --- the studio's parsers: the annotator's index, its line edits, appends, run histories, messages

/** A pairs file's text from mixed lines (valid, garbage, cut, blank). */
const pairsText = mixedFile(pairRecord).map(({ lines, eol, finalNewline }) => lines.map((l) => l.line).join(eol) + (finalNewline && lines.length ? eol : ''));

test('annotator: an index updated by any edit equals the index of the edited text built afresh', () => {
  // One to three changes in one event, each replacing whole lines of the text as it was (the way
  // VS Code reports a multi-cursor edit), in any order.
  fc.assert(
    fc.property(pairsText, fc.array(fc.tuple(pairsText, fc.nat(), fc.nat()), { minLength: 1, maxLength: 3 }), fc.boolean(), (before, edits, reversed) => {
      const lines = documentLines(before);
      const changes: { startLine: number; endLine: number; text: string }[] = [];
      let from = 0;
      for (const [text, a, b] of edits) {
        if (from >= lines.length) break;
        const startLine = from + (a % (lines.length - from));
        const endLine = startLine + (b % Math.min(3, lines.length - startLine));
        changes.push({ startLine, endLine, text });
        from = endLine + 1;
      }
      let after = [...lines];
      for (const c of [...changes].reverse()) after = [...after.slice(0, c.startLine), ...documentLines(c.text), ...after.slice(c.endLine + 1)];
      const index = PairIndex.fromText(before);
      index.applyChanges(reversed ? [...changes].reverse() : changes, (n) => after[n]!);
      const fresh = new PairIndex(after);
      assert.equal(index.lineCount, fresh.lineCount);
      assert.deepEqual(index.counts(), fresh.counts());
      for (let n = 0; n < after.length; n++) assert.deepEqual(index.entry(n), fresh.entry(n), `line ${n}`);
    }),
    params,
  );
});

test('annotator: a judgement changes status and time only (2 also swaps the responses), on any valid pair line', () => {
  fc.assert(
    fc.property(pairRecord, fc.constantFrom(...JUDGEMENTS), (pair, judgement) => {
      const line = JSON.stringify(pair);
      const judged = JSON.parse(judgedLine(line, judgement, '2026-11-26T10:00:00Z')) as Record<string, unknown>;
      const { status, time, chosen, rejected, ...rest } = judged;
      const { status: _s, chosen: c0, rejected: r0, ...rest0 } = pair as Record<string, unknown>;
      assert.deepEqual(rest, JSON.parse(JSON.stringify(rest0)));
      assert.equal(time, '2026-11-26T10:00:00Z');
      assert.equal(status, { first: 'chosen', second: 'chosen', tie: 'tie', skip: 'skipped' }[judgement]);
      assert.deepEqual([chosen, rejected], judgement === 'second' ? [r0, c0] : [c0, r0]);
    }),
    params,
  );
});

test('appending a pair never changes a byte of what was there, and the new last line is the record', () => {
  fc.assert(
    fc.property(pairsText, pairRecord, (text, pair) => {
      const { insert, line } = jsonlAppend(text, pair);
      const after = text + insert;
      assert.ok(after.startsWith(text));
      const lines = documentLines(after);
      assert.deepEqual(JSON.parse(lines[line - 1]!), JSON.parse(JSON.stringify(pair)));
      assert.equal(lines.at(-1), '', 'the file ends with a newline');
    }),
    params,
  );
});

test('run histories: any metrics text reads without throwing, and every whole step line is kept', () => {
  const step = fc.record({ step: fc.integer({ min: 1, max: 50 }), loss: fc.double({ noNaN: true, noDefaultInfinity: true }) });
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          step.map((r) => JSON.stringify(r)),
          text,
        ),
        { maxLength: 20 },
      ),
      (lines) => {
        const { records } = parseMetrics(lines.join('\n'), 'metrics.jsonl');
        const steps = new Set(
          lines.flatMap((l) => {
            try {
              const v = JSON.parse(l) as { step?: unknown };
              return typeof v?.step === 'number' ? [v.step] : [];
            } catch {
              return [];
            }
          }),
        );
        for (const s of steps)
          assert.ok(
            records.some((r) => r.step === s),
            `step ${s} kept`,
          );
        // state.json: read, or refused with an error that names the file; never a crash of another kind.
        try {
          parseRunState(lines.join('\n'), 'state.json');
        } catch (err) {
          assert.match((err as Error).message, /state\.json/);
        }
      },
    ),
    params,
  );
});

test('the corpus importer: random and cut input never throws', () => {
  const corpusLine = fc
    .record({
      persona_a: fc.array(sentence, { maxLength: 3 }),
      persona_b: fc.array(sentence, { maxLength: 3 }),
      dialogue: fc.array(fc.string({ maxLength: 20 }), { maxLength: 4 }),
    })
    .map((r) => JSON.stringify(r));
  fc.assert(
    fc.property(fc.array(fc.oneof(corpusLine, text), { maxLength: 8 }), fc.nat(), (lines, cut) => {
      const t = lines.join('\n');
      importCorpus(t, 'c.jsonl');
      importCorpus(t.slice(0, cut % (t.length + 1)), 'c.jsonl');
    }),
    params,
  );
});

test('every webview message checker: any JSON value is accepted or refused without throwing, and what it accepts survives a round trip', () => {
  const parsers = [
    parseFromEngineInfoView,
    parseFromCompareView,
    parseFromPersonaEditor,
    parseFromPairAnnotator,
    parseFromGenerationPanel,
    parseFromRunDashboard,
  ] as ((m: unknown) => unknown)[];
  fc.assert(
    fc.property(
      fc.oneof(
        fc.jsonValue(),
        fc.record({ type: fc.constantFrom('ready', 'edit', 'judge', 'generate', 'save', 'stop', 'resume', 'tryIt', 'action', 'move'), value: fc.jsonValue() }),
      ),
      (message) => {
        for (const parse of parsers) {
          const accepted = parse(message);
          if (accepted !== undefined) assert.deepEqual(parse(JSON.parse(JSON.stringify(accepted))), accepted);
        }
      },
    ),
    params,
  );
});
