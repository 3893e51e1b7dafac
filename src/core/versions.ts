/**
 * Version numbers as Python packages and Node report them ("1.13.0a0+gitunknown", "2.11.0+cu130",
 * "v20.20.2"), reduced to what the engine compares: the leading release numbers. Local labels and
 * pre-release tags are ignored on purpose: Debian's "1.13.0a0+git…" build is the 1.13 release.
 */
export interface Release {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

const RELEASE = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/;

export function parseRelease(version: string): Release | undefined {
  const m = RELEASE.exec(version.trim());
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2] ?? 0), patch: Number(m[3] ?? 0) };
}

/** Negative when a < b, zero when equal, positive when a > b. */
export function compareReleases(a: Release, b: Release): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

/** True when `version` parses and is at least `minimum`; an unparseable version never satisfies. */
export function isAtLeast(version: string, minimum: string): boolean {
  const v = parseRelease(version);
  const min = parseRelease(minimum);
  if (!v || !min) return false;
  return compareReleases(v, min) >= 0;
}
