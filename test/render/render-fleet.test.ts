import { afterAll, describe, expect, it } from 'vitest';
import { parsePublicKey } from '../../src/fleet/keys.js';
import { parseRebootWindow } from '../../src/config/reboot-window.js';
import { clientFilesOf, renderClientFiles, renderFleet, renderServerFiles, renderSystemFiles } from '../../src/render/render-fleet.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { GENERATED_HEADER } from '../../src/render/template-engine.js';
import { testKey } from '../helpers/fleet.js';
import { configWith } from '../helpers/render.js';
import { shellcheck } from '../helpers/shell.js';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'bento-render-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const systems = [
  { name: 'router', kind: 'non-flake' as const, key: parsePublicKey(testKey('router')) },
  { name: 'nas', kind: 'flake' as const },
];

function fileOf(files: { path: string; content: string }[], name: string): string {
  const file = files.find((f) => f.path === name);
  if (!file) throw new Error(`no ${name} in ${files.map((f) => f.path).join(', ')}`);
  return file.content;
}

describe('renderSystemFiles', () => {
  const config = configWith({ remoteIp: '::1', remotePort: 2222, timeout: 7, rebuildArgs: ['--fallback', "it's"] });
  const files = renderSystemFiles(config, { name: 'nas', kind: 'flake' });

  it('renders the two scripts with mode 0755, the shared files with 0644', () => {
    expect(files.map((f) => [f.path, f.mode.toString(8)])).toEqual([
      ['systems/nas/bootstrap.sh', '755'],
      ['systems/nas/update.sh', '755'],
    ]);
    expect(renderClientFiles(config).map((f) => [f.path, f.mode.toString(8)])).toEqual([
      ['client/bento-client.sh', '644'],
      ['client/bento-module.nix', '644'],
      ['client/bento-units.nix', '644'],
      ['client/gitignore', '644'],
    ]);
  });

  it('says where each file goes on the machine', () => {
    expect(clientFilesOf('nas')).toEqual([
      { generated: 'client/gitignore', published: '.gitignore' },
      { generated: 'client/bento-module.nix', published: 'bento-module.nix' },
      { generated: 'client/bento-units.nix', published: 'bento-units.nix' },
      { generated: 'client/bento-client.sh', published: 'bento-client.sh' },
      { generated: 'systems/nas/bootstrap.sh', published: 'bootstrap.sh' },
      { generated: 'systems/nas/update.sh', published: 'update.sh' },
    ]);
  });

  it('puts the settings at the top of update.sh, each quoted', () => {
    const update = fileOf(files, 'systems/nas/update.sh');
    expect(update.startsWith(`#!/bin/sh\n# ${GENERATED_HEADER}\n`)).toBe(true);
    expect(update).toContain(
      [
        'BENTO_MODE=update',
        'BENTO_NAME=nas',
        '# The servers (REMOTE_IP), one per line, tried in this order; the run\'s server',
        '# is the first that answers (BENTO_REMOTE_HOST, and BENTO_SFTP_HOST as sftp writes it).',
        'BENTO_SERVERS=::1',
        'BENTO_REMOTE_HOST=::1',
        "BENTO_SFTP_HOST='[::1]'",
        'BENTO_REMOTE_PORT=2222',
        'BENTO_TIMEOUT=7',
        '# Seconds a run spends at most retrying sessions that cannot connect, all its',
        '# sessions together (CONNECT_RETRY): a run that cannot connect gives up',
        '# within 67 s (CONNECT_RETRY + TIMEOUT for each server).',
        'BENTO_CONNECT_RETRY=60',
        '# Bytes a log may take on the server (LOG_SIZE_LIMIT): longer ones are cut.',
        'BENTO_LOG_SIZE_LIMIT=16777216',
        '# 1: the configuration is a flake (built as .#$BENTO_NAME), 0: configuration.nix',
        'BENTO_FLAKE=1',
      ].join('\n'),
    );
    expect(update).toContain(
      [
        'BENTO_PREBUILT=0',
        "BENTO_CACHE_KEY=''",
        "BENTO_CACHE_URL=''",
        '',
        '# nixos-rebuild with the fleet\'s extra arguments (REBUILD_ARGS in config.sh)',
        'rebuild() {',
        `\tnixos-rebuild "$@" --fallback 'it'\\''s'`,
        '}',
      ].join('\n'),
    );
    expect(fileOf(files, 'systems/nas/bootstrap.sh')).toContain('BENTO_MODE=bootstrap\nBENTO_NAME=nas\n');
  });

  it('keeps bento files out of the git tree', () => {
    expect(fileOf(renderClientFiles(config), 'client/gitignore')).toBe(
      `# ${GENERATED_HEADER}\n# Keeps bento's own files out of the git tree that the machine builds its\n# flake from (a flake sees only tracked files).\n/.bento/\n/.bento-manifest\n/update.sh\n/bootstrap.sh\n/result\n`,
    );
  });

  it("writes the timer settings as the client module's options, at mkDefault (a machine's own setting wins)", () => {
    const units = fileOf(renderClientFiles(configWith({ updateCalendar: 'hourly', updateRandomDelay: '10min' })), 'client/bento-units.nix');
    expect(units).toContain(
      '  services.bento = {\n    updateCalendar = lib.mkDefault "hourly";\n    randomizedDelaySec = lib.mkDefault "10min";\n    reboot.calendar = lib.mkDefault "04:00";\n    listen.port = lib.mkDefault 51337;\n',
    );
    expect(units).toContain('    serverPublicKey = lib.mkDefault null;\n  };\n');
  });

  it("copies bento's generic client module, as its flake has it, under the generated header", () => {
    const module = fileOf(renderClientFiles(configWith()), 'client/bento-module.nix');
    expect(module.startsWith(`# ${GENERATED_HEADER}\n`)).toBe(true);
    expect(module.endsWith(readFileSync(path.join(PACKAGE_ROOT, 'nix', 'modules', 'client.nix'), 'utf8'))).toBe(true);
    expect(fileOf(renderServerFiles({ config: configWith(), systems: [] }), 'server/bento-server-module.nix').endsWith(readFileSync(path.join(PACKAGE_ROOT, 'nix', 'modules', 'server.nix'), 'utf8'))).toBe(true);
  });
});

