/**
 * The generated server module (server/sftp-server.nix) evaluated as NixOS
 * would (real nixpkgs lib, NixOS option stubs): its tmpfiles rules make the
 * chroot directories exactly as publication wants them, and its sshd Match
 * block stays last in sshd_config whatever other modules add.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureSystemDirs } from '../../src/chroot/publish.js';
import { parsePublicKey } from '../../src/fleet/keys.js';
import { renderFleet } from '../../src/render/render-fleet.js';
import { testKey } from '../helpers/fleet.js';
import { evalNixos, writeModule } from '../helpers/nixos.js';
import { configWith, writeRendered } from '../helpers/render.js';
import { isRoot } from '../helpers/shell.js';

// Spaces, a quote, a backslash and a tmpfiles specifier (%h) must all stay data.
const CHROOT_DIR = '/srv/bento chroots/"100%h"\\x';
const NAMES = ['nas', 'router'];
const SFTP_GID = 4343;
const uidOf = (name: string) => 4200 + NAMES.indexOf(name);

/** What NixOS adds with systemd.sysusers.enable (test/fixtures/nixos/sysusers.nix). */
const SYSUSERS = path.join(import.meta.dirname, '..', 'fixtures', 'nixos', 'sysusers.nix');

let dir: string;
let server: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bento-server-module-'));
  const systems = NAMES.map((name) => ({ name, kind: 'flake' as const, key: parsePublicKey(testKey(name)) }));
  writeRendered(path.join(dir, 'generated'), renderFleet({ config: configWith({ chrootDir: CHROOT_DIR }), systems }));
  server = path.join(dir, 'generated', 'server', 'sftp-server.nix');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const module = (name: string, text: string): string => writeModule(dir, name, text);

interface Owned {
  uid: number;
  gid: number;
  mode: string;
}

function owned(file: string): Owned {
  const stats = statSync(file);
  return { uid: stats.uid, gid: stats.gid, mode: (stats.mode & 0o7777).toString(8) };
}

