/**
 * states.txt written once per batch of publications (chroot/publish.ts,
 * publishStagedBatch): a deploy's built systems, a rollout wave, a revert,
 * the systems a deploy retires. Each line is written before its system is
 * published and put back when its publication fails, the lines of the
 * others kept. The writes are counted on the one function that replaces
 * states.txt. Root: the chroots' directories are root's and sftp_users'.
 */
import { chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Assembly } from '../../src/chroot/assemble.js';
import { activeVersion, publishStagedBatch, publishStagedBatchTogether, readPublished, stageVersion, stageVersions } from '../../src/chroot/publish.js';
import { retireDepartures } from '../../src/chroot/retire.js';
import { publishWave, revertWave } from '../../src/rollout/wave-publication.js';
import type { RolloutState } from '../../src/protocol/rollout-file.js';
import { renderManifest } from '../../src/protocol/manifest.js';
import * as atomic from '../../src/util/atomic-write.js';
import { sha256 } from '../../src/util/hash.js';
import { storePath } from '../status/fixtures.js';

/** A store path basename of its own for `tag`. */
function target(tag: string): string {
  return storePath(sha256(tag).replace(/e/g, '0').slice(0, 8));
}

vi.mock('../../src/util/atomic-write.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/util/atomic-write.js')>();
  return { ...original, writeFileAtomicallySync: vi.fn(original.writeFileAtomicallySync) };
});

