// Injected by scripts/build.mjs from package.json, so that every bundle reports the version it was
// built as without carrying package.json along.
declare const __PAL_STUDIO_VERSION__: string | undefined;

export const PAL_STUDIO_VERSION: string = typeof __PAL_STUDIO_VERSION__ === 'string' ? __PAL_STUDIO_VERSION__ : '0.0.0-dev';
