/**
 * `bento flake-update` (fleet/host-flake-lock.ts) with a FIFO where a host
 * flake's flake.lock is: a fleet writer's doing, and opening it would make
 * root wait for a writer forever. The built CLI, in a child process killed
 * after a bound: it must fail that flake at once, naming the file, and
 * update the others.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CHILD_BOUND_MS } from '../helpers/bounded-child.js';
import { CLI } from '../helpers/cli.js';
import { hostFlakeText, writeHost } from '../helpers/flake-fixtures.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'bento-flake-lock-fifo-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('flake-update with a FIFO in place of a flake.lock', () => {
  it('fails that flake at once, naming the file, never waiting for a writer', () => {
    // Run as root, the evaluator (an unprivileged user) reads the fleet's copies: let everyone read the way there.
    chmodSync(work, 0o755);
    const fleet = path.join(work, 'fleet');
    writeHost(fleet, 'hosts/laptop', hostFlakeText({}));
    writeHost(fleet, 'hosts/plain', '{ outputs = _: { }; }\n');
    writeFileSync(path.join(fleet, 'config.sh'), 'CHROOT_DIR=/srv/chroot\nREMOTE_IP=a\n');
    expect(spawnSync('mkfifo', ['-m', '0644', path.join(fleet, 'hosts/laptop/flake.lock')]).status).toBe(0);
    const run = spawnSync(process.execPath, [CLI, 'flake-update'], { env: { ...process.env, BENTO_DIR: fleet, NO_COLOR: '1' }, encoding: 'utf8', timeout: CHILD_BOUND_MS, killSignal: 'SIGKILL' });
    expect(run.signal, 'bento flake-update hung').toBeNull();
    expect(run.stderr).toContain('hosts/laptop: update failed:\n  | hosts/laptop/flake.lock is neither a regular file nor a directory (a FIFO, socket or device)');
    expect(run.stdout).toContain('hosts/plain: no inputs');
    expect(run.status).toBe(1);
  });
});
