/**
 * bento deploy stopped by a signal it can catch, as the world stops it:
 * systemd's SIGTERM, Ctrl-C's SIGINT, a dropped ssh session's SIGHUP (the
 * tests of deploy.test.ts kill it with SIGKILL). Real Nix, a real chroot,
 * as root.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bento, CLI } from '../helpers/cli.js';
import { flakeText } from '../helpers/fleet.js';
import { isRoot } from '../helpers/shell.js';
import { NIX_ENV, useTestServer } from '../helpers/server.js';

const suite = useTestServer();
const { n } = suite;

/** The live processes (not the zombies an init that does not reap leaves) in process group `pgid`, or that name one of `names` (Nix's builders of them). */
function processesOf(pgid: number, names: readonly string[]): string[] {
  const lines = execFileSync('ps', ['-eo', 'pgid=,stat=,args='], { encoding: 'utf8' }).split('\n');
  return lines.filter((line) => {
    const [group, stat] = line.trim().split(/\s+/);
    if (!stat || stat.startsWith('Z')) return false;
    return Number(group) === pgid || names.some((name) => line.includes(name));
  });
}

describe.skipIf(!isRoot)('bento deploy stopped by a signal', () => {
  it('SIGTERM, SIGINT or SIGHUP while it builds: none of its processes goes on, the lock is free, and the next deploy finishes the job and removes what it left in TMPDIR', async () => {
    const names = [n('s1'), n('s2')];
    // Builds that take a while: the signal lands while Nix builds, under bento's own daemon.
    const fleet = suite.fleet({ pair: { flakeText: flakeText(names).replaceAll('"-c" "mkdir', '"-c" "sleep 2; mkdir') } });
    suite.server.addUsers(names);
    expect(bento(['deploy'], { env: { BENTO_DIR: fleet.root, ...NIX_ENV } }).status).toBe(0);
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      writeFileSync(path.join(fleet.root, 'hosts', 'pair', `${names[0]}.nix`), signal);
      // A process group of its own, as a shell's job: what bento started is found by it.
      const child = spawn(process.execPath, [CLI, 'deploy'], { env: { ...process.env, BENTO_DIR: fleet.root, ...NIX_ENV }, stdio: ['ignore', 'pipe', 'ignore'], detached: true });
      const pid = child.pid as number;
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, by) => resolve(by)));
      let out = '';
      await new Promise<void>((resolve) => {
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('building 2 systems')) resolve();
        });
        child.once('exit', () => resolve());
      });
      // Until Nix builds: a builder of one of the systems runs.
      while (child.exitCode === null && !processesOf(-1, names).some((line) => line.includes('sleep 2'))) await new Promise((resolve) => setTimeout(resolve, 20));
      child.kill(signal);
      expect(await exited, out).toBe(signal);
      // The kernel kills bento's daemon (setpriv --pdeathsig) and Nix stops the builds of a client gone: wait until they are gone.
      const until = Date.now() + 20_000;
      while (processesOf(pid, names).length > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(processesOf(pid, names), signal).toEqual([]);
      const next = bento(['deploy'], { env: { BENTO_DIR: fleet.root, ...NIX_ENV } });
      expect(next.stderr, signal).toContain('deploy: 1 published, 1 unchanged, 0 failed');
      expect(next.status).toBe(0);
      expect(readdirSync(os.tmpdir()).filter((entry) => entry.startsWith('bento-') && entry.includes(`-${pid}-`)), signal).toEqual([]);
    }
  }, 180_000);
});
