/**
 * chroot/retire.ts: a system that left the fleet loses what was published
 * for it and keeps its logs, and only bento's own directories are touched
 * (root:sftp_users, not links), as root on a test server.
 */
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findDepartures, retireSystem } from '../../src/chroot/retire.js';
import { ensureSystemDirs } from '../../src/chroot/publish.js';
import { isRoot } from '../helpers/shell.js';
import { useTestServer } from '../helpers/server.js';
import { storePath } from '../status/fixtures.js';

const suite = useTestServer();

function sftpGroupId(): number {
  return Number(readFileSync('/etc/group', 'utf8').split('\n').find((line) => line.startsWith('sftp_users:'))?.split(':')[2]);
}

/** A system's directory as deploy leaves it: published (config, a version, last_change_date), a prebuilt cache, logs. */
function published(chrootDir: string, name: string, gid: number): string {
  const dir = path.join(chrootDir, name);
  mkdirSync(path.join(dir, 'logs'), { recursive: true, mode: 0o755 });
  chownSync(dir, 0, gid);
  mkdirSync(path.join(dir, '.config-0123456789abcdef'));
  writeFileSync(path.join(dir, '.config-0123456789abcdef', 'update.sh'), '#!/bin/sh\n');
  symlinkSync('.config-0123456789abcdef', path.join(dir, 'config'));
  writeFileSync(path.join(dir, 'last_change_date'), `${'a'.repeat(64)} 2024-06-01T12:00:00Z\n`);
  mkdirSync(path.join(dir, '.cache-0123456789abcdef'));
  writeFileSync(path.join(dir, '.cache-0123456789abcdef', 'system'), '/nix/store/x\n');
  writeFileSync(path.join(dir, 'logs', 'a-log'), 'kept');
  return dir;
}

describe.skipIf(!isRoot)('systems that left the fleet', () => {
  it("finds bento's own directories only, retires one (its logs kept), and a deploy that finds it again clears the mark", async () => {
    const { chrootDir } = suite.server;
    const gid = sftpGroupId();
    const [kept, gone, other, linked] = ['kept', 'gone', 'other', 'linked'].map(suite.n) as [string, string, string, string];
    suite.server.addUsers([kept, gone]);
    published(chrootDir, kept, gid);
    const dir = published(chrootDir, gone, gid);
    writeFileSync(path.join(chrootDir, 'states.txt'), `${gone}=${storePath('fcz1s2yp')}\n${kept}=${storePath('1dyc4lgr')}\n`);
    // Not bento's: a directory of another group, a link to a published-looking directory, not a system name.
    published(chrootDir, other, 0);
    const elsewhere = published(path.join(chrootDir, 'HHApp'), linked, gid);
    symlinkSync(elsewhere, path.join(chrootDir, linked));

    expect(findDepartures(chrootDir, new Set([kept]), gid)).toEqual({ toRetire: [gone], retired: [] });
    await retireSystem(chrootDir, gone, gid, new Date('2024-06-01T12:00:00Z'));
    expect(readdirSync(dir).sort()).toEqual(['logs', 'removed']);
    expect(readFileSync(path.join(dir, 'logs', 'a-log'), 'utf8')).toBe('kept');
    expect(readFileSync(path.join(dir, 'removed'), 'utf8')).toContain('removed from the fleet by bento deploy on 2024-06-01T12:00:00.000Z');
    expect(readFileSync(path.join(chrootDir, 'states.txt'), 'utf8')).toBe(`${kept}=${storePath('1dyc4lgr')}\n`);
    expect(findDepartures(chrootDir, new Set([kept]), gid)).toEqual({ toRetire: [], retired: [gone] });
    // The others are as they were.
    for (const name of [kept, other]) expect(existsSync(path.join(chrootDir, name, 'config'))).toBe(true);
    expect(existsSync(path.join(elsewhere, 'config'))).toBe(true);

    // A retirement killed before its marker is completed by the next deploy; in the fleet again, the mark goes.
    writeFileSync(path.join(dir, 'last_change_date'), 'x');
    expect(findDepartures(chrootDir, new Set([kept]), gid).toRetire).toEqual([gone]);
    await retireSystem(chrootDir, gone, gid, new Date());
    expect(readdirSync(dir).sort()).toEqual(['logs', 'removed']);
    const uid = Number(readFileSync('/etc/passwd', 'utf8').split('\n').find((line) => line.startsWith(`${gone}:`))?.split(':')[2]);
    ensureSystemDirs(chrootDir, gone, uid, gid);
    expect(existsSync(path.join(dir, 'removed'))).toBe(false);
  });
});
