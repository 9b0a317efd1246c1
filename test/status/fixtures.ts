/**
 * Builders for status tests: store hashes, in-memory snapshots, and real
 * chroot directories in a temporary folder.
 */
import os from 'node:os';
import path from 'node:path';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import type { Accounts } from '../../src/chroot/accounts.js';
import { parseLogName, type LogResult } from '../../src/protocol/log-name.js';
import type { Expected, SystemSnapshot } from '../../src/status/read-chroot.js';
import type { LogEntry } from '../../src/protocol/log-file.js';

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';

/** A valid 32-character nix hash starting with `prefix` (nix32 letters only), padded deterministically. */
export function hash(prefix: string): string {
  let padding = '';
  for (let i = 0; padding.length + prefix.length < 32; i++) padding += NIX32[(prefix.length * 7 + i * 5) % 32];
  return prefix + padding;
}

export function storePath(hashPrefix: string, name = 'nixos-system-x-24.05'): string {
  return `${hash(hashPrefix)}-${name}`;
}

export function logName(hashPrefix: string, result: LogResult, stamp = '20240601-1200', name = 'nixos-system-x-24.05'): string {
  return `${stamp}_${storePath(hashPrefix, name)}_${result}.log.gz`;
}

/** T0 is "now" in every fixture; times are seconds before it. */
export const NOW = new Date('2024-06-01T12:00:00Z');
export const ago = (seconds: number): number => NOW.getTime() - seconds * 1000;

export function logEntry(hashPrefix: string, result: LogResult, secondsAgo: number, stamp?: string): LogEntry {
  const fileName = logName(hashPrefix, result, stamp);
  const parsed = parseLogName(fileName);
  if (!parsed.ok) throw new Error(`bad fixture ${fileName}: ${parsed.reason}`);
  return { fileName, log: parsed.log, mtimeMs: ago(secondsAgo) };
}

export function flake(hashPrefix: string): Expected {
  return { kind: 'flake', storeBasename: storePath(hashPrefix), hash: hash(hashPrefix) };
}

export function snapshot(name: string, fields: Partial<Omit<SystemSnapshot, 'name' | 'heartbeat'>> & { heartbeat?: SystemSnapshot['heartbeat'] } = {}): SystemSnapshot {
  return { name, expected: { kind: 'non-flake' }, lastChangeMs: ago(3600), logs: [], problems: [], heartbeat: null, ...fields };
}

/** A heartbeat received `secondsAgo`, saying the machine runs (and booted) `runningPrefix`'s store path. */
export function heartbeat(secondsAgo: number, runningPrefix?: string, rebootPending = false): NonNullable<SystemSnapshot['heartbeat']> {
  const says = runningPrefix === undefined ? {} : { running: storePath(runningPrefix), booted: storePath(runningPrefix), rebootPending };
  return { receivedMs: ago(secondsAgo), says };
}

/** SILENT_AFTER of one hour at NOW. */
export const SILENCE = { nowMs: NOW.getTime(), silentAfterMs: 3_600_000 };

/** A temporary CHROOT_DIR (in `base`, the system's temporary directory by default), removed by `cleanup`. */
export async function makeChroot(base = os.tmpdir()): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(base, 'bento-status-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** `<dir>/<name>/{logs/,config/,last_change_date}` as deploy leaves it. */
export async function addSystem(dir: string, name: string, options: { lastChangeAgo?: number | null; logs?: [string, number][] } = {}): Promise<void> {
  await mkdir(path.join(dir, name, 'logs'), { recursive: true });
  await mkdir(path.join(dir, name, 'config'), { recursive: true });
  if (options.lastChangeAgo !== null) await touch(path.join(dir, name, 'last_change_date'), options.lastChangeAgo ?? 3600);
  for (const [file, secondsAgo] of options.logs ?? []) await writeLog(path.join(dir, name, 'logs', file), secondsAgo);
}

/** A whole gzip log, as a client uploads it. */
export const LOG_CONTENT = gzipSync('bento update of x\nbuilding the configuration\nswitching\n');

/** Writes a whole gzip log received `secondsAgo`. */
export async function writeLog(file: string, secondsAgo: number, content: Uint8Array = LOG_CONTENT): Promise<void> {
  await writeFile(file, content);
  const time = ago(secondsAgo) / 1000;
  await utimes(file, time, time);
}

export async function touch(file: string, secondsAgo: number): Promise<void> {
  await writeFile(file, '');
  const time = ago(secondsAgo) / 1000;
  await utimes(file, time, time);
}

/**
 * The accounts of `names` as bento's server setup makes them (primary group
 * sftp_users, home CHROOT_DIR/<name>, nologin), for tests of what the prune
 * does with logs; the account rule itself is tested on real users
 * (test/commands/prune.test.ts).
 */
export function accountsFor(chrootDir: string, names: readonly string[]): Accounts {
  const sftpGroupId = 4242;
  const users = new Map(names.map((name, i) => [name, { name, uid: 5000 + i, gid: sftpGroupId, home: path.join(chrootDir, name), shell: '/usr/sbin/nologin' }]));
  return { users, sftpGroupId };
}
