/**
 * Plain-language hints for a training run that is going wrong, from its metric records (see
 * runHistory.ts). Each hint says what the numbers show, what it usually means, and what to try.
 * The rules read only the last `window` steps (and a few early ones), so they stay cheap on long
 * runs and follow the run as it recovers.
 */
import { type MetricRecord } from './runHistory';
import { STAGE_NAMES, type TrainingStage } from './runFolder';

export type HintId =
  'loss-not-finite' | 'grad-norm-exploding' | 'loss-not-moving' | 'rewards-both-falling' | 'accuracy-stuck-at-1' | 'accuracy-stuck-at-0' | 'margins-blowing-up';

export interface Hint {
  readonly id: HintId;
  readonly stage: TrainingStage;
  readonly severity: 'error' | 'warning';
  /** The step at which the rule saw it. */
  readonly step: number;
  readonly message: string;
  readonly tryThis: string;
}

export interface HintOptions {
  /** How many recent steps a trend or a stuck value must hold for. */
  readonly window?: number;
  /** A grad norm this many times its usual (median) size is an explosion. */
  readonly gradNormFactor?: number;
  /** A mean reward margin above this is blowing up (DPO's beta-scaled log-ratio gap). */
  readonly marginLimit?: number;
}

function values(records: readonly MetricRecord[], key: string): { step: number; value: number }[] {
  return records.filter((r) => key in r).map((r) => ({ step: r.step, value: r[key]! }));
}

