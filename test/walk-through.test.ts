/**
 * The README's walk-through ("A first real fleet"), run as it is written:
 * each shell block marked `<!-- walk-through: NAME -->` is read from
 * README.md and run by sh, in order, as root, so the README cannot say
 * what is not so. What a person does between the blocks (editing config.sh,
 * the machines' own steps, which need a real NixOS) the test does itself,
 * and says where. Stand-ins: nixpkgs (test/helpers/nixpkgs-flake.ts: the
 * real lib and module system, a tiny system built), the machines
 * (directories holding their /etc/nixos and /root/.ssh, which `scp` copies
 * from as root@<machine>:<path>), and `sudo` (a shell function: the test is
 * root already). Changed in the blocks: the machines' names (with the
 * test's prefix, so they never meet a real account) and the two CHROOT_DIR
 * paths (directories of the test's own), nothing else; a block naming any
 * other absolute path of this server is refused before it runs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { CLI } from './helpers/cli.js';
import { testKey } from './helpers/fleet.js';
import { makeNixpkgsFlake, useNixpkgsFlake } from './helpers/nixpkgs-flake.js';
import { removeAutoRootsUnder, removeDeployCaches, useTestServer } from './helpers/server.js';
import { isRoot } from './helpers/shell.js';
import { markedShellBlocks } from './helpers/marked-blocks.js';

/** The marked blocks of the walk-through, in the README's order: a block added there must be added here. */
const BLOCKS = ['init', 'add-laptop', 'publish', 'add-nas', 'new-key', 'remove-laptop', 'move-chroot'] as const;
/** The machines the walk-through names, and the CHROOT_DIR paths it names (init's default, then where it moves). */
const MACHINES = ['laptop', 'nas'] as const;
const README_CHROOT = '/home/chroot';
const README_MOVED_CHROOT = '/srv/bento';

/** The shell blocks of `text` marked `<!-- walk-through: NAME -->`, in order. */
const walkThroughBlocks = (text: string) => markedShellBlocks(text, 'walk-through');

const suite = useTestServer();
let work = '';
let fleetDir: string;
let machinesDir: string;
let serverDir: string;
let movedChroot = '';
let env: Record<string, string>;
const blocks = new Map<string, string>();

/** A machine's name in this test. */
const m = (name: (typeof MACHINES)[number]) => suite.n(name);

