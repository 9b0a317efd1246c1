/**
 * bento's generic NixOS modules (nix/modules/: the flake's nixosModules)
 * and the files `bento generate` writes for a fleet, evaluated with the real
 * nixpkgs lib.evalModules (test/fixtures/nixos/eval.nix): the generated
 * settings only set the modules' options; a machine or a server gets the
 * same units whether it imports the flake's module with the settings or the
 * copies that generate and init write; the modules' own defaults are
 * config.sh's.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePublicKey } from '../../src/fleet/keys.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { renderFleet } from '../../src/render/render-fleet.js';
import { testKey } from '../helpers/fleet.js';
import { evalNixos, writeModule } from '../helpers/nixos.js';
import { configWith, writeRendered } from '../helpers/render.js';

const CLIENT_MODULE = path.join(PACKAGE_ROOT, 'nix', 'modules', 'client.nix');
const SERVER_MODULE = path.join(PACKAGE_ROOT, 'nix', 'modules', 'server.nix');
const SYSUSERS = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'nixos', 'sysusers.nix');

let dir: string;
/** A fleet's generated/, and a machine's configuration as deploy lays it out (utils/bento.nix next to the client files). */
let generated: string;
let machineRoot: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bento-nix-modules-'));
  generated = path.join(dir, 'generated');
  const config = configWith({ remoteHosts: ['bento.example.org', '192.0.2.7'], updateCalendar: 'hourly', updateRandomDelay: '7min', listenPort: 4242, chrootDir: '/srv/chroot', logSizeLimit: 1000 });
  writeRendered(generated, renderFleet({ config, systems: [{ name: 'nas', kind: 'flake', key: parsePublicKey(testKey('nas')) }, { name: 'router', kind: 'non-flake', key: undefined }] }));
  machineRoot = path.join(dir, 'machine');
  mkdirSync(path.join(machineRoot, 'utils'), { recursive: true });
  copyFileSync(path.join(PACKAGE_ROOT, 'utils', 'bento.nix'), path.join(machineRoot, 'utils', 'bento.nix'));
  for (const file of ['bento-module.nix', 'bento-units.nix']) copyFileSync(path.join(generated, 'client', file), path.join(machineRoot, file));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const module = (name: string, text: string): string => writeModule(dir, name, text);

const CLIENT_CASES = {
  bare: '{ }',
  everything: '{ services.bento = { reboot.enable = true; healthCheck.command = "true"; listen = { openFirewall = true; allowedHosts = [ ]; allowedAddresses = [ "any" ]; }; serverPublicKey = "k:abc"; updateCalendar = "daily"; }; }',
  off: '{ services.bento.enable = false; }',
};

describe('the client module', () => {
  it.each(Object.entries(CLIENT_CASES))("flake's module with bento-units.nix, or utils/bento.nix: the same units (%s)", (name, settings) => {
    const machine = module(`client-${name}`, settings);
    for (const attribute of ['config.systemd', 'config.environment.etc', 'config.networking.firewall', 'config.nix.settings', 'environments']) {
      const fromFlake = evalNixos([CLIENT_MODULE, path.join(generated, 'client', 'bento-units.nix'), machine], attribute);
      expect(evalNixos([path.join(machineRoot, 'utils', 'bento.nix'), machine], attribute), attribute).toEqual(fromFlake);
    }
  });

  it("bento-units.nix sets config.sh's values, and a machine's own win", () => {
    const values = evalNixos<{ updateCalendar: string; randomizedDelaySec: string; listen: { port: number; allowedAddresses: string[]; allowedHosts: string[] } }>(
      [CLIENT_MODULE, path.join(generated, 'client', 'bento-units.nix')],
      'config.services.bento',
    );
    expect(values).toMatchObject({ updateCalendar: 'hourly', randomizedDelaySec: '7min', listen: { port: 4242, allowedAddresses: ['192.0.2.7'], allowedHosts: ['bento.example.org'] } });
    const own = module('client-own', '{ services.bento = { updateCalendar = "daily"; listen.allowedHosts = [ "other.example.org" ]; }; }');
    expect(evalNixos([CLIENT_MODULE, path.join(generated, 'client', 'bento-units.nix'), own], 'config.services.bento')).toMatchObject({
      updateCalendar: 'daily',
      listen: { allowedHosts: ['other.example.org'], allowedAddresses: ['192.0.2.7'] },
    });
  });

  it("alone, the module has config.sh's defaults (a fleet with every key at its default sets nothing else)", () => {
    const defaults = path.join(dir, 'defaults');
    writeRendered(defaults, renderFleet({ config: configWith({ remoteHosts: [], remoteIp: '' }), systems: [] }));
    const alone = evalNixos([CLIENT_MODULE], 'config.services.bento');
    expect(evalNixos([CLIENT_MODULE, path.join(defaults, 'client', 'bento-units.nix')], 'config.services.bento')).toEqual(alone);
    expect(alone).toMatchObject({ updateCalendar: '*:0/15', randomizedDelaySec: '15min', reboot: { calendar: '04:00' }, listen: { port: 51337, allowedAddresses: [], allowedHosts: [] }, serverPublicKey: null });
  });
});

