// The training dashboard's pure parts: a run folder read back (with bad lines), the DPO hints,
// and the messages its webview may send.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runHints, stageHints, type HintId } from '../../src/core/dpoHints';
import { appendRecord, evaluationRows, formatEta, parseMetrics, series, stageStatuses, toMetricRecord, type MetricRecord } from '../../src/core/runHistory';
import { parseRunState, RUN_STAGES } from '../../src/core/runFolder';
import { readRunFolder } from '../../src/engine/runFolderView';
import { repeatsAPhrase, runVerdict } from '../../src/core/runVerdict';
import type { PredictionRecord } from '../../src/core/metrics/evaluate';
import { formatTick, niceTicks } from '../../webview/run-dashboard/chart';
import { parseFromRunDashboard, parseRunDashboardSavedState, RUN_DASHBOARD_ACTIONS } from '../../webview/run-dashboard/protocol';

test('metrics.jsonl: records in step order; a bad line is skipped with its file and line, the rest kept', () => {
  const text = [
    '{"step": 2, "loss": 2.5, "learning_rate": 1e-4}',
    '',
    '{"step": 1, "loss": 3.0, "learning_rate": 1e-4, "epoch": 0.5}',
    '{"step": 3, "loss": 2.',
    '["not", "a", "record"]',
    '{"loss": 1.0}',
    '{"step": 0, "loss": 1.0}',
    '{"step": 3, "loss": NaN, "grad_norm": Infinity, "rewards/margins": -Infinity, "note": "NaN"}',
    '{"step": 4, "loss": 2.0}',
    '{"step": 4, "loss": 1.9}',
    '{"step": 5, "lo',
  ].join('\n');
  const { records, warnings } = parseMetrics(text, 'runs/x/stage1/metrics.jsonl');
  assert.deepEqual(
    records.map((r) => r.step),
    [1, 2, 3, 4],
  );
  assert.equal(records[0]!.epoch, 0.5);
  // Python writes NaN and Infinity as bare words: read as the numbers they are.
  assert.ok(Number.isNaN(records[2]!.loss));
  assert.equal(records[2]!.grad_norm, Number.POSITIVE_INFINITY);
  assert.equal(records[2]!['rewards/margins'], Number.NEGATIVE_INFINITY);
  assert.equal('note' in records[2]!, false, 'only numbers are metrics');
  // A step written twice (a resumed trainer) keeps its last line.
  assert.equal(records[3]!.loss, 1.9);
  assert.deepEqual(warnings, [
    'runs/x/stage1/metrics.jsonl:4: skipped, not a JSON line',
    'runs/x/stage1/metrics.jsonl:5: skipped, not a metrics record (it needs a whole "step" number of at least 1)',
    'runs/x/stage1/metrics.jsonl:6: skipped, not a metrics record (it needs a whole "step" number of at least 1)',
    'runs/x/stage1/metrics.jsonl:7: skipped, not a metrics record (it needs a whole "step" number of at least 1)',
    'runs/x/stage1/metrics.jsonl:11: skipped, not a JSON line (cut off: the trainer may still be writing it)',
  ]);
  assert.deepEqual(parseMetrics('', 'm.jsonl'), { records: [], warnings: [] });
  assert.deepEqual(series(records, 'learning_rate'), [
    [1, 1e-4],
    [2, 1e-4],
  ]);
});

test('live steps: null (a NaN over JSON-RPC) is NaN; a repeated step drops the steps after it, as a resumed trainer does', () => {
  const r = toMetricRecord({ step: 7, loss: null, lr: 0.1, tag: 'x' })!;
  assert.ok(Number.isNaN(r.loss));
  assert.equal(r.lr, 0.1);
  assert.equal(toMetricRecord({ step: 1.5 }), undefined);
  assert.equal(toMetricRecord([1]), undefined);
  const records: MetricRecord[] = [1, 2, 3, 4].map((step) => ({ step, loss: step }));
  appendRecord(records, { step: 5, loss: 5 });
  assert.deepEqual(
    records.map((x) => x.step),
    [1, 2, 3, 4, 5],
  );
  appendRecord(records, { step: 3, loss: 30 });
  assert.deepEqual(
    records.map((x) => [x.step, x.loss]),
    [
      [1, 1],
      [2, 2],
      [3, 30],
    ],
  );
});

