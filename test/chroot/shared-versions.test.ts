/**
 * Version directories written together share their files by content
 * (publish.ts, sharingByContent): a file whose bytes and mode another
 * system's version holds already is a hard link to it; and a check of many
 * systems' published files (SharedFileChecks) reads such a file once, then
 * trusts it for the others as a record is trusted. Root: the versions are
 * root:sftp_users.
 */
import { chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Assembly } from '../../src/chroot/assemble.js';
import { checkPublication, discardVersionsAhead, publishStagedBatch, stageVersions, stageWrittenVersions, writeVersionsAhead, type SharedFileChecks } from '../../src/chroot/publish.js';
import { SETTLE_MS } from '../../src/chroot/published-stats.js';
import { renderManifest } from '../../src/protocol/manifest.js';
import { startRollout } from '../../src/rollout/wave-publication.js';
import * as hash from '../../src/util/hash.js';

vi.mock('../../src/util/hash.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/util/hash.js')>();
  return { ...original, sha256File: vi.fn(original.sha256File) };
});

const isRoot = process.getuid?.() === 0;
const GID = 4322;
const NOW = new Date('2026-12-07T10:00:00.000Z');
const root = mkdtempSync(path.join(os.tmpdir(), 'bento-shared-versions-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const LIBRARY = '# the client library, the same in every system\n'.repeat(50);
const MODULE = '{ ... }: { }\n';

/** `name`'s configuration: `contents` by path (a `.sh` file executable), its chroot directory made as deploy makes it. */
function assembly(chrootDir: string, name: string, contents: Record<string, string>): Assembly {
  mkdirSync(path.join(chrootDir, name, 'logs'), { recursive: true });
  chownSync(path.join(chrootDir, name), 0, GID);
  const sources = mkdtempSync(path.join(root, `sources-${name}-`));
  const files = Object.entries(contents)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([relative, content]) => {
      const source = path.join(sources, relative);
      writeFileSync(source, content);
      return { relative, source, executable: relative.endsWith('.sh'), sha256: hash.sha256(content) };
    });
  const manifest = renderManifest(files.map((file) => ({ path: file.relative, sha256: file.sha256 })));
  return { name, files, manifest, digest: hash.sha256(manifest), shadowed: [] };
}

/** Three systems: the library and module shared, update.sh each its own, and the module's bytes also in an executable file. */
function fleetOf(chrootDir: string): Assembly[] {
  return ['a', 'b', 'c'].map((name) =>
    assembly(chrootDir, name, { 'bento-client.sh': LIBRARY, 'bento-module.nix': MODULE, 'same-bytes.sh': MODULE, 'update.sh': `echo ${name}\n` }),
  );
}

const options = { sftpGroupId: GID, now: NOW };
const inode = (file: string) => lstatSync(file).ino;

/** Each file of each version holds its bytes with its mode, root's. */
function expectWhole(dirs: readonly string[], systems: readonly Assembly[]): void {
  systems.forEach((system, index) => {
    for (const file of system.files) {
      const target = path.join(dirs[index] as string, file.relative);
      const stats = lstatSync(target);
      expect([stats.isFile(), stats.uid, stats.mode & 0o7777]).toEqual([true, 0, file.executable ? 0o755 : 0o644]);
      expect(hash.sha256(readFileSync(target))).toBe(file.sha256);
    }
  });
}

describe.skipIf(!isRoot)('version directories written together share files by content', () => {
  beforeEach(() => {
    vi.mocked(hash.sha256File).mockClear();
  });

  it('writeVersionsAhead: the same bytes and mode are one file, linked; other bytes or another mode are files of their own', async () => {
    const chrootDir = mkdtempSync(path.join(root, 'ahead-'));
    const systems = fleetOf(chrootDir);
    const written = await writeVersionsAhead(chrootDir, systems.map((system) => ({ assembly: system, options })));
    const dirs = systems.map((system) => {
      const outcome = written.get(system.name);
      if (!outcome?.ok) throw new Error(`${system.name} not written`);
      return outcome.value.temporary;
    });
    const [a, b, c] = dirs as [string, string, string];
    expect(new Set(dirs.map((dir) => inode(path.join(dir, 'bento-client.sh')))).size).toBe(1);
    expect(lstatSync(path.join(a, 'bento-client.sh')).nlink).toBe(3);
    expect(inode(path.join(c, 'bento-module.nix'))).toBe(inode(path.join(a, 'bento-module.nix')));
    // The same bytes, executable: not the module's file (a link shares the mode too).
    expect(inode(path.join(b, 'same-bytes.sh'))).not.toBe(inode(path.join(b, 'bento-module.nix')));
    expect(inode(path.join(b, 'same-bytes.sh'))).toBe(inode(path.join(a, 'same-bytes.sh')));
    expect(new Set(dirs.map((dir) => inode(path.join(dir, 'update.sh')))).size).toBe(3);
    expectWhole(dirs, systems);
    // Renamed into the systems' directories, they stay whole.
    const staged = await stageWrittenVersions(chrootDir, systems.map((system) => ({ assembly: system, options })), new Map([...written].map(([name, outcome]) => [name, (outcome as { ok: true; value: never }).value])));
    expect(staged.every((outcome) => outcome.ok)).toBe(true);
    expectWhole(systems.map((system, index) => path.join(chrootDir, system.name, (staged[index] as { ok: true; value: string }).value)), systems);
    discardVersionsAhead(chrootDir);
  });

  it('stageVersions shares them too, across the systems\' directories', async () => {
    const chrootDir = mkdtempSync(path.join(root, 'staged-'));
    const systems = fleetOf(chrootDir);
    const staged = await stageVersions(chrootDir, systems.map((system) => ({ assembly: system, options })));
    const dirs = systems.map((system, index) => path.join(chrootDir, system.name, (staged[index] as { ok: true; value: string }).value));
    expect(new Set(dirs.map((dir) => inode(path.join(dir, 'bento-client.sh')))).size).toBe(1);
    expectWhole(dirs, systems);
  });

  it('a rollout stages its waves\' versions sharing them too: the first wave published, the others waiting, all whole', () => {
    const chrootDir = mkdtempSync(path.join(root, 'rollout-'));
    const systems = fleetOf(chrootDir);
    const target = (name: string) => `${'0'.repeat(32)}-nixos-system-${name}-24.05`;
    const started = startRollout(chrootDir, [['a'], ['b', 'c']], systems.map((system, index) => ({ assembly: system, exact: true, wave: index === 0 ? 0 : 1, target: target(system.name) })), { ...options, firstWave: 0, failedToBuild: [] });
    expect(started.failed).toEqual([]);
    const dirs = systems.map((system) => path.join(chrootDir, system.name, started.state.systems[system.name]?.version as string));
    expect(new Set(dirs.map((dir) => inode(path.join(dir, 'bento-client.sh')))).size).toBe(1);
    expect(inode(path.join(chrootDir, 'a', 'config', 'bento-client.sh'))).toBe(inode(path.join(dirs[2] as string, 'bento-client.sh')));
    expectWhole(dirs, systems);
  });

  it('a file to link to that went with a system whose version failed is written again, whole', async () => {
    const chrootDir = mkdtempSync(path.join(root, 'failed-'));
    // a's version fails after its library was written (a later file's source is missing): its directory goes, and the library with it.
    const broken = assembly(chrootDir, 'a', { 'bento-client.sh': LIBRARY, 'zz-missing.nix': 'gone\n' });
    rmSync((broken.files[1] as { source: string }).source);
    const [, ...others] = fleetOf(chrootDir);
    const written = await writeVersionsAhead(chrootDir, [broken, ...others].map((system) => ({ assembly: system, options })));
    expect(written.get('a')?.ok).toBe(false);
    const dirs = others.map((system) => {
      const outcome = written.get(system.name);
      if (!outcome?.ok) throw new Error(`${system.name} not written`);
      return outcome.value.temporary;
    });
    expectWhole(dirs, others);
    expect(lstatSync(path.join(dirs[0] as string, 'bento-client.sh')).nlink).toBe(2);
    discardVersionsAhead(chrootDir);
  });

  it('a check of many systems reads a shared file once, once it is no longer racy; a file changed since is read again and found', async () => {
    const chrootDir = mkdtempSync(path.join(root, 'check-'));
    const systems = fleetOf(chrootDir);
    const staged = await stageVersions(chrootDir, systems.map((system) => ({ assembly: system, options })));
    publishStagedBatch(chrootDir, systems.map((system, index) => ({ system, versionName: (staged[index] as { ok: true; value: string }).value, storeBasename: undefined })), NOW);
    // Racy (the clock read as the shared file's last change): each system's copy is read.
    const changedMs = Number(lstatSync(path.join(chrootDir, 'a', 'config', 'bento-client.sh'), { bigint: true }).ctimeNs / 1_000_000n);
    const clock = vi.spyOn(Date, 'now').mockReturnValue(changedMs);
    const racy: SharedFileChecks = new Map();
    try {
      for (const system of systems) expect(checkPublication(chrootDir, system, undefined, racy).problems).toEqual([]);
    } finally {
      clock.mockRestore();
    }
    const perSystem = systems[0]?.files.length as number;
    expect(vi.mocked(hash.sha256File).mock.calls.length).toBe(3 * perSystem);

    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS + 20));
    vi.mocked(hash.sha256File).mockClear();
    const shared: SharedFileChecks = new Map();
    const results = systems.map((system) => checkPublication(chrootDir, system, undefined, shared));
    expect(results.map((result) => result.problems)).toEqual([[], [], []]);
    // Four distinct files in a's version; b and c add only their own update.sh.
    expect(vi.mocked(hash.sha256File).mock.calls.length).toBe(perSystem + 2);
    expect(results[2]?.stats?.files['bento-client.sh']).toEqual(results[0]?.stats?.files['bento-client.sh']);

    // The library changed in place after a's check: b's check sees another file (its ctime moved) and reads it.
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS + 20));
    vi.mocked(hash.sha256File).mockClear();
    const changed: SharedFileChecks = new Map();
    expect(checkPublication(chrootDir, systems[0] as Assembly, undefined, changed).problems).toEqual([]);
    writeFileSync(path.join(chrootDir, 'a', 'config', 'bento-client.sh'), 'tampered\n');
    expect(checkPublication(chrootDir, systems[1] as Assembly, undefined, changed).problems).toEqual(['bento-client.sh differs from the manifest']);
  });
});
