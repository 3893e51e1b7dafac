/** Sizes in words people read: 1024-based, one decimal ("8.2 MiB"). Used by the CLI, the engine and the webviews. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/**
 * A change between two scores as the tables show it (the dashboard's and report.html's): four
 * places, or a whole number for counts. A change too small to show is no change: 0, written
 * "0.0000" with no sign (it was "+0.0000", in green on the dashboard).
 */
export function shownChange(delta: number, whole = false): number {
  return !whole && Math.abs(delta) < 0.00005 ? 0 : delta;
}

/** `shownChange` as text: "+0.0123", "-0.0456", "0.0000"; counts "+3", "0". */
export function formatChange(delta: number, whole = false): string {
  const d = shownChange(delta, whole);
  const text = whole ? String(d) : d.toFixed(4);
  return d > 0 ? `+${text}` : text;
}
