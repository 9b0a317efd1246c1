/**
 * status/log-cache.ts: what status read of each logs/ is used again while
 * the directory did not change, and never when it might be stale; with or
 * without it, status says the same.
 */
import { chmodSync, chownSync, copyFileSync, cpSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LogCache, logCacheFile, logNamesDigest, neededLogs } from '../../src/status/log-cache.js';
import { readChroot } from '../../src/status/read-chroot.js';
import { decideStatus } from '../../src/status/states.js';
import { bento } from '../helpers/cli.js';
import { addSystem, ago, LOG_CONTENT, logEntry, logName, makeChroot, storePath, touch } from './fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function tempDir(): Promise<string> {
  const made = await makeChroot();
  cleanups.push(made.cleanup);
  return made.dir;
}

/** A logs/ directory last changed `secondsAgo` (older than RACY_MS: it may be remembered). */
function age(dir: string, name: string, secondsAgo = 60): void {
  const logs = path.join(dir, name, 'logs');
  const time = Date.now() / 1000 - secondsAgo;
  utimesSync(logs, time, time);
}

/** A whole log whose mtime is `secondsAgo` (Date.now based, as the directories). */
function logAgo(file: string, secondsAgo: number): void {
  const time = Date.now() / 1000 - secondsAgo;
  writeFileSync(file, LOG_CONTENT);
  utimesSync(file, time, time);
}

/** An empty file whose mtime is `secondsAgo` (Date.now based). */
function touchAgo(file: string, secondsAgo: number): void {
  const time = Date.now() / 1000 - secondsAgo;
  writeFileSync(file, '');
  utimesSync(file, time, time);
}

async function statuses(dir: string, cache?: LogCache) {
  return (await readChroot(dir, { cache })).systems.map((system) => decideStatus(system));
}

describe('neededLogs', () => {
  it('keeps the latest log and those newer than last_change_date', () => {
    const logs = [logEntry('aa', 'success', 500), logEntry('bb', 'failure', 300), logEntry('cc', 'success', 200), logEntry('dd', 'success', 100)];
    expect(neededLogs(logs, ago(250)).map((log) => log.fileName)).toEqual([logs[2]?.fileName, logs[3]?.fileName]);
    expect(neededLogs(logs, ago(10)).map((log) => log.fileName)).toEqual([logs[3]?.fileName]);
    expect(neededLogs(logs, null).map((log) => log.fileName)).toEqual([logs[3]?.fileName]);
    expect(neededLogs([], ago(10))).toEqual([]);
  });
});

/** The client's heartbeat upload (docs/protocol.md §5a): a temporary file renamed into logs/. */
function heartbeatNow(dir: string, name: string, running: string): void {
  const temporary = path.join(dir, name, 'logs', '.heartbeat.tmp-42');
  writeFileSync(temporary, `bento heartbeat of ${name} on x\nprotocol: 2\nrunning: ${running}\n\n`);
  renameSync(temporary, path.join(dir, name, 'logs', 'heartbeat'));
}

