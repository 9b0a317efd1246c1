/**
 * generate's record of generated/: with the same inputs and generated/ as
 * recorded, nothing is rendered, read back or written; any change of what
 * rendering reads, or of generated/, renders again, to the same bytes as a
 * generate without a record.
 */
import { appendFileSync, chmodSync, cpSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { releaseFleet } from '../../src/fleet/fleet.js';
import { generateOutput, type GenerateResult } from '../../src/render/generate.js';
import { codeIdentity, codeIdentityOf, makeRecord, parseRecord, recordedOutput, renderedDigest, statOutput, type RecordStore } from '../../src/render/generate-record.js';
import { sha256 } from '../../src/util/hash.js';
import { makeFleet, testKey, type TestFleet } from '../helpers/fleet.js';

let fleet: TestFleet | undefined;
afterEach(() => {
  fleet?.cleanup();
  fleet = undefined;
});

/** A store in memory, counting its writes. */
class MemoryStore implements RecordStore {
  text: string | undefined;
  writes = 0;
  read(): string | undefined {
    return this.text;
  }
  write(text: string): void {
    this.text = text;
    this.writes++;
  }
}

/** Past the margin within which a change might not show in a ctime (generate-record.ts): the record is made only then. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 120));

/** Every entry under `dir`: its inode, times, size and mode (a directory's times catch an entry made or removed in it). */
function inventory(dir: string): Record<string, string> {
  const found: Record<string, string> = {};
  const visit = (relative: string) => {
    const stats = lstatSync(path.join(dir, relative), { bigint: true });
    found[relative] = `${stats.ino} ${stats.mtimeNs} ${stats.ctimeNs} ${stats.size} ${stats.mode.toString(8)}`;
    if (stats.isDirectory()) for (const entry of readdirSync(path.join(dir, relative))) visit(path.join(relative, entry));
  };
  visit('.');
  return found;
}

/** Every file under `dir` and its content. */
function contents(dir: string): Record<string, string> {
  const found: Record<string, string> = {};
  const visit = (relative: string) => {
    for (const entry of readdirSync(path.join(dir, relative), { withFileTypes: true })) {
      const child = path.join(relative, entry.name);
      if (entry.isDirectory()) visit(child);
      else found[child] = `${(lstatSync(path.join(dir, child)).mode & 0o777).toString(8)} ${readFileSync(path.join(dir, child), 'utf8')}`;
    }
  };
  visit('.');
  return found;
}

async function generate(root: string, store?: RecordStore, outputDir?: string): Promise<GenerateResult> {
  const result = await generateOutput({ fleetDir: root, ...(outputDir ? { outputDir } : {}), ...(store ? { record: () => store } : {}) });
  await releaseFleet(result.fleet);
  return result;
}

/** A fleet generated with `store` until it is recorded: a run that writes, then one that records. */
async function recordedFleet(store: MemoryStore): Promise<TestFleet> {
  fleet = makeFleet({ hosts: { router: { nonFlake: true }, web: { nonFlake: true } } });
  expect((await generate(fleet.root, store)).summary.written.length).toBeGreaterThan(0);
  // Just written: too recent to vouch for.
  expect(store.writes).toBe(0);
  await settle();
  const recording = await generate(fleet.root, store);
  expect(recording.summary.written).toEqual([]);
  expect(store.writes).toBe(1);
  await settle();
  return fleet;
}

/** Renders (files given) with `store`, then checks generated/ is what a generate without a record writes. */
async function expectRenderedAsWithout(root: string, store: MemoryStore): Promise<GenerateResult> {
  const result = await generate(root, store);
  expect(result.files.length).toBeGreaterThan(0);
  const plain = mkdtempSync(path.join(os.tmpdir(), 'bento-plain-'));
  try {
    await generate(root, undefined, path.join(plain, 'out'));
    expect(contents(path.join(root, 'generated'))).toEqual(contents(path.join(plain, 'out')));
  } finally {
    rmSync(plain, { recursive: true, force: true });
  }
  return result;
}

describe('a generate with its record', () => {
  it('renders nothing and touches nothing of generated/ when nothing changed; says what it holds', async () => {
    const store = new MemoryStore();
    const { root } = await recordedFleet(store);
    const generated = path.join(root, 'generated');
    const before = inventory(generated);
    const result = await generate(root, store);
    expect(result.files).toEqual([]);
    expect(inventory(generated)).toEqual(before);
    expect(store.writes).toBe(1);
    const files = Object.keys(contents(generated));
    expect(result.summary).toEqual({ written: [], unchanged: files.length, removed: [] });
    // The digests deploy assembles from, each what the file holds.
    expect([...(result.digests?.keys() ?? [])].sort()).toEqual(files.sort());
    for (const [relative, { sha256: digest, mode }] of result.digests ?? []) {
      expect(digest).toBe(sha256(readFileSync(path.join(generated, relative))));
      expect(mode).toBe(lstatSync(path.join(generated, relative)).mode & 0o777);
    }
  });

  const changes: [string, (root: string) => void][] = [
    ['a value of config.sh', (root) => appendFileSync(path.join(root, 'config.sh'), 'REMOTE_PORT=2223\n')],
    ['a new host', (root) => {
      mkdirSync(path.join(root, 'hosts', 'db'));
      writeFileSync(path.join(root, 'hosts', 'db', 'configuration.nix'), '{ ... }: { }\n');
      writeFileSync(path.join(root, 'keys', 'db.pub'), `${testKey('db')}\n`);
    }],
    ['a key', (root) => writeFileSync(path.join(root, 'keys', 'web.pub'), `${testKey('web-again')}\n`)],
    ['a REBOOT_WINDOW file in a host directory', (root) => writeFileSync(path.join(root, 'hosts', 'web', 'REBOOT_WINDOW'), 'Mon..Fri 02:00-05:00\n')],
    ['a generated file edited by hand, to the same size', (root) => {
      const file = path.join(root, 'generated', 'systems', 'web', 'update.sh');
      writeFileSync(file, readFileSync(file, 'utf8').replace('#!/bin/sh', '#!/bin/SH'));
    }],
    ['a generated file made executable', (root) => chmodSync(path.join(root, 'generated', 'server', 'sshd_config'), 0o755)],
    ['a generated file removed', (root) => rmSync(path.join(root, 'generated', 'systems', 'router', 'bootstrap.sh'))],
    ['a generated directory removed', (root) => rmSync(path.join(root, 'generated', 'systems', 'router'), { recursive: true })],
    ['an extra file', (root) => writeFileSync(path.join(root, 'generated', 'systems', 'gone.sh'), 'stale\n')],
    ['an extra file in a directory of its own', (root) => {
      mkdirSync(path.join(root, 'generated', 'systems', 'gone'));
      writeFileSync(path.join(root, 'generated', 'systems', 'gone', 'update.sh'), 'stale\n');
    }],
    ['another code identity (a record of another bento)', () => {}],
  ];

  for (const [what, change] of changes) {
    it(`renders again after ${what}, as a generate without a record`, async () => {
      const store = new MemoryStore();
      const { root } = await recordedFleet(store);
      change(root);
      if (what.startsWith('another code identity')) {
        const record = JSON.parse(store.text ?? '') as { inputs: string };
        store.text = JSON.stringify({ ...record, inputs: sha256(`another bento ${record.inputs}`) });
      }
      await expectRenderedAsWithout(root, store);
    });
  }

  it('is recorded again once what changed is there, and then used', async () => {
    const store = new MemoryStore();
    const { root } = await recordedFleet(store);
    appendFileSync(path.join(root, 'config.sh'), 'REMOTE_PORT=2223\n');
    expect((await generate(root, store)).summary.written.length).toBeGreaterThan(0);
    await settle();
    expect((await generate(root, store)).files.length).toBeGreaterThan(0);
    expect(store.writes).toBe(2);
    await settle();
    expect((await generate(root, store)).files).toEqual([]);
  });

  it('an empty directory left in generated/ is part of what is recorded: a file made in it renders again', async () => {
    const store = new MemoryStore();
    fleet = makeFleet({ hosts: { router: { nonFlake: true } } });
    await generate(fleet.root, store);
    mkdirSync(path.join(fleet.root, 'generated', 'empty'));
    await settle();
    await generate(fleet.root, store);
    expect(store.writes).toBe(1);
    await settle();
    expect((await generate(fleet.root, store)).files).toEqual([]);
    writeFileSync(path.join(fleet.root, 'generated', 'empty', 'extra'), 'x\n');
    await expectRenderedAsWithout(fleet.root, store);
  });

  it('is neither used nor made for a fleet with a broken host directory', async () => {
    const store = new MemoryStore();
    const { root } = await recordedFleet(store);
    // A host directory whose files cannot be published (a dangling link): broken, without Nix.
    mkdirSync(path.join(root, 'hosts', 'bad'));
    writeFileSync(path.join(root, 'hosts', 'bad', 'configuration.nix'), '{ ... }: { }\n');
    symlinkSync('/nonexistent/bento', path.join(root, 'hosts', 'bad', 'dangling'));
    const result = await generate(root, store);
    expect(result.complete).toBe(false);
    expect(result.files.length).toBeGreaterThan(0);
    await settle();
    expect((await generate(root, store)).files.length).toBeGreaterThan(0);
    expect(store.writes).toBe(1);
  });

  it('a damaged record, or one for another output directory, is no record', async () => {
    const store = new MemoryStore();
    const { root } = await recordedFleet(store);
    const good = store.text ?? '';
    store.text = good.slice(0, -10);
    expect((await generate(root, store)).files.length).toBeGreaterThan(0);
    const other = path.join(root, 'elsewhere');
    cpSync(path.join(root, 'generated'), other, { recursive: true });
    store.text = good;
    expect((await generate(root, store, other)).files.length).toBeGreaterThan(0);
  });
});

describe('the record', () => {
  it('parses only what it renders: a path out of generated/, a bad digest or stamp is no record', async () => {
    const store = new MemoryStore();
    await recordedFleet(store);
    const record = JSON.parse(store.text ?? '') as { files: Record<string, unknown[]>; dirs: Record<string, unknown[]> };
    expect(parseRecord(store.text ?? '')).toBeDefined();
    const [first, entry] = Object.entries(record.files)[0] ?? [];
    for (const files of [{ ...record.files, '../outside': entry }, { ...record.files, [first ?? '']: ['x', ...(entry ?? []).slice(1)] }, { ...record.files, [first ?? '']: [...(entry ?? []).slice(0, 6), '-1'] }]) {
      expect(parseRecord(JSON.stringify({ ...record, files }))).toBeUndefined();
    }
    expect(parseRecord(JSON.stringify({ ...record, dirs: { ...record.dirs, '/abs': record.dirs['.'] } }))).toBeUndefined();
    expect(parseRecord('[]')).toBeUndefined();
  });

  it('is not made when an entry changed too recently to show, or generated/ holds a file more or less', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-record-'));
    try {
      writeFileSync(path.join(dir, 'a'), 'a\n');
      const files = [{ path: 'a', content: 'a\n', mode: 0o644 }];
      chmodSync(path.join(dir, 'a'), 0o644);
      const now = statOutput(dir);
      expect(makeRecord('0'.repeat(64), dir, now, files)).toBeUndefined();
      const later = { ...now, statTimeNs: now.statTimeNs + 10_000_000_000n };
      const made = makeRecord('0'.repeat(64), dir, later, files);
      expect(made?.digests.get('a')).toEqual({ sha256: sha256('a\n'), mode: 0o644 });
      expect(renderedDigest({ path: 'b', content: 'ab', mode: 0o644, bytes: [Buffer.from('a'), Buffer.from('b')] })).toBe(sha256('ab'));
      expect(recordedOutput(made?.text, '0'.repeat(64), dir)?.get('a')?.sha256).toBe(sha256('a\n'));
      expect(recordedOutput(made?.text, '1'.repeat(64), dir)).toBeUndefined();
      expect(makeRecord('0'.repeat(64), dir, later, [...files, { path: 'b', content: '', mode: 0o644 }])).toBeUndefined();
      expect(makeRecord('0'.repeat(64), dir, later, [])).toBeUndefined();
      expect(makeRecord('0'.repeat(64), dir, later, [{ ...files[0]!, mode: 0o755 }])).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the code: a change to any file of its directories is another identity', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-code-'));
    try {
      mkdirSync(path.join(dir, 'templates', 'client'), { recursive: true });
      writeFileSync(path.join(dir, 'templates', 'client', 'update.sh.hbs'), 'x\n');
      const first = codeIdentityOf([dir]);
      expect(codeIdentityOf([dir])).toBe(first);
      writeFileSync(path.join(dir, 'templates', 'client', 'update.sh.hbs'), 'y\n');
      expect(codeIdentityOf([dir])).not.toBe(first);
      writeFileSync(path.join(dir, 'templates', 'new.hbs'), '');
      expect(codeIdentityOf([dir])).not.toBe(first);
      expect(codeIdentity()).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
