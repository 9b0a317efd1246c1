/**
 * One source for each config.sh key: `bento --help`, the config.sh of
 * `bento init` and docs/config.md must say what src/config/schema.ts says.
 * Each check reads the text as a person would (key names, doc lines,
 * defaults, examples) and names the key that disagrees; the planted schemas
 * below prove each check fails.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli.js';
import { parseConfig } from '../../src/config/config.js';
import { configReferencePage } from '../../src/config/describe-keys.js';
import { parseShellAssignments } from '../../src/config/parse-shell-assignments.js';
import { configKeys, DEFAULTS, type KeySpec } from '../../src/config/schema.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { initFleet } from '../../src/render/init-fleet.js';
import { Collector } from '../helpers/collect.js';

type Keys = { name: string; spec: KeySpec }[];

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function sameOrder(where: string, listed: string[], keys: Keys): string[] {
  const names = keys.map(({ name }) => name);
  return listed.join(' ') === names.join(' ') ? [] : [`${where} lists ${listed.join(' ')}; the schema has ${names.join(' ')}`];
}

/** The key lines under "config.sh keys" in `bento --help`. */
function helpDisagreements(help: string, keys: Keys): string[] {
  const section = help.slice(help.indexOf('config.sh keys'));
  const lines = section.split('\n').slice(1);
  const listed = lines.slice(0, lines.indexOf('')).map((line) => /^ {2}([A-Z_]+) +(.*)$/.exec(line) ?? ['', line, '']);
  const problems = sameOrder('--help', listed.map(([, name]) => name as string), keys);
  for (const { name, spec } of keys) {
    const text = listed.find(([, listedName]) => listedName === name)?.[2];
    if (text !== undefined && text !== `${spec.doc} (${spec.shown})`) problems.push(`--help says of ${name}: ${text}; the schema: ${spec.doc} (${spec.shown})`);
  }
  return problems;
}

/** The `KEY=` and `#KEY=` lines of init's config.sh with the comment above each. */
function initDisagreements(text: string, keys: Keys): string[] {
  const lines = text.split('\n');
  const entries = lines.flatMap((line, index) => {
    const match = /^(#?)([A-Z_]+)=(.*)$/.exec(line);
    if (!match) return [];
    let start = index;
    while (start > 0 && (lines[start - 1] as string).startsWith('# ')) start--;
    const comment = lines.slice(start, index).map((l) => l.slice(2)).join(' ');
    const value = (parseShellAssignments(`${match[2]}=${match[3]}\n`)[0] as { value: string }).value;
    return [{ name: match[2] as string, set: match[1] === '', value, comment }];
  });
  const problems = sameOrder("init's config.sh", entries.map(({ name }) => name), keys);
  for (const { name, spec } of keys) {
    const entry = entries.find((e) => e.name === name);
    if (!entry) continue;
    if (!entry.comment.startsWith(`${spec.doc} (${spec.shown})`)) problems.push(`init's config.sh says of ${name}: ${entry.comment}; the schema: ${spec.doc} (${spec.shown})`);
    if (entry.value !== spec.example) problems.push(`init's config.sh sets ${name}=${entry.value}; the schema's example: ${spec.example}`);
    if (entry.set !== Boolean(spec.initSet)) problems.push(`init's config.sh ${entry.set ? 'sets' : 'comments out'} ${name}; the schema does not`);
  }
  return problems;
}

/** The `## KEY` sections of docs/config.md. */
function pageDisagreements(page: string, keys: Keys): string[] {
  const sections = page.split(/^## /m).slice(1).map((section) => section.split('\n'));
  const problems = sameOrder('docs/config.md', sections.map((section) => section[0] as string), keys);
  for (const { name, spec } of keys) {
    const section = sections.find((s) => s[0] === name);
    if (!section) continue;
    const expected = [`- type: ${spec.type}`, `- default: ${spec.shown}`];
    if (!(section[2] ?? '').startsWith(spec.doc)) problems.push(`docs/config.md says of ${name}: ${section[2]}; the schema: ${spec.doc}`);
    for (const line of expected) if (!section.includes(line)) problems.push(`docs/config.md lacks "${line}" for ${name}`);
    if (!section.some((line) => line.startsWith('- example: `') && line.includes(spec.example))) problems.push(`docs/config.md lacks the example ${spec.example} for ${name}`);
  }
  return problems;
}

async function helpText(): Promise<string> {
  const stdout = new Collector();
  expect(await runCli(['node', 'bento', '--help'], { stdout, stderr: new Collector() })).toBe(0);
  return stdout.text;
}

async function initConfig(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-schema-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  await initFleet({ fleetDir: dir });
  return readFileSync(path.join(dir, 'config.sh'), 'utf8');
}

const page = readFileSync(path.join(PACKAGE_ROOT, 'docs', 'config.md'), 'utf8');

describe('the config.sh schema', () => {
  it('is what --help, the init config.sh and docs/config.md say', async () => {
    expect(helpDisagreements(await helpText(), configKeys())).toEqual([]);
    expect(initDisagreements(await initConfig(), configKeys())).toEqual([]);
    expect(pageDisagreements(page, configKeys())).toEqual([]);
    expect(page, 'docs/config.md is out of date: run npm run docs:config').toBe(configReferencePage());
  });

  it("is what bento init sets: the keys it sets parse to the schema's defaults", async () => {
    const { config } = parseConfig(await initConfig());
    for (const { spec } of configKeys().filter(({ spec }) => spec.initSet && !spec.required)) {
      expect(config[spec.field as keyof typeof config], spec.field).toEqual(DEFAULTS[spec.field as keyof typeof DEFAULTS]);
    }
  });

  it('each check names the key when the schema says something else (planted)', async () => {
    const [help, init] = [await helpText(), await initConfig()];
    const changed = configKeys().map((key) => (key.name === 'TIMEOUT' ? { ...key, spec: { ...key.spec, doc: 'seconds of patience', example: '30' } } : key));
    expect(helpDisagreements(help, changed).join('\n')).toContain('--help says of TIMEOUT');
    expect(initDisagreements(init, changed).join('\n')).toContain("init's config.sh says of TIMEOUT");
    expect(initDisagreements(init, changed).join('\n')).toContain("init's config.sh sets TIMEOUT=20; the schema's example: 30");
    expect(pageDisagreements(page, changed).join('\n')).toContain('docs/config.md says of TIMEOUT');

    const added: Keys = [...configKeys(), { name: 'NEW_KEY', spec: { ...configKeys()[2]!.spec } }];
    for (const problems of [helpDisagreements(help, added), initDisagreements(init, added), pageDisagreements(page, added)]) {
      expect(problems.join('\n')).toMatch(/lists .*; the schema has .* NEW_KEY$/);
    }
    expect(configReferencePage(added)).not.toBe(page);
  });
});