describe('LogCache and the heartbeat', () => {
  it('a heartbeat renamed into logs/ changes the directory but no log: the entry is still used, the heartbeat read anew', async () => {
    const dir = await tempDir();
    await addSystem(dir, 'a', { lastChangeAgo: 250, logs: [[logName('aa', 'success'), 300]] });
    heartbeatNow(dir, 'a', storePath('aa'));
    age(dir, 'a');
    const cache = new LogCache();
    await statuses(dir, cache);
    expect([cache.hits, cache.misses]).toEqual([0, 1]);
    const before = statSync(path.join(dir, 'a', 'logs'));
    heartbeatNow(dir, 'a', storePath('bb'));
    expect(statSync(path.join(dir, 'a', 'logs')).mtimeMs).not.toBe(before.mtimeMs);
    const [after] = (await readChroot(dir, { cache })).systems;
    expect([cache.hits, cache.misses]).toEqual([1, 1]);
    expect(after?.heartbeat?.says.running).toBe(storePath('bb'));
    expect(after?.heartbeat?.receivedMs).toBe(statSync(path.join(dir, 'a', 'logs', 'heartbeat')).mtimeMs);
    expect(decideStatus(after!).drift).toBe(true);
  });

  it('a log that arrives with the heartbeat is read: the names differ', async () => {
    const dir = await tempDir();
    await addSystem(dir, 'a', { lastChangeAgo: 250, logs: [[logName('aa', 'success'), 300]] });
    age(dir, 'a');
    const cache = new LogCache();
    await statuses(dir, cache);
    logAgo(path.join(dir, 'a', 'logs', logName('bb', 'failure', '20240601-1300')), 1);
    heartbeatNow(dir, 'a', storePath('aa'));
    const [after] = await statuses(dir, cache);
    expect(after?.state).toBe('failing');
    expect([cache.hits, cache.misses]).toEqual([0, 2]);
  });

  it('a file it did not read as a log, replaced under the same name (the prune shortening one over the limit), is read anew', async () => {
    const dir = await tempDir();
    await addSystem(dir, 'a', { lastChangeAgo: 250, logs: [[logName('aa', 'failure'), 200]] });
    const big = path.join(dir, 'a', 'logs', logName('bb', 'success', '20240601-1300'));
    writeFileSync(big, Buffer.alloc(70 * 1024));
    age(dir, 'a');
    const cache = new LogCache();
    const options = { cache, logSizeLimit: 64 * 1024 };
    expect((await readChroot(dir, options)).systems.map((system) => decideStatus(system).state)).toEqual(['failing']);
    // The prune: a short whole log under the same name, with the same mtime.
    const { mtime } = statSync(big);
    writeFileSync(`${big}.tmp-1`, LOG_CONTENT);
    utimesSync(`${big}.tmp-1`, mtime, mtime);
    renameSync(`${big}.tmp-1`, big);
    heartbeatNow(dir, 'a', storePath('aa'));
    expect((await readChroot(dir, options)).systems.map((system) => decideStatus(system).state)).toEqual(['extra-logs']);
    expect([cache.hits, cache.misses]).toEqual([0, 2]);
  });

  it('remembers what a heartbeat said across runs, while it is the same file', async () => {
    const dir = await tempDir();
    const cacheDir = await tempDir();
    const file = logCacheFile(cacheDir, dir);
    await addSystem(dir, 'a', { lastChangeAgo: 250, logs: [[logName('aa', 'success'), 300]] });
    heartbeatNow(dir, 'a', storePath('aa'));
    age(dir, 'a');
    const first = LogCache.load(file);
    const read = (await readChroot(dir, { cache: first })).systems[0]?.heartbeat;
    first.save();
    const second = LogCache.load(file);
    expect(second.lookupHeartbeat('a', statSync(path.join(dir, 'a', 'logs', 'heartbeat')))).toEqual(read?.says);
    expect((await readChroot(dir, { cache: second })).systems[0]?.heartbeat).toEqual(read);
    // Another file under the name: not what was remembered.
    heartbeatNow(dir, 'a', storePath('bb'));
    expect(second.lookupHeartbeat('a', statSync(path.join(dir, 'a', 'logs', 'heartbeat')))).toBeUndefined();
  });
});

