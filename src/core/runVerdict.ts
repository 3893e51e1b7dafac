/**
 * A run's verdict in words, from its held-out predictions before and after alignment: a few of the
 * writer's own prompts with both replies and the fact each selected, and the signs of a collapsed
 * model that a metric table hides (the same fact every time, replies that repeat a phrase, replies
 * much shorter than before or all alike). What the dashboard shows when a run has been evaluated.
 */
import type { PredictionRecord } from './metrics/evaluate';

export interface VerdictExample {
  readonly prompt: string;
  readonly before: string;
  readonly after: string;
  /** The persona sentence the aligned model selected, or null for none. */
  readonly selected: string | null;
}

export type CollapseSign = 'same-fact' | 'repeated-phrases' | 'shorter' | 'alike';

export interface Collapse {
  readonly sign: CollapseSign;
  readonly message: string;
}

export interface RunVerdict {
  readonly examples: readonly VerdictExample[];
  readonly collapse: readonly Collapse[];
}

/** How many examples the verdict quotes. */
export const VERDICT_EXAMPLES = 5;

const words = (text: string) => text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];

/** Whether a reply says some 3 words twice ("i have a dog , but i have a dog"). */
export function repeatsAPhrase(text: string): boolean {
  const w = words(text);
  const seen = new Set<string>();
  for (let i = 0; i + 2 < w.length; i++) {
    const g = `${w[i]} ${w[i + 1]} ${w[i + 2]}`;
    if (seen.has(g)) return true;
    seen.add(g);
  }
  return false;
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
const pct = (x: number) => `${Math.round(x * 100)}%`;

/** The verdict of `after` against `before` (the same examples, in order). */
export function runVerdict(before: readonly PredictionRecord[], after: readonly PredictionRecord[]): RunVerdict {
  const n = Math.min(before.length, after.length);
  // Spread over the set, not its first lines: every (n / 5)th example.
  const step = Math.max(1, Math.floor(n / VERDICT_EXAMPLES));
  const examples: VerdictExample[] = [];
  for (let i = 0; i < n && examples.length < VERDICT_EXAMPLES; i += step) {
    const a = after[i]!;
    const s = a.selected ?? -1;
    examples.push({ prompt: a.history?.at(-1) ?? '', before: before[i]!.prediction, after: a.prediction, selected: s >= 0 ? (a.personas?.[s] ?? null) : null });
  }
  const collapse: Collapse[] = [];
  if (n >= 5) {
    const named = after.slice(0, n).filter((r) => (r.selected ?? -1) >= 0);
    const byIndex = new Map<number, number>();
    for (const r of named) byIndex.set(r.selected!, (byIndex.get(r.selected!) ?? 0) + 1);
    const [topIndex, topCount] = [...byIndex.entries()].sort((x, y) => y[1] - x[1])[0] ?? [-1, 0];
    if (named.length >= 5 && topCount / named.length >= 0.8) {
      collapse.push({
        sign: 'same-fact',
        message: `The aligned model selects fact ${topIndex + 1} in ${pct(topCount / named.length)} of the turns where it names one, whatever is asked: the select task has collapsed onto one position.`,
      });
    }
    const repeatedAfter = after.slice(0, n).filter((r) => repeatsAPhrase(r.prediction)).length / n;
    const repeatedBefore = before.slice(0, n).filter((r) => repeatsAPhrase(r.prediction)).length / n;
    if (repeatedAfter >= 0.2 && repeatedAfter > repeatedBefore) {
      collapse.push({
        sign: 'repeated-phrases',
        message: `${pct(repeatedAfter)} of the aligned replies say some three words twice (before: ${pct(repeatedBefore)}): the model loops.`,
      });
    }
    const lengthAfter = mean(after.slice(0, n).map((r) => words(r.prediction).length));
    const lengthBefore = mean(before.slice(0, n).map((r) => words(r.prediction).length));
    if (lengthBefore > 0 && lengthAfter < 0.5 * lengthBefore) {
      collapse.push({
        sign: 'shorter',
        message: `The aligned replies are ${lengthAfter.toFixed(1)} words long on average, under half of before (${lengthBefore.toFixed(1)}): alignment taught the model to stop early.`,
      });
    }
    const distinct = new Set(after.slice(0, n).map((r) => words(r.prediction).join(' '))).size / n;
    const distinctBefore = new Set(before.slice(0, n).map((r) => words(r.prediction).join(' '))).size / n;
    if (distinct <= 0.5 && distinct < distinctBefore) {
      collapse.push({
        sign: 'alike',
        message: `Only ${pct(distinct)} of the aligned replies differ from each other (before: ${pct(distinctBefore)}): the model answers everything alike.`,
      });
    }
  }
  return { examples, collapse };
}