test('state.json: the stages done, in order; a file that is not one says where and what to do (one parser: the run and the dashboard)', () => {
  const state = parseRunState('{"done": ["stage1", "prepare"], "config": "/w/tiny.palrun.yaml", "startedAt": "2025-01-01T00:00:00Z"}', 'state.json');
  assert.deepEqual(state, { done: ['prepare', 'stage1'], config: '/w/tiny.palrun.yaml', startedAt: '2025-01-01T00:00:00Z' });
  assert.deepEqual(parseRunState('{"done": []}', 'state.json'), { done: [], config: null, startedAt: null });
  assert.throws(() => parseRunState('{"done": [', 'runs/x/state.json'), /^Error: runs\/x\/state\.json:1: not valid JSON .* delete it to redo the run/);
  for (const text of ['{"stages": []}', '{"done": ["stage1", "bogus"]}', '{"done": [1]}', 'null']) {
    assert.throws(
      () => parseRunState(text, 'runs/x/state.json'),
      /runs\/x\/state\.json:1: 'done' must be a list of stages \(prepare, stage1, generate, stage2, export, evaluate\)/,
      text,
    );
  }
});

test('stage statuses: running, stopped where it stopped, failed, skipped, finished', () => {
  const all = (s: Record<string, string>) => RUN_STAGES.map((k) => s[k]);
  assert.deepEqual(all(stageStatuses(['prepare', 'stage1', 'generate'], { stage: 'stage2', outcome: 'running' })), [
    'done',
    'done',
    'done',
    'running',
    'pending',
    'pending',
  ]);
  // The pipeline reports "prepare" once more after marking it done: it is still the current stage.
  assert.deepEqual(all(stageStatuses(['prepare'], { stage: 'prepare', outcome: 'running' })), [
    'running',
    'pending',
    'pending',
    'pending',
    'pending',
    'pending',
  ]);
  assert.deepEqual(all(stageStatuses(['prepare', 'stage1'], null)), ['done', 'done', 'stopped', 'pending', 'pending', 'pending']);
  assert.deepEqual(all(stageStatuses(['prepare'], { stage: 'stage1', outcome: 'failed' })), ['done', 'failed', 'pending', 'pending', 'pending', 'pending']);
  assert.deepEqual(all(stageStatuses([...RUN_STAGES], null)), ['done', 'done', 'done', 'done', 'done', 'done']);
  // method: finetune skips generate and stage 2; no held-out examples skip evaluate.
  assert.deepEqual(all(stageStatuses(['prepare', 'stage1', 'export', 'evaluate'], null)), ['done', 'done', 'skipped', 'skipped', 'done', 'done']);
  assert.deepEqual(all(stageStatuses(['prepare', 'stage1', 'generate', 'stage2', 'export'], null)), ['done', 'done', 'done', 'done', 'done', 'skipped']);
  assert.deepEqual(all(stageStatuses([], null)), ['stopped', 'pending', 'pending', 'pending', 'pending', 'pending']);
});

test("eval/report.json: before and after rows in pal eval's order; not a report says where", () => {
  const rows = evaluationRows(
    JSON.stringify({ bleu1: 0.3, rougeL: 0.2, selectionAccuracy: null, count: 4, baseline: { bleu1: 0.1, rougeL: 0.25, count: 4 } }),
    'eval/report.json',
  );
  const row = (key: string) => rows.find((r) => r.key === key);
  assert.equal(rows[0]!.key, 'bleu1');
  assert.deepEqual(row('bleu1'), { key: 'bleu1', label: 'BLEU-1', before: 0.1, after: 0.3 });
  assert.deepEqual(row('rougeL'), { key: 'rougeL', label: 'ROUGE-L (F, beta 1.2)', before: 0.25, after: 0.2 });
  assert.deepEqual(row('selectionAccuracy'), { key: 'selectionAccuracy', label: 'Selection accuracy', before: null, after: null });
  assert.equal(row('count')!.after, 4);
  assert.throws(() => evaluationRows('{"rouge": 1}', 'runs/x/eval/report.json'), /runs\/x\/eval\/report\.json:1: not a PAL evaluation report/);
  assert.throws(() => evaluationRows('{', 'runs/x/eval/report.json'), /runs\/x\/eval\/report\.json:1: not JSON/);
});