describe('LogCache with readChroot', () => {
  it('reads an unchanged logs/ once, then answers from the cache; the same statuses as without it', async () => {
    const dir = await tempDir();
    const cacheDir = await tempDir();
    const file = logCacheFile(cacheDir, dir);
    for (const name of ['a', 'b', 'c']) {
      await addSystem(dir, name, { lastChangeAgo: 250, logs: [[logName('aa', 'success', '20240601-0100'), 500], [logName('bb', 'failure'), 200]] });
      age(dir, name);
    }
    const plain = await statuses(dir);
    const first = LogCache.load(file);
    expect(await statuses(dir, first)).toEqual(plain);
    expect([first.hits, first.misses]).toEqual([0, 3]);
    first.save();
    const second = LogCache.load(file);
    expect(await statuses(dir, second)).toEqual(plain);
    expect([second.hits, second.misses]).toEqual([3, 0]);
  });

  it('reads a logs/ again when a log arrives; one that just changed is remembered by its names only', async () => {
    const dir = await tempDir();
    await addSystem(dir, 'a', { lastChangeAgo: 250, logs: [[logName('aa', 'success'), 300]] });
    age(dir, 'a');
    const cache = new LogCache();
    await statuses(dir, cache);
    // A new log: the directory changes, its mtime now (racy: not remembered).
    logAgo(path.join(dir, 'a', 'logs', logName('bb', 'failure', '20240601-1300')), 1);
    const [after] = await statuses(dir, cache);
    expect(after?.state).toBe('failing');
    expect([cache.hits, cache.misses]).toEqual([0, 2]);
    // Its stamp is too recent to trust: the names are compared again (the same: used).
    const [again] = await statuses(dir, cache);
    expect(again?.state).toBe('failing');
    expect([cache.hits, cache.misses]).toEqual([1, 2]);
  });

  it('follows a deploy (last_change_date moving forward) from what it remembered', async () => {
    const dir = await tempDir();
    await addSystem(dir, 'a', { lastChangeAgo: 1000, logs: [[logName('aa', 'success', '20240601-0100'), 600], [logName('bb', 'success'), 300]] });
    age(dir, 'a');
    const cache = new LogCache();
    expect((await statuses(dir, cache))[0]?.state).toBe('extra-logs');
    await touch(path.join(dir, 'a', 'last_change_date'), 100);
    expect((await statuses(dir, cache))[0]?.state).toBe('rebuild-pending');
    expect(cache.hits).toBe(1);
    // Back in time (a restored backup): the older logs may be needed, read again.
    await touch(path.join(dir, 'a', 'last_change_date'), 2000);
    expect((await statuses(dir, cache))[0]?.state).toBe('extra-logs');
    expect(cache.misses).toBe(2);
  });

  it('keeps the warnings about logs/ with what it remembers', async () => {
    const dir = await tempDir();
    await addSystem(dir, 'a', { logs: [[logName('aa', 'success'), 300]] });
    writeFileSync(path.join(dir, 'a', 'logs', 'stray.txt'), '');
    age(dir, 'a');
    const cache = new LogCache();
    const first = await readChroot(dir, { cache });
    const second = await readChroot(dir, { cache });
    expect(cache.hits).toBe(1);
    expect(second.warnings).toEqual(first.warnings);
    expect(second.warnings.join('\n')).toContain('stray.txt');
  });

  it('ignores a cache file that is broken, of another version or malformed, and forgets systems that are gone', async () => {
    const dir = await tempDir();
    const cacheDir = await tempDir();
    const file = logCacheFile(cacheDir, dir);
    await addSystem(dir, 'a', { logs: [[logName('aa', 'success'), 300]] });
    age(dir, 'a');
    for (const text of ['{', '{"version":2,"key":"","entries":{}}', '{"version":3,"key":"","entries":{"a":[["x"],null,[],[],[]]}}']) {
      writeFileSync(file, text);
      const cache = LogCache.load(file);
      expect((await statuses(dir, cache))[0]?.state).toBe('up-to-date');
      expect(cache.misses).toBe(1);
    }
    // A cache read with another size limit is not used.
    const limited = LogCache.load(file, 'log-size-limit=65536');
    await statuses(dir, limited);
    limited.save();
    const present = () => true;
    expect(LogCache.load(file, 'log-size-limit=65536').lookup('a', statSync(path.join(dir, 'a', 'logs')), ago(3600), present)).toBeDefined();
    expect(LogCache.load(file, 'log-size-limit=131072').lookup('a', statSync(path.join(dir, 'a', 'logs')), ago(3600), present)).toBeUndefined();
    const cache = LogCache.load(undefined);
    await statuses(dir, cache);
    mkdirSync(path.join(dir, 'b', 'logs'), { recursive: true });
    rmSync(path.join(dir, 'a'), { recursive: true });
    await statuses(dir, cache);
    expect((cache as unknown as { entries: Map<string, unknown> }).entries.has('a')).toBe(false);
  });
});

