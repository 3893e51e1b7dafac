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

/**
 * How "Try it" in the persona editor answers (the setting palStudio.tryIt.decoding). 'beam' is the
 * demo's and the model card's decoding: beam search of width 3, and of the beam's replies the best
 * that uses the selected fact. On 150 one-turn ConvAI2 prompts with pal-smollm2-135m (2 CPU cores)
 * it used the selected fact in 0.71 of its replies against 0.41 greedily (recited word for word:
 * 0.55 against 0.25), in 2.2 s a reply against 1.0 s, and a reply arrives whole. 'streamed' is
 * greedy, streamed token by token. Both keep the interactive ban and penalty.
 */
export const TRY_IT_DECODING = {
  beam: { ...INTERACTIVE_DECODING, numBeams: 3, preferSelectedFact: true },
  streamed: { ...INTERACTIVE_DECODING },
} as const;
export type TryItDecoding = keyof typeof TRY_IT_DECODING;

/** How Try it's decoding reads in the view, after the model's name. */
export const TRY_IT_DECODING_LABELS: Readonly<Record<TryItDecoding, string>> = {
  beam: 'beam search of 3, a reply that uses the fact preferred',
  streamed: 'greedy, streamed',
};
