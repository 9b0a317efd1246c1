/**
 * bento deploy against real Nix and a real chroot: system users and the
 * sftp_users group are created for the test (as root) and removed after.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, mkdirSync, mkdtempSync, statSync, symlinkSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { publishedStatsPath } from '../../src/chroot/published-stats.js';
import { skippedHostDirMessage } from '../../src/fleet/fleet.js';
import { sha256 } from '../../src/util/hash.js';
import { bento, bentoWithoutReader, CLI } from '../helpers/cli.js';
import { flakeText, type TestFleet } from '../helpers/fleet.js';
import { APPLY_STUBS_DIR, isRoot } from '../helpers/shell.js';
import { NIX_ENV, removeDeployCaches, snapshotTree, useTestServer } from '../helpers/server.js';

const suite = useTestServer();
const { n } = suite;

const newFleet = suite.fleet;

function deploy(fleet: TestFleet, env: Record<string, string> = {}) {
  return bento(['deploy'], { env: { BENTO_DIR: fleet.root, ...NIX_ENV, ...env } });
}

function nixBuild(flakeDir: string, name: string): string {
  const out = execFileSync('nix', ['--extra-experimental-features', 'nix-command flakes', 'build', '--json', '--no-link', `path:${flakeDir}#nixosConfigurations.${name}.config.system.build.toplevel`], { encoding: 'utf8' });
  return path.basename((JSON.parse(out) as { outputs: { out: string } }[])[0]!.outputs.out);
}

function states(chrootDir = suite.server.chrootDir): Record<string, string> {
  const text = existsSync(path.join(chrootDir, 'states.txt')) ? readFileSync(path.join(chrootDir, 'states.txt'), 'utf8') : '';
  return Object.fromEntries(text.trim().split('\n').filter(Boolean).map((line) => line.split('=') as [string, string]));
}

/** The published config/ of a system is complete and matches its manifest and stamp. */
function expectConsistent(chrootDir: string, name: string): string {
  const config = path.join(chrootDir, name, 'config');
  const manifest = readFileSync(path.join(config, '.bento-manifest'), 'utf8');
  const check = spawnSync('sha256sum', ['-c', '--strict', '--quiet', '.bento-manifest'], { cwd: config, encoding: 'utf8' });
  expect(check.stdout + check.stderr, `${name}: config/ matches its manifest`).toBe('');
  expect(check.status).toBe(0);
  return manifest;
}