describe('prebuilt systems', () => {
  const key = { publicKey: 'bento-srv-20250101:uC5kEkaoR8yRCNA45UuQCYvWqWgMjrRIPRoRE1Cykiw=' };

  it("render the key they trust and, with CACHE_URL, where they download; other systems' scripts carry neither", () => {
    const config = configWith({ cacheStore: 's3://bucket?region=eu-west-1', cacheUrl: 'https://cache.example.org/bento?x=1&y=2' });
    const prebuilt = fileOf(renderSystemFiles(config, { name: 'pi', kind: 'flake', prebuilt: true }, undefined, key), 'systems/pi/update.sh');
    expect(prebuilt).toContain(`BENTO_PREBUILT=1\nBENTO_CACHE_KEY=${key.publicKey}\nBENTO_CACHE_URL='https://cache.example.org/bento?x=1&y=2'\n`);
    const other = fileOf(renderSystemFiles(config, { name: 'nas', kind: 'flake' }, undefined, key), 'systems/nas/update.sh');
    expect(other).toContain("BENTO_PREBUILT=0\nBENTO_CACHE_KEY=''\nBENTO_CACHE_URL=''\n");
  });

  it('a prebuilt system without a loaded key is a bug, not a blank key', () => {
    expect(() => renderSystemFiles(configWith(), { name: 'pi', kind: 'flake', prebuilt: true })).toThrow('pi is prebuilt, but no signing key was loaded');
  });

  it("put the server's key in the units every machine shares", () => {
    const files = renderFleet({ config: configWith(), systems: [{ name: 'pi', kind: 'non-flake', prebuilt: true }], signingKey: key });
    expect(fileOf(files, 'client/bento-units.nix')).toContain(`    serverPublicKey = lib.mkDefault "${key.publicKey}";\n`);
    const result = shellcheck(files.filter((file) => file.path.endsWith('.sh')).map((file) => {
      const target = path.join(scratch, file.path);
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(target, file.content);
      return target;
    }));
    expect(result.stdout + result.stderr).toBe('');
  });
});

