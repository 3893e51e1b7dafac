/**
 * Where a no-repeat n-gram ban takes its n-grams from: the reply alone (Hugging Face's rule on the
 * reply), the partner's turns too (no parroting), or the whole prompt (Hugging Face's generate on
 * a decoder-only model, whose sequence is the prompt and the reply).
 */
export const NO_REPEAT_SOURCES = ['reply', 'partner', 'prompt'] as const;
export type NoRepeatSource = (typeof NO_REPEAT_SOURCES)[number];

/**
 * How the studio's interactive views decode (Try it, the generation panel, the demo's sample run):
 * no 3-gram twice in a reply and a repetition penalty (CTRL's 1.2), so that a small model does not
 * loop ("I have a dog , but I have a dog , …"), and no 3 tokens running from the partner's turns,
 * so that it does not parrot what it answers (the model card measures it). The facts and the
 * persona's own turns stay free to say: a good reply echoes the persona's words.
 */
export const INTERACTIVE_DECODING = { repetitionPenalty: 1.2, noRepeatNgramSize: 3, noRepeatNgramFrom: 'partner' } as const satisfies {
  repetitionPenalty: number;
  noRepeatNgramSize: number;
  noRepeatNgramFrom: NoRepeatSource;
};