const isRoot = process.getuid?.() === 0;
const GID = 4322;
const NOW = new Date('2026-11-26T10:00:00.000Z');
const root = mkdtempSync(path.join(os.tmpdir(), 'bento-publish-batch-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** How many times states.txt of `chrootDir` was replaced since the last reset. */
function statesWrites(chrootDir: string): number {
  return vi.mocked(atomic.writeFileAtomicallySync).mock.calls.filter(([file]) => file === path.join(chrootDir, 'states.txt')).length;
}

function states(chrootDir: string): string {
  return readFileSync(path.join(chrootDir, 'states.txt'), 'utf8');
}

/** `name`'s configuration with one file, its chroot directory made as deploy makes it. */
function assembly(chrootDir: string, name: string, content: string): Assembly {
  const dir = path.join(chrootDir, name);
  mkdirSync(path.join(dir, 'logs'), { recursive: true });
  chownSync(dir, 0, GID);
  const source = path.join(root, `${path.basename(chrootDir)}-${name}-${sha256(content).slice(0, 8)}`);
  writeFileSync(source, content);
  const files = [{ relative: 'configuration.nix', source, executable: false, sha256: sha256(content) }];
  const manifest = renderManifest(files.map((file) => ({ path: file.relative, sha256: file.sha256 })));
  return { name, files, manifest, digest: sha256(manifest), shadowed: [] };
}

function stage(chrootDir: string, system: Assembly): string {
  return stageVersion(chrootDir, system, { sftpGroupId: GID, now: NOW });
}

describe.skipIf(!isRoot)('states.txt once per batch', () => {
  beforeEach(() => {
    vi.mocked(atomic.writeFileAtomicallySync).mockClear();
  });

  it('a batch records every line in one write, publishes each, and keeps the lines of the systems it does not touch', () => {
    const chrootDir = mkdtempSync(path.join(root, 'batch-'));
    writeFileSync(path.join(chrootDir, 'states.txt'), `other=${target('other')}\n`);
    const systems = ['a', 'b', 'c'].map((name) => assembly(chrootDir, name, `{ ${name} = 1; }\n`));
    const batch = systems.map((system) => ({ system, versionName: stage(chrootDir, system), storeBasename: target(system.name) }));
    const outcome = publishStagedBatch(chrootDir, batch, NOW);
    expect(outcome).toEqual({ published: ['a', 'b', 'c'], failed: [] });
    expect(statesWrites(chrootDir)).toBe(1);
    expect(states(chrootDir)).toBe(`a=${target('a')}\nb=${target('b')}\nc=${target('c')}\nother=${target('other')}\n`);
    for (const system of systems) expect(readPublished(chrootDir, system.name).stampDigest).toBe(system.digest);
    // Nothing to change: not written at all.
    vi.mocked(atomic.writeFileAtomicallySync).mockClear();
    publishStagedBatch(chrootDir, batch.slice(0, 1), NOW);
    expect(statesWrites(chrootDir)).toBe(0);
  });

  it('a publication that fails puts its line back, in one more write; the others stay published with theirs', () => {
    const chrootDir = mkdtempSync(path.join(root, 'fail-'));
    const first = ['a', 'b', 'c'].map((name) => assembly(chrootDir, name, `{ ${name} = 1; }\n`));
    publishStagedBatch(chrootDir, first.map((system) => ({ system, versionName: stage(chrootDir, system), storeBasename: target(`${system.name}1`) })), NOW);
    const before = states(chrootDir);
    const second = ['a', 'b', 'c'].map((name) => assembly(chrootDir, name, `{ ${name} = 2; }\n`));
    const batch = second.map((system) => ({ system, versionName: stage(chrootDir, system), storeBasename: target(`${system.name}2`) }));
    // b's last_change_date cannot be replaced: its publication fails (and config/ goes back).
    const stamp = path.join(chrootDir, 'b', 'last_change_date');
    rmSync(stamp);
    mkdirSync(path.join(stamp, 'in-the-way'), { recursive: true });
    const bVersion = activeVersion(chrootDir, 'b');
    vi.mocked(atomic.writeFileAtomicallySync).mockClear();
    const outcome = publishStagedBatch(chrootDir, batch, NOW);
    expect(outcome.published).toEqual(['a', 'c']);
    expect(outcome.failed).toEqual([{ name: 'b', reason: expect.stringMatching(/^publication failed, its previous files stay published: /) }]);
    expect(statesWrites(chrootDir)).toBe(2);
    expect(states(chrootDir)).toBe(`a=${target('a2')}\n${before.split('\n')[1]}\nc=${target('c2')}\n`);
    expect(activeVersion(chrootDir, 'b')).toBe(bVersion);
  });

  it('states.txt that cannot be written: every system of the batch fails, nothing is published', () => {
    const chrootDir = mkdtempSync(path.join(root, 'nostates-'));
    const systems = ['a', 'b'].map((name) => assembly(chrootDir, name, `{ ${name} = 1; }\n`));
    const batch = systems.map((system) => ({ system, versionName: stage(chrootDir, system), storeBasename: target(system.name) }));
    mkdirSync(path.join(chrootDir, 'states.txt'));
    const outcome = publishStagedBatch(chrootDir, batch, NOW);
    expect(outcome.published).toEqual([]);
    expect(outcome.failed.map((failure) => [failure.name, failure.reason.startsWith('cannot record it in states.txt, nothing was published: ')])).toEqual([
      ['a', true],
      ['b', true],
    ]);
    for (const system of systems) expect(activeVersion(chrootDir, system.name)).toBeUndefined();
  });

  it('a rollout wave and its revert write states.txt once each', () => {
    const chrootDir = mkdtempSync(path.join(root, 'wave-'));
    const names = ['w1', 'w2', 'w3'];
    const old = names.map((name) => assembly(chrootDir, name, `{ ${name} = "old"; }\n`));
    publishStagedBatch(chrootDir, old.map((system) => ({ system, versionName: stage(chrootDir, system), storeBasename: target(`${system.name}old`) })), NOW);
    const state: RolloutState = { version: 1, startedAt: NOW.toISOString(), waves: [names], current: 0, status: 'running', systems: {} };
    for (const name of names) {
      const next = assembly(chrootDir, name, `{ ${name} = "new"; }\n`);
      state.systems[name] = { wave: 0, exact: true, target: target(`${name}new`), version: stage(chrootDir, next), digest: next.digest, previous: { version: activeVersion(chrootDir, name), target: target(`${name}old`) } };
    }
    vi.mocked(atomic.writeFileAtomicallySync).mockClear();
    expect(publishWave(chrootDir, state, 0, NOW)).toEqual({ published: names, failed: [] });
    expect(statesWrites(chrootDir)).toBe(1);
    expect(states(chrootDir)).toBe(names.map((name) => `${name}=${target(`${name}new`)}\n`).join(''));
    vi.mocked(atomic.writeFileAtomicallySync).mockClear();
    expect(revertWave(chrootDir, state, 0, NOW)).toEqual({ published: names, failed: [] });
    expect(statesWrites(chrootDir)).toBe(1);
    expect(states(chrootDir)).toBe(names.map((name) => `${name}=${target(`${name}old`)}\n`).join(''));
  });

  it('the systems a deploy retires lose their lines in one write', async () => {
    const chrootDir = mkdtempSync(path.join(root, 'retire-'));
    const names = ['gone1', 'gone2', 'gone3', 'kept'];
    const systems = names.map((name) => assembly(chrootDir, name, `{ ${name} = 1; }\n`));
    publishStagedBatch(chrootDir, systems.map((system) => ({ system, versionName: stage(chrootDir, system), storeBasename: target(system.name) })), NOW);
    vi.mocked(atomic.writeFileAtomicallySync).mockClear();
    const retirement = await retireDepartures({ chrootDir, fleetNames: new Set(['kept']), sftpGroupId: GID, now: () => NOW, authorizedKeysFileOf: (name) => path.join(root, 'no-keys', name) });
    expect(retirement.retired.map((system) => system.name)).toEqual(['gone1', 'gone2', 'gone3']);
    expect(statesWrites(chrootDir)).toBe(1);
    expect(states(chrootDir)).toBe(`kept=${target('kept')}\n`);
  });
});

describe.skipIf(!isRoot)('staged and published together (the flushes of all at once)', () => {
  beforeEach(() => {
    vi.mocked(atomic.writeFileAtomicallySync).mockClear();
  });

  it('stages every version as stageVersion does, and publishes them as publishStagedBatch does', async () => {
    const chrootDir = mkdtempSync(path.join(root, 'together-'));
    const alone = mkdtempSync(path.join(root, 'alone-'));
    writeFileSync(path.join(chrootDir, 'states.txt'), `other=${target('other')}\n`);
    writeFileSync(path.join(alone, 'states.txt'), `other=${target('other')}\n`);
    const systems = ['a', 'b', 'c'].map((name) => assembly(chrootDir, name, `{ ${name} = 1; }\n`));
    const staged = await stageVersions(chrootDir, systems.map((system) => ({ assembly: system, options: { sftpGroupId: GID, now: NOW } })));
    const expected = ['a', 'b', 'c'].map((name) => stage(alone, assembly(alone, name, `{ ${name} = 1; }\n`)));
    expect(staged).toEqual(expected.map((value) => ({ ok: true, value })));
    const batch = systems.map((system, index) => ({ system, versionName: expected[index] as string, storeBasename: target(system.name) }));
    expect(await publishStagedBatchTogether(chrootDir, batch, NOW)).toEqual({ published: ['a', 'b', 'c'], failed: [] });
    expect(statesWrites(chrootDir)).toBe(1);
    expect(states(chrootDir)).toBe(`a=${target('a')}\nb=${target('b')}\nc=${target('c')}\nother=${target('other')}\n`);
    for (const system of systems) {
      expect(readPublished(chrootDir, system.name).stampDigest).toBe(system.digest);
      expect(readFileSync(path.join(chrootDir, system.name, 'config', 'configuration.nix'), 'utf8')).toBe(`{ ${system.name} = 1; }\n`);
      // Nothing left under a temporary name.
      expect(readdirSync(path.join(chrootDir, system.name)).sort()).toEqual([activeVersion(chrootDir, system.name), 'config', 'last_change_date', 'logs'].sort());
    }
    // The same version again: the current one is never written over, it gets a new name.
    const again = await stageVersions(chrootDir, [{ assembly: systems[0] as Assembly, options: { sftpGroupId: GID, now: NOW } }]);
    expect(again).toEqual([{ ok: true, value: `${expected[0]}-${NOW.getTime().toString(36)}` }]);
  });

  it("one system's failure is its own: a version that cannot be staged, a publication that fails puts its line back", async () => {
    const chrootDir = mkdtempSync(path.join(root, 'together-fail-'));
    const first = ['a', 'b', 'c'].map((name) => assembly(chrootDir, name, `{ ${name} = 1; }\n`));
    publishStagedBatch(chrootDir, first.map((system) => ({ system, versionName: stage(chrootDir, system), storeBasename: target(`${system.name}1`) })), NOW);
    const before = states(chrootDir);
    const second = ['a', 'b', 'c'].map((name) => assembly(chrootDir, name, `{ ${name} = 2; }\n`));
    // c's source is gone: it cannot be staged, the others are.
    rmSync((second[2] as Assembly).files[0]?.source as string);
    const staged = await stageVersions(chrootDir, second.map((system) => ({ assembly: system, options: { sftpGroupId: GID, now: NOW } })));
    expect(staged.map((outcome) => outcome.ok)).toEqual([true, true, false]);
    expect(readdirSync(path.join(chrootDir, 'c')).filter((entry) => entry.includes('.tmp-'))).toEqual([]);
    // b's last_change_date cannot be replaced: its publication fails (and config/ goes back).
    const stamp = path.join(chrootDir, 'b', 'last_change_date');
    rmSync(stamp);
    mkdirSync(path.join(stamp, 'in-the-way'), { recursive: true });
    const bVersion = activeVersion(chrootDir, 'b');
    vi.mocked(atomic.writeFileAtomicallySync).mockClear();
    const batch = second.slice(0, 2).map((system, index) => ({ system, versionName: (staged[index] as { value: string }).value, storeBasename: target(`${system.name}2`) }));
    const outcome = await publishStagedBatchTogether(chrootDir, batch, NOW);
    expect(outcome.published).toEqual(['a']);
    expect(outcome.failed).toEqual([{ name: 'b', reason: expect.stringMatching(/^publication failed, its previous files stay published: /) }]);
    expect(statesWrites(chrootDir)).toBe(2);
    expect(states(chrootDir)).toBe(`a=${target('a2')}\n${before.split('\n').slice(1).join('\n')}`);
    expect(activeVersion(chrootDir, 'b')).toBe(bVersion);
    expect(readPublished(chrootDir, 'a').stampDigest).toBe((second[0] as Assembly).digest);
  });

  it('states.txt that cannot be written: nothing of the batch is published', async () => {
    const chrootDir = mkdtempSync(path.join(root, 'together-nostates-'));
    const systems = ['a', 'b'].map((name) => assembly(chrootDir, name, `{ ${name} = 1; }\n`));
    const batch = systems.map((system) => ({ system, versionName: stage(chrootDir, system), storeBasename: target(system.name) }));
    mkdirSync(path.join(chrootDir, 'states.txt'));
    const outcome = await publishStagedBatchTogether(chrootDir, batch, NOW);
    expect(outcome.published).toEqual([]);
    expect(outcome.failed.map((failure) => failure.name)).toEqual(['a', 'b']);
    for (const system of systems) expect(activeVersion(chrootDir, system.name)).toBeUndefined();
    expect(await publishStagedBatchTogether(chrootDir, [], NOW)).toEqual({ published: [], failed: [] });
  });
});
