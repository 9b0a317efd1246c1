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
