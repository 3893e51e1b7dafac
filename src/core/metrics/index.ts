/** PAL's evaluation metrics (docs/metrics.md): pure TypeScript, shared by the engine, the CLI and the studio. */
export * from './bleu';
export * from './bootstrap';
export * from './consistency';
export * from './diversity';
export * from './evaluate';
export * from './persona';
export * from './rouge';
export * from './selection';
export * from './tokenize';
