/**
 * C.score, the persona consistency score of Madotto et al. 2019 ("Personalizing dialogue agents
 * via meta-learning", ACL): an NLI model reads each persona sentence p_j as the premise and the
 * response u as the hypothesis, and
 *
 *     NLI(p_j, u) = +1 entailment, 0 neutral, -1 contradiction
 *     C(u)        = Σ_j NLI(p_j, u)                 C.score     = mean of C(u) over responses
 *     Cmax(u)     = max_j NLI(p_j, u)               C.score max = mean of Cmax(u) over responses
 *
 * The sum is Madotto et al.'s definition; the max is what the official PAL code meant to compute
 * (it never ran). Both are reported, labelled. Responses without persona sentences are left out of
 * both means. The NLI model is injected (`classify`), so this module stays pure and testable with
 * a fake; the engine supplies a transformers.js model. There is no fallback: without a model,
 * C.score is not computed.
 */

export const NLI_LABELS = ['entailment', 'neutral', 'contradiction'] as const;
export type NliLabel = (typeof NLI_LABELS)[number];
export type NliClassify = (premise: string, hypothesis: string) => Promise<NliLabel>;

export const NLI_SCORE: Readonly<Record<NliLabel, number>> = { entailment: 1, neutral: 0, contradiction: -1 };

export interface ConsistencyExample {
  response: string;
  personas: readonly string[];
}

export interface ExampleConsistency {
  /** One label per persona sentence, in order. */
  labels: NliLabel[];
  /** C(u): the sum of the labels' scores. */
  sum: number;
  /** Cmax(u): the largest of the labels' scores. */
  max: number;
}

export interface ConsistencyResult {
  /** Mean of C(u) (Madotto et al.), or null when no response has a persona. */
  cScore: number | null;
  /** Mean of Cmax(u) (the PAL code's variant), or null likewise. */
  cScoreMax: number | null;
  /** Responses that entered the means. */
  count: number;
  /** Per example, in input order; null for an example without persona sentences. */
  examples: (ExampleConsistency | null)[];
}

export interface ConsistencyOptions {
  /** Classifier calls in flight at once (default 32), so a batching classifier can fill batches. */
  concurrency?: number;
}

export async function consistencyScores(
  examples: readonly ConsistencyExample[],
  classify: NliClassify,
  options: ConsistencyOptions = {},
): Promise<ConsistencyResult> {
  const jobs: { example: number; sentence: number }[] = [];
  const labels: NliLabel[][] = examples.map((e, i) => {
    e.personas.forEach((_, j) => jobs.push({ example: i, sentence: j }));
    return new Array<NliLabel>(e.personas.length);
  });
  const concurrency = Math.max(1, options.concurrency ?? 32);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const { example, sentence } = jobs[next++]!;
      const e = examples[example]!;
      const label = await classify(e.personas[sentence]!, e.response);
      if (!(NLI_LABELS as readonly string[]).includes(label)) {
        throw new Error(`The NLI classifier returned "${String(label)}"; expected entailment, neutral or contradiction.`);
      }
      labels[example]![sentence] = label;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));

  let sum = 0;
  let sumMax = 0;
  let count = 0;
  const perExample = labels.map((ls): ExampleConsistency | null => {
    if (ls.length === 0) return null;
    let s = 0;
    let m = -Infinity;
    for (const l of ls) {
      s += NLI_SCORE[l];
      m = Math.max(m, NLI_SCORE[l]);
    }
    sum += s;
    sumMax += m;
    count++;
    return { labels: ls, sum: s, max: m };
  });
  return { cScore: count ? sum / count : null, cScoreMax: count ? sumMax / count : null, count, examples: perExample };
}
