/**
 * Server-side fixtures for deploy tests, as root: one system user per test
 * system, in the group sftp_users (made once per run by global-setup.ts),
 * and a chroot directory under /srv (sshd refuses chroots under /tmp).
 * Everything is removed again by cleanup().
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { deployLockPath } from '../../src/chroot/chroot-dir.js';
import { flakeNamesCachePath } from '../../src/chroot/flake-names-cache.js';
import { publishedStatsPath } from '../../src/chroot/published-stats.js';
import { generateRecordPath } from '../../src/commands/shared/generate-record-store.js';
import { AUTO_ROOTS_DIR, removeAutoRoots } from '../../src/nix/store-copy.js';
import { makeFleet, type FleetSpec, type TestFleet } from './fleet.js';
import { SFTP_GROUP } from './global-setup.js';

export interface TestServer {
  chrootDir: string;
  /** A short random prefix: system names are `${prefix}<name>` so they never collide with real accounts. */
  prefix: string;
  /** SFTP users as bento's server setup makes them, with their homes in `chrootDir` (default: the server's). */
  addUsers(names: string[], chrootDir?: string): void;
  cleanup(): void;
}

function exists(kind: 'passwd' | 'group', name: string): boolean {
  return spawnSync('getent', [kind, name]).status === 0;
}

export function createTestServer(): TestServer {
  const prefix = `bt${randomBytes(2).toString('hex')}`;
  const chrootDir = `/srv/bento-test-${prefix}`;
  // As the server's setup-debian.sh leaves it (install -d -m 0755), before any deploy.
  mkdirSync(chrootDir, { recursive: true, mode: 0o755 });
  // Not made here: three test files run at once, and two of them making the
  // group, or one removing it while another uses it, would race.
  if (!exists('group', SFTP_GROUP)) throw new Error(`the group ${SFTP_GROUP} is missing: test/helpers/global-setup.ts makes it for the run (vitest's globalSetup)`);
  const users: string[] = [];
  // Every CHROOT_DIR the test file gave accounts a home in: deploy's caches of each (outside it) go at the end.
  const chrootDirs = new Set([chrootDir]);
  return {
    chrootDir,
    prefix,
    addUsers(names, home = chrootDir) {
      chrootDirs.add(home);
      for (const name of names) {
        if (exists('passwd', name)) continue;
        execFileSync('useradd', ['--system', '--no-create-home', '--home-dir', path.join(home, name), '--gid', SFTP_GROUP, '--shell', '/usr/sbin/nologin', name]);
        users.push(name);
      }
    },
    cleanup() {
      for (const user of users) spawnSync('userdel', [user]);
      rmSync(chrootDir, { recursive: true, force: true });
      for (const dir of chrootDirs) removeDeployCaches(dir);
      removeAutoRootsUnder(chrootDir);
    },
  };
}

/**
 * Deploy's names cache and record of published files, generate's record
 * (chroot/root-cache.ts) and the deploy lock file (chroot-dir.ts) of a
 * CHROOT_DIR, kept outside it.
 */
export function removeDeployCaches(chrootDir: string): void {
  rmSync(flakeNamesCachePath(chrootDir), { force: true });
  rmSync(publishedStatsPath(chrootDir), { force: true });
  rmSync(generateRecordPath(chrootDir), { force: true });
  rmSync(deployLockPath(chrootDir), { force: true });
}

/** Nix's records of indirect GC roots (nix-store --add-root) made under `dir`, which would dangle once it is gone. */
export function removeAutoRootsUnder(dir: string, autoRootsDir = AUTO_ROOTS_DIR): void {
  removeAutoRoots((link) => link.startsWith(`${dir}/`), autoRootsDir);
}

export interface Snapshot {
  [relative: string]: string;
}

/** inode, mtime, mode and owner of every entry under `dir` (without following links). */
export function snapshotTree(dir: string): Snapshot {
  const snapshot: Snapshot = {};
  const walk = (relative: string) => {
    const absolute = path.join(dir, relative);
    const stats = lstatSync(absolute);
    snapshot[relative || '.'] = `${stats.ino} ${stats.mtimeMs} ${stats.mode.toString(8)} ${stats.uid}:${stats.gid}`;
    if (stats.isDirectory()) for (const entry of readdirSync(absolute).sort()) walk(relative ? `${relative}/${entry}` : entry);
  };
  walk('');
  return snapshot;
}

/** For systems without flakes: the repository's offline <nixpkgs/nixos>, as NIX_PATH. */
export const NIX_ENV = { NIX_PATH: `nixpkgs=${path.join(import.meta.dirname, '..', '..', 'example', 'offline-nixpkgs')}` };

export interface ServerSuite {
  /** The suite's server (made in beforeAll, as root). */
  readonly server: TestServer;
  /** A system name of this suite: the server's random prefix, then `name`. */
  n(name: string): string;
  /** Runs `cleanup` after the suite's tests, before the server goes (last registered first). */
  later(cleanup: () => void): void;
  /** A fleet of `hosts` whose config.sh names `chrootDir` (the server's by default), removed after the suite's tests. */
  fleet(hosts: FleetSpec['hosts'], chrootDir?: string): TestFleet;
}

/**
 * A test server for the suite that calls it: made before its tests (only
 * as root: the suites skip otherwise), removed after them with whatever the
 * tests registered with `later`.
 */
export function useTestServer(): ServerSuite {
  let server: TestServer | undefined;
  const cleanups: (() => void)[] = [];
  beforeAll(() => {
    if (process.getuid?.() === 0) server = createTestServer();
  });
  afterAll(() => {
    for (const cleanup of cleanups.reverse()) cleanup();
    server?.cleanup();
  });
  const suite: ServerSuite = {
    get server() {
      if (!server) throw new Error('the test server exists only as root, after beforeAll');
      return server;
    },
    n: (name) => `${server?.prefix ?? ''}${name}`,
    later: (cleanup) => cleanups.push(cleanup),
    fleet: (hosts, chrootDir) => {
      const fleet = makeFleet({ config: `CHROOT_DIR=${chrootDir ?? suite.server.chrootDir}\nREMOTE_IP=127.0.0.1\n`, hosts });
      cleanups.push(fleet.cleanup);
      return fleet;
    },
  };
  return suite;
}