describe('reboot window (REBOOT_WINDOW)', () => {
  it('reaches update.sh and bootstrap.sh as quoted text and whole numbers; unset: empty', () => {
    const files = renderSystemFiles(configWith(), { name: 'nas', kind: 'flake', rebootWindow: parseRebootWindow('Mon..Fri 22:00-02:00') });
    for (const name of ['update.sh', 'bootstrap.sh']) {
      expect(fileOf(files, `systems/nas/${name}`)).toContain("BENTO_REBOOT_WINDOW='Mon..Fri 22:00-02:00'\nBENTO_REBOOT_DAYS=12345\nBENTO_REBOOT_FROM=1320\nBENTO_REBOOT_TO=120\n");
    }
    expect(fileOf(renderSystemFiles(configWith(), { name: 'nas', kind: 'flake' }), 'systems/nas/update.sh')).toContain("BENTO_REBOOT_WINDOW=''\nBENTO_REBOOT_DAYS=''\nBENTO_REBOOT_FROM=0\nBENTO_REBOOT_TO=0\n");
    const result = shellcheck(files.map((file) => {
      const target = path.join(scratch, 'window', file.path);
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(target, file.content);
      return target;
    }));
    expect(result.stdout + result.stderr).toBe('');
  });
});

describe('renderServerFiles', () => {
  const files = renderServerFiles({ config: configWith(), systems });

  it('sets one SFTP user per system with its key, and CHROOT_DIR, in the settings, at mkDefault', () => {
    const settings = fileOf(files, 'server/bento-server-settings.nix');
    expect(settings).toContain('    chrootDir = lib.mkDefault "/home/chroot";\n');
    expect(settings).toContain(['    systems = lib.mkDefault {', `      "router" = [ "${testKey('router')}" ];`, '      "nas" = [ ];', '    };'].join('\n'));
  });

  it('joins the module and the settings in sftp-server.nix, the file a server imports', () => {
    expect(fileOf(files, 'server/sftp-server.nix')).toContain('  imports = [ ./bento-server-module.nix ./bento-server-settings.nix ];\n');
  });

  it('writes the sshd Match block and closes it', () => {
    const sshd = fileOf(files, 'server/sshd_config');
    expect(sshd).toContain('Match Group sftp_users\n\tChrootDirectory %h\n');
    // Only the requests a client needs, and no execute bit on what it creates.
    expect(sshd).toContain('\tForceCommand internal-sftp -p open,close,read,write,lstat,fstat,stat,opendir,readdir,realpath,expand-path,rename,posix-rename,limits -u 0133\n\tAuthorizedKeysFile /etc/ssh/authorized_keys.d/%u\n');
    expect(sshd.trimEnd().endsWith('Match all')).toBe(true);
  });

  it('creates every user in the Debian setup script, with or without key', () => {
    const setup = fileOf(files, 'server/setup-debian.sh');
    // One line per account: name, uid (uids.txt; here assigned in name order from SFTP_UIDS), key.
    expect(setup).toContain(`\nrouter 70001 ${testKey('router')}\nnas 70000\nBENTO_ACCOUNTS\n`);
    expect(setup).toContain("echo \"setup-debian.sh: 2 system(s) ready under $CHROOT_DIR\"");
  });
});

describe('renderFleet', () => {
  it('is deterministic and sorted', () => {
    const input = { config: configWith(), systems };
    const first = renderFleet(input);
    expect(renderFleet(input)).toEqual(first);
    expect(first.map((f) => f.path)).toEqual([...first.map((f) => f.path)].sort());
  });
});
