import { afterEach, describe, expect, it } from 'vitest';
import { loadFleet, releaseFleet, skippedHostDirMessage } from '../../src/fleet/fleet.js';
import { UserError } from '../../src/errors.js';
import { makeFleet, testKey, type FleetSpec, type TestFleet } from '../helpers/fleet.js';
import { chmodSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FLEET_FILE_LIMIT } from '../../src/fleet/fleet-file.js';
import { findFlakes } from '../../src/fleet/host-tree.js';

let fleet: TestFleet | undefined;
afterEach(() => fleet?.cleanup());

function fleetOf(spec: FleetSpec): string {
  fleet = makeFleet(spec);
  return fleet.root;
}

async function loadError(root: string): Promise<string> {
  try {
    await loadFleet(root);
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return (error as Error).message;
  }
  throw new Error('expected loadFleet to fail');
}

describe('loadFleet', () => {
  it('finds flake systems (asking Nix) and non-flake systems, sorted, with their keys', async () => {
    const root = fleetOf({
      hosts: {
        router: { nonFlake: true },
        'all-flakes-systems': { flake: ['nas', 'kikimora'], utils: true },
        laptop: { flake: ['x1'] },
      },
    });
    const loaded = await loadFleet(root);
    expect(loaded.systems.map((s) => [s.name, s.kind, s.hostDirName])).toEqual([
      ['kikimora', 'flake', 'all-flakes-systems'],
      ['nas', 'flake', 'all-flakes-systems'],
      ['router', 'non-flake', 'router'],
      ['x1', 'flake', 'laptop'],
    ]);
    expect(loaded.systems[0]?.key?.line).toBe(testKey('kikimora'));
    expect(loaded.warnings).toEqual([]);
    expect(loaded.brokenHosts).toEqual([]);
  });

  it('follows the utils symlink when evaluating a flake that imports from it', async () => {
    const root = fleetOf({
      hosts: {
        h: {
          flakeText: '{ outputs = { self }: { nixosConfigurations = import ./utils/systems.nix; }; }\n',
          utils: true,
        },
      },
      keys: [],
    });
    writeFileSync(path.join(root, 'utils', 'systems.nix'), '{ alpha = {}; beta = {}; }\n');
    const loaded = await loadFleet(root);
    expect(loaded.systems.map((s) => s.name)).toEqual(['alpha', 'beta']);
    expect(loaded.warnings).toEqual([
      'keys/alpha.pub is missing: system alpha cannot log in to the SFTP server until its root\'s public key is there',
      'keys/beta.pub is missing: system beta cannot log in to the SFTP server until its root\'s public key is there',
    ]);
  });

  it("reports a broken flake and still returns the other systems, and never calls its systems' keys strays", async () => {
    const root = fleetOf({
      hosts: {
        good: { flake: ['fine'] },
        broken: { flakeText: '{ outputs = { self }: { nixosConfigurations = throw "deliberately broken"; }; }\n' },
        syntax: { flakeText: '{ outputs = \n' },
      },
      // The broken flake's own systems, whose names bento cannot know while it fails.
      keys: ['fine', 'laptop', 'desktop'],
    });
    const loaded = await loadFleet(root);
    expect(loaded.systems.map((s) => s.name)).toEqual(['fine']);
    expect(loaded.brokenHosts.map((b) => b.place)).toEqual(['hosts/broken/flake.nix', 'hosts/syntax/flake.nix']);
    expect(loaded.brokenHosts[0]?.message).toContain('deliberately broken');
    expect(loaded.warnings).toEqual([]);
  });

  it('many flakes: their names asked of Nix processes side by side, a broken one still reported alone', async () => {
    const names = Array.from({ length: 40 }, (_, index) => `m${String(index).padStart(2, '0')}`);
    const hosts: FleetSpec['hosts'] = Object.fromEntries(names.map((name) => [name, { flake: [name] }]));
    hosts.m33 = { flakeText: '{ outputs = { self }: { nixosConfigurations = throw "deliberately broken"; }; }\n' };
    const loaded = await loadFleet(fleetOf({ hosts }), { jobs: 2 });
    expect(loaded.systems.map((s) => s.name)).toEqual(names.filter((name) => name !== 'm33'));
    expect(loaded.brokenHosts.map((b) => b.place)).toEqual(['hosts/m33/flake.nix']);
    expect(loaded.brokenHosts[0]?.message).toContain('deliberately broken');
  });

  it('says so when a flake has no nixosConfigurations', async () => {
    const root = fleetOf({ hosts: { odd: { flakeText: '{ outputs = { self }: { }; }\n' } } });
    const loaded = await loadFleet(root);
    expect(loaded.brokenHosts).toEqual([{ hostDirName: 'odd', place: 'hosts/odd/flake.nix', message: 'the flake has no nixosConfigurations output' }]);
  });

  it('refuses duplicate names, naming both places', async () => {
    const root = fleetOf({ hosts: { router: { nonFlake: true }, flakes: { flake: ['router'] } } });
    expect(await loadError(root)).toBe(
      'system name "router" is defined more than once: hosts/flakes/flake.nix: nixosConfigurations.router and hosts/router',
    );
  });

  it('refuses invalid system names from directories and flake attributes', async () => {
    const root = fleetOf({ hosts: { Router: { nonFlake: true }, f: { flake: ['Bad.Name', 'root'] } }, keys: [] });
    expect((await loadError(root)).split('\n')).toEqual([
      'hosts/Router: "Router" is not a valid system name (it must match [a-z_][a-z0-9_-]{0,31}: lower case letters, digits, \'_\' and \'-\', at most 32 characters)',
      'hosts/f/flake.nix: nixosConfigurations.Bad.Name: "Bad.Name" is not a valid system name (it must match [a-z_][a-z0-9_-]{0,31}: lower case letters, digits, \'_\' and \'-\', at most 32 characters)',
      'hosts/f/flake.nix: nixosConfigurations.root: "root" is reserved for a system account on the server; pick another name',
    ]);
  });

  it('refuses a hostile host directory name', async () => {
    const root = fleetOf({ hosts: { '$(touch owned)': { nonFlake: true }, common: { files: { 'base.nix': '{ }\n' } } }, keys: [] });
    expect((await loadError(root)).split('\n')).toEqual([
      'hosts/$(touch owned): "$(touch owned)" is not a valid host directory name (use letters, digits, \'.\', \'_\' and \'-\')',
    ]);
  });

  it('skips a directory with neither flake.nix nor configuration.nix (files the machines share, hosts/common); the rest of the fleet is loaded', async () => {
    const root = fleetOf({
      hosts: { common: { files: { 'base.nix': '{ }\n', 'users/admins.nix': '{ }\n' } }, web: { flake: ['web'], files: { 'common': '' } }, router: { nonFlake: true }, empty: {} },
    });
    // The usual way for a machine to use hosts/common: a link in its own directory, copied as files.
    rmSync(path.join(root, 'hosts', 'web', 'common'));
    symlinkSync('../common', path.join(root, 'hosts', 'web', 'common'));
    const loaded = await loadFleet(root, { snapshot: true });
    try {
      expect(loaded.systems.map((s) => s.name)).toEqual(['router', 'web']);
      expect(loaded.skippedHostDirs).toEqual(['common', 'empty']);
      expect(loaded.brokenHosts).toEqual([]);
      expect(loaded.warnings).toEqual([]);
      const web = loaded.systems.find((s) => s.name === 'web');
      expect(readFileSync(path.join(web?.filesDir ?? '', 'common', 'users', 'admins.nix'), 'utf8')).toBe('{ }\n');
    } finally {
      await releaseFleet(loaded);
    }
    expect(skippedHostDirMessage('common')).toBe(
      'hosts/common has neither flake.nix nor configuration.nix: skipped, it is no machine (a machine uses shared files through a link in its own directory, like utils: hosts/<machine>/common -> ../common; see the README, "Files several machines share")',
    );
  });

  it('refuses a malformed key, naming the file', async () => {
    const root = fleetOf({ hosts: { router: { nonFlake: true } }, keys: [] });
    writeFileSync(path.join(root, 'keys', 'router.pub'), 'ssh-ed25519 not-base64!\n');
    expect(await loadError(root)).toBe('keys/router.pub: the key data is not valid base64');
  });

  it('warns about keys that belong to no system', async () => {
    const root = fleetOf({ hosts: { router: { nonFlake: true } }, keys: ['router', 'ghost'] });
    expect((await loadFleet(root)).warnings).toEqual(['keys/ghost.pub belongs to no system under hosts/ (ignored)']);
  });

  it('a host directory, or hosts/, that is a symbolic link out of the fleet is refused; one staying inside is followed', async () => {
    const root = fleetOf({ hosts: { ok: { nonFlake: true }, other: { nonFlake: true } }, keys: ['ok', 'evil', 'inner', 'other'] });
    // What a link to /etc/nixos would find: a configuration (and secrets next to it).
    const outside = mkdtempSync(path.join(os.tmpdir(), 'bento-outside-'));
    try {
      chmodSync(outside, 0o755);
      writeFileSync(path.join(outside, 'configuration.nix'), '{ ... }: { }\n');
      symlinkSync(outside, path.join(root, 'hosts', 'evil'));
      renameSync(path.join(root, 'hosts', 'other'), path.join(root, 'inner'));
      symlinkSync('../inner', path.join(root, 'hosts', 'inner'));
      const loaded = await loadFleet(root);
      expect(loaded.systems.map((s) => s.name)).toEqual(['inner', 'ok']);
      expect(loaded.brokenHosts).toEqual([
        {
          hostDirName: 'evil',
          place: 'hosts/evil',
          message: `the host directory is a symbolic link to ${outside}, outside the fleet directory: bento follows links only inside it (like utils -> ../../utils); copy what the machine needs into the fleet`,
        },
      ]);
      // The same rule for hosts/ itself: everything would come from outside.
      rmSync(path.join(root, 'hosts', 'evil'));
      renameSync(path.join(root, 'hosts'), path.join(root, 'real-hosts'));
      symlinkSync(outside, path.join(root, 'hosts'));
      expect(await loadError(root)).toBe(`hosts is a symbolic link to ${outside}, outside the fleet directory: bento follows links only inside it (like utils -> ../../utils); copy what the machine needs into the fleet`);
      expect(() => findFlakes(root)).toThrow(`hosts is a symbolic link to ${outside}, outside the fleet directory`);
      rmSync(path.join(root, 'hosts'));
      symlinkSync('real-hosts', path.join(root, 'hosts'));
      expect((await loadFleet(root)).systems.map((s) => s.name)).toEqual(['inner', 'ok']);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('a host directory not everyone may read is refused like the directories in it', async () => {
    const root = fleetOf({ hosts: { ok: { nonFlake: true }, closed: { nonFlake: true } } });
    chmodSync(path.join(root, 'hosts', 'closed'), 0o700);
    writeFileSync(path.join(root, 'keys', 'ghost.pub'), `${testKey('ghost')}\n`);
    const loaded = await loadFleet(root);
    expect(loaded.systems.map((s) => s.name)).toEqual(['ok']);
    // closed's key is its own, not a stray; ghost's is.
    expect(loaded.warnings).toEqual(['keys/ghost.pub belongs to no system under hosts/ (ignored)']);
    expect(loaded.brokenHosts.map((b) => `${b.place}: ${b.message}`)).toEqual([
      'hosts/closed: the host directory is a directory not everyone may read (mode 0700): it would be copied into the world-readable Nix store and onto the machine; keep secrets out of hosts/ (sops-nix, agenix), or make it readable (chmod o+rx)',
    ]);
  });

  it('names the missing hosts/ and config.sh', async () => {
    const root = fleetOf({ hosts: {} });
    const { rmSync } = await import('node:fs');
    rmSync(path.join(root, 'hosts'), { recursive: true });
    expect(await loadError(root)).toBe(`${root}/hosts does not exist`);
    rmSync(path.join(root, 'config.sh'));
    expect(await loadError(root)).toBe(`${root}/config.sh does not exist: ${root} is not a bento fleet directory`);
  });
});

describe('prebuilt systems', () => {
  it('a PREBUILT file marks every system of its host directory; PREBUILT=1 marks them all', async () => {
    const root = fleetOf({ hosts: { pair: { flake: ['a', 'b'], files: { PREBUILT: '' } }, solo: { flake: ['c'] }, r: { nonFlake: true } } });
    const marks = async () => (await loadFleet(root)).systems.map((system) => [system.name, system.prebuilt]);
    expect(await marks()).toEqual([
      ['a', true],
      ['b', true],
      ['c', false],
      ['r', false],
    ]);
    writeFileSync(path.join(root, 'config.sh'), 'CHROOT_DIR=/srv/x\nREMOTE_IP=a\nPREBUILT=1\n');
    expect((await marks()).every(([, prebuilt]) => prebuilt)).toBe(true);
  });

  it('PREBUILT with NOLOCALBUILD=1, or with SELF_UPDATE, is a clear error', async () => {
    let root = fleetOf({ config: 'CHROOT_DIR=/srv/x\nREMOTE_IP=a\nNOLOCALBUILD=1\n', hosts: { h: { flake: ['a'], files: { PREBUILT: '' } } } });
    expect(await loadError(root)).toBe(
      'hosts/h/PREBUILT: a prebuilt system must be built on this server, but NOLOCALBUILD=1 (config.sh) only evaluates: there would be nothing to hand over; remove the flag or NOLOCALBUILD',
    );
    fleet?.cleanup();
    root = fleetOf({ config: 'CHROOT_DIR=/srv/x\nREMOTE_IP=a\nPREBUILT=1\n', hosts: { h: { flake: ['a', 'b'], files: { SELF_UPDATE: '' } } } });
    expect(await loadError(root)).toBe(
      'hosts/h: SELF_UPDATE and PREBUILT=1 (config.sh) cannot be combined: a prebuilt machine never evaluates Nix, and SELF_UPDATE updates the inputs and rebuilds on the machine',
    );
  });
});

describe('reboot windows', () => {
  it("a host directory's REBOOT_WINDOW wins over config.sh's for its systems; a bad one names the file", async () => {
    const root = fleetOf({
      config: 'CHROOT_DIR=/srv/x\nREMOTE_IP=a\nREBOOT_WINDOW="Sat,Sun 01:00-04:00"\n',
      hosts: { night: { nonFlake: true, files: { REBOOT_WINDOW: 'Mon..Fri 22:00-02:00\n' } }, plain: { nonFlake: true } },
    });
    const windows = (await loadFleet(root)).systems.map((system) => [system.name, system.rebootWindow?.text]);
    expect(windows).toEqual([
      ['night', 'Mon..Fri 22:00-02:00'],
      ['plain', 'Sat,Sun 01:00-04:00'],
    ]);
    writeFileSync(path.join(root, 'hosts', 'night', 'REBOOT_WINDOW'), 'weekdays at night\n');
    expect(await loadError(root)).toContain('hosts/night/REBOOT_WINDOW: REBOOT_WINDOW must be weekdays and a time range');
  });

  it('reads a REBOOT_WINDOW no further than a limit (its writers may grow it without end), naming it', async () => {
    const root = fleetOf({ hosts: { night: { nonFlake: true, files: { REBOOT_WINDOW: '' } } } });
    // Sparse: a regular file as large as it says, that nobody wrote.
    truncateSync(path.join(root, 'hosts', 'night', 'REBOOT_WINDOW'), FLEET_FILE_LIMIT + 1);
    const message = await loadError(root);
    // Read whole, its 16 MiB of NULs would be the message (too long for a diff to print).
    expect(message.length).toBeLessThan(1000);
    expect(message).toBe('hosts/night/REBOOT_WINDOW holds more than 16 MiB: bento reads the reboot window of its machines from it, which takes far less');
  });
});
