/**
 * `bento generate` (as root, it reads the fleet's files) with a FIFO where
 * a file of the fleet is: a fleet writer's doing, and opening it would
 * make root wait for a writer forever (deploy too, its lock held). The
 * built CLI, in a child process killed after a bound: it must not wait,
 * and say which file is at fault. (config.sh: config.test.ts.)
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CHILD_BOUND_MS } from '../helpers/bounded-child.js';
import { CLI } from '../helpers/cli.js';
import { makeFleet, type TestFleet } from '../helpers/fleet.js';

const fleets: TestFleet[] = [];
afterEach(() => fleets.splice(0).forEach((fleet) => fleet.cleanup()));

/** `bento generate` in a fleet of one non-flake host, laptop, with a FIFO at `relative`: its stderr and status, or 'hung'. */
function generateWithFifo(relative: string): { stderr: string; status: number | null } | 'hung' {
  const fleet = makeFleet({ hosts: { laptop: { nonFlake: true } } });
  fleets.push(fleet);
  const file = path.join(fleet.root, relative);
  rmSync(file, { force: true });
  expect(spawnSync('mkfifo', ['-m', '0644', file]).status).toBe(0);
  const run = spawnSync(process.execPath, [CLI, 'generate'], { env: { ...process.env, BENTO_DIR: fleet.root, NO_COLOR: '1' }, encoding: 'utf8', timeout: CHILD_BOUND_MS, killSignal: 'SIGKILL' });
  return run.signal === null ? { stderr: run.stderr, status: run.status } : 'hung';
}

describe('generate with a FIFO in place of a file of the fleet', () => {
  it('keys/<name>.pub: refused at once, naming it', () => {
    const run = generateWithFifo('keys/laptop.pub');
    expect(run).toMatchObject({ status: 1 });
    expect(run !== 'hung' && run.stderr).toContain('keys/laptop.pub is not a regular file: bento reads the public key of laptop from it');
  });

  it('uids.txt: refused at once, naming it', () => {
    const run = generateWithFifo('uids.txt');
    expect(run).toMatchObject({ status: 1 });
    expect(run !== 'hung' && run.stderr).toContain("uids.txt is not a regular file: bento reads the uid of each system's SFTP account from it");
  });

  it('utils/bento.nix (read for a warning of an older one): not waited on, and generate goes on', () => {
    const run = generateWithFifo('utils/bento.nix');
    expect(run).toMatchObject({ status: 0 });
    expect(run !== 'hung' && run.stderr).not.toContain('utils/bento.nix');
  });
});