test('ETAs and chart ticks read as a person would write them', () => {
  assert.equal(formatEta(0.2), '1 s');
  assert.equal(formatEta(75), '75 s');
  assert.equal(formatEta(600), '10 min');
  assert.equal(formatEta(9000), '2.5 h');
  const close = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]!) < 1e-12);
  assert.ok(close(niceTicks(0, 1), [0, 0.5, 1]), String(niceTicks(0, 1)));
  assert.ok(close(niceTicks(1, 40), [10, 20, 30, 40]), String(niceTicks(1, 40)));
  assert.ok(close(niceTicks(-0.05, 0.05), [-0.05, 0, 0.05]), String(niceTicks(-0.05, 0.05)));
  assert.ok(close(niceTicks(0.0003, 0.0011), [0.0004, 0.0006, 0.0008, 0.001]), String(niceTicks(0.0003, 0.0011)));
  // Tick labels as precise as their spacing: a loss that barely moves still gets distinct ticks.
  assert.deepEqual(
    niceTicks(0.69312, 0.69318).map((t, _i, all) => formatTick(t, all[1]! - all[0]!)),
    ['0.69312', '0.69314', '0.69316', '0.69318'],
  );
  assert.deepEqual(
    [0, 0.5, 1].map((t) => formatTick(t, 0.5)),
    ['0.0', '0.5', '1.0'],
  );
  assert.deepEqual(
    [2000, 4000].map((t) => formatTick(t, 2000)),
    ['2000', '4000'],
  );
  assert.deepEqual(
    [9.5e-7, 1e-6].map((t) => formatTick(t, 5e-8, 1e-6)),
    ['9.50e-7', '1.00e-6'],
  );
});

// --- DPO hints -------------------------------------------------------------------------------

const STEPS = 40;
/** A healthy DPO run: loss falls, chosen rises a little, rejected falls, accuracy mostly above chance. */
function healthy(step: number): Record<string, number> {
  return {
    loss: 0.69 - 0.005 * step,
    'rewards/chosen': 0.005 * step,
    'rewards/rejected': -0.01 * step,
    'rewards/margins': 0.015 * step,
    'rewards/accuracies': step === 1 ? 0 : step % 2 ? 1 : 0.5,
    grad_norm: 1 + 0.1 * Math.sin(step),
    learning_rate: 1e-5,
    tokens_per_s: 1000,
  };
}
function run(change: (step: number, r: Record<string, number>) => Record<string, number> = (_s, r) => r, steps = STEPS): MetricRecord[] {
  return Array.from({ length: steps }, (_, i) => ({ ...change(i + 1, healthy(i + 1)), step: i + 1 }) as MetricRecord);
}
const ids = (records: MetricRecord[], stage: 'stage1' | 'stage2' = 'stage2') => stageHints(stage, records).map((h) => h.id as HintId);

test('a healthy run gets no hints, and neither does a short one', () => {
  assert.deepEqual(ids(run()), []);
  assert.deepEqual(ids(run(undefined, 5)), []);
  assert.deepEqual(runHints({ stage1: [], stage2: [] }), []);
});

test('hint: chosen and rejected rewards both falling', () => {
  const both = run((s, r) => ({ ...r, 'rewards/chosen': -0.01 * s, 'rewards/rejected': -0.03 * s, 'rewards/margins': 0.02 * s }));
  const hints = stageHints('stage2', both);
  assert.deepEqual(
    hints.map((h) => h.id),
    ['rewards-both-falling'],
  );
  assert.equal(hints[0]!.step, STEPS);
  assert.match(hints[0]!.message, /chosen -0\.400, rejected -1\.20/);
  assert.match(hints[0]!.tryThis, /beta/);
  // Falling early but recovering over the last window: no hint.
  assert.deepEqual(ids(run((s, r) => (s <= 20 ? { ...r, 'rewards/chosen': -0.01 * s, 'rewards/rejected': -0.03 * s } : r))), []);
  // Only rejected falling is what DPO should do.
  assert.deepEqual(ids(run((s, r) => ({ ...r, 'rewards/chosen': 0.0001 * s }))), []);
});

