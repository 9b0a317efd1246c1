import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { nixIndentedString, nixString, shQuote, sshdQuote } from '../../src/util/quote.js';

const NASTY = [
  '',
  'plain',
  'with space',
  "it's",
  '$(touch /tmp/owned)',
  '`id`',
  '${HOME} $$ $x \\ "q"',
  'new\nline',
  "''${x}'' '''",
  'tab\there',
  '-n',
  '*',
  'é ü 💚',
];

describe('shQuote', () => {
  it('keeps plain words bare and quotes the rest', () => {
    expect(shQuote('router')).toBe('router');
    expect(shQuote('/home/chroot')).toBe('/home/chroot');
    expect(shQuote('with space')).toBe("'with space'");
    expect(shQuote("it's")).toBe("'it'\\''s'");
    expect(shQuote('')).toBe("''");
    expect(shQuote('a$(b)`c` "\\')).toBe('"a\\$(b)\\`c\\` \\"\\\\"');
  });

  it.each(NASTY)('sh reads %j back unchanged and runs nothing', (value) => {
    const printed = execFileSync('sh', ['-c', `printf '%s' ${shQuote(value)}`], { encoding: 'utf8' });
    expect(printed).toBe(value);
  });

  it('refuses NUL', () => {
    expect(() => shQuote('a\0b')).toThrow('NUL');
  });
});

describe('nixString and nixIndentedString', () => {
  it('escapes what Nix would interpret', () => {
    expect(nixString('a"b')).toBe('"a\\"b"');
    expect(nixString('${x}')).toBe('"\\${x}"');
    expect(nixString('a\nb')).toBe('"a\\nb"');
  });

  it('writes readable multi-line text as an indented string', () => {
    expect(nixIndentedString('Match all\n\tX yes\n', '  ')).toBe("''\n    Match all\n    \tX yes\n  ''");
  });

  it('falls back to a plain string where an indented one cannot be faithful', () => {
    expect(nixIndentedString('no final newline')).toBe('"no final newline"');
    expect(nixIndentedString(' all\n indented\n')).toBe('" all\\n indented\\n"');
  });

  it('Nix evaluates every quoted value back to itself', () => {
    const values = [...NASTY, 'line one\n  ${x}\n\n$${y}\n', "ends with quote'\n", ' spaced\n  more\n', 'a\r\nb\n'];
    const expression = `[ ${values.map((v) => `${nixString(v)} ${nixIndentedString(v, '  ')}`).join('\n')} ]`;
    const evaluated = JSON.parse(execFileSync('nix-instantiate', ['--eval', '--strict', '--json', '-E', expression], { encoding: 'utf8' })) as string[];
    expect(evaluated).toEqual(values.flatMap((v) => [v, v]));
  });
});

describe('sshdQuote', () => {
  it('quotes spaces, doubles % where tokens expand, refuses the unspellable', () => {
    expect(sshdQuote('/srv/chroot')).toBe('/srv/chroot');
    expect(sshdQuote('/srv/my chroot')).toBe('"/srv/my chroot"');
    expect(sshdQuote('/srv/100%', { expandsTokens: true })).toBe('/srv/100%%');
    for (const bad of ['a"b', 'a\\b', 'a\nb', '']) expect(() => sshdQuote(bad)).toThrow('sshd_config');
  });
});
