/**
 * Names under CHROOT_DIR are chosen by the clients (each machine writes its
 * own logs/), so they are untrusted text. Anything that could move the cursor,
 * recolour or retitle the terminal, or reorder text is shown as a visible
 * escape instead of being written raw.
 */

/**
 * C0 and C1 controls, DEL, and the Unicode format characters that change how
 * text is displayed (bidi overrides and isolates, zero-width joiners, BOM,
 * line and paragraph separators).
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/gu;

/** Replaces every unsafe character of `text` by `\xNN` or `\u{NNNN}`. */
export function sanitize(text: string): string {
  return text.replace(UNSAFE, (char) => {
    const code = char.codePointAt(0) ?? 0;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

/** True when `text` holds no character that sanitize would replace. */
export function isSafeText(text: string): boolean {
  return sanitize(text) === text;
}

/**
 * The same idea for the server's shell scripts, which handle names as bytes:
 * a GNU sed script that writes every byte outside printable ASCII (0x20 to
 * 0x7e), and the backslash, as `\xNN`. Run with `LC_ALL=C` (bytes, not
 * characters) and `-z` (records end with NUL, so a newline in a name is a
 * byte like the others). The backslash goes first: the escapes made after it
 * must stay as they are.
 */
export function sedByteEscapes(): string {
  const commands = ['s/\\\\/\\\\x5c/g'];
  for (let byte = 1; byte <= 0xff; byte++) {
    if (byte >= 0x20 && byte <= 0x7e) continue;
    const hex = byte.toString(16).padStart(2, '0');
    commands.push(`s/\\x${hex}/\\\\x${hex}/g`);
  }
  return commands.join('\n');
}
