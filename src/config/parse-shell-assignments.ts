/**
 * Parses config.sh as data. The file has shell syntax but is never executed:
 * only plain `KEY=VALUE` assignments (optionally `export`ed) with unquoted,
 * 'single' or "double" quoted values, comments and blank lines are accepted.
 * Anything that the shell would expand or run (substitutions, backticks,
 * separators, pipes, redirections, globs at word start, unquoted spaces) is
 * refused with the line number, so what bento reads is exactly what the user
 * wrote.
 */

export interface Assignment {
  key: string;
  value: string;
  line: number;
}

export class ConfigSyntaxError extends Error {
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(reason);
    this.name = 'ConfigSyntaxError';
  }
}

const KEY = /^[A-Za-z_][A-Za-z0-9_]*/;
const OPERATORS = new Set([';', '|', '&', '<', '>', '(', ')']);

/** Parses the whole file; throws ConfigSyntaxError at the first bad line. */
export function parseShellAssignments(text: string): Assignment[] {
  const assignments: Assignment[] = [];
  const lines = text.split('\n');
  lines.forEach((rawLine, index) => {
    const lineNumber = index + 1;
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    const parsed = parseLine(line, lineNumber);
    if (parsed) assignments.push(parsed);
  });
  return assignments;
}

function parseLine(line: string, lineNumber: number): Assignment | undefined {
  const fail = (reason: string): never => {
    throw new ConfigSyntaxError(lineNumber, reason);
  };
  let rest = line.replace(/^[ \t]+/, '');
  if (rest === '' || rest.startsWith('#')) return undefined;

  if (/^export[ \t]/.test(rest)) rest = rest.slice('export'.length).replace(/^[ \t]+/, '');
  const keyMatch = KEY.exec(rest);
  if (!keyMatch) return fail(`not a KEY=VALUE assignment: ${describe(line)}`);
  const key = keyMatch[0];
  rest = rest.slice(key.length);
  if (/^[ \t]*=/.test(rest) && !rest.startsWith('=')) {
    return fail(`no spaces are allowed before '=' (write ${key}=value)`);
  }
  if (!rest.startsWith('=')) return fail(`not a KEY=VALUE assignment: ${describe(line)}`);
  rest = rest.slice(1);

  const { value, end } = readWord(rest, key, fail);
  const trailing = rest.slice(end);
  if (trailing !== '' && !/^[ \t]+(#.*)?$/.test(trailing)) {
    const next = trailing.trim();
    if (OPERATORS.has(next[0] ?? '')) {
      return fail(`'${next[0]}' is not allowed: config.sh is parsed, not executed`);
    }
    return fail(`unquoted space in the value of ${key} (quote it: ${key}="${value} ${next.split(/[ \t]/)[0]}")`);
  }
  return { key, value, line: lineNumber };
}

/** Reads one shell word starting at text[0]; returns its value and where it ended. */
function readWord(
  text: string,
  key: string,
  fail: (reason: string) => never,
): { value: string; end: number } {
  let value = '';
  let i = 0;
  if (text.startsWith('~')) fail(`'~' expansion is not supported in ${key}: write the full path`);
  while (i < text.length) {
    const c = text[i] as string;
    if (c === ' ' || c === '\t') break;
    if (c === "'") {
      const close = text.indexOf("'", i + 1);
      if (close < 0) fail(`unterminated single quote in the value of ${key} (values cannot span lines)`);
      value += text.slice(i + 1, close);
      i = close + 1;
    } else if (c === '"') {
      i += 1;
      let closed = false;
      while (i < text.length) {
        const d = text[i] as string;
        if (d === '"') {
          closed = true;
          i += 1;
          break;
        }
        if (d === '$' || d === '`') fail(expansionMessage(d, key));
        if (d === '\\') {
          const next = text[i + 1];
          if (next === undefined) fail(`a value cannot continue on the next line (${key})`);
          if (next === '$' || next === '`' || next === '"' || next === '\\') {
            value += next;
          } else {
            value += d + next;
          }
          i += 2;
          continue;
        }
        value += d;
        i += 1;
      }
      if (!closed) fail(`unterminated double quote in the value of ${key} (values cannot span lines)`);
    } else if (c === '$' || c === '`') {
      fail(expansionMessage(c, key));
    } else if (OPERATORS.has(c)) {
      fail(`'${c}' is not allowed in the value of ${key}: config.sh is parsed, not executed (quote the value if it is literal)`);
    } else if (c === '\\') {
      const next = text[i + 1];
      if (next === undefined) fail(`a value cannot continue on the next line (${key})`);
      value += next;
      i += 2;
    } else {
      value += c;
      i += 1;
    }
  }
  return { value, end: i };
}

function expansionMessage(c: string, key: string): string {
  const what = c === '`' ? 'command substitution (backticks)' : 'variable or command substitution ($)';
  return `${what} is not allowed in the value of ${key}: config.sh is parsed, not executed (use single quotes for a literal value)`;
}

function describe(line: string): string {
  const trimmed = line.trim();
  const shown = trimmed.length > 60 ? `${trimmed.slice(0, 57)}...` : trimmed;
  return JSON.stringify(shown);
}
