/**
 * Quoting helpers, one per target language. Every value that reaches a
 * generated file goes through one of these: a value is data, never code, in
 * whatever file it lands.
 */

function refuseNul(value: string, language: string): void {
  if (value.includes('\0')) throw new Error(`a NUL character cannot be represented in ${language}: ${JSON.stringify(value)}`);
}

/**
 * A POSIX sh word that expands to exactly `value`. Plain words stay bare for
 * readability; anything else is single-quoted (inside single quotes nothing is
 * special except the quote itself, closed and re-opened around `\'`), or
 * double-quoted with `\ " $ \`` escaped when it holds `$` or a backtick.
 */
export function shQuote(value: string): string {
  refuseNul(value, 'a shell word');
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  // With $ or ` inside, double quotes with those escaped read the same and do
  // not look like a forgotten expansion to shellcheck (SC2016).
  if (/[$`]/.test(value)) return `"${value.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A Nix double-quoted string literal whose value is exactly `value`. */
export function nixString(value: string): string {
  refuseNul(value, 'a Nix string');
  const escaped = value.replace(/[\\"$\n\r\t]/g, (c) => {
    switch (c) {
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      default:
        return `\\${c}`;
    }
  });
  return `"${escaped}"`;
}

/**
 * One sshd_config argument. sshd splits arguments on white space and honours
 * double quotes; `%` starts a token in the directives that expand them, so it
 * is doubled. Quotes, backslashes and control characters have no safe
 * spelling there and are refused.
 */
export function sshdQuote(value: string, options: { expandsTokens?: boolean } = {}): string {
  if (value === '' || /["\\\x00-\x1f\x7f]/.test(value)) {
    throw new Error(`cannot be written as an sshd_config argument: ${JSON.stringify(value)}`);
  }
  const text = options.expandsTokens ? value.replace(/%/g, '%%') : value;
  return /[\s#']/.test(text) ? `"${text}"` : text;
}

/**
 * A Nix indented string ('' … '') holding exactly `value`, one line per line,
 * for multi-line text people will read (sshd snippets, scripts). `indent` is
 * the indentation of the line the string starts on. Text this form cannot
 * hold faithfully (no final newline, carriage returns, whitespace-only lines,
 * every line indented) falls back to a double-quoted string.
 */
export function nixIndentedString(value: string, indent = ''): string {
  refuseNul(value, 'a Nix string');
  const lines = value.endsWith('\n') ? value.slice(0, -1).split('\n') : undefined;
  const faithful =
    lines !== undefined &&
    !value.includes('\r') &&
    lines.every((line) => line === '' || line.trim() !== '') &&
    lines.some((line) => line !== '' && !line.startsWith(' '));
  if (!faithful) return nixString(value);
  const body = lines
    .map((line) => (line === '' ? '' : `${indent}  ${line.replace(/''/g, "'''").replace(/\$\{/g, "''${")}`))
    .join('\n');
  return `''\n${body}\n${indent}''`;
}
