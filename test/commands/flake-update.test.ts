/**
 * `bento flake-update` against real Nix 2.8: host flakes with local path
 * inputs, in a fleet that is a plain directory and in one that is a git
 * repository.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { flakeUpdateCommand } from '../../src/commands/flake-update.js';
import { UserError } from '../../src/errors.js';
import { Collector } from '../helpers/collect.js';
import { addUtilsLink, git, hostFlakeText, lockedHash, short, writeDep, writeHost } from '../helpers/flake-fixtures.js';

let work: string;
let fleet: string;
let depA: string;
let depB: string;

beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'bento-flake-update-'));
  // The inputs are fetched with an unprivileged user's rights when the tests run as root (nix/unprivileged.ts): let everyone read them.
  chmodSync(work, 0o755);
  fleet = path.join(work, 'fleet');
  depA = path.join(work, 'deps', 'dep-a');
  depB = path.join(work, 'deps', 'dep-b');
  writeDep(depA, 'a1');
  writeDep(depB, 'b1');
  mkdirSync(path.join(fleet, 'hosts'), { recursive: true });
  writeFileSync(path.join(fleet, 'config.sh'), 'CHROOT_DIR=/srv/chroot\nREMOTE_IP=a\n');
  writeHost(fleet, 'hosts/laptop', hostFlakeText({ depA, depB }));
  addUtilsLink(fleet, 'hosts/laptop');
  writeHost(fleet, 'hosts/servers/web', hostFlakeText({ depA }));
  writeHost(fleet, 'hosts/plain', hostFlakeText({}));
  // Never a host: inside .git, and behind the utils link (utils/flake.nix).
  writeHost(fleet, 'hosts/laptop/.git/nested', hostFlakeText({ depA }));
});

afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

async function update(input?: string) {
  const stdout = new Collector();
  const stderr = new Collector();
  const status = await flakeUpdateCommand({ fleetDir: fleet, input }, { stdout, stderr });
  return { status, stdout: stdout.text, stderr: stderr.text };
}

function lockText(relative: string): string {
  return readFileSync(path.join(fleet, relative, 'flake.lock'), 'utf8');
}

describe('flakeUpdateCommand in a fleet that is not a git repository', () => {
  it('locks, then updates every input, one line per flake', async () => {
    const first = await update();
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    const a1 = lockedHash(path.join(fleet, 'hosts/laptop'), 'depA');
    const b1 = lockedHash(path.join(fleet, 'hosts/laptop'), 'depB');
    expect(first.stdout).toBe(
      [
        `hosts/laptop: depA (new) ${short(a1)}, depB (new) ${short(b1)}`,
        'hosts/plain: no inputs',
        `hosts/servers/web: depA (new) ${short(a1)}`,
        '',
      ].join('\n'),
    );

    const second = await update();
    expect(second.stdout).toBe(['hosts/laptop: up to date', 'hosts/plain: no inputs', 'hosts/servers/web: up to date', ''].join('\n'));

    const before = lockText('hosts/laptop');
    writeDep(depA, 'a2');
    const third = await update();
    const a2 = lockedHash(path.join(fleet, 'hosts/laptop'), 'depA');
    expect(a2).not.toBe(a1);
    expect(lockText('hosts/laptop')).not.toBe(before);
    expect(third.status).toBe(0);
    expect(third.stdout).toBe(
      [`hosts/laptop: depA ${short(a1)} → ${short(a2)}`, 'hosts/plain: no inputs', `hosts/servers/web: depA ${short(a1)} → ${short(a2)}`, ''].join('\n'),
    );
  });

  it('updates only the given input, and says which flakes do not have it', async () => {
    await update();
    const laptop = path.join(fleet, 'hosts/laptop');
    const a1 = lockedHash(laptop, 'depA');
    const b1 = lockedHash(laptop, 'depB');
    writeDep(depA, 'a2');
    writeDep(depB, 'b2');
    const { status, stdout, stderr } = await update('depB');
    const b2 = lockedHash(laptop, 'depB');
    expect(b2).not.toBe(b1);
    expect(lockedHash(laptop, 'depA')).toBe(a1);
    expect(stdout).toBe(
      [`hosts/laptop: depB ${short(b1)} → ${short(b2)}`, 'hosts/plain: no inputs', 'hosts/servers/web: no input named "depB" (its inputs: depA)', ''].join('\n'),
    );
    expect(stderr).toBe('');
    expect(status).toBe(0);
    // servers/web was not touched: depA is still at its first version there.
    expect(lockedHash(path.join(fleet, 'hosts/servers/web'), 'depA')).toBe(a1);
  });

  it('fails when no flake has the input', async () => {
    await update();
    const { status, stdout, stderr } = await update('nixpkgs');
    expect(stdout).toContain('hosts/laptop: no input named "nixpkgs" (its inputs: depA, depB)');
    expect(stderr).toBe('no flake under hosts/ has an input named "nixpkgs"\n');
    expect(status).toBe(1);
  });

  it('reports a broken flake with Nix’s error and still updates the others', async () => {
    writeHost(fleet, 'hosts/broken', '{\n  inputs.depA.url = "path:/nonexistent";\n  outputs = { self, ... }: { }\n');
    writeHost(fleet, 'hosts/missing-dep', hostFlakeText({ gone: path.join(work, 'deps', 'gone') }));
    const { status, stdout, stderr } = await update();
    expect(status).toBe(1);
    expect(stdout).toMatch(/^hosts\/laptop: depA \(new\) .*\nhosts\/plain: no inputs\nhosts\/servers\/web: depA \(new\) \S+\n$/);
    expect(stderr).toMatch(/^hosts\/broken: update failed:\n {2}\| error: syntax error, unexpected end of file/);
    expect(stderr).toMatch(/hosts\/missing-dep: update failed:\n {2}\| error: getting status of '.*\/deps\/gone': No such file or directory/);
    expect(lockText('hosts/servers/web')).toContain('"depA"');
  });

  it('refuses a bad input name, a directory that is not a fleet (as every command words it) and a fleet without hosts/', async () => {
    await expect(update('--recreate-lock-file')).rejects.toThrow(UserError);
    const io = () => ({ stdout: new Collector(), stderr: new Collector() });
    await expect(flakeUpdateCommand({ fleetDir: work }, io())).rejects.toThrow(`${work}/config.sh does not exist: ${work} is not a bento fleet directory`);
    writeFileSync(path.join(work, 'config.sh'), 'CHROOT_DIR=/srv/chroot\nREMOTE_IP=a\n');
    await expect(flakeUpdateCommand({ fleetDir: work }, io())).rejects.toThrow(`${work}/hosts does not exist`);
  });
});

describe('flakeUpdateCommand in a fleet that is a git repository', () => {
  it('updates tracked and untracked flakes alike, without touching the git index', async () => {
    git(fleet, 'init', '-q');
    await update();
    git(fleet, 'add', 'hosts');
    git(fleet, 'commit', '-q', '-m', 'fleet');
    // A new host, not yet added to git: Nix would not see it as git+file.
    writeHost(fleet, 'hosts/new', hostFlakeText({ depB }));
    const a1 = lockedHash(path.join(fleet, 'hosts/laptop'), 'depA');
    writeDep(depA, 'a2');
    const { status, stdout, stderr } = await update();
    const a2 = lockedHash(path.join(fleet, 'hosts/laptop'), 'depA');
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(stdout).toBe(
      [
        `hosts/laptop: depA ${short(a1)} → ${short(a2)}`,
        `hosts/new: depB (new) ${short(lockedHash(path.join(fleet, 'hosts/new'), 'depB'))}`,
        'hosts/plain: no inputs',
        `hosts/servers/web: depA ${short(a1)} → ${short(a2)}`,
        '',
      ].join('\n'),
    );
    expect(git(fleet, 'status', '--porcelain', 'hosts').split('\n').filter(Boolean).sort()).toEqual([
      ' M hosts/laptop/flake.lock',
      ' M hosts/servers/web/flake.lock',
      '?? hosts/new/',
    ]);
  });
});

describe('flakeUpdateCommand, odd trees', () => {
  it('says when there is no flake at all', async () => {
    rmSync(path.join(fleet, 'hosts'), { recursive: true });
    mkdirSync(path.join(fleet, 'hosts', 'legacy'), { recursive: true });
    writeFileSync(path.join(fleet, 'hosts', 'legacy', 'configuration.nix'), '{ ... }: { }\n');
    expect(await update()).toEqual({ status: 0, stdout: 'no flake.nix under hosts/: nothing to update\n', stderr: '' });
  });
});