const SERVER_CASES = {
  bare: '{ }',
  everything:
    '{ systemd.sysusers.enable = true; services.bento-server = { package = { type = "derivation"; name = "bento"; outPath = "/pkgs/bento"; }; prune = { enable = true; fleetDir = "/srv/fleet"; }; rollout.advance = { enable = true; fleetDir = "/srv/fleet"; }; notify = { enable = true; fleetDir = "/srv/fleet"; }; systems.extra = [ "ssh-ed25519 AAAA extra" ]; }; }',
  off: '{ services.bento-server.enable = false; }',
};

describe('the server module', () => {
  it.each(Object.entries(SERVER_CASES))("flake's module with bento-server-settings.nix, or sftp-server.nix: the same server (%s)", (name, settings) => {
    const server = module(`server-${name}`, settings);
    for (const attribute of ['config.systemd', 'config.users', 'config.services.openssh', 'tmpfilesFiles', 'sshdConfig', 'environments']) {
      const fromFlake = evalNixos([SERVER_MODULE, path.join(generated, 'server', 'bento-server-settings.nix'), SYSUSERS, server], attribute);
      expect(evalNixos([path.join(generated, 'server', 'sftp-server.nix'), SYSUSERS, server], attribute), attribute).toEqual(fromFlake);
    }
  });

  it("the settings hold the fleet's own: its systems and keys, CHROOT_DIR, sshd's limits, the prune with LOG_SIZE_LIMIT", () => {
    const modules = [SERVER_MODULE, path.join(generated, 'server', 'bento-server-settings.nix')];
    expect(evalNixos(modules, 'config.services.bento-server.systems')).toEqual({ nas: [testKey('nas')], router: [] });
    expect(evalNixos(modules, 'config.services.bento-server.chrootDir')).toBe('/srv/chroot');
    expect(evalNixos<string>(modules, 'config.systemd.services.bento-prune-logs.script')).toContain('LOG_SIZE_LIMIT=1000\n');
    expect(Object.keys(evalNixos<Record<string, unknown>>(modules, 'config.services.openssh.settings')).sort()).toEqual(['LoginGraceTime', 'MaxStartups']);
  });

  it("the package option is the default of the timers' packages", () => {
    const server = module('server-package', '{ services.bento-server = { package = { type = "derivation"; name = "bento"; outPath = "/pkgs/bento"; }; notify = { enable = true; fleetDir = "/srv/fleet"; package = { type = "derivation"; name = "other"; outPath = "/pkgs/other"; }; }; prune = { enable = true; fleetDir = "/srv/fleet"; }; }; }');
    const modules = [SERVER_MODULE, path.join(generated, 'server', 'bento-server-settings.nix'), server];
    expect(evalNixos(modules, 'config.systemd.services.bento-prune.script')).toBe('exec /pkgs/bento/bin/bento --dir /srv/fleet prune');
    expect(evalNixos(modules, 'config.systemd.services.bento-notify.script')).toBe('exec /pkgs/other/bin/bento --dir /srv/fleet notify');
  });

  it('the reboots timer runs bento reboots on the fleet, every five minutes by default; off, no unit', () => {
    const server = module('server-reboots', '{ services.bento-server = { package = { type = "derivation"; name = "bento"; outPath = "/pkgs/bento"; }; reboots = { enable = true; fleetDir = "/srv/fleet"; }; }; }');
    const modules = [SERVER_MODULE, path.join(generated, 'server', 'bento-server-settings.nix'), server];
    expect(evalNixos(modules, 'config.systemd.services.bento-reboots.script')).toBe('exec /pkgs/bento/bin/bento --dir /srv/fleet reboots');
    expect(evalNixos(modules, 'config.systemd.timers.bento-reboots.timerConfig.OnCalendar')).toBe('*:0/5');
    expect(Object.keys(evalNixos<Record<string, unknown>>([SERVER_MODULE, path.join(generated, 'server', 'bento-server-settings.nix')], 'config.systemd.timers'))).not.toContain('bento-reboots');
  });

  it('declares bento-eval, who evaluates fleet code: a system user of its own group, no uid (NixOS picks and keeps one), no home, no login; no SFTP user', () => {
    const modules = [SERVER_MODULE, path.join(generated, 'server', 'bento-server-settings.nix')];
    type User = { isSystemUser: boolean; isNormalUser: boolean; uid: number | null; group: string; home: string; createHome: boolean; description: string; openssh: { authorizedKeys: { keys: string[] } } };
    const users = evalNixos<Record<string, User>>(modules, 'config.users.users');
    expect(users['bento-eval']).toEqual({
      name: 'bento-eval',
      description: 'bento fleet code evaluator',
      uid: null,
      isSystemUser: true,
      isNormalUser: false,
      group: 'bento-eval',
      home: '/var/empty',
      homeMode: '700',
      enable: true,
      createHome: false,
      openssh: { authorizedKeys: { keys: [] } },
    });
    expect(evalNixos(modules, 'config.users.groups.bento-eval')).toEqual({ name: 'bento-eval', gid: null, members: [] });
    // What nixpkgs' users-groups.nix asserts of every user: exactly one of
    // isSystemUser and isNormalUser, a group that is declared.
    const groups = Object.keys(evalNixos<Record<string, unknown>>(modules, 'config.users.groups'));
    for (const [name, user] of Object.entries(users)) {
      expect(user.isSystemUser !== user.isNormalUser, name).toBe(true);
      expect(groups, name).toContain(user.group);
    }
    // With systemd.sysusers, NixOS makes no home for it (/var/empty).
    const sysusers = module('server-sysusers', '{ systemd.sysusers.enable = true; }');
    const homes = evalNixos<Record<string, unknown>>([...modules, SYSUSERS, sysusers], 'config.systemd.tmpfiles.settings.home-directories');
    expect(Object.keys(homes)).toEqual(['/srv/chroot/nas', '/srv/chroot/router']);
    // A system of that name set by hand: the definitions conflict, never one account for both.
    const clash = module('server-clash', '{ services.bento-server.systems.bento-eval = [ ]; }');
    expect(() => evalNixos([...modules, clash], 'config.users.users.bento-eval.group')).toThrow(/conflicting definition values/);
  });

  it("alone, without the fleet's settings, it serves nothing it cannot secure: it says what is missing", () => {
    // No SFTP user: only the user who evaluates fleet code, whom the server always has.
    expect(Object.keys(evalNixos([SERVER_MODULE], 'config.users.users'))).toEqual(['bento-eval']);
    expect(() => evalNixos([SERVER_MODULE], 'config.services.openssh.extraConfig')).toThrow(/services\.bento-server\.generated\.sshdMatchBlock is not set: import the fleet's generated\/server\/bento-server-settings\.nix/);
    expect(() => evalNixos([SERVER_MODULE], 'config.systemd.services.bento-prune-logs.script')).toThrow(/generated\.pruneLogsScript is not set/);
  });
});