/** Least-squares slope of value over step. */
function slope(points: readonly { step: number; value: number }[]): number {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.step, 0) / n;
  const my = points.reduce((a, p) => a + p.value, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.step - mx) * (p.value - my);
    den += (p.step - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const mean = (xs: readonly number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (x: number) => (Math.abs(x) >= 100 || (Math.abs(x) < 0.01 && x !== 0) ? x.toExponential(2) : x.toFixed(3));

/** Hints for one training stage's records (in step order). */
export function stageHints(stage: TrainingStage, records: readonly MetricRecord[], options: HintOptions = {}): Hint[] {
  const window = options.window ?? 20;
  const hints: Hint[] = [];
  const add = (id: HintId, severity: Hint['severity'], step: number, message: string, tryThis: string) =>
    hints.push({ id, stage, severity, step, message, tryThis });
  const where = STAGE_NAMES[stage].short;

  // A NaN or infinite loss poisons every weight after it; the first one is what matters.
  const badLoss = records.find((r) => 'loss' in r && !Number.isFinite(r.loss!));
  if (badLoss) {
    add(
      'loss-not-finite',
      'error',
      badLoss.step,
      `The loss of ${where} became ${String(badLoss.loss)} at step ${badLoss.step}: training diverged, and the weights after that step are not usable.`,
      'Lower the learning rate, keep grad_clip on (1.0), train in fp32 or bf16 rather than fp16, then start the run again from a clean run folder (or one whose last checkpoint is before the divergence).',
    );
  }

  const grad = values(records, 'grad_norm');
  if (grad.length > window) {
    const usual = median(
      grad
        .slice(0, -window)
        .map((p) => p.value)
        .filter(Number.isFinite),
    );
    const worst = grad.slice(-window).reduce((a, p) => (!Number.isFinite(p.value) || p.value > a.value ? p : a));
    if (!Number.isFinite(worst.value) || (usual > 0 && worst.value > (options.gradNormFactor ?? 10) * usual)) {
      add(
        'grad-norm-exploding',
        'warning',
        worst.step,
        `The gradient norm of ${where} jumped to ${fmt(worst.value)} at step ${worst.step}, against a usual ${fmt(usual)}: the updates are unstable.`,
        'Lower the learning rate or lengthen warmup_steps; keep grad_clip at 1.0 so one bad batch cannot throw the weights off; look for unusually long or broken examples in the data.',
      );
    }
  }

  const loss = values(records, 'loss').filter((p) => Number.isFinite(p.value));
  if (!badLoss && loss.length >= 2 * window) {
    const first = mean(loss.slice(0, window).map((p) => p.value));
    const last = mean(loss.slice(-window).map((p) => p.value));
    if (Math.abs(last - first) <= 0.01 * Math.max(Math.abs(first), 1e-8)) {
      add(
        'loss-not-moving',
        'warning',
        loss.at(-1)!.step,
        `The loss of ${where} has stayed at about ${fmt(last)} since the start: the model is not learning.`,
        'Check the learning rate and its schedule (lr, warmup_steps, schedule), and, with LoRA, that its target modules exist in this model; check that the training data is not empty or cut down to nothing by max_length.',
      );
    }
  }

  if (stage === 'stage2') hints.push(...dpoHints(records, window, options.marginLimit ?? 10));
  return hints;
}

function dpoHints(records: readonly MetricRecord[], window: number, marginLimit: number): Hint[] {
  const hints: Hint[] = [];
  const add = (id: HintId, step: number, message: string, tryThis: string) => hints.push({ id, stage: 'stage2', severity: 'warning', step, message, tryThis });

  const chosen = values(records, 'rewards/chosen').slice(-window);
  const rejected = values(records, 'rewards/rejected').slice(-window);
  if (
    chosen.length === window &&
    rejected.length === window &&
    chosen.every((p) => Number.isFinite(p.value)) &&
    rejected.every((p) => Number.isFinite(p.value))
  ) {
    const span = chosen.at(-1)!.step - chosen[0]!.step;
    const fall = (ps: typeof chosen) => slope(ps) * span;
    // Both fell over the window, by more than noise: the gap grows only because rejected falls faster.
    if (fall(chosen) < -0.01 && fall(rejected) < -0.01 && chosen.at(-1)!.value < 0) {
      add(
        'rewards-both-falling',
        chosen.at(-1)!.step,
        `Over the last ${window} steps the rewards of both the chosen and the rejected responses have been falling (chosen ${fmt(chosen.at(-1)!.value)}, rejected ${fmt(rejected.at(-1)!.value)}). DPO widens the gap by making the chosen responses less likely too: the model is drifting away from the stage-1 model, and its replies can turn odd or short.`,
        'Lower stage2.lr or the number of epochs, raise stage2.beta (for example 0.1 to 0.3) to keep the model closer to stage 1, or try loss: ipo; check that the chosen responses sound like what stage 1 learnt.',
      );
    }
  }

  const accuracy = values(records, 'rewards/accuracies');
  const last = accuracy.slice(-window);
  if (last.length === window) {
    // Step 1 always scores 0 (the model is still the reference), so early runs of 1 start from step 2.
    let streakOfOnes = 0;
    while (streakOfOnes + 1 < accuracy.length && accuracy[streakOfOnes + 1]!.value === 1) streakOfOnes++;
    if (streakOfOnes >= window) {
      add(
        'accuracy-stuck-at-1',
        accuracy[streakOfOnes]!.step,
        `The reward accuracy of stage 2 has been 1 since step ${accuracy[1]!.step}: every pair was ranked right almost at once. The pairs are too easy (the rejected responses are plainly worse), or the chosen responses were already in stage 1's training data; either way DPO learns little from them.`,
        'Use harder rejected responses (near misses that break the persona subtly rather than nonsense), and make sure the annotated pairs are not copies of stage-1 training examples.',
      );
    } else if (last.every((p) => p.value === 0)) {
      const margins = values(records, 'rewards/margins')
        .slice(-window)
        .map((p) => p.value);
      if (margins.length && mean(margins) < 0) {
        add(
          'accuracy-stuck-at-0',
          last.at(-1)!.step,
          `The reward accuracy of stage 2 has been 0 for the last ${window} steps, with the margin below zero (${fmt(margins.at(-1)!)}): the model is learning to prefer the rejected responses. Something is inverted.`,
          'Open the run\'s stage2.pairs.jsonl and a few annotated pairs: "chosen" must be the in-persona response and "rejected" the one to avoid; check the pairs\' status fields after annotation.',
        );
      }
    }
  }

  const margins = values(records, 'rewards/margins');
  const latest = margins.at(-1);
  if (latest && (latest.value > marginLimit || latest.value === Number.POSITIVE_INFINITY)) {
    add(
      'margins-blowing-up',
      latest.step,
      `The reward margin of stage 2 has grown to ${fmt(latest.value)}: the model separates the training pairs far more than it needs to, which usually means it is over-fitting them and drifting from stage 1.`,
      'Train fewer epochs or with a lower stage2.lr, raise stage2.beta, or use label_smoothing (0.1) or loss: ipo, which stop pushing once a pair is ranked right.',
    );
  }
  return hints;
}

/** Hints for a run: stage 1's, then stage 2's. */
export function runHints(metrics: { readonly stage1: readonly MetricRecord[]; readonly stage2: readonly MetricRecord[] }, options: HintOptions = {}): Hint[] {
  return [...stageHints('stage1', metrics.stage1, options), ...stageHints('stage2', metrics.stage2, options)];
}
