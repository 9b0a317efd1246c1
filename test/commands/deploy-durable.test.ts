/**
 * What deploy records or publishes is on the disk before it counts
 * (util/durable.ts): every file or directory it renames into CHROOT_DIR or
 * next to the signing key was flushed (fsync) before the rename, and the
 * directory holding the new name is flushed after it. Checked on the
 * system calls of a real `bento deploy` (strace), not on the code: a
 * flush forgotten by any writer — states.txt, last_change_date,
 * rollout.json, a version directory and its files, the config/ link, a
 * prebuilt cache, the signing key — fails it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { makeFleet } from '../helpers/fleet.js';
import { NIX_ENV, useTestServer } from '../helpers/server.js';
import { isRoot } from '../helpers/shell.js';

const suite = useTestServer();
const { n } = suite;

type Event = { kind: 'fsync'; pid: number; path: string } | { kind: 'rename'; pid: number; from: string; to: string } | { kind: 'execve'; pid: number };

/** The fsync, rename and execve calls of an `strace -f -y` log, in order (unfinished/resumed pairs joined). */
export function parseStraceLog(text: string): Event[] {
  const events: Event[] = [];
  const pending = new Map<number, string>();
  for (const raw of text.split('\n')) {
    const match = /^(?:\[pid\s+(\d+)\]\s+|(\d+)\s+)?(.*)$/.exec(raw);
    if (!match) continue;
    const pid = Number(match[1] ?? match[2] ?? 0);
    let line = match[3] ?? '';
    if (line.endsWith('<unfinished ...>')) {
      pending.set(pid, line.slice(0, -'<unfinished ...>'.length));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(line);
    if (resumed) {
      line = (pending.get(pid) ?? '') + (resumed[1] ?? '');
      pending.delete(pid);
    }
    if (!/= 0$/.test(line.trim())) continue;
    const fsync = /^f(?:data)?sync\(\d+<(.*)>\)/.exec(line);
    if (fsync) events.push({ kind: 'fsync', pid, path: fsync[1] ?? '' });
    const rename = /^rename(?:at2?)?\((?:\d+<[^>]*>, )?"([^"]*)", (?:\d+<[^>]*>, )?"([^"]*)"/.exec(line);
    if (rename) events.push({ kind: 'rename', pid, from: rename[1] ?? '', to: rename[2] ?? '' });
    if (/^execve\(/.test(line)) events.push({ kind: 'execve', pid });
  }
  return events;
}

/** Every regular file below `dir`, relative to it. */
function filesBelow(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(prefix, entry.name);
    if (entry.isDirectory()) return filesBelow(path.join(dir, entry.name), relative);
    return entry.isFile() ? [relative] : [];
  });
}

/**
 * What breaks the rule among bento's own renames into `roots` (those of the
 * Nix processes it starts are Nix's business): a file or tree renamed
 * without being flushed first, or a directory not flushed after it gained
 * the name. Also returns the names renamed into place, to show the check
 * saw each writer.
 */
function durabilityProblems(events: Event[], roots: string[]): { problems: string[]; renamed: string[] } {
  // The first execve is strace starting bento itself; the others, the tools it runs.
  const execs = events.filter((event) => event.kind === 'execve');
  const children = new Set(execs.slice(1).map((event) => event.pid).filter((pid) => pid !== execs[0]?.pid));
  const ours = events.filter((event) => !children.has(event.pid));
  const problems: string[] = [];
  const renamed: string[] = [];
  ours.forEach((event, index) => {
    if (event.kind !== 'rename' || !roots.some((root) => event.to.startsWith(`${root}/`))) return;
    renamed.push(event.to);
    const before = new Set(ours.slice(0, index).flatMap((earlier) => (earlier.kind === 'fsync' ? [earlier.path] : [])));
    const after = new Set(ours.slice(index + 1).flatMap((later) => (later.kind === 'fsync' ? [later.path] : [])));
    const now = lstatSync(event.to, { throwIfNoEntry: false });
    if (now?.isFile() && !before.has(event.from)) problems.push(`${event.to}: ${event.from} was not flushed before the rename`);
    if (now?.isDirectory()) {
      if (!before.has(event.from)) problems.push(`${event.to}: the directory ${event.from} was not flushed before the rename`);
      for (const file of filesBelow(event.to)) {
        if (!before.has(path.join(event.from, file))) problems.push(`${event.to}: ${file} was not flushed before the rename`);
      }
    }
    if (!after.has(path.dirname(event.to))) problems.push(`${event.to}: ${path.dirname(event.to)} was not flushed after the rename`);
  });
  return { problems, renamed };
}

describe.skipIf(!isRoot)('deploy flushes what it records and publishes', () => {
  it('parses strace lines, split ones included', () => {
    const log = [
      '[pid  12] fsync(18</srv/x/.states.txt.tmp-12>) = 0',
      '[pid  12] rename("/srv/x/.states.txt.tmp-12", "/srv/x/states.txt" <unfinished ...>',
      '[pid  13] execve("/usr/bin/nix", ["nix"], 0x0 /* 1 var */) = 0',
      '[pid  12] <... rename resumed>) = 0',
      '[pid  12] fsync(19</srv/x>) = -1 EIO (Input/output error)',
    ].join('\n');
    expect(parseStraceLog(log)).toEqual([
      { kind: 'fsync', pid: 12, path: '/srv/x/.states.txt.tmp-12' },
      { kind: 'execve', pid: 13 },
      { kind: 'rename', pid: 12, from: '/srv/x/.states.txt.tmp-12', to: '/srv/x/states.txt' },
    ]);
  });

  it('flushes every file and directory before renaming it into place, and the directory after, in every writer', () => {
    const keys = mkdtempSync(path.join(os.tmpdir(), 'bento-durable-keys-'));
    suite.later(() => rmSync(keys, { recursive: true, force: true }));
    const secret = path.join(keys, 'signing-key');
    const chrootDir = suite.server.chrootDir;
    const fleet = makeFleet({
      config: `CHROOT_DIR=${chrootDir}\nREMOTE_IP=127.0.0.1\nSIGNING_KEY=${secret}\nROLLOUT_WAVES="${n('a')} *"\n`,
      hosts: { pair: { flake: [n('a'), n('b')], utils: true }, pi: { flake: [n('pi')], files: { PREBUILT: '' } }, [n('r')]: { nonFlake: true } },
    });
    suite.later(fleet.cleanup);
    suite.server.addUsers([n('a'), n('b'), n('pi'), n('r')]);

    const deployTraced = (label: string) => {
      const log = path.join(keys, `strace-${label}.log`);
      const run = spawnSync('strace', ['-f', '-y', '-qq', '-o', log, '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2,execve', process.execPath, CLI, 'deploy'], {
        env: { ...process.env, ...NIX_ENV, BENTO_DIR: fleet.root, NO_COLOR: '1' },
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect(run.status, run.stderr).toBe(0);
      return durabilityProblems(parseStraceLog(readFileSync(log, 'utf8')), [chrootDir, keys]);
    };

    // A first deploy: the signing key, caches, version directories, states.txt, the rollout.
    const first = deployTraced('first');
    // Then every system changed: config/ links replaced, states.txt and rollout.json rewritten.
    writeFileSync(path.join(fleet.root, 'hosts', 'pair', `${n('a')}.nix`), 'changed\n');
    writeFileSync(path.join(fleet.root, 'hosts', 'pair', `${n('b')}.nix`), 'changed\n');
    writeFileSync(path.join(fleet.root, 'hosts', 'pi', `${n('pi')}.nix`), 'changed\n');
    writeFileSync(path.join(fleet.root, 'hosts', n('r'), 'configuration.nix'), '{ ... }: { networking.hostName = "changed"; }\n');
    const second = deployTraced('second');

    expect([...first.problems, ...second.problems]).toEqual([]);
    const names = new Set([...first.renamed, ...second.renamed].map((file) => path.relative(chrootDir, file)));
    const kinds = (pattern: RegExp) => [...names].some((name) => pattern.test(name));
    // Each writer was seen, so the check above covered it.
    expect(names).toContain('states.txt');
    expect(names).toContain('rollout.json');
    expect(names).toContain(`${n('a')}/last_change_date`);
    expect(names).toContain(`${n('a')}/config`);
    expect(kinds(new RegExp(`^${n('b')}/\\.config-[0-9a-f]{16}`))).toBe(true);
    expect(kinds(new RegExp(`^${n('pi')}/\\.cache-`))).toBe(true);
    expect([...first.renamed].some((file) => file === secret)).toBe(true);
    expect(existsSync(secret)).toBe(true);
  });
});