describe.skipIf(!isRoot)('bento deploy', () => {
  it('publishes every system with the ownership and modes sshd needs, and records the store paths Nix builds', () => {
    const fleet = newFleet({ pair: { flake: [n('a'), n('b')], utils: true, files: { 'extra/data.txt': 'data\n', 'update.sh': 'mine\n' } }, solo: { flake: [n('c')] }, [n('r')]: { nonFlake: true } });
    suite.server.addUsers([n('a'), n('b'), n('c'), n('r')]);
    const run = deploy(fleet);
    expect(run.stderr).toContain('deploy: 4 published, 0 unchanged, 0 failed');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`ok +${n('a')} +[0-9.]+s +[a-z0-9]{8}…-nixos-system-${n('a')}-24.05`));
    expect(run.stderr).toContain(`warning: hosts/pair/update.sh is replaced by bento's own update.sh in ${n('a')}'s configuration; rename it`);
    // stdout is for results: a warning goes to stderr (issue 22).
    expect(run.stdout).not.toContain('warning');

    expect(states()).toMatchObject({
      [n('a')]: nixBuild(path.join(fleet.root, 'hosts/pair'), n('a')),
      [n('b')]: nixBuild(path.join(fleet.root, 'hosts/pair'), n('b')),
      [n('c')]: nixBuild(path.join(fleet.root, 'hosts/solo'), n('c')),
    });
    expect(states()[n('r')]).toBeUndefined();

    const gid = Number(execFileSync('getent', ['group', 'sftp_users'], { encoding: 'utf8' }).split(':')[2]);
    const uid = Number(execFileSync('id', ['-u', n('a')], { encoding: 'utf8' }));
    const systemDir = path.join(suite.server.chrootDir, n('a'));
    expect(statSync(suite.server.chrootDir).mode & 0o7777).toBe(0o755);
    expect([statSync(systemDir).uid, statSync(systemDir).gid, statSync(systemDir).mode & 0o7777]).toEqual([0, gid, 0o755]);
    const logs = statSync(path.join(systemDir, 'logs'));
    expect([logs.uid, logs.gid, logs.mode & 0o7777]).toEqual([uid, gid, 0o755]);
    expect(readlinkSync(path.join(systemDir, 'config'))).toMatch(/^\.config-[0-9a-f]{16}$/);
    const config = path.join(systemDir, 'config');
    // The machine (group sftp_users) reads its configuration; local users of the server do not.
    expect([statSync(config).uid, statSync(config).gid, statSync(config).mode & 0o7777]).toEqual([0, gid, 0o750]);
    expect(statSync(path.join(config, 'update.sh')).mode & 0o7777).toBe(0o755);
    expect(statSync(path.join(config, 'flake.nix')).mode & 0o7777).toBe(0o644);
    expect(readFileSync(path.join(config, 'utils', 'common.nix'), 'utf8')).toBe('{ }\n');
    expect(lstatSync(path.join(config, 'utils')).isDirectory()).toBe(true);
    expect(readFileSync(path.join(config, 'extra', 'data.txt'), 'utf8')).toBe('data\n');
    expect(readFileSync(path.join(config, '.gitignore'), 'utf8')).toContain('/.bento/');
    expect(readFileSync(path.join(config, 'update.sh'), 'utf8')).toContain(`BENTO_NAME=${n('a')}\n`);
    const manifest = expectConsistent(suite.server.chrootDir, n('a'));
    expect(readFileSync(path.join(systemDir, 'last_change_date'), 'utf8')).toMatch(new RegExp(`^${sha256(manifest)} \\d{4}-\\d\\d-\\d\\dT`));
    for (const name of [n('b'), n('c'), n('r')]) expectConsistent(suite.server.chrootDir, name);

    // Nothing changed: nothing is touched (inodes and mtimes), nothing is built.
    const before = snapshotTree(suite.server.chrootDir);
    const again = deploy(fleet);
    expect(again.stderr).toContain('deploy: 0 published, 4 unchanged, 0 failed');
    expect(again.stdout).not.toContain('building');
    expect(snapshotTree(suite.server.chrootDir)).toEqual(before);

    // One host changes: only its system is published.
    writeFileSync(path.join(fleet.root, 'hosts', 'solo', `${n('c')}.nix`), '# new\n');
    const changed = deploy(fleet);
    expect(changed.stderr).toContain('deploy: 1 published, 3 unchanged, 0 failed');
    const after = snapshotTree(suite.server.chrootDir);
    for (const [entry, stat] of Object.entries(before)) {
      if (entry.startsWith(`${n('c')}/`) || entry === n('c') || entry === 'states.txt' || entry === '.') continue;
      expect(after[entry], entry).toBe(stat);
    }
    expect(states()[n('c')]).toBe(nixBuild(path.join(fleet.root, 'hosts/solo'), n('c')));

    // generated/ is brought up to date first.
    writeFileSync(path.join(fleet.root, 'config.sh'), `CHROOT_DIR=${suite.server.chrootDir}\nREMOTE_IP=127.0.0.1\nTIMEOUT=7\n`);
    const regenerated = deploy(fleet, { NAME: n('r') });
    expect(regenerated.stdout).toContain('generated/ was out of date');
    expect(readFileSync(path.join(suite.server.chrootDir, n('r'), 'config', 'update.sh'), 'utf8')).toContain('BENTO_TIMEOUT=7\n');
    expect(regenerated.stderr).toContain('deploy: 1 published, 0 unchanged, 0 failed');
  });

  it('systems of one flake: only those whose built system changed are published; the others stay as they are (issue 21)', () => {
    const [one, two, three] = [n('tri1'), n('tri2'), n('tri3')];
    const fleet = newFleet({ trio: { flake: [one, two, three] } });
    suite.server.addUsers([one, two, three]);
    expect(deploy(fleet).stderr).toContain('deploy: 3 published, 0 unchanged, 0 failed');
    const chroot = (name: string) => path.join(suite.server.chrootDir, name);
    const before = { [two]: snapshotTree(chroot(two)), [three]: snapshotTree(chroot(three)) };
    const statesBefore = states();

    // Only tri1's system uses tri1.nix: the others are built (the flake is one) but not published again.
    writeFileSync(path.join(fleet.root, 'hosts', 'trio', `${one}.nix`), '# tri1 only\n');
    const changed = deploy(fleet);
    expect(changed.stderr).toContain('deploy: 1 published, 2 unchanged, 0 failed');
    expect(changed.status).toBe(0);
    for (const name of [two, three]) {
      expect(changed.stdout).toContain(`  ${name}: no changes: its system is still ${statesBefore[name]} (what changed in hosts/trio goes into other systems)`);
      expect(snapshotTree(chroot(name)), name).toEqual(before[name]);
    }
    const ours = () => Object.fromEntries([one, two, three].map((name) => [name, states()[name]]));
    expect(ours()).toEqual({ [one]: nixBuild(path.join(fleet.root, 'hosts/trio'), one), [two]: statesBefore[two], [three]: statesBefore[three] });
    expect(states()[one]).not.toBe(statesBefore[one]);
    expect(readFileSync(path.join(chroot(one), 'config', `${one}.nix`), 'utf8')).toBe('# tri1 only\n');
    // Deployed again: still nothing for them, and nothing built: deploy remembers that their files as they are now build their published system.
    const again = deploy(fleet);
    expect(again.stderr).toContain('deploy: 0 published, 3 unchanged, 0 failed');
    expect(again.stdout).not.toContain('building');
    for (const name of [two, three]) expect(snapshotTree(chroot(name)), name).toEqual(before[name]);
    // Unless what it remembers is gone: then they are built again, and found the same.
    rmSync(publishedStatsPath(suite.server.chrootDir), { force: true });
    const rebuilt = deploy(fleet);
    expect(rebuilt.stderr).toContain('deploy: 0 published, 3 unchanged, 0 failed');
    expect(rebuilt.stdout).toContain('building 2 systems');
    for (const name of [two, three]) expect(snapshotTree(chroot(name)), name).toEqual(before[name]);
    expect(deploy(fleet).stdout).not.toContain('building');

    // What reaches the machine other than through its system is published, the same system or not:
    // update.sh's settings (TIMEOUT), and the flag files the client reads (SELF_UPDATE).
    writeFileSync(path.join(fleet.root, 'config.sh'), `CHROOT_DIR=${suite.server.chrootDir}\nREMOTE_IP=127.0.0.1\nTIMEOUT=7\n`);
    expect(deploy(fleet).stderr).toContain('deploy: 3 published, 0 unchanged, 0 failed');
    for (const name of [one, two, three]) expect(readFileSync(path.join(chroot(name), 'config', 'update.sh'), 'utf8')).toContain('BENTO_TIMEOUT=7\n');
    for (const flag of ['SELF_UPDATE', 'REBOOT']) {
      writeFileSync(path.join(fleet.root, 'hosts', 'trio', flag), '');
      expect(deploy(fleet).stderr, flag).toContain('deploy: 3 published, 0 unchanged, 0 failed');
    }
  });

  it('a deploy whose output loses its reader (`bento deploy | head -1`) still publishes every system, and the next deploy finds them done', async () => {
    const fleet = newFleet({ pair: { flake: [n('a'), n('b')] } });
    suite.server.addUsers([n('a'), n('b')]);
    // Its "ok" lines go to stdout while it builds: each write fails with EPIPE.
    const run = await bentoWithoutReader(['deploy'], { env: { BENTO_DIR: fleet.root, ...NIX_ENV } });
    expect(run.stderr).not.toContain('EPIPE');
    expect(run.stderr).toContain('deploy: 2 published, 0 unchanged, 0 failed');
    expect(run.status).toBe(0);
    for (const name of [n('a'), n('b')]) {
      expect(states()[name]).toBe(nixBuild(path.join(fleet.root, 'hosts/pair'), name));
      expectConsistent(suite.server.chrootDir, name);
    }
    expect(deploy(fleet).stderr).toContain('deploy: 0 published, 2 unchanged, 0 failed');
  });

  it('a failing build keeps that system as it was; the others go on', () => {
    const fleet = newFleet({ mixed: { flake: [n('good'), n('bad')] }, broken: { flake: [n('eval')] } });
    suite.server.addUsers([n('good'), n('bad'), n('eval')]);
    expect(deploy(fleet).status).toBe(0);
    const badBefore = snapshotTree(path.join(suite.server.chrootDir, n('bad')));
    const evalBefore = snapshotTree(path.join(suite.server.chrootDir, n('eval')));
    const statesBefore = states();

    const flake = flakeText([n('good'), n('bad')]).replace(`echo ${n('bad')} > $out/name`, 'exit 3');
    writeFileSync(path.join(fleet.root, 'hosts/mixed/flake.nix'), flake);
    // A new system for good too (a flake-mate whose system stays the same is not published again).
    writeFileSync(path.join(fleet.root, 'hosts/mixed', `${n('good')}.nix`), '# new\n');
    writeFileSync(path.join(fleet.root, 'hosts/broken/flake.nix'), '{ outputs = { self }: { nixosConfigurations = throw "broken on purpose"; }; }\n');
    const run = deploy(fleet);
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`FAILED +${n('bad')} `));
    expect(run.stdout).toMatch(new RegExp(`ok +${n('good')} `));
    expect(run.stderr).toContain('error: hosts/broken/flake.nix: ');
    expect(run.stderr).toContain('broken on purpose');
    expect(run.stderr).toContain(`${n('bad')}: build failed`);
    expect(run.stderr).toContain('deploy: 1 published');
    expect(snapshotTree(path.join(suite.server.chrootDir, n('bad')))).toEqual(badBefore);
    expect(snapshotTree(path.join(suite.server.chrootDir, n('eval')))).toEqual(evalBefore);
    expect(states()[n('bad')]).toBe(statesBefore[n('bad')]);
    expect(states()[n('good')]).toBe(nixBuild(path.join(fleet.root, 'hosts/mixed'), n('good')));
  });

  it('a system whose publication fails keeps its files; the others are published', () => {
    const fleet = newFleet({ ro: { flake: [n('ro')] }, rw: { flake: [n('rw')] } });
    suite.server.addUsers([n('ro'), n('rw')]);
    expect(deploy(fleet).status).toBe(0);
    const roDir = path.join(suite.server.chrootDir, n('ro'));
    const before = snapshotTree(roDir);
    for (const name of ['ro', 'rw']) writeFileSync(path.join(fleet.root, 'hosts', name, `${n(name)}.nix`), '# changed\n');
    // n('ro')'s chroot is read-only for this deploy (a bind mount in a namespace of its own).
    const run = spawnSync(
      'unshare',
      ['-m', 'sh', '-c', 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && exec "$2" "$3" deploy', 'sh', roDir, process.execPath, CLI],
      { env: { ...process.env, BENTO_DIR: fleet.root, ...NIX_ENV }, encoding: 'utf8' },
    );
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('deploy: 1 published, 0 unchanged, 1 failed');
    expect(run.stderr).toContain(`${n('ro')}: publication failed, its previous files stay published: EROFS`);
    expect(snapshotTree(roDir)).toEqual(before);
    expect(readFileSync(path.join(suite.server.chrootDir, n('rw'), 'config', `${n('rw')}.nix`), 'utf8')).toBe('# changed\n');
  });

  it('NOLOCALBUILD=1 evaluates the store path without building it', () => {
    const fleet = newFleet({ lazy: { flake: [n('lazy')], files: { [`${n('lazy')}.nix`]: `# unique ${Date.now()} ${Math.random()}\n` } } });
    writeFileSync(path.join(fleet.root, 'config.sh'), `CHROOT_DIR=${suite.server.chrootDir}\nREMOTE_IP=127.0.0.1\nNOLOCALBUILD=1\n`);
    suite.server.addUsers([n('lazy')]);
    const run = deploy(fleet);
    expect(run.stdout).toContain('evaluating (NOLOCALBUILD) 1 system');
    expect(run.status).toBe(0);
    const storeName = states()[n('lazy')];
    expect(storeName).toMatch(new RegExp(`^[a-z0-9]{32}-nixos-system-${n('lazy')}-24.05$`));
    expect(existsSync(`/nix/store/${storeName}`)).toBe(false);
  });

  it('takes over a chroot published by the original bento (config/ a plain directory)', () => {
    const fleet = newFleet({ old: { flake: [n('old')] } });
    suite.server.addUsers([n('old')]);
    const legacy = path.join(suite.server.chrootDir, n('old'), 'config');
    mkdirSync(legacy, { recursive: true });
    writeFileSync(path.join(legacy, 'configuration.nix'), 'old\n');
    const run = deploy(fleet);
    expect(run.status).toBe(0);
    expect(lstatSync(legacy).isSymbolicLink()).toBe(true);
    expect(readdirSync(path.join(suite.server.chrootDir, n('old'))).filter((e) => e.startsWith('.config-legacy'))).toEqual([]);
    expectConsistent(suite.server.chrootDir, n('old'));
  });

  it('a deploy killed at any moment leaves every chroot whole, and the next one finishes the job', async () => {
    const names = Array.from({ length: 12 }, (_, i) => n(`k${i}`));
    const size = 2_000_000;
    const hosts = Object.fromEntries(names.map((name) => [name, { nonFlake: true, files: { 'big.txt': 'x'.repeat(size) } }]));
    const fleet = newFleet(hosts);
    suite.server.addUsers(names);
    expect(deploy(fleet).status).toBe(0);
    const newPerRound: number[] = [];
    const unannouncedPerRound: number[] = [];
    // Publication starts once every build line is out; kill at growing delays after that,
    // and last as soon as a first system's config/ has switched (publication writes every
    // version directory first, then switches them all in one short burst, flushes, and only
    // then announces them: a delay may miss it).
    const delays: (number | 'first switch')[] = [0, 15, 40, 80, 150, 250, 'first switch'];
    for (const [round, delay] of delays.entries()) {
      for (const name of names) writeFileSync(path.join(fleet.root, 'hosts', name, 'big.txt'), `${round}`.repeat(size));
      const linksBefore = names.map((name) => readlinkSync(path.join(suite.server.chrootDir, name, 'config')));
      const child = spawn(process.execPath, [CLI, 'deploy'], { env: { ...process.env, BENTO_DIR: fleet.root, ...NIX_ENV }, stdio: ['ignore', 'pipe', 'ignore'] });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      let built = 0;
      await new Promise<void>((resolve) => {
        child.stdout.on('data', (chunk: Buffer) => {
          built += (chunk.toString().match(/^ {2}ok /gm) ?? []).length;
          if (built === names.length) resolve();
        });
        child.once('exit', () => resolve());
      });
      if (delay === 'first switch') {
        // Synchronous: nothing else runs between seeing the switch and the kill.
        const until = Date.now() + 20_000;
        while (child.exitCode === null && Date.now() < until) {
          if (names.some((name, index) => readlinkSync(path.join(suite.server.chrootDir, name, 'config')) !== linksBefore[index])) break;
        }
      } else {
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
      child.kill('SIGKILL');
      await exited;
      newPerRound.push(names.filter((name) => readFileSync(path.join(suite.server.chrootDir, name, 'config', 'big.txt'), 'utf8').startsWith(`${round}`)).length);
      let unannounced = 0;
      for (const name of names) {
        const manifest = expectConsistent(suite.server.chrootDir, name);
        const stamp = readFileSync(path.join(suite.server.chrootDir, name, 'last_change_date'), 'utf8').split(' ')[0];
        expect(stamp).toMatch(/^[0-9a-f]{64}$/);
        // Killed between the swap and the stamp: the next deploy announces what is published, without building.
        if (stamp !== sha256(manifest)) {
          unannounced += 1;
          expect(deploy(fleet, { NAME: name }).stdout).toContain('completing an interrupted deploy');
        }
      }
      unannouncedPerRound.push(unannounced);
    }
    // At least one kill landed in the middle of publication: some systems new and some old,
    // or new files switched in but not announced yet (the systems' steps run together, so
    // the switches come in one burst and a kill seldom falls between two of them).
    const torn = newPerRound.some((count, round) => (count > 0 && count < names.length) || (unannouncedPerRound[round] ?? 0) > 0);
    expect(torn, `systems switched per round: ${newPerRound}; of them not announced: ${unannouncedPerRound}`).toBe(true);
    const final = deploy(fleet);
    expect(final.status).toBe(0);
    for (const name of names) {
      expectConsistent(suite.server.chrootDir, name);
      expect(readFileSync(path.join(suite.server.chrootDir, name, 'config', 'big.txt'), 'utf8')).toBe(`${delays.length - 1}`.repeat(size));
      expect(readdirSync(path.join(suite.server.chrootDir, name)).filter((entry) => entry.includes('.tmp-'))).toEqual([]);
    }
    // Eight deploys of twelve 2 MB systems, each flushed to the disk: about 50 s here, more on a busy machine.
  }, 240_000);

  it('build switch with TARGET_IP copies the system it built to root@TARGET_IP and switches it there, as nixos-rebuild --target-host does, then publishes the system', () => {
    const fleet = newFleet({ pushed: { flake: [n('push')] } });
    suite.server.addUsers([n('push')]);
    const record = mkdtempSync(path.join(os.tmpdir(), 'bento-record-'));
    const run = bento(['build', 'switch', '--yes'], {
      env: { BENTO_DIR: fleet.root, NAME: n('push'), TARGET_IP: '192.0.2.9', NIX_SSHOPTS: '-p2222', PATH: `${APPLY_STUBS_DIR}:${process.env.PATH}`, FAKE_SERVER: record, ...NIX_ENV },
    });
    const system = new RegExp(`switch ${n('push')} on 192[.]0[.]2[.]9: (/nix/store/[a-z0-9]{32}-nixos-system-${n('push')}-24[.]05)\n`).exec(run.stdout)?.[1];
    expect(system, run.stdout).toBeDefined();
    expect(run.status).toBe(0);
    const calls = readFileSync(path.join(record, 'calls'), 'utf8');
    expect(calls.startsWith(`== nix-copy-closure\n--to\nroot@192.0.2.9\n${system}\n== ssh\n-p2222\nroot@192.0.2.9\nnix-env\n-p\n/nix/var/nix/profiles/system\n--set\n${system}\n== ssh\n-p2222\nroot@192.0.2.9\nsystemd-run\n`), calls).toBe(true);
    expect(calls.endsWith(`--wait\n${system}/bin/switch-to-configuration\nswitch\n`), calls).toBe(true);
    expect(run.stderr).toContain('deploy: 1 published, 0 unchanged, 0 failed');
    expectConsistent(suite.server.chrootDir, n('push'));
    rmSync(record, { recursive: true, force: true });
  });

  it('refuses bad input with a clear message, changing nothing', () => {
    const fleet = newFleet({ one: { flake: [n('one')] } });
    suite.server.addUsers([n('one')]);
    expect(deploy(fleet).status).toBe(0);
    const before = snapshotTree(suite.server.chrootDir);

    const unknown = deploy(fleet, { NAME: 'nosuch' });
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain('bento: error: unknown system "nosuch" (known: ');

    const noNix = bento(['deploy'], { env: { BENTO_DIR: fleet.root, PATH: '/usr/sbin:/sbin' } });
    expect(noNix.status).toBe(1);
    expect(noNix.stderr).toContain('bento: error: nix was not found on PATH');
    expect(noNix.stderr).toContain('apt-get install nix-bin');

    const notRoot = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'deploy'], {
      env: { ...process.env, BENTO_DIR: fleet.root },
      encoding: 'utf8',
    });
    expect(notRoot.status).toBe(1);
    expect(notRoot.stderr).toContain('bento: error: bento deploy must run as root');

    // Another fleet, with a CHROOT_DIR of its own (a CHROOT_DIR is one fleet's: in this one, one is not).
    const ghostChroot = mkdtempSync('/srv/bento-ghost-');
    // Deploy's caches and lock of that CHROOT_DIR too: it has no account, so the server fixture does not know it.
    suite.later(() => {
      rmSync(ghostChroot, { recursive: true, force: true });
      removeDeployCaches(ghostChroot);
    });
    const noUser = newFleet({ ghost: { flake: [n('ghost')] } }, ghostChroot);
    const ghost = deploy(noUser);
    expect(ghost.status).toBe(1);
    expect(ghost.stderr).toContain(`${n('ghost')}: no Unix user ${n('ghost')} on this server: apply generated/server/sftp-server.nix (NixOS) or run generated/server/setup-debian.sh`);
    expect(existsSync(path.join(ghostChroot, n('ghost')))).toBe(false);

    const noHosts = newFleet({});
    rmSync(path.join(noHosts.root, 'hosts'), { recursive: true });
    expect(deploy(noHosts).stderr).toContain(`bento: error: ${noHosts.root}/hosts does not exist`);
    const empty = newFleet({});
    expect(deploy(empty).stderr).toContain('bento: error: the fleet has no systems');

    const underTmp = newFleet({ t: { flake: [n('one')] } }, '/tmp/bento-chroot-under-tmp');
    const tmpRun = deploy(underTmp);
    expect(tmpRun.status).toBe(1);
    expect(tmpRun.stderr).toContain('bento: error: CHROOT_DIR /tmp/bento-chroot-under-tmp cannot hold SFTP chroots: /tmp is writable by its group or others (mode 1777)');
    rmSync('/tmp/bento-chroot-under-tmp', { recursive: true, force: true });

    writeFileSync(path.join(fleet.root, 'hosts', 'one', `${n('one')}.nix`), '# changed\n');
    const readOnly = spawnSync(
      'unshare',
      ['-m', 'sh', '-c', 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && exec "$2" "$3" deploy', 'sh', suite.server.chrootDir, process.execPath, CLI],
      { env: { ...process.env, BENTO_DIR: fleet.root, ...NIX_ENV }, encoding: 'utf8' },
    );
    expect(readOnly.status).toBe(1);
    expect(readOnly.stderr).toContain(`bento: error: CHROOT_DIR ${suite.server.chrootDir} is not writable`);

    expect(snapshotTree(suite.server.chrootDir)).toEqual(before);
  });

  it('skips hosts/common with one line and deploys the rest: a machine reaches it through a link in its directory, never through ../', () => {
    const web = n('web');
    const up = n('up');
    const chrootDir = mkdtempSync('/srv/bento-common-');
    suite.later(() => rmSync(chrootDir, { recursive: true, force: true }));
    // The shared file names the host: a configuration that reads it fails if it cannot be found.
    const fleet = newFleet(
      {
        common: { files: { 'base.nix': `${JSON.stringify(web)}\n` } },
        [web]: { nonFlake: true, files: { 'configuration.nix': '{ ... }: { networking.hostName = import ./common/base.nix; }\n' } },
        [up]: { nonFlake: true, files: { 'configuration.nix': '{ ... }: { networking.hostName = import ../common/base.nix; }\n' } },
      },
      chrootDir,
    );
    symlinkSync('../common', path.join(fleet.root, 'hosts', web, 'common'));
    suite.server.addUsers([web, up], chrootDir);
    const run = deploy(fleet);
    expect(run.stderr).toContain(`${skippedHostDirMessage('common')}\n`);
    expect(run.stderr.split('\n').filter((line) => line.includes('hosts/common'))).toHaveLength(1);
    // The link is copied as files: the machine receives common/ inside its own configuration.
    expect(readFileSync(path.join(chrootDir, web, 'config', 'common', 'base.nix'), 'utf8')).toBe(`${JSON.stringify(web)}\n`);
    // ../common leads out of what is built (and out of what the machine receives): refused, and the way to do it said.
    expect(run.stderr).toContain('deploy: 1 published, 0 unchanged, 1 failed');
    expect(run.stderr).toMatch(new RegExp(`${up}: build failed: error: access to absolute path '[^']*/common/base\\.nix' is forbidden in restricted mode \\(.*files several machines share reach each through a link in its host directory`));
    expect(run.status).toBe(1);
  });

  it('a host directory that lost its configuration.nix is skipped, but what was published for it stays (not a machine removed)', () => {
    const kept = n('kept');
    const chrootDir = mkdtempSync('/srv/bento-skipped-');
    suite.later(() => rmSync(chrootDir, { recursive: true, force: true }));
    const fleet = newFleet({ [kept]: { nonFlake: true }, [n('other')]: { nonFlake: true } }, chrootDir);
    suite.server.addUsers([kept, n('other')], chrootDir);
    expect(deploy(fleet).status).toBe(0);
    rmSync(path.join(fleet.root, 'hosts', kept, 'configuration.nix'));
    writeFileSync(path.join(fleet.root, 'hosts', kept, 'configuration.nix.orig'), '{ ... }: { }\n');
    const run = deploy(fleet);
    expect(run.stderr).toContain(skippedHostDirMessage(kept));
    expect(run.stderr).toContain(`warning: hosts/${kept} has neither flake.nix nor configuration.nix, but ${kept} is published in CHROOT_DIR: what was published for it is left as it is`);
    expect(run.stdout).not.toContain('left the fleet');
    expect(run.status).toBe(0);
    expect(existsSync(path.join(chrootDir, kept, 'last_change_date'))).toBe(true);
    expect(existsSync(path.join(chrootDir, kept, 'removed'))).toBe(false);
    // Removing the directory is removing the machine.
    rmSync(path.join(fleet.root, 'hosts', kept), { recursive: true });
    rmSync(path.join(fleet.root, 'keys', `${kept}.pub`));
    expect(deploy(fleet).stdout).toContain(`${kept}: left the fleet`);
  });

  it("after CHROOT_DIR changed, says to apply the server's accounts first (which moves their homes), and publishes nothing for them", () => {
    const moved = n('moved');
    const chrootDir = mkdtempSync('/srv/bento-moved-');
    const oldChrootDir = mkdtempSync('/srv/bento-old-');
    suite.later(() => [chrootDir, oldChrootDir].forEach((dir) => rmSync(dir, { recursive: true, force: true })));
    suite.later(() => removeDeployCaches(chrootDir));
    const fleet = newFleet({ [moved]: { nonFlake: true } }, chrootDir);
    suite.server.addUsers([moved], oldChrootDir);
    const run = deploy(fleet);
    expect(run.stderr).toContain(
      `${moved}: the user ${moved} is bento's SFTP user of another CHROOT_DIR (its home is ${oldChrootDir}/${moved}, not ${chrootDir}/${moved}): CHROOT_DIR changed, and the server's accounts were not applied since; apply them, which moves every machine's home into the new CHROOT_DIR: on NixOS, rebuild the server with generated/server/sftp-server.nix; elsewhere, run generated/server/setup-debian.sh as root; then deploy again`,
    );
    expect(run.status).toBe(1);
    expect(existsSync(path.join(chrootDir, moved))).toBe(false);
  });

  it("takes away no other fleet's systems before one of its own is published in CHROOT_DIR (another fleet, or the wrong --dir)", () => {
    const chrootDir = mkdtempSync('/srv/bento-two-fleets-');
    suite.later(() => rmSync(chrootDir, { recursive: true, force: true }));
    const first = newFleet({ first: { flake: [n('f1'), n('f2')] } }, chrootDir);
    const second = newFleet({ second: { flake: [n('s1')] } }, chrootDir);
    suite.server.addUsers([n('f1'), n('f2'), n('s1')], chrootDir);
    expect(deploy(first).status).toBe(0);

    // The second fleet's first deploy into it: the first fleet's machines keep what they have.
    const once = deploy(second);
    expect(once.status).toBe(0);
    expect(once.stderr).toContain(`warning: CHROOT_DIR holds systems of which none is in this fleet (${n('f1')}, ${n('f2')}) and none of this fleet's is published there yet: they are left as they are`);
    for (const name of [n('f1'), n('f2')]) {
      expect(existsSync(path.join(chrootDir, name, 'last_change_date'))).toBe(true);
      expect(existsSync(path.join(chrootDir, name, 'removed'))).toBe(false);
    }
    expect(Object.keys(states(chrootDir)).sort()).toEqual([n('f1'), n('f2'), n('s1')].sort());

    // Published there now: the next deploy takes this CHROOT_DIR as its own, and the others go.
    const twice = deploy(second);
    expect(twice.stdout).toContain(`${n('f1')}: left the fleet`);
    expect(twice.stderr).toContain('2 removed from the fleet');
    expect(existsSync(path.join(chrootDir, n('f1'), 'last_change_date'))).toBe(false);
    expect(existsSync(path.join(chrootDir, n('f1'), 'removed'))).toBe(true);
    expect(Object.keys(states(chrootDir))).toEqual([n('s1')]);
  });
});