test('hint: reward accuracy stuck at 1 from the start (too easy pairs, or a leak), but not when it gets there late', () => {
  assert.deepEqual(ids(run((s, r) => ({ ...r, 'rewards/accuracies': s === 1 ? 0 : 1 }))), ['accuracy-stuck-at-1']);
  assert.deepEqual(ids(run((s, r) => ({ ...r, 'rewards/accuracies': s < 15 ? 0.5 : 1 }))), []);
  // Twenty steps are needed: a streak of 15 from the start is not enough.
  assert.deepEqual(ids(run((s, r) => ({ ...r, 'rewards/accuracies': s <= 16 ? (s === 1 ? 0 : 1) : 0.5 }))), []);
});

test('hint: reward accuracy stuck at 0 with a negative margin (something inverted)', () => {
  const inverted = run((s, r) => ({ ...r, 'rewards/accuracies': 0, 'rewards/margins': -0.01 * s, 'rewards/chosen': -0.02 * s, 'rewards/rejected': 0.01 * s }));
  assert.deepEqual(ids(inverted), ['accuracy-stuck-at-0']);
  // Accuracy 0 because nothing moves (margins 0) is not an inversion.
  assert.ok(!ids(run((_s, r) => ({ ...r, 'rewards/accuracies': 0, 'rewards/margins': 0 }))).includes('accuracy-stuck-at-0'));
  // Accuracy 0 for only part of the window: no hint.
  assert.deepEqual(
    ids(run((s, r) => ({ ...r, 'rewards/accuracies': s > 30 ? 0 : r['rewards/accuracies']!, 'rewards/margins': s > 30 ? -0.1 : r['rewards/margins']! }))),
    [],
  );
});

test('hint: margins blowing up', () => {
  assert.deepEqual(ids(run((s, r) => ({ ...r, 'rewards/margins': 0.5 * s }))), ['margins-blowing-up']);
  assert.deepEqual(ids(run((s, r) => ({ ...r, 'rewards/margins': 0.2 * s }))), []);
});

test('hint: a NaN or infinite loss, in either stage, named with its step', () => {
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
    const hints = stageHints(
      'stage1',
      run((s, r) => (s >= 12 ? { ...r, loss: bad } : r)),
    );
    assert.equal(hints[0]!.id, 'loss-not-finite');
    assert.equal(hints[0]!.severity, 'error');
    assert.equal(hints[0]!.step, 12);
    assert.match(hints[0]!.message, new RegExp(`became ${bad} at step 12`));
  }
  assert.ok(ids(run((s, r) => (s === 30 ? { ...r, loss: Number.NaN } : r))).includes('loss-not-finite'));
});

test('hint: gradient norm exploding, only while it is recent', () => {
  const spike = stageHints(
    'stage1',
    run((s, r) => (s === 35 ? { ...r, grad_norm: 50 } : r)),
  );
  assert.deepEqual(
    spike.map((h) => [h.id, h.step]),
    [['grad-norm-exploding', 35]],
  );
  assert.deepEqual(
    ids(
      run((s, r) => (s === 35 ? { ...r, grad_norm: 5 } : r)),
      'stage1',
    ),
    [],
  );
  // A spike 20 steps back has passed.
  assert.deepEqual(
    ids(
      run((s, r) => (s === 5 ? { ...r, grad_norm: 50 } : r)),
      'stage1',
    ),
    [],
  );
});

