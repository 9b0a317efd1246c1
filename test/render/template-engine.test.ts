/**
 * bento's private Handlebars instance (src/render/template-engine.ts): the
 * load-time check that every printed value goes through a quoting helper,
 * strict fields, no HTML escaping, and the helpers' own refusals.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkTemplate, createTemplateEngine, GENERATED_HEADER } from '../../src/render/template-engine.js';

describe('template checks', () => {
  it.each([
    ['{{name}}', 'prints a value without quoting'],
    ['{{{name}}}', 'prints a raw value'],
    ['{{#each xs}}{{this}}{{/each}}', 'prints a value without quoting'],
    ['{{#with x}}{{/with}}', 'unknown block helper #with'],
    ['{{sh}}', 'prints a value without quoting'],
  ])('refuses %s', (source, message) => {
    expect(() => checkTemplate(source, 't.hbs')).toThrow(message);
  });

  it('accepts quoted output', () => {
    expect(() => checkTemplate('{{sh a}} {{nix b}} {{#if c}}{{int d}}{{/if}} {{> p}}', 't.hbs')).not.toThrow();
  });

  it('fails on a missing field instead of printing a blank (strict)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-tpl-'));
    try {
      mkdirSync(path.join(dir, 'x'));
      writeFileSync(path.join(dir, 'x', 'a.sh.hbs'), 'A={{sh missing}}\n');
      const engine = createTemplateEngine(dir);
      // Handlebars' strict mode does not cover helper arguments; the helpers refuse undefined themselves.
      expect(() => engine.render('x/a.sh', {})).toThrow('sh: expected a string, got undefined');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** An engine over `templates` (name -> source), written to a directory of its own. */
function engineOf(templates: Record<string, string>): ReturnType<typeof createTemplateEngine> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-tpl-'));
  try {
    for (const [name, source] of Object.entries(templates)) {
      mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      writeFileSync(path.join(dir, `${name}.hbs`), source);
    }
    return createTemplateEngine(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the engine', () => {
  it('names the template and line of an unquoted value when it loads', () => {
    expect(() => engineOf({ 'x/a.sh': 'A={{sh a}}\nB={{b}}\n' })).toThrow('x/a.sh.hbs:2: {{b}} prints a value without quoting');
  });

  it('escapes nothing for HTML: each helper quotes for its own language only', () => {
    const engine = engineOf({ 'x/a.sh': 'A={{sh a}}\n', 'x/b.nix': 'b = {{nix a}};\n' });
    expect(engine.render('x/a.sh', { a: "<&> it's" })).toBe("A='<&> it'\\''s'\n");
    expect(engine.render('x/b.nix', { a: '<&> ${x}' })).toBe('b = "<&> \\${x}";\n');
  });

  it('registers partials under their name without the language suffix', () => {
    const engine = engineOf({ 'partials/settings.sh': 'S={{sh s}}\n', 'x/a.sh': '{{> settings}}end\n' });
    expect(engine.render('x/a.sh', { s: 'a b' })).toBe("S='a b'\nend\n");
    expect(() => engine.render('partials/settings.sh', { s: 'v' })).toThrow('no template named partials/settings.sh');
  });

  it('prints the generated header after the comment prefix it is given', () => {
    expect(engineOf({ 'x/a.sh': '{{header "#"}}\n' }).render('x/a.sh', {})).toBe(`# ${GENERATED_HEADER}\n`);
  });

  it('refuses what its helpers cannot print safely', () => {
    const engine = engineOf({ 'x/i': '{{int n}}', 'x/h': '{{heredoc body "EOF"}}' });
    expect(engine.render('x/i', { n: 42 })).toBe('42');
    expect(() => engine.render('x/i', { n: 4.5 })).toThrow('int: expected an integer, got 4.5');
    expect(() => engine.render('x/i', { n: '42' })).toThrow('int: expected an integer, got "42"');
    expect(engine.render('x/h', { body: 'line\n' })).toBe('line');
    expect(() => engine.render('x/h', { body: 'a\nEOF\nb' })).toThrow('heredoc: the text contains its delimiter line EOF');
  });
});
