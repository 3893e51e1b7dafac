// The entry of dist/transformers.js (see transformers.ts): transformers.js's Node build, bundled.
export * from '@huggingface/transformers';