describe('what a logs/ directory\'s stamp can stand for', () => {
  /** A system whose logs/ was read by `cache` while it had just changed (its mtime now, as a log arriving leaves it). */
  async function readJustChanged(): Promise<{ dir: string; logs: string; cache: LogCache }> {
    const dir = await tempDir();
    await addSystem(dir, 'a', { lastChangeAgo: 250, logs: [[logName('aa', 'success', '20240601-1100'), 300]] });
    const logs = path.join(dir, 'a', 'logs');
    logAgo(path.join(logs, logName('bb', 'success', '20240601-1150')), 100);
    const cache = new LogCache();
    expect((await readChroot(dir, { cache })).systems[0]?.logs.map((log) => log.fileName)).toEqual([logName('bb', 'success', '20240601-1150')]);
    return { dir, logs, cache };
  }

  it('a log added in the same second as the read is seen', async () => {
    const { dir, logs, cache } = await readJustChanged();
    const added = logName('cc', 'failure', '20240601-1155');
    logAgo(path.join(logs, added), 50);
    const [after] = await statuses(dir, cache);
    expect(after?.latestLog?.fileName).toBe(added);
    expect([after]).toEqual(await statuses(dir));
  });

  it('the latest log removed in the same second as the read is seen', async () => {
    const { dir, logs, cache } = await readJustChanged();
    rmSync(path.join(logs, logName('bb', 'success', '20240601-1150')));
    const [after] = await statuses(dir, cache);
    expect(after?.latestLog?.fileName).toBe(logName('aa', 'success', '20240601-1100'));
    expect([after]).toEqual(await statuses(dir));
  });

  it('the latest log replaced under its own name in the same second (another file renamed over it) is seen', async () => {
    const { dir, logs, cache } = await readJustChanged();
    const named = path.join(logs, logName('bb', 'success', '20240601-1150'));
    logAgo(`${named}.new`, 5);
    renameSync(`${named}.new`, named);
    const [after] = await statuses(dir, cache);
    expect(after?.latestLog?.mtimeMs).toBe(statSync(named).mtimeMs);
    expect([after]).toEqual(await statuses(dir));
  });

  it('a logs/ directory replaced by another one is not answered for by the old one\'s entry', async () => {
    const dir = await tempDir();
    await addSystem(dir, 'a', { lastChangeAgo: 250, logs: [[logName('aa', 'success'), 300]] });
    age(dir, 'a');
    const cache = new LogCache();
    await statuses(dir, cache);
    // The same names in a new directory, renamed into place: its log was received at another time and failed.
    const fresh = path.join(dir, 'a', 'logs.new');
    mkdirSync(fresh);
    writeFileSync(path.join(fresh, logName('aa', 'success')), LOG_CONTENT);
    utimesSync(path.join(fresh, logName('aa', 'success')), Date.now() / 1000 - 120, Date.now() / 1000 - 120);
    rmSync(path.join(dir, 'a', 'logs'), { recursive: true });
    renameSync(fresh, path.join(dir, 'a', 'logs'));
    age(dir, 'a');
    const [after] = (await readChroot(dir, { cache })).systems;
    expect(after?.logs[0]?.mtimeMs).toBe(statSync(path.join(dir, 'a', 'logs', logName('aa', 'success'))).mtimeMs);
    expect(cache.hits).toBe(0);
  });

  it('a cache file of another CHROOT_DIR (a copy of it, whose logs changed since) is not used for it', async () => {
    const dir = await tempDir();
    const cacheDir = await tempDir();
    await addSystem(dir, 'a', { lastChangeAgo: 250, logs: [[logName('aa', 'success'), 300]] });
    age(dir, 'a');
    const original = LogCache.load(logCacheFile(cacheDir, dir));
    await statuses(dir, original);
    original.save();
    // The copy: other inodes, and a failure that came in with the same directory times.
    const copy = await tempDir();
    cpSync(dir, copy, { recursive: true, preserveTimestamps: true });
    const failure = logName('bb', 'failure', '20240601-1300');
    logAgo(path.join(copy, 'a', 'logs', failure), 60);
    const logsStats = statSync(path.join(dir, 'a', 'logs'));
    utimesSync(path.join(copy, 'a', 'logs'), logsStats.atime, logsStats.mtime);
    copyFileSync(logCacheFile(cacheDir, dir), logCacheFile(cacheDir, copy));
    const borrowed = LogCache.load(logCacheFile(cacheDir, copy));
    expect((await statuses(copy, borrowed))[0]?.state).toBe('failing');
    expect(borrowed.hits).toBe(0);
  });

  it('a cache file with one entry broken uses the others and reads that system again', async () => {
    const dir = await tempDir();
    const cacheDir = await tempDir();
    const file = logCacheFile(cacheDir, dir);
    for (const name of ['a', 'b']) {
      await addSystem(dir, name, { lastChangeAgo: 250, logs: [[logName('aa', 'success'), 300]] });
      age(dir, name);
    }
    const first = LogCache.load(file);
    const plain = await statuses(dir);
    await statuses(dir, first);
    first.save();
    const data = JSON.parse(readFileSync(file, 'utf8')) as { entries: Record<string, unknown> };
    data.entries.a = [['not a stamp'], 'soon', [], [], []];
    writeFileSync(file, JSON.stringify(data), { mode: 0o600 });
    const second = LogCache.load(file);
    expect(await statuses(dir, second)).toEqual(plain);
    expect([second.hits, second.misses]).toEqual([1, 1]);
    second.save();
    // Written back whole.
    const third = LogCache.load(file);
    await statuses(dir, third);
    expect([third.hits, third.misses]).toEqual([2, 0]);
  });
});

