/**
 * Judging sampled responses: which sample is chosen and which rejected. One gesture decides both
 * when there are two finished samples: preferring one rejects the other, and rejecting one prefers
 * the other. With more samples each gesture marks one, and a sample is never both.
 */
export interface Judgement {
  readonly chosen?: number;
  readonly rejected?: number;
}

/** `finished[i]`: sample i has a complete response (only those can be judged). */
export function judge(current: Judgement, index: number, mark: 'chosen' | 'rejected', finished: readonly boolean[]): Judgement {
  if (!finished[index]) return current;
  const other = finished.length === 2 && finished[1 - index] ? 1 - index : undefined;
  const opposite = mark === 'chosen' ? 'rejected' : 'chosen';
  const keep = other ?? (current[opposite] === index ? undefined : current[opposite]);
  return { [mark]: index, ...(keep !== undefined ? { [opposite]: keep } : {}) };
}
