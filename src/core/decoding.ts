/**
 * How the studio's interactive views decode (Try it, the generation panel's defaults): as a run's
 * evaluation does in the recipes, no 3-gram twice in a reply, and a repetition penalty (CTRL's 1.2),
 * so that a small model does not loop ("I have a dog , but I have a dog , …"). Only the reply
 * counts for both, never the prompt: a good reply echoes the persona's words.
 */
export const INTERACTIVE_DECODING = { repetitionPenalty: 1.2, noRepeatNgramSize: 3 } as const;
