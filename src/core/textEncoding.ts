/**
 * Writers' files are UTF-8. A file in another encoding is refused with where and what to do,
 * never decoded into U+FFFD replacement characters that a later save would write back: that
 * would lose what the writer wrote. A UTF-8 byte-order mark is dropped.
 */

export class TextEncodingError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    /** What is wrong and what to do, without the place. */
    readonly detail: string,
  ) {
    super(`${file}:${line}:${column}: error: ${detail}`);
  }
}

/** The file's text, or a TextEncodingError naming the file, the line and column, and the fix. */
export function decodeUtf8(bytes: Uint8Array, file: string): string {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new TextEncodingError(
      file,
      1,
      1,
      `this file is UTF-16 (${bytes[0] === 0xff ? 'little' : 'big'}-endian): PAL Studio reads UTF-8. Save it as UTF-8 (in VS Code: the encoding in the status bar, then "Save with Encoding").`,
    );
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    // Where the first byte that is not UTF-8 lies: whole characters up to it.
    let good = 0;
    for (let n = sequenceLength(bytes, 0); good < bytes.length && n > 0; n = sequenceLength(bytes, good)) good += n;
    const prefix = new TextDecoder('utf-8').decode(bytes.subarray(0, good));
    const lines = prefix.split('\n');
    const line = lines.length;
    const column = [...lines.at(-1)!].length + 1;
    const byte = bytes[good]!.toString(16).toUpperCase().padStart(2, '0');
    throw new TextEncodingError(
      file,
      line,
      column,
      `byte 0x${byte} is not UTF-8; the file looks like Latin-1 or Windows-1252. Save it as UTF-8 (in VS Code: "Reopen with Encoding", then "Save with Encoding", UTF-8); nothing was read from it.`,
    );
  }
}

/** The length of the well-formed UTF-8 sequence at `i`, or 0 when it is not one. */
function sequenceLength(b: Uint8Array, i: number): number {
  const c = b[i]!;
  const cont = (k: number) => i + k < b.length && (b[i + k]! & 0xc0) === 0x80;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) return cont(1) && cont(2) && !(c === 0xe0 && b[i + 1]! < 0xa0) && !(c === 0xed && b[i + 1]! > 0x9f) ? 3 : 0;
  if (c >= 0xf0 && c <= 0xf4) return cont(1) && cont(2) && cont(3) && !(c === 0xf0 && b[i + 1]! < 0x90) && !(c === 0xf4 && b[i + 1]! > 0x8f) ? 4 : 0;
  return 0;
}
