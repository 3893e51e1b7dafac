/**
 * How the studio's interactive views decode (Try it, the generation panel's defaults): as a run's
 * evaluation does in the recipes, no 3-gram twice in a reply, and a repetition penalty (CTRL's 1.2),
 * so that a small model does not loop ("I have a dog , but I have a dog , …"). Only the reply
 * counts for both, never the prompt: a good reply echoes the persona's words.
 */
export const INTERACTIVE_DECODING = { repetitionPenalty: 1.2, noRepeatNgramSize: 3 } as const;

/**
 * Where a no-repeat n-gram ban takes its n-grams from: the reply alone (Hugging Face's rule on the
 * reply), the dialogue's turns too (no parroting), or the whole prompt (Hugging Face's generate on
 * a decoder-only model, whose sequence is the prompt and the reply).
 */
export const NO_REPEAT_SOURCES = ['reply', 'dialogue', 'prompt'] as const;
export type NoRepeatSource = (typeof NO_REPEAT_SOURCES)[number];
