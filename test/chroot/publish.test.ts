/**
 * Publication into a system's chroot, called directly: the directories sshd
 * demands, a version staged then activated (config/ switched, then
 * last_change_date), what the chroot publishes read back, and damage found.
 * Root: the chroot's directories belong to root and the system's user.
 */
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Assembly } from '../../src/chroot/assemble.js';
import { activateVersion, activeVersion, ensureSystemDirs, isActive, isPublished, publishedContentProblems, readPublished, recordSystemDir, removeLeftovers, stageVersion, discardVersionsAhead, stageWrittenVersions, writeVersionsAhead } from '../../src/chroot/publish.js';
import type { RecordedDir } from '../../src/chroot/published-stats.js';
import { renderManifest } from '../../src/protocol/manifest.js';
import { listChrootDir } from '../../src/protocol/layout.js';
import { sha256 } from '../../src/util/hash.js';

const isRoot = process.getuid?.() === 0;
const UID = 4321;
const GID = 4322;
const NOW = new Date('2026-11-26T10:00:00.000Z');

const root = mkdtempSync(path.join(os.tmpdir(), 'bento-publish-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** web's configuration with these files, their sources written under the temp directory. */
function assembly(tag: string, contents: Record<string, string>): Assembly {
  const sources = path.join(root, 'sources', tag);
  mkdirSync(sources, { recursive: true });
  const files = Object.entries(contents)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([relative, content]) => {
      const source = path.join(sources, relative.replace(/\//g, '_'));
      writeFileSync(source, content);
      return { relative, source, executable: relative.endsWith('.sh'), sha256: sha256(content) };
    });
  const manifest = renderManifest(files.map((file) => ({ path: file.relative, sha256: file.sha256 })));
  return { name: 'web', files, manifest, digest: sha256(manifest), shadowed: [] };
}

describe.skipIf(!isRoot)('publication', () => {
  const chrootDir = path.join(root, 'chroot');
  mkdirSync(chrootDir, { recursive: true });

  it('ensureSystemDirs: <name>/ root-owned 0755, logs/ the system user\'s; the removed marker gone', () => {
    mkdirSync(path.join(chrootDir, 'web'), { mode: 0o777 });
    writeFileSync(path.join(chrootDir, 'web', 'removed'), '');
    ensureSystemDirs(chrootDir, 'web', UID, GID);
    const dir = statSync(path.join(chrootDir, 'web'));
    const logs = statSync(path.join(chrootDir, 'web', 'logs'));
    expect([dir.uid, dir.gid, dir.mode & 0o7777]).toEqual([0, GID, 0o755]);
    expect([logs.uid, logs.gid, logs.mode & 0o7777]).toEqual([UID, GID, 0o755]);
    expect(readdirSync(path.join(chrootDir, 'web'))).toEqual(['logs']);
  });

  it('ensureSystemDirs: refuses a link or a file in their place, naming it', () => {
    symlinkSync('/etc', path.join(chrootDir, 'linked'));
    expect(() => ensureSystemDirs(chrootDir, 'linked', UID, GID)).toThrow(`${path.join(chrootDir, 'linked')} is a symbolic link (to /etc): bento does not replace it`);
    writeFileSync(path.join(chrootDir, 'file'), '');
    expect(() => ensureSystemDirs(chrootDir, 'file', UID, GID)).toThrow('is not a directory');
  });

  it('stages a version unseen, then activates it: config/ switched, then announced', () => {
    const first = assembly('one', { 'configuration.nix': '{ }\n', 'update.sh': 'echo one\n' });
    expect(readPublished(chrootDir, 'web')).toEqual({ manifest: undefined, stampDigest: undefined });
    const version = stageVersion(chrootDir, first, { sftpGroupId: GID, now: NOW });
    const staged = statSync(path.join(chrootDir, 'web', version));
    expect([staged.uid, staged.gid, staged.mode & 0o7777]).toEqual([0, GID, 0o750]);
    expect(statSync(path.join(chrootDir, 'web', version, 'update.sh')).mode & 0o777).toBe(0o755);
    expect(activeVersion(chrootDir, 'web')).toBeUndefined();
    expect(isPublished(readPublished(chrootDir, 'web'), first)).toBe(false);

    activateVersion(chrootDir, first, version, NOW);
    expect(lstatSync(path.join(chrootDir, 'web', 'config')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(path.join(chrootDir, 'web', 'config'))).toBe(version);
    expect(activeVersion(chrootDir, 'web')).toBe(version);
    expect(readFileSync(path.join(chrootDir, 'web', 'last_change_date'), 'utf8')).toBe(`${first.digest} 2026-11-26T10:00:00.000Z\n`);
    expect(readPublished(chrootDir, 'web')).toEqual({ manifest: first.manifest, stampDigest: first.digest });
    expect(isPublished(readPublished(chrootDir, 'web'), first)).toBe(true);
    expect(isActive(chrootDir, 'web', version, first.digest)).toBe(true);
    expect(publishedContentProblems(chrootDir, first)).toEqual([]);

    // The next one: the one before stays (a machine may be downloading it).
    const second = assembly('two', { 'configuration.nix': '{ x = 1; }\n', 'update.sh': 'echo two\n' });
    const next = stageVersion(chrootDir, second, { sftpGroupId: GID, now: NOW });
    activateVersion(chrootDir, second, next, NOW);
    expect(isPublished(readPublished(chrootDir, 'web'), second)).toBe(true);
    expect(readdirSync(path.join(chrootDir, 'web')).filter((entry) => entry.startsWith('.config-')).sort()).toEqual([version, next].sort());
  });

  it('a version of the same name that is current is never written over: it gets a new name', () => {
    const current = activeVersion(chrootDir, 'web') as string;
    const again = assembly('two-again', { 'configuration.nix': '{ x = 1; }\n', 'update.sh': 'echo two\n' });
    const version = stageVersion(chrootDir, again, { sftpGroupId: GID, now: NOW });
    expect(version).toBe(`${current}-${NOW.getTime().toString(36)}`);
  });

  it("writeVersionsAhead writes versions into a staging area of CHROOT_DIR, never the system's directory: stageWrittenVersions renames them into it, discardVersionsAhead takes the rest", async () => {
    const dir = path.join(chrootDir, 'web');
    const staging = path.join(chrootDir, `.staging-${process.pid}`);
    const before = { entries: readdirSync(dir).sort(), mtimeNs: statSync(dir, { bigint: true }).mtimeNs };
    const ahead = assembly('ahead', { 'configuration.nix': '{ ahead = 1; }\n', 'update.sh': 'echo ahead\n' });
    const written = await writeVersionsAhead(chrootDir, [{ assembly: ahead, options: { sftpGroupId: GID, now: NOW } }]);
    const outcome = written.get('web');
    if (!outcome?.ok) throw new Error(`not written: ${String(outcome?.ok === false ? outcome.error : 'no outcome')}`);
    expect(outcome.value.temporary).toBe(path.join(staging, 'web'));
    expect(outcome.value.versionName).toBe(`.config-${ahead.digest.slice(0, 16)}`);
    const area = statSync(staging);
    expect([area.uid, area.mode & 0o7777]).toEqual([0, 0o700]);
    expect(readFileSync(path.join(staging, 'web', 'update.sh'), 'utf8')).toBe('echo ahead\n');
    // Not published after all: the system's directory is as it was, its mtime included.
    discardVersionsAhead(chrootDir);
    expect(existsSync(staging)).toBe(false);
    expect({ entries: readdirSync(dir).sort(), mtimeNs: statSync(dir, { bigint: true }).mtimeNs }).toEqual(before);

    const again = (await writeVersionsAhead(chrootDir, [{ assembly: ahead, options: { sftpGroupId: GID, now: NOW } }])).get('web');
    if (!again?.ok) throw new Error('not written');
    const other = assembly('not-ahead', { 'configuration.nix': '{ other = 1; }\n' });
    const staged = await stageWrittenVersions(chrootDir, [{ assembly: ahead, options: { sftpGroupId: GID, now: NOW } }], new Map([['web', again.value]]));
    expect(staged).toEqual([{ ok: true, value: `.config-${ahead.digest.slice(0, 16)}` }]);
    const version = path.join(dir, `.config-${ahead.digest.slice(0, 16)}`);
    expect([statSync(version).uid, statSync(version).gid, statSync(version).mode & 0o7777]).toEqual([0, GID, 0o750]);
    expect(readFileSync(path.join(version, 'update.sh'), 'utf8')).toBe('echo ahead\n');
    expect(readdirSync(staging)).toEqual([]);
    discardVersionsAhead(chrootDir);
    // A system not written ahead is staged whole.
    const whole = await stageWrittenVersions(chrootDir, [{ assembly: other, options: { sftpGroupId: GID, now: NOW } }], new Map());
    expect(whole).toEqual([{ ok: true, value: `.config-${other.digest.slice(0, 16)}` }]);
    expect(readdirSync(dir).filter((entry) => entry.includes('.tmp-'))).toEqual([]);
    for (const name of [version, path.join(dir, `.config-${other.digest.slice(0, 16)}`)]) rmSync(name, { recursive: true });
  });

  it("a killed deploy's staging area is a leftover: removeLeftovers takes it away, whole, and no listing sees a system in it", () => {
    const leftover = path.join(chrootDir, '.staging-4242');
    mkdirSync(path.join(leftover, 'web', 'sub'), { recursive: true, mode: 0o700 });
    writeFileSync(path.join(leftover, 'web', 'sub', 'update.sh'), 'echo left\n');
    const listing = listChrootDir(chrootDir);
    expect(listing.temporaries).toContain('.staging-4242');
    expect([...listing.systems.map((system) => system.name), ...listing.strays.map((stray) => stray.name)]).not.toContain('.staging-4242');
    removeLeftovers(chrootDir, ['web']);
    expect(existsSync(leftover)).toBe(false);
  });

  it('publishedContentProblems names each published file that differs from the manifest, or is gone', () => {
    const published = assembly('two-check', { 'configuration.nix': '{ x = 1; }\n', 'update.sh': 'echo two\n' });
    const config = path.join(chrootDir, 'web', 'config');
    writeFileSync(path.join(config, 'configuration.nix'), 'tampered\n');
    rmSync(path.join(config, 'update.sh'));
    expect(publishedContentProblems(chrootDir, published)).toEqual(['configuration.nix differs from the manifest', 'update.sh cannot be read (ENOENT)']);
  });

  it("removeLeftovers takes away what a killed deploy or bento reboots left in a system's directory, and nothing else", () => {
    const dir = path.join(chrootDir, 'web');
    const leftovers = ['config.tmp-4242', '.config-0123456789abcdef.tmp-4242', '.last_change_date.tmp-4242', 'last_change_date.tmp-4242', '.reboot-slot.tmp-4242'];
    for (const entry of leftovers) writeFileSync(path.join(dir, entry), 'x');
    writeFileSync(path.join(dir, 'reboot-slot'), 'kept\n');
    const before = readdirSync(dir).filter((entry) => !leftovers.includes(entry));
    removeLeftovers(chrootDir, ['web']);
    expect(readdirSync(dir).sort()).toEqual(before.sort());
    expect(readFileSync(path.join(dir, 'reboot-slot'), 'utf8')).toBe('kept\n');
  });

  it("with deploy's record of the directory (recordSystemDir), a leftover made since is still found and taken away", () => {
    const dir = path.join(chrootDir, 'web');
    const recorded = recordSystemDir(chrootDir, 'web', undefined, { list: true }) as RecordedDir;
    expect(recorded).toBeDefined();
    // Dated 10 s later (settled): kept as it is while the directory does not change.
    const settled = [String(BigInt(recorded[0]) + 10_000_000_000n), ...recorded.slice(1)] as RecordedDir;
    expect(recordSystemDir(chrootDir, 'web', settled)).toBe(settled);
    writeFileSync(path.join(dir, 'config.tmp-4243'), 'x');
    expect(recordSystemDir(chrootDir, 'web', settled, { list: true })).toBeUndefined();
    removeLeftovers(chrootDir, ['web'], new Map([['web', { dir: settled }]]));
    expect(existsSync(path.join(dir, 'config.tmp-4243'))).toBe(false);
  });
});