describe('bento status and its cache', () => {
  it('remembers in $XDG_CACHE_HOME/bento; --no-cache neither reads nor writes it', async () => {
    const dir = await tempDir();
    const home = await tempDir();
    await addSystem(dir, 'a', { logs: [[logName('aa', 'success'), 300]] });
    age(dir, 'a');
    const fleet = await tempDir();
    writeFileSync(path.join(fleet, 'config.sh'), `CHROOT_DIR=${dir}\nREMOTE_IP=127.0.0.1\n`);
    const off = bento(['status', '--once', '--no-cache'], { env: { BENTO_DIR: fleet, XDG_CACHE_HOME: home } });
    expect(off.status).toBe(0);
    expect(readdirSync(home)).toEqual([]);
    const on = bento(['status', '--once'], { env: { BENTO_DIR: fleet, XDG_CACHE_HOME: home } });
    expect(on.stdout).toBe(off.stdout);
    const file = logCacheFile(path.join(home, 'bento'), dir);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ version: 4, key: 'log-size-limit=16777216' });
  });
});

describe('a cache status cannot trust', () => {
  /** x1 published 10 minutes ago, failed 5 minutes ago: failing, exit 2. */
  async function failing(): Promise<{ dir: string; fleet: string; failure: string; success: string }> {
    const dir = await tempDir();
    const success = logName('aa', 'success', '20240601-1158');
    const failure = logName('bb', 'failure', '20240601-1155');
    await addSystem(dir, 'x1', { lastChangeAgo: 0 });
    touchAgo(path.join(dir, 'x1', 'last_change_date'), 600);
    logAgo(path.join(dir, 'x1', 'logs', failure), 300);
    age(dir, 'x1');
    const fleet = await tempDir();
    writeFileSync(path.join(fleet, 'config.sh'), `CHROOT_DIR=${dir}\nREMOTE_IP=127.0.0.1\n`);
    return { dir, fleet, failure, success };
  }

  /** How status reads logs by default (the size limit), part of its cache's key. */
  const CACHE_KEY = 'log-size-limit=16777216';

  /** A cache entry for x1 that matches its logs/ directory and says it sent `log` a minute ago. */
  function forgedCache(dir: string, log: string): string {
    const stats = statSync(path.join(dir, 'x1', 'logs'));
    const lastChangeMs = statSync(path.join(dir, 'x1', 'last_change_date')).mtimeMs;
    const listing = { namesDigest: logNamesDigest(readdirSync(path.join(dir, 'x1', 'logs'))), rejected: [] };
    const entry = [[stats.dev, stats.ino, stats.size, stats.mtimeMs, stats.ctimeMs], lastChangeMs, [[log, Date.now() - 60_000]], [], [], listing];
    return JSON.stringify({ version: 4, key: CACHE_KEY, entries: { x1: entry } });
  }

  /** The forged entry is one the cache takes (this version, its shape, matching logs/): only the log check can drop it. */
  function expectTaken(file: string, dir: string): void {
    const logs = statSync(path.join(dir, 'x1', 'logs'));
    const lastChangeMs = statSync(path.join(dir, 'x1', 'last_change_date')).mtimeMs;
    expect(LogCache.load(file, CACHE_KEY).expects('x1', logs, lastChangeMs)).toEqual({ unchanged: true });
  }

  function status(fleet: string, home: string) {
    return bento(['status', '--once', '--json'], { env: { BENTO_DIR: fleet, XDG_CACHE_HOME: home } });
  }

  const stateOf = (stdout: string) => (JSON.parse(stdout) as { name: string; state: string }[]).find((row) => row.name === 'x1')?.state;

  it('an entry naming a log that is not in logs/ is dropped: a failing machine stays failing, exit 2', async () => {
    const { dir, fleet, success } = await failing();
    const home = await tempDir();
    const file = logCacheFile(path.join(home, 'bento'), dir);
    mkdirSync(path.dirname(file), { mode: 0o700 });
    writeFileSync(file, forgedCache(dir, success), { mode: 0o600 });
    expectTaken(file, dir);
    const run = status(fleet, home);
    expect(stateOf(run.stdout)).toBe('failing');
    expect(run.status).toBe(2);
    // The entry written back is the true one.
    expect(readFileSync(file, 'utf8')).not.toContain(success);
  });

  it('an entry naming a log that changed since (another mtime) is dropped too', async () => {
    const { dir, failure } = await failing();
    const cache = new LogCache();
    expect((await statuses(dir, cache))[0]?.state).toBe('failing');
    // The same name, received at another time (a log sent again in place, which the directory does not show).
    const file = path.join(dir, 'x1', 'logs', failure);
    utimesSync(file, Date.now() / 1000 - 100, Date.now() / 1000 - 100);
    const [again] = await statuses(dir, cache);
    expect(again?.latestLog?.mtimeMs).toBe(statSync(file).mtimeMs);
    expect([cache.hits, cache.misses]).toEqual([0, 2]);
  });

  it('a stray name holding a newline, renamed into a log beside a file named like its second line, is not the same names: the log is seen', async () => {
    const dir = await tempDir();
    await addSystem(dir, 'x1', { lastChangeAgo: 250, logs: [[logName('aa', 'success', '20240601-1150'), 200]] });
    const logs = path.join(dir, 'x1', 'logs');
    // What a machine can do over SFTP (open, write, rename): a file whose name is a failure log's, a newline, and that name with an x.
    const failure = logName('bb', 'failure', '20240601-1155');
    logAgo(path.join(logs, `${failure}\n${failure}x`), 100);
    age(dir, 'x1');
    const cache = new LogCache();
    expect((await statuses(dir, cache))[0]?.latestLog?.fileName).toBe(logName('aa', 'success', '20240601-1150'));
    renameSync(path.join(logs, `${failure}\n${failure}x`), path.join(logs, failure));
    writeFileSync(path.join(logs, `${failure}x`), '');
    const [after] = await statuses(dir, cache);
    expect(after?.latestLog?.fileName).toBe(failure);
    expect([after]).toEqual(await statuses(dir));
  });

  it('a logs/ holding a log dated in the future (the server\'s clock set back) is not remembered: its warning holds only until that time', async () => {
    const dir = await tempDir();
    await addSystem(dir, 'x1', { lastChangeAgo: 250, logs: [[logName('aa', 'success', '20240601-1150'), 200]] });
    const ahead = path.join(dir, 'x1', 'logs', logName('bb', 'success', '20240601-1155'));
    logAgo(ahead, -600);
    age(dir, 'x1');
    const cache = new LogCache();
    const first = await readChroot(dir, { cache });
    expect(first.warnings.join('\n')).toContain('in the future');
    await readChroot(dir, { cache });
    expect([cache.hits, cache.misses]).toEqual([0, 2]);
  });

  it('a cache directory others may write is not used, and status says so', async () => {
    const { dir, fleet, success } = await failing();
    const home = await tempDir();
    const file = logCacheFile(path.join(home, 'bento'), dir);
    mkdirSync(path.dirname(file));
    chmodSync(path.dirname(file), 0o777);
    writeFileSync(file, forgedCache(dir, success), { mode: 0o600 });
    const before = readFileSync(file, 'utf8');
    const run = status(fleet, home);
    expect(stateOf(run.stdout)).toBe('failing');
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`warning: ${path.dirname(file)} is writable by others (mode 0777): the status cache there is not used`);
    expect(readFileSync(file, 'utf8')).toBe(before);
    // Nor a file others may write, in a good directory.
    chmodSync(path.dirname(file), 0o700);
    chmodSync(file, 0o666);
    const file666 = status(fleet, home);
    expect(file666.stderr).toContain(`warning: ${file} is writable by others (mode 0666): the status cache there is not used`);
    expect(file666.status).toBe(2);
  });

  it('an XDG_CACHE_HOME that is a file is not used, and status says so, instead of an internal error', async () => {
    const { fleet } = await failing();
    const home = path.join(await tempDir(), 'a-file');
    writeFileSync(home, '');
    const run = status(fleet, home);
    expect(run.stderr).toContain(`warning: ${path.join(home, 'bento')} cannot be looked at (ENOTDIR): the status cache there is not used`);
    expect(stateOf(run.stdout)).toBe('failing');
    expect(run.status).toBe(2);
  });

  it.skipIf(process.getuid?.() !== 0)("a cache directory of another user is not used, even by root", async () => {
    const { dir, fleet, success } = await failing();
    const home = await tempDir();
    const file = logCacheFile(path.join(home, 'bento'), dir);
    mkdirSync(path.dirname(file), { mode: 0o700 });
    writeFileSync(file, forgedCache(dir, success), { mode: 0o600 });
    expectTaken(file, dir);
    chownSync(path.dirname(file), 65534, 65534);
    chownSync(file, 65534, 65534);
    const run = status(fleet, home);
    expect(run.stderr).toContain(`warning: ${path.dirname(file)} belongs to uid 65534, not to the user running status (uid 0): the status cache there is not used`);
    expect(stateOf(run.stdout)).toBe('failing');
    expect(run.status).toBe(2);
  });
});

describe('LogCache.keeps', () => {
  it('says whether the cache is kept between runs: not one without a file, nor one refused', async () => {
    const dir = await tempDir();
    expect(new LogCache().keeps).toBe(false);
    expect(LogCache.load(undefined).keeps).toBe(false);
    expect(LogCache.load(logCacheFile(dir, dir)).keeps).toBe(true);
    chmodSync(dir, 0o777);
    expect(LogCache.load(logCacheFile(dir, dir)).keeps).toBe(false);
  });
});