test('hint: loss not moving', () => {
  const flat = run((_s, r) => ({ ...r, loss: 0.6931 }));
  assert.deepEqual(ids(flat, 'stage1'), ['loss-not-moving']);
  // Noise around a level is not learning either; a 5% fall is.
  assert.deepEqual(
    ids(
      run((s, r) => ({ ...r, loss: 0.6931 + 0.003 * Math.sin(s) + (s > 20 ? 0.001 : 0) })),
      'stage1',
    ),
    ['loss-not-moving'],
  );
  assert.deepEqual(
    ids(
      run((s, r) => ({ ...r, loss: s > 20 ? 0.65 : 0.6931 })),
      'stage1',
    ),
    [],
  );
  assert.equal(stageHints('stage1', flat)[0]!.stage, 'stage1');
  // Needs two windows of steps: 30 flat steps say nothing yet.
  assert.deepEqual(
    ids(
      run((_s, r) => ({ ...r, loss: 0.6931 }), 30),
      'stage1',
    ),
    [],
  );
});

test("stage 1 never gets DPO hints; runHints names each hint's stage", () => {
  const inverted = run((s, r) => ({ ...r, 'rewards/accuracies': 0, 'rewards/margins': -0.01 * s }));
  assert.deepEqual(ids(inverted, 'stage1'), []);
  const hints = runHints({ stage1: run((_s, r) => ({ ...r, loss: 2 })), stage2: inverted });
  assert.deepEqual(
    hints.map((h) => [h.stage, h.id]),
    [
      ['stage1', 'loss-not-moving'],
      ['stage2', 'accuracy-stuck-at-0'],
    ],
  );
});

// --- Messages from the webview -----------------------------------------------------------------

test("the dashboard's well-formed messages are accepted", () => {
  assert.deepEqual(parseFromRunDashboard({ type: 'ready' }), { type: 'ready' });
  for (const action of RUN_DASHBOARD_ACTIONS) assert.deepEqual(parseFromRunDashboard({ type: 'action', action }), { type: 'action', action });
  assert.deepEqual([...RUN_DASHBOARD_ACTIONS], ['stop', 'resume', 'useModel', 'openReport', 'openConfig']);
});

test('anything else from the dashboard is rejected, including messages only the field checks catch', () => {
  const bad: unknown[] = [
    null,
    undefined,
    'ready',
    7,
    [],
    ['ready'],
    {},
    { type: 'Ready' },
    // the right type, a wrong field
    { type: 'ready', runDir: '/tmp' },
    { type: 'action' },
    { type: 'action', action: 'deleteRun' },
    { type: 'action', action: 'STOP' },
    { type: 'action', action: ['stop'] },
    { type: 'action', action: 'stop', runId: 'x' },
    { type: 'action', action: 'useModel', model: '/etc' },
    { type: 'action', action: 'toString' },
  ];
  for (const message of bad) assert.equal(parseFromRunDashboard(message), undefined, JSON.stringify(message));
});

test('the saved state the serializer restores from: a run folder string, nothing else', () => {
  assert.deepEqual(parseRunDashboardSavedState({ runDir: '/w/runs/tiny-sample' }), { runDir: '/w/runs/tiny-sample' });
  assert.deepEqual(parseRunDashboardSavedState({ runDir: '/w/runs/a', extra: 1 }), { runDir: '/w/runs/a' }, 'extra fields are dropped, not trusted');
  for (const bad of [null, undefined, 'x', [], {}, { runDir: 3 }, { runDir: '' }, { runDir: 'a\0b' }, { runDir: 'x'.repeat(5000) }]) {
    assert.equal(parseRunDashboardSavedState(bad), undefined, JSON.stringify(bad));
  }
});

