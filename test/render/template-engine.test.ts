/**
 * bento's private Handlebars instance (src/render/template-engine.ts): the
 * load-time check that every printed value goes through a quoting helper,
 * strict fields, no HTML escaping, and the helpers' own refusals.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TEMPLATES_DIR } from '../../src/paths.js';
import { renderClientFiles, renderServerFiles, renderSystemFiles } from '../../src/render/render-fleet.js';
import { checkTemplate, createTemplateEngine, GENERATED_HEADER, precompileTemplates, type TemplateEngine } from '../../src/render/template-engine.js';
import { configWith } from '../helpers/render.js';

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

describe('precompiled templates (the build compiles templates/ ahead of time)', () => {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'bento-tpl-pre-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  /** A templates directory of `templates` (name -> source), its precompiled module beside it. */
  function precompiledOf(label: string, templates: Record<string, string>): { dir: string; file: string } {
    const dir = path.join(scratch, label, 'templates');
    for (const [name, source] of Object.entries(templates)) {
      mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      writeFileSync(path.join(dir, `${name}.hbs`), source);
    }
    const file = path.join(scratch, label, 'templates.precompiled.cjs');
    writeFileSync(file, precompileTemplates(dir));
    return { dir, file };
  }

  const templates = {
    'partials/settings.sh': 'S={{sh s}}\n{{#each xs}}X={{sh this}}{{#unless @last}},{{/unless}}\n{{/each}}',
    'x/a.sh': '{{header "#"}}\n{{> settings}}{{#if n}}N={{int n}}{{else}}none{{/if}}\n',
    'x/b.nix': '{ b = {{nix s}}; c = {{nixLines s "  "}}; }\n',
  };

  it('are the same text from the same sources', () => {
    const { dir, file } = precompiledOf('same', templates);
    expect(precompileTemplates(dir)).toBe(readFileSync(file, 'utf8'));
  });

  it('render exactly what the templates compiled from their sources render, errors included', () => {
    const { dir, file } = precompiledOf('render', templates);
    const precompiled = createTemplateEngine(dir, file);
    const compiled = createTemplateEngine(dir, path.join(scratch, 'none.cjs'));
    expect([precompiled.precompiled, compiled.precompiled]).toEqual([true, false]);
    for (const context of [
      { s: "a b'c", xs: ['1', '2 3'], n: 4 },
      { s: '${x}\n', xs: [], n: 0 },
    ]) {
      for (const name of ['x/a.sh', 'x/b.nix']) expect(precompiled.render(name, context)).toBe(compiled.render(name, context));
    }
    for (const engine of [precompiled, compiled]) {
      expect(() => engine.render('x/a.sh', { s: 'v', xs: [], n: 'x' })).toThrow('int: expected an integer, got "x"');
      expect(() => engine.render('x/b.nix', {})).toThrow('nix: expected a string, got undefined');
      expect(() => engine.render('partials/settings.sh', {})).toThrow('no template named partials/settings.sh');
    }
  });

  it('are not used once a template changed: the sources are compiled instead', () => {
    const { dir, file } = precompiledOf('stale', templates);
    writeFileSync(path.join(dir, 'x', 'a.sh.hbs'), 'changed {{sh s}}\n');
    const engine = createTemplateEngine(dir, file);
    expect(engine.precompiled).toBe(false);
    expect(engine.render('x/a.sh', { s: 'v' })).toBe('changed v\n');
  });

  it('are not used for a template added or removed since', () => {
    const added = precompiledOf('added', templates);
    writeFileSync(path.join(added.dir, 'x', 'c.sh.hbs'), 'C={{sh s}}\n');
    expect(createTemplateEngine(added.dir, added.file).precompiled).toBe(false);
    const removed = precompiledOf('removed', templates);
    rmSync(path.join(removed.dir, 'x', 'b.nix.hbs'));
    expect(createTemplateEngine(removed.dir, removed.file).precompiled).toBe(false);
  });

  it('refuse, when built, what the engine refuses when it compiles', () => {
    expect(() => precompiledOf('refused', { 'x/a.sh': 'A={{sh a}}\nB={{b}}\n' })).toThrow('x/a.sh.hbs:2: {{b}} prints a value without quoting');
  });

  it("render bento's own templates as they render compiled, for every file of a fleet", () => {
    const file = path.join(scratch, 'bento.precompiled.cjs');
    writeFileSync(file, precompileTemplates());
    const precompiled = createTemplateEngine(TEMPLATES_DIR, file);
    const compiled = createTemplateEngine(TEMPLATES_DIR, path.join(scratch, 'none.cjs'));
    expect([precompiled.precompiled, compiled.precompiled]).toEqual([true, false]);
    const config = configWith({ rebuildArgs: ['--fallback', "it's"], notifyUrl: 'https://example.org/hook', rebootMax: 2 });
    const input = { config, systems: [{ name: 'router', kind: 'non-flake' as const }, { name: 'nas', kind: 'flake' as const, prebuilt: true }], signingKey: { publicKey: 'bento-1:abc=' } };
    const render = (engine: TemplateEngine) => [
      ...renderServerFiles(input, engine),
      ...renderClientFiles(config, engine, 'bento-1:abc='),
      ...input.systems.flatMap((system) => renderSystemFiles(config, system, engine, input.signingKey)),
    ];
    const files = render(precompiled);
    expect(files.length).toBeGreaterThan(10);
    expect(files).toEqual(render(compiled));
  });
});