/** The block, its machines and CHROOT_DIR paths made the test's own; refused if it names another path of this server. */
function adapt(script: string): string {
  const chroots: Record<string, string> = { [README_CHROOT]: suite.server.chrootDir, [README_MOVED_CHROOT]: movedChroot };
  const adapted = script
    .replace(new RegExp(`\\b(${MACHINES.join('|')})\\b`, 'g'), (name) => suite.n(name))
    .replace(/(\/home\/chroot|\/srv\/bento)(?![\w.-])/g, (dir) => chroots[dir] as string);
  // Paths after ':' are the machines' (root@nas:/etc/nixos/…), which scp reads from the stand-ins.
  const allowed = [work, suite.server.chrootDir, movedChroot];
  for (const [, file] of adapted.matchAll(/(?:^|[\s'"=|])(\/[^\s'"|;]*)/g)) {
    if (!allowed.some((dir) => file === dir || file?.startsWith(`${dir}/`))) throw new Error(`a walk-through block names ${file}, outside the test's directories: running it would touch this server`);
  }
  return adapted;
}

/** Runs the marked block `name` as the README says, in `cwd` (the fleet, after init). */
function runBlock(name: (typeof BLOCKS)[number], cwd = fleetDir) {
  const script = adapt(blocks.get(name) as string);
  const run = spawnSync('sh', ['-euc', `sudo() { "$@"; }\n${script}`], { cwd, env, encoding: 'utf8', timeout: 300_000 });
  const output = `$ ${script}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
  expect(run.status, output).toBe(0);
  return { stdout: run.stdout, stderr: run.stderr, output };
}

/**
 * What the machine's /etc/nixos holds after a NixOS installation: its
 * configuration (boot loader, host name, an administrator's key) and the
 * hardware configuration nixos-generate-config wrote, each machine its own
 * file systems; and root's SSH key (the README's first step on a machine).
 */
function installMachine(name: string, boot: 'uefi' | 'bios', rootDevice: string): void {
  const root = path.join(machinesDir, name);
  mkdirSync(path.join(root, 'etc', 'nixos'), { recursive: true });
  const loader = boot === 'uefi' ? '  boot.loader.systemd-boot.enable = true;\n  boot.loader.efi.canTouchEfiVariables = true;\n' : '  boot.loader.grub.device = "/dev/sda";\n';
  writeFileSync(
    path.join(root, 'etc', 'nixos', 'configuration.nix'),
    `{ config, pkgs, ... }:\n\n{\n  imports = [ ./hardware-configuration.nix ];\n\n${loader}\n  networking.hostName = "${name}";\n  services.openssh.enable = true;\n  users.users.root.openssh.authorizedKeys.keys = [ "${testKey('admin')}" ];\n\n  system.stateVersion = "24.05";\n}\n`,
  );
  writeFileSync(
    path.join(root, 'etc', 'nixos', 'hardware-configuration.nix'),
    [
      '{ config, lib, pkgs, modulesPath, ... }:',
      '',
      '{',
      '  imports = [ (modulesPath + "/installer/scan/not-detected.nix") ];',
      '',
      '  boot.initrd.availableKernelModules = [ "xhci_pci" "ahci" "nvme" "sd_mod" ];',
      '  boot.kernelModules = [ "kvm-intel" ];',
      '',
      `  fileSystems."/" = { device = "${rootDevice}"; fsType = "ext4"; };`,
      ...(boot === 'uefi' ? ['  fileSystems."/boot" = { device = "/dev/disk/by-uuid/3A1F-9C2B"; fsType = "vfat"; options = [ "fmask=0022" "dmask=0022" ]; };'] : []),
      '  swapDevices = [ ];',
      '',
      '  networking.useDHCP = lib.mkDefault true;',
      '  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";',
      '  hardware.cpu.intel.updateMicrocode = lib.mkDefault config.hardware.enableRedistributableFirmware;',
      '}',
      '',
    ].join('\n'),
  );
  newMachineKey(name);
}

/** `ssh-keygen -t ed25519` on the machine (overwriting the key it had). */
function newMachineKey(name: string): string {
  const ssh = path.join(machinesDir, name, 'root', '.ssh');
  mkdirSync(ssh, { recursive: true });
  rmSync(path.join(ssh, 'id_ed25519'), { force: true });
  rmSync(path.join(ssh, 'id_ed25519.pub'), { force: true });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `root@${name}`, '-f', path.join(ssh, 'id_ed25519')]);
  return readFileSync(path.join(ssh, 'id_ed25519.pub'), 'utf8');
}

/** The evaluated settings of the system published for `name` (the stand-in nixpkgs writes them into the system). */
function publishedSettings(chrootDir: string, name: string): { hostName: string; bootLoader: string; fileSystems: Record<string, { device: string }>; units: string[] } {
  const line = readFileSync(path.join(chrootDir, 'states.txt'), 'utf8').split('\n').find((entry) => entry.startsWith(`${name}=`));
  expect(line, `states.txt names ${name}`).toBeDefined();
  return JSON.parse(readFileSync(path.join('/nix/store', (line as string).slice(name.length + 1), 'settings.json'), 'utf8')) as ReturnType<typeof publishedSettings>;
}

function account(name: string): string[] | undefined {
  const run = spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
  return run.status === 0 ? run.stdout.trim().split(':') : undefined;
}

/** scp between this server and the stand-in machines: root@<machine>:<path> is <machines>/<machine><path> (a relative path: in /root). */
const SCP = `#!/bin/sh
set -eu
map() {
	case $1 in
	root@*:*)
		machine=\${1#root@}
		machine=\${machine%%:*}
		file=\${1#*:}
		case $file in /*) ;; *) file=/root/$file ;; esac
		printf '%s\\n' "$BENTO_TEST_MACHINES/$machine$file"
		;;
	*) printf '%s\\n' "$1" ;;
	esac
}
for target; do :; done
target=$(map "$target")
count=$#
for source; do
	[ "$count" -gt 1 ] || break
	count=$((count - 1))
	cp -- "$(map "$source")" "$target"
done
`;

beforeAll(() => {
  if (!isRoot) return;
  for (const name of MACHINES) {
    if (account(m(name))) throw new Error(`an account ${m(name)} exists already: the walk-through would set up a machine of that name`);
  }
  const readme = readFileSync(path.join(PACKAGE_ROOT, 'README.md'), 'utf8');
  for (const { name, script } of walkThroughBlocks(readme)) blocks.set(name, script);
  work = mkdtempSync(path.join(os.tmpdir(), 'bento-walk-through-'));
  // The fleet's flakes are evaluated by an unprivileged user: the stand-in nixpkgs must be readable by everyone.
  chmodSync(work, 0o755);
  fleetDir = path.join(work, 'fleet');
  machinesDir = path.join(work, 'machines');
  serverDir = path.join(work, 'server');
  movedChroot = `${suite.server.chrootDir}-moved`;
  const bin = path.join(work, 'bin');
  for (const dir of [bin, machinesDir, serverDir]) mkdirSync(dir);
  writeFileSync(path.join(bin, 'bento'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`, { mode: 0o755 });
  writeFileSync(path.join(bin, 'scp'), SCP, { mode: 0o755 });
  makeNixpkgsFlake(path.join(work, 'nixpkgs'));
  env = {
    ...(process.env as Record<string, string>),
    PATH: `${bin}:${process.env.PATH}`,
    NO_COLOR: '1',
    // This server has no network: Nix would wait on cache.nixos.org for every build.
    NIX_CONFIG: 'substituters =',
    BENTO_TEST_MACHINES: machinesDir,
    // setup-debian.sh as the README runs it, its files in the test's directory, sshd and systemd left alone.
    BENTO_AUTHORIZED_KEYS_DIR: path.join(serverDir, 'authorized_keys.d'),
    BENTO_SSHD_CONFIG_D: path.join(serverDir, 'sshd_config.d'),
    BENTO_PRUNE_LOGS: path.join(serverDir, 'bento-prune-logs'),
    BENTO_SYSTEMD_DIR: path.join(serverDir, 'systemd'),
    BENTO_NO_RELOAD: '1',
  };
  delete env.BENTO_DIR;
  delete env.NAME;
});

afterAll(() => {
  if (!isRoot) return;
  for (const name of MACHINES) if (account(m(name))) spawnSync('userdel', [m(name)]);
  if (movedChroot) {
    for (const dir of [movedChroot, suite.server.chrootDir]) removeAutoRootsUnder(dir);
    removeDeployCaches(movedChroot);
    rmSync(movedChroot, { recursive: true, force: true });
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('walkThroughBlocks', () => {
  it('reads the marked shell blocks, in order, and nothing else', () => {
    const text = ['<!-- walk-through: one -->', '```sh', 'a', 'b', '```', '', '```sh', 'unmarked', '```', '<!-- walk-through: two -->', '```sh', 'c', '```', ''].join('\n');
    expect(walkThroughBlocks(text)).toEqual([
      { name: 'one', script: 'a\nb\n' },
      { name: 'two', script: 'c\n' },
    ]);
  });
});

describe.skipIf(!isRoot)("the README's walk-through, from bento init to a second machine added and the first removed", () => {
  it('has the blocks this test knows, in its order', () => {
    expect([...blocks.keys()]).toEqual([...BLOCKS]);
  });

  it('init: a new fleet, whose config.sh the person edits', () => {
    runBlock('init', work);
    expect(existsSync(path.join(fleetDir, 'hosts', 'example', 'flake.nix'))).toBe(true);
    // The person: CHROOT_DIR (init's default stands for the test's), REMOTE_IP as it is.
    const config = readFileSync(path.join(fleetDir, 'config.sh'), 'utf8');
    expect(config).toMatch(new RegExp(`^CHROOT_DIR=${README_CHROOT}$`, 'm'));
    writeFileSync(path.join(fleetDir, 'config.sh'), config.replace(/^CHROOT_DIR=.*$/m, `CHROOT_DIR=${suite.server.chrootDir}`));
    // The test alone: nixpkgs is the offline stand-in.
    useNixpkgsFlake(path.join(fleetDir, 'hosts', 'example', 'flake.nix'), path.join(work, 'nixpkgs'));
  });

  it("add-laptop: its host directory holds the machine's own configuration and hardware configuration, its key, a lock file", () => {
    installMachine(m('laptop'), 'uefi', '/dev/disk/by-uuid/0e3c5a9e-laptop');
    runBlock('add-laptop');
    const host = path.join(fleetDir, 'hosts', m('laptop'));
    for (const file of ['configuration.nix', 'hardware-configuration.nix']) {
      expect(readFileSync(path.join(host, file), 'utf8')).toBe(readFileSync(path.join(machinesDir, m('laptop'), 'etc', 'nixos', file), 'utf8'));
    }
    expect(readFileSync(path.join(host, 'flake.nix'), 'utf8')).toContain(`nixosConfigurations.${m('laptop')} = nixpkgs.lib.nixosSystem`);
    expect(existsSync(path.join(host, 'flake.lock'))).toBe(true);
    expect(lstatSync(path.join(host, 'utils')).isSymbolicLink()).toBe(true);
    expect(readFileSync(path.join(fleetDir, 'keys', `${m('laptop')}.pub`), 'utf8')).toBe(readFileSync(path.join(machinesDir, m('laptop'), 'root', '.ssh', 'id_ed25519.pub'), 'utf8'));
  });

  it("publish: the server's accounts, then laptop built from its own hardware configuration and published", () => {
    const run = runBlock('publish');
    expect(run.stdout).toContain(`setup-debian.sh: 1 system(s) ready under ${suite.server.chrootDir}`);
    expect(account(m('laptop'))?.[5]).toBe(path.join(suite.server.chrootDir, m('laptop')));
    expect(readFileSync(path.join(serverDir, 'authorized_keys.d', m('laptop')), 'utf8')).toBe(readFileSync(path.join(fleetDir, 'keys', `${m('laptop')}.pub`), 'utf8'));
    expect(run.stderr, run.output).toContain('deploy: 1 published, 0 unchanged, 0 failed');
    const settings = publishedSettings(suite.server.chrootDir, m('laptop'));
    expect(settings.hostName).toBe(m('laptop'));
    expect(settings.fileSystems['/']?.device).toBe('/dev/disk/by-uuid/0e3c5a9e-laptop');
    expect(settings.bootLoader).toBe('systemd-boot');
    // The client module is part of the system: its timer polls the server.
    expect(settings.units).toContain('bento-upgrade');
    const config = path.join(suite.server.chrootDir, m('laptop'), 'config');
    expect(readFileSync(path.join(config, 'hardware-configuration.nix'), 'utf8')).toContain('/dev/disk/by-uuid/0e3c5a9e-laptop');
    expect(existsSync(path.join(config, 'bootstrap.sh'))).toBe(true);
  });

  it('add-nas: a second machine, built with its own hardware; laptop unchanged; status shows both', () => {
    installMachine(m('nas'), 'bios', '/dev/disk/by-uuid/77d1c0de-nas');
    const run = runBlock('add-nas');
    expect(run.stdout).toContain(`setup-debian.sh: 2 system(s) ready under ${suite.server.chrootDir}`);
    expect(run.stderr, run.output).toContain('deploy: 1 published, 1 unchanged, 0 failed');
    expect(run.stdout).toContain(`${m('laptop')}: no changes`);
    const settings = publishedSettings(suite.server.chrootDir, m('nas'));
    expect([settings.hostName, settings.fileSystems['/']?.device, settings.bootLoader]).toEqual([m('nas'), '/dev/disk/by-uuid/77d1c0de-nas', 'grub on /dev/sda']);
    for (const name of [m('laptop'), m('nas')]) expect(run.stdout).toMatch(new RegExp(`^${name} `, 'm'));
  });

  it("new-key: nas's new key replaces the old one on the server; nothing is published", () => {
    const before = readFileSync(path.join(serverDir, 'authorized_keys.d', m('nas')), 'utf8');
    const published = readFileSync(path.join(suite.server.chrootDir, m('nas'), 'last_change_date'), 'utf8');
    // On the machine: ssh-keygen, overwriting its key.
    const key = newMachineKey(m('nas'));
    runBlock('new-key');
    const after = readFileSync(path.join(serverDir, 'authorized_keys.d', m('nas')), 'utf8');
    expect(after).toBe(key);
    expect(after).not.toBe(before);
    expect(readFileSync(path.join(suite.server.chrootDir, m('nas'), 'last_change_date'), 'utf8')).toBe(published);
  });

  it('remove-laptop: deploy takes away what was published for it, setup locks its account and removes its key, status lists it as removed', () => {
    const run = runBlock('remove-laptop');
    expect(run.stdout).toContain(`${m('laptop')}: left the fleet`);
    expect(run.stderr).toContain('1 removed from the fleet');
    expect(run.stdout).toContain(`setup-debian.sh: ${m('laptop')} is no longer in the fleet: its key is removed and its account locked`);
    expect(existsSync(path.join(serverDir, 'authorized_keys.d', m('laptop')))).toBe(false);
    expect(existsSync(path.join(suite.server.chrootDir, m('laptop'), 'config'))).toBe(false);
    expect(readFileSync(path.join(suite.server.chrootDir, 'states.txt'), 'utf8')).not.toContain(m('laptop'));
    // status: nas in the table, laptop only under it, as removed.
    const status = run.stdout.slice(run.stdout.lastIndexOf('setup-debian.sh: 1 system(s) ready'));
    expect(status).toMatch(new RegExp(`^${m('nas')} `, 'm'));
    expect(status).not.toMatch(new RegExp(`^${m('laptop')} `, 'm'));
    expect(status).toMatch(new RegExp(`removed.*${m('laptop')}`));
  });

  it("move-chroot: the chroots move along, setup moves nas's home, and deploy finds nas published as it was", () => {
    const run = runBlock('move-chroot');
    expect(run.stdout).toContain(`setup-debian.sh: ${m('nas')} was set up for another CHROOT_DIR: its home moves from ${suite.server.chrootDir}/${m('nas')} to ${movedChroot}/${m('nas')}`);
    expect(account(m('nas'))?.[5]).toBe(path.join(movedChroot, m('nas')));
    expect(readFileSync(path.join(fleetDir, 'config.sh'), 'utf8')).toMatch(new RegExp(`^CHROOT_DIR=${movedChroot}$`, 'm'));
    expect(run.stderr, run.output).toContain('deploy: 0 published, 1 unchanged, 0 failed');
    expect(existsSync(suite.server.chrootDir)).toBe(false);
    expect(readdirSync(path.join(movedChroot, m('laptop'))).sort()).toContain('logs');
  });
});