test('run/folder: the engine reads a run folder for the dashboard, each damaged file a warning naming it, the rest shown', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pal-runview-'));
  try {
    // A folder with nothing yet (a run that has just started): empty, no warning.
    assert.deepEqual(await readRunFolder(dir, 'runs/x'), {
      state: { done: [], config: null, startedAt: null },
      metrics: { stage1: [], stage2: [] },
      evaluation: null,
      hasReportHtml: false,
      verdict: null,
      warnings: [],
    });
    writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ done: ['prepare', 'stage1'], config: '/w/x.palrun.yaml', startedAt: '2026-01-01T00:00:00Z' }));
    mkdirSync(path.join(dir, 'stage1'));
    writeFileSync(path.join(dir, 'stage1', 'metrics.jsonl'), '{"step": 1, "loss": 2.5}\n{"step": 2, "loss": NaN}\nnot json\n');
    mkdirSync(path.join(dir, 'eval'));
    writeFileSync(path.join(dir, 'eval', 'report.json'), '{"rouge": 1}');
    const view = await readRunFolder(dir, 'runs/x');
    assert.deepEqual(view.state.done, ['prepare', 'stage1']);
    assert.equal(view.metrics.stage1.length, 2);
    assert.ok(Number.isNaN(view.metrics.stage1[1]!.loss), 'a diverged loss is read as NaN');
    assert.equal(view.evaluation, null);
    assert.equal(view.warnings.length, 2, view.warnings.join('\n'));
    assert.match(view.warnings[0]!, /^runs\/x\/stage1\/metrics\.jsonl:3: /);
    assert.match(view.warnings[1]!, /^runs\/x\/eval\/report\.json:1: not a PAL evaluation report/);
    // The trainer's warnings, once a run for each kind (every job measures the machine again); a
    // damaged line is named.
    mkdirSync(path.join(dir, 'stage2'));
    const warned = (stage: string, lines: string[]) => writeFileSync(path.join(dir, stage, 'warnings.jsonl'), lines.map((l) => `${l}\n`).join(''));
    warned('stage1', ['{"kind": "emulated_bf16", "message": "bf16 is emulated: 51x"}']);
    warned('stage2', ['{"kind": "emulated_bf16", "message": "bf16 is emulated: 47x"}', '{"kind": "other", "message": "another"}', '{"kind": "cut']);
    const warnedView = await readRunFolder(dir, 'runs/x');
    assert.deepEqual(warnedView.warnings.slice(1, 4), [
      'stage1: bf16 is emulated: 51x',
      'stage2: another',
      'runs/x/stage2/warnings.jsonl:3: not a trainer warning (a JSON object with kind and message)',
    ]);
    // A damaged state.json is a warning too; the steps are still shown.
    writeFileSync(path.join(dir, 'state.json'), '{"done": [');
    const damaged = await readRunFolder(dir, 'runs/x');
    assert.match(damaged.warnings[0]!, /^runs\/x\/state\.json:1: not valid JSON/);
    assert.equal(damaged.metrics.stage1.length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the verdict quotes held-out replies before and after, and names each sign of collapse it sees', () => {
  const personas = ['i have a cat .', 'i ride a bike .', 'i bake bread .'];
  const record = (i: number, prediction: string, selected: number): PredictionRecord => ({
    id: `e${i}`,
    prediction,
    reference: 'x',
    personas,
    history: [`question ${i} ?`],
    selected,
  });
  const before = Array.from({ length: 20 }, (_, i) => record(i, `a varied reply number ${i} about my day and my town`, i % 3));
  const healthy = runVerdict(
    before,
    before.map((r, i) => ({ ...r, prediction: `my own answer ${i} with a cat and a bike`, selected: (i + 1) % 3 })),
  );
  assert.deepEqual(healthy.collapse, []);
  assert.equal(healthy.examples.length, 5);
  assert.deepEqual(healthy.examples[1], {
    prompt: 'question 4 ?',
    before: before[4]!.prediction,
    after: 'my own answer 4 with a cat and a bike',
    selected: 'i bake bread .',
  });
  // Collapsed: fact 2 every time, a loop, short, and all alike.
  const collapsed = runVerdict(
    before,
    before.map((r) => ({ ...r, prediction: 'noodle noodle noodle noodle', selected: 1 })),
  );
  assert.deepEqual(
    collapsed.collapse.map((c) => c.sign),
    ['same-fact', 'repeated-phrases', 'shorter', 'alike'],
  );
  assert.match(collapsed.collapse[0]!.message, /fact 2 in 100% of the turns/);
  assert.equal(repeatsAPhrase('i have a dog , but i have a dog'), true);
  assert.equal(repeatsAPhrase('i have a dog and a cat'), false);
});