describe('server/sftp-server.nix', () => {
  it.skipIf(!isRoot)('creates the chroots with tmpfiles rules: the owners and modes publication and sshd want', () => {
    const rules = evalNixos<string[]>([server], 'config.systemd.tmpfiles.rules');
    expect(rules.length).toBe(1 + 2 * NAMES.length);
    // The rules applied by the real systemd-tmpfiles under a root of their
    // own, whose users it looks up there.
    const root = path.join(dir, 'tmpfiles-root');
    mkdirSync(path.join(root, 'etc'), { recursive: true });
    writeFileSync(path.join(root, 'etc', 'passwd'), ['root:x:0:0::/root:/bin/sh', ...NAMES.map((n) => `${n}:x:${uidOf(n)}:${SFTP_GID}::/x:/bin/false`)].join('\n') + '\n');
    writeFileSync(path.join(root, 'etc', 'group'), `root:x:0:\nsftp_users:x:${SFTP_GID}:\n`);
    const conf = path.join(dir, 'bento.conf');
    writeFileSync(conf, rules.join('\n') + '\n');
    const applied = spawnSync('systemd-tmpfiles', ['--create', `--root=${root}`, conf], { encoding: 'utf8' });
    expect(applied.stderr).toBe('');
    expect(applied.status).toBe(0);

    // What publication makes (deploy: CHROOT_DIR 0755 root's, then ensureSystemDirs).
    const published = path.join(dir, 'published');
    mkdirSync(published, { mode: 0o755 });
    chmodSync(published, 0o755);
    for (const name of NAMES) ensureSystemDirs(published, name, uidOf(name), SFTP_GID);

    const chroot = path.join(root, CHROOT_DIR);
    expect(owned(chroot)).toEqual({ uid: 0, gid: 0, mode: '755' });
    expect(owned(chroot)).toEqual(owned(published));
    for (const name of NAMES) {
      expect(owned(path.join(chroot, name)), name).toEqual(owned(path.join(published, name)));
      expect(owned(path.join(chroot, name, 'logs')), `${name}/logs`).toEqual(owned(path.join(published, name, 'logs')));
      expect(owned(path.join(chroot, name, 'logs')).uid).toBe(uidOf(name));
    }
    // sshd's rule for a ChrootDirectory: root's, writable by nobody else.
    for (const name of NAMES) expect(owned(path.join(chroot, name))).toMatchObject({ uid: 0, mode: '755' });
  });

  it.skipIf(!isRoot)("with systemd.sysusers.enable, the chroots are still root's 0755, whatever the order of the tmpfiles files", () => {
    // sysusers' home-directories.conf names each chroot too; a plain path, as
    // nixpkgs quotes that file's paths with '…' only.
    const chrootDir = '/srv/bento sysusers';
    const generated = path.join(dir, 'sysusers-generated');
    writeRendered(generated, renderFleet({ config: configWith({ chrootDir }), systems: NAMES.map((name) => ({ name, kind: 'flake' as const, key: undefined })) }));
    const on = module('sysusers-on', '{ systemd.sysusers.enable = true; }');
    const files = evalNixos<Record<string, string>>([path.join(generated, 'server', 'sftp-server.nix'), SYSUSERS, on], 'tmpfilesFiles');
    expect(Object.keys(files).sort()).toEqual(['00-nixos.conf', 'home-directories.conf']);
    expect(files['home-directories.conf']).toContain(`'d' '${chrootDir}/nas' `);

    // Applied by the real systemd-tmpfiles, in NixOS's order of file names and in the reverse one.
    for (const [index, order] of [['00-nixos.conf', 'home-directories.conf'], ['home-directories.conf', '00-nixos.conf']].entries()) {
      const root = path.join(dir, `sysusers-root-${index}`);
      mkdirSync(path.join(root, 'etc', 'tmpfiles.d'), { recursive: true });
      writeFileSync(path.join(root, 'etc', 'passwd'), ['root:x:0:0::/root:/bin/sh', ...NAMES.map((n) => `${n}:x:${uidOf(n)}:${SFTP_GID}::${chrootDir}/${n}:/bin/false`)].join('\n') + '\n');
      writeFileSync(path.join(root, 'etc', 'group'), `root:x:0:\nsftp_users:x:${SFTP_GID}:\n`);
      order.forEach((name, position) => writeFileSync(path.join(root, 'etc', 'tmpfiles.d', `${position}-${name}`), files[name] as string));
      const applied = spawnSync('systemd-tmpfiles', ['--create', `--root=${root}`], { encoding: 'utf8' });
      expect(applied.status, applied.stderr).toBe(0);
      for (const name of NAMES) expect(owned(path.join(root, chrootDir, name)), `${order.join(' then ')}: ${name}`).toEqual({ uid: 0, gid: SFTP_GID, mode: '755' });
    }
  });

  it('puts its Match block after what any other module adds to sshd_config', () => {
    const others = module(
      'others',
      `{ lib, ... }: {
        services.openssh.extraConfig = lib.mkMerge [
          (lib.mkOrder 0 "Port 22")
          "ClientAliveInterval 30"
          (lib.mkAfter "UseDNS no")
        ];
      }`,
    );
    const text = evalNixos<string>([server, others], 'config.services.openssh.extraConfig');
    const match = text.indexOf('Match Group sftp_users');
    expect(match).toBeGreaterThan(0);
    for (const global of ['Port 22', 'ClientAliveInterval 30', 'UseDNS no']) {
      expect(text.indexOf(global), global).toBeGreaterThanOrEqual(0);
      expect(text.indexOf(global), global).toBeLessThan(match);
    }
    expect(text.trimEnd().endsWith('Match all')).toBe(true);
  });

  it('declares the users, their keys and homes, with the options NixOS has', () => {
    const users = evalNixos<Record<string, { group: string; home: string; isSystemUser: boolean; openssh: { authorizedKeys: { keys: string[] } } }>>(
      [server],
      'config.users.users',
    );
    // The machines' users, and the user who evaluates fleet code (not an SFTP user: no key, no chroot).
    expect(Object.keys(users)).toEqual(['bento-eval', ...NAMES]);
    expect(users['bento-eval']).toMatchObject({ group: 'bento-eval', home: '/var/empty', isSystemUser: true, openssh: { authorizedKeys: { keys: [] } } });
    expect(users.router).toMatchObject({ group: 'sftp_users', home: `${CHROOT_DIR}/router`, isSystemUser: true });
    expect(users.router?.openssh.authorizedKeys.keys).toEqual([testKey('router')]);
    expect(evalNixos<boolean>([server], 'config.services.openssh.enable')).toBe(true);
    const off = module('off', '{ services.bento-server.enable = false; }');
    expect(evalNixos<string[]>([server, off], 'config.systemd.tmpfiles.rules')).toEqual([]);
  });

  it('gives each user the uid of uids.txt, as setup-debian.sh does, still a system user (no subordinate uids, no login); a system the server adds itself gets none', () => {
    const users = evalNixos<Record<string, { uid: number | null; isSystemUser: boolean; isNormalUser: boolean }>>([server], 'config.users.users');
    expect(users.nas).toMatchObject({ uid: 70000, isSystemUser: true, isNormalUser: false });
    expect(users.router).toMatchObject({ uid: 70001, isSystemUser: true, isNormalUser: false });
    const setup = readFileSync(path.join(dir, 'generated', 'server', 'setup-debian.sh'), 'utf8');
    expect(setup).toContain('\nnas 70000 ');
    expect(setup).toContain('\nrouter 70001 ');
    const extra = module('extra', '{ services.bento-server.systems.laptop = [ ]; }');
    expect(evalNixos<{ uid: number | null }>([server, extra], 'config.users.users.laptop').uid).toBeNull();
  });

  it('runs `bento rollout advance` on a timer when asked, and by default does not', () => {
    expect(Object.keys(evalNixos<Record<string, unknown>>([server], 'config.systemd.timers'))).not.toContain('bento-rollout-advance');
    const advance = module(
      'advance',
      `{ services.bento-server.rollout.advance = { enable = true; package = { type = "derivation"; name = "bento"; outPath = "/pkgs/bento"; }; fleetDir = "/srv/my fleet"; calendar = "*:0/10"; }; }`,
    );
    const service = evalNixos<{ script: string; serviceConfig: { Type: string } }>([server, advance], 'config.systemd.services.bento-rollout-advance');
    expect(service.serviceConfig.Type).toBe('oneshot');
    expect(service.script).toBe("exec /pkgs/bento/bin/bento --dir '/srv/my fleet' rollout advance");
    const timer = evalNixos<{ wantedBy: string[]; timerConfig: { OnCalendar: string } }>([server, advance], 'config.systemd.timers.bento-rollout-advance');
    expect(timer).toMatchObject({ wantedBy: ['timers.target'], timerConfig: { OnCalendar: '*:0/10' } });
    // The script the unit runs, run for real: it is a valid shell line that reaches bento with those arguments.
    const stub = path.join(dir, 'pkgs', 'bento', 'bin');
    mkdirSync(stub, { recursive: true });
    writeFileSync(path.join(stub, 'bento'), '#!/bin/sh\nprintf "%s|" "$@"\n', { mode: 0o755 });
    const ran = execFileSync('sh', ['-c', service.script.replace('/pkgs/bento', path.join(dir, 'pkgs', 'bento'))], { encoding: 'utf8' });
    expect(ran).toBe('--dir|/srv/my fleet|rollout|advance|');
  });
});
