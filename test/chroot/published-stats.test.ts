/**
 * Deploy's record of the published files' lstats: a file whose lstat is the
 * recorded one, and not racy, is not read again; anything else is hashed;
 * the record is root's alone, trusted only when nobody else could have
 * written it, rewritten only when it changes. Root: the cache directory
 * must be root's.
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Assembly } from '../../src/chroot/assemble.js';
import { checkPublication, checkPublishedContent } from '../../src/chroot/publish.js';
import { parsePublishedStats, publishedStatsPath, readPublishedStats, recordFile, renderPublishedStats, savePublishedStats, unchangedSinceRecorded, type SystemStats } from '../../src/chroot/published-stats.js';
import { renameSync, symlinkSync } from 'node:fs';
import { renderChangeStampOfDigest, MANIFEST_NAME } from '../../src/protocol/manifest.js';
import { renderManifest } from '../../src/protocol/manifest.js';
import * as hash from '../../src/util/hash.js';

vi.mock('../../src/util/hash.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/util/hash.js')>();
  return { ...original, sha256File: vi.fn(original.sha256File) };
});

const isRoot = process.getuid?.() === 0;
const SECOND = 1_000_000_000n;

describe.skipIf(!isRoot)('the record of published files', () => {
  // Not under /tmp: every directory above the record must be root's and not writable by others.
  const parent = mkdtempSync('/srv/bento-published-stats-');
  chmodSync(parent, 0o755);
  afterAll(() => rmSync(parent, { recursive: true, force: true }));
  const cacheDir = path.join(parent, 'cache');
  const chrootDir = path.join(parent, 'chroot');
  beforeEach(() => {
    vi.mocked(hash.sha256File).mockClear();
  });

  /** `name`'s config/ holding `files`, and its assembly. */
  function published(name: string, files: Record<string, string>): Assembly {
    const config = path.join(chrootDir, name, 'config');
    mkdirSync(config, { recursive: true });
    const assembled = Object.entries(files).map(([relative, content]) => {
      writeFileSync(path.join(config, relative), content);
      return { relative, source: path.join(config, relative), executable: false, sha256: hash.sha256(content) };
    });
    const manifest = renderManifest(assembled.map((file) => ({ path: file.relative, sha256: file.sha256 })));
    return { name, files: assembled, manifest, digest: hash.sha256(manifest), shadowed: [] };
  }

  /** The record of `assembly` as checkPublishedContent makes it, dated `shift` later (a record taken long after the files were written). */
  function settledRecord(assembly: Assembly, shift = 10n * SECOND): SystemStats {
    const stats = checkPublishedContent(chrootDir, assembly).stats as SystemStats;
    return { ...stats, statTimeNs: String(BigInt(stats.statTimeNs) + shift) };
  }

  it('takes a file whose lstat is the recorded one as unchanged, and reads any other', () => {
    const assembly = published('web', { 'a.nix': 'a\n', 'b.nix': 'b\n' });
    const first = checkPublishedContent(chrootDir, assembly);
    expect(first.problems).toEqual([]);
    expect(Object.keys(first.stats?.files ?? {})).toEqual(['a.nix', 'b.nix']);
    expect(hash.sha256File).toHaveBeenCalledTimes(2);

    const record = settledRecord(assembly);
    vi.mocked(hash.sha256File).mockClear();
    expect(checkPublishedContent(chrootDir, assembly, record)).toEqual({ problems: [], stats: record });
    expect(hash.sha256File).not.toHaveBeenCalled();

    // Racy: written too close to when its lstat was taken, it is read. (Dated by the files' last change, not by the
    // clock: a test slower than the margin would make a record dated now a settled one.)
    const lastChangeNs = Object.values(record.files).reduce((latest, file) => (BigInt(file[5]) > latest ? BigInt(file[5]) : latest), 0n);
    const racy = { ...record, statTimeNs: String(lastChangeNs) };
    vi.mocked(hash.sha256File).mockClear();
    expect(checkPublishedContent(chrootDir, assembly, racy).problems).toEqual([]);
    expect(hash.sha256File).toHaveBeenCalledTimes(2);

    // Changed (same size), missing, or made unreadable: read, and said.
    writeFileSync(path.join(chrootDir, 'web', 'config', 'a.nix'), 'A\n');
    rmSync(path.join(chrootDir, 'web', 'config', 'b.nix'));
    expect(checkPublishedContent(chrootDir, assembly, record)).toEqual({ problems: ['a.nix differs from the manifest', 'b.nix cannot be read (ENOENT)'] });
  });

  it('decides by the whole lstat, the digest and the change time', () => {
    const assembly = published('db', { 'c.nix': 'c\n' });
    const file = path.join(chrootDir, 'db', 'config', 'c.nix');
    const stats = lstatSync(file, { bigint: true });
    const recorded = recordFile(assembly.files[0]!.sha256, stats);
    const later = String(stats.ctimeNs + 10n * SECOND);
    expect(unchangedSinceRecorded(recorded, later, assembly.files[0]!.sha256, stats)).toBe(true);
    expect(unchangedSinceRecorded(recorded, later, hash.sha256('other'), stats)).toBe(false);
    expect(unchangedSinceRecorded(undefined, later, assembly.files[0]!.sha256, stats)).toBe(false);
    expect(unchangedSinceRecorded(recorded, later, assembly.files[0]!.sha256, undefined)).toBe(false);
    expect(unchangedSinceRecorded(recorded, String(stats.ctimeNs), assembly.files[0]!.sha256, stats)).toBe(false);
    chmodSync(file, 0o600);
    expect(unchangedSinceRecorded(recorded, later, assembly.files[0]!.sha256, lstatSync(file, { bigint: true }))).toBe(false);
  });

  it('is saved root-only, read back, not rewritten when unchanged, and ignored when anyone else could have written it', () => {
    const assembly = published('mail', { 'd.nix': 'd\n' });
    const entries = new Map([['mail', settledRecord(assembly)]]);
    expect(readPublishedStats(chrootDir, cacheDir)).toEqual(new Map());
    expect(savePublishedStats(chrootDir, entries, cacheDir)).toBe(true);
    const file = publishedStatsPath(chrootDir, cacheDir);
    const stats = statSync(file, { bigint: true });
    expect([stats.uid, stats.mode & 0o777n]).toEqual([0n, 0o600n]);
    expect(readPublishedStats(chrootDir, cacheDir)).toEqual(entries);
    savePublishedStats(chrootDir, new Map(entries), cacheDir);
    const again = statSync(file, { bigint: true });
    expect([again.ino, again.mtimeNs]).toEqual([stats.ino, stats.mtimeNs]);
    chownSync(file, 1, 0);
    expect(readPublishedStats(chrootDir, cacheDir)).toEqual(new Map());
    chownSync(file, 0, 0);
    chmodSync(file, 0o644);
    expect(readPublishedStats(chrootDir, cacheDir)).toEqual(new Map());
    chmodSync(file, 0o600);
    chmodSync(cacheDir, 0o777);
    expect(readPublishedStats(chrootDir, cacheDir)).toEqual(new Map());
    chmodSync(cacheDir, 0o700);
    writeFileSync(file, '{"format":"bento published stats 1","systems":{"x":{"statTimeNs":"nope","files":{}}}}\n');
    expect(readPublishedStats(chrootDir, cacheDir)).toEqual(new Map());
  });

  it('parses only what it renders', () => {
    const entry: SystemStats = { statTimeNs: '5', files: { 'e.nix': [hash.sha256('e'), '1', '2', '3', '4', '5'] } };
    expect(parsePublishedStats(renderPublishedStats(new Map([['x', entry]])))).toEqual(new Map([['x', entry]]));
    expect(parsePublishedStats('{"format":"other","systems":{}}')).toEqual(new Map());
    expect(parsePublishedStats(JSON.stringify({ format: 'bento published stats 1', systems: { x: { ...entry, files: { 'e.nix': ['short', '1', '2', '3', '4', '5'] } } } }))).toEqual(new Map());
    expect(parsePublishedStats(JSON.stringify({ format: 'bento published stats 1', systems: { x: { ...entry, files: { 'e.nix': [hash.sha256('e'), '1', '2', '3', '4'] } } } }))).toEqual(new Map());
  });

  it('keeps what a deploy found built the same system as published, and parses only a well-formed one', () => {
    const store = '0123456789abcdfghijklmnpqrsvwxyz-nixos-system-x';
    const entry: SystemStats = { statTimeNs: '5', files: {}, sameSystem: [hash.sha256('assembled'), hash.sha256('published'), store] };
    expect(parsePublishedStats(renderPublishedStats(new Map([['x', entry]])))).toEqual(new Map([['x', entry]]));
    const forged = (sameSystem: unknown) => JSON.stringify({ format: 'bento published stats 1', systems: { x: { ...entry, sameSystem } } });
    expect(parsePublishedStats(forged([hash.sha256('assembled'), hash.sha256('published'), 'not-a-store-path']))).toEqual(new Map());
    expect(parsePublishedStats(forged([hash.sha256('assembled'), 'short', store]))).toEqual(new Map());
    expect(parsePublishedStats(forged([hash.sha256('assembled'), hash.sha256('published')]))).toEqual(new Map());
  });

  /** `name` published as deploy leaves it: a version directory with the files and the manifest, config/ a link to it, last_change_date announcing it. */
  function publishedWhole(name: string, files: Record<string, string>): Assembly {
    const dir = path.join(chrootDir, name);
    rmSync(dir, { recursive: true, force: true });
    const version = path.join(dir, '.config-v1');
    mkdirSync(version, { recursive: true });
    const assembled = Object.entries(files).map(([relative, content]) => {
      writeFileSync(path.join(version, relative), content);
      return { relative, source: path.join(version, relative), executable: false, sha256: hash.sha256(content) };
    });
    const manifest = renderManifest(assembled.map((file) => ({ path: file.relative, sha256: file.sha256 })));
    writeFileSync(path.join(version, MANIFEST_NAME), manifest);
    symlinkSync('.config-v1', path.join(dir, 'config'));
    const digest = hash.sha256(manifest);
    writeFileSync(path.join(dir, 'last_change_date'), renderChangeStampOfDigest(digest, new Date()));
    return { name, files: assembled, manifest, digest, shadowed: [] };
  }

  /** checkPublication's record of `assembly`, dated 10 s later (settled). */
  function settledPublication(assembly: Assembly): SystemStats {
    const stats = checkPublication(chrootDir, assembly).stats as SystemStats;
    expect(stats.manifest).toBeDefined();
    expect(stats.stamp).toBeDefined();
    return { ...stats, statTimeNs: String(BigInt(stats.statTimeNs) + 10n * SECOND) };
  }

  it('checkPublication: a system found as recorded is whole, manifest and announcement included, without hashing a file', () => {
    const assembly = publishedWhole('quiet', { 'a.nix': 'a\n', 'b.nix': 'b\n' });
    const record = settledPublication(assembly);
    vi.mocked(hash.sha256File).mockClear();
    expect(checkPublication(chrootDir, assembly, record)).toEqual({ published: { manifest: assembly.manifest, stampDigest: assembly.digest }, problems: [], stats: record });
    expect(hash.sha256File).not.toHaveBeenCalled();
  });

  it('checkPublication: a published file changed in place, removed, or replaced is found with its record as without', () => {
    for (const damage of ['changed', 'removed', 'replaced'] as const) {
      const assembly = publishedWhole('hurt', { 'a.nix': 'good\n', 'b.nix': 'b\n' });
      const record = settledPublication(assembly);
      const file = path.join(chrootDir, 'hurt', 'config', 'a.nix');
      if (damage === 'changed') writeFileSync(file, 'evil\n');
      else if (damage === 'removed') rmSync(file);
      else {
        writeFileSync(`${file}.new`, 'evil\n');
        renameSync(`${file}.new`, file);
      }
      const checked = checkPublication(chrootDir, assembly, record);
      expect(checked.published, damage).toEqual({ manifest: assembly.manifest, stampDigest: assembly.digest });
      expect(checked.problems, damage).toEqual([damage === 'removed' ? 'a.nix cannot be read (ENOENT)' : 'a.nix differs from the manifest']);
      expect(checked.stats, damage).toBeUndefined();
    }
  });

  it('checkPublication: another manifest or another announcement is read, whatever the record says', () => {
    const assembly = publishedWhole('moved', { 'a.nix': 'a\n' });
    const record = settledPublication(assembly);
    const manifestFile = path.join(chrootDir, 'moved', 'config', MANIFEST_NAME);
    writeFileSync(manifestFile, `${assembly.manifest}other\n`);
    expect(checkPublication(chrootDir, assembly, record).published.manifest).toBe(`${assembly.manifest}other\n`);
    writeFileSync(manifestFile, assembly.manifest);
    writeFileSync(path.join(chrootDir, 'moved', 'last_change_date'), renderChangeStampOfDigest(hash.sha256('other'), new Date()));
    const checked = checkPublication(chrootDir, assembly, record);
    expect(checked.published).toEqual({ manifest: assembly.manifest, stampDigest: hash.sha256('other') });
    expect(checked.stats?.stamp).toBeUndefined();
  });

  it('keeps the manifest and the announcement in the record, and parses only what it renders', () => {
    const entry: SystemStats = { statTimeNs: '5', files: {}, manifest: [hash.sha256('m'), '1', '2', '3', '4', '5'], stamp: [hash.sha256('m'), '1', '2', '3', '4', '6'] };
    expect(parsePublishedStats(renderPublishedStats(new Map([['x', entry]])))).toEqual(new Map([['x', entry]]));
    expect(parsePublishedStats(JSON.stringify({ format: 'bento published stats 1', systems: { x: { ...entry, stamp: ['short', '1', '2', '3', '4', '5'] } } }))).toEqual(new Map());
    expect(savePublishedStats(chrootDir, new Map([['x', entry]]), cacheDir)).toBe(true);
    expect(readPublishedStats(chrootDir, cacheDir)).toEqual(new Map([['x', entry]]));
  });
});
