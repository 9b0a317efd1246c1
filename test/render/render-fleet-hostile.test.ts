/**
 * Hostile values rendered into real scripts and Nix: running or evaluating
 * them must treat every value as data. Each attack would create a file in
 * the test directory if it were executed.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePublicKey } from '../../src/fleet/keys.js';
import { renderFleet } from '../../src/render/render-fleet.js';
import { testKey } from '../helpers/fleet.js';
import { evalNixos } from '../helpers/nixos.js';
import { configWith, withClientLibrary, writeRendered } from '../helpers/render.js';
import { installClient, isRoot, runClientScript, shellcheck, STUBS_DIR, writeFakeChroot } from '../helpers/shell.js';

let dir: string;
let out: string;
const owned = (what: string) => path.join(dir, `owned-${what}`);
const attack = (what: string) => `$(touch ${owned(what)})`;
let config: ReturnType<typeof configWith>;
let hostileKey: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bento-hostile-'));
  chmodSync(dir, 0o755);
  out = path.join(dir, 'generated');
  config = configWith({
    chrootDir: `/srv/my chroot/${attack('chroot')}`,
    remoteIp: `x${attack('ip')}`,
    rebuildArgs: ['--option', `it's; touch ${owned('args')}`, '`touch ' + owned('backtick') + '`'],
    updateCalendar: `"; ${attack('calendar')}`,
  });
  hostileKey = `${testKey('router')} root@x"; touch ${owned('key')}; echo "'${attack('key2')}`;
  const systems = [
    { name: 'router', kind: 'non-flake' as const, key: { ...parsePublicKey(testKey('router')), line: hostileKey } },
    { name: 'nas', kind: 'flake' as const },
  ];
  writeRendered(out, withClientLibrary(renderFleet({ config, systems })));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function nothingOwned(): string[] {
  return readdirSync(dir).filter((name) => name.startsWith('owned-'));
}

describe('hostile values', () => {
  it('render shellcheck-clean scripts', () => {
    const scripts = ['server/setup-debian.sh', 'systems/router/update.sh', 'systems/router/bootstrap.sh', 'systems/nas/update.sh'];
    const result = shellcheck(scripts.map((s) => path.join(out, s)));
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('evaluate in Nix to the literal values', () => {
    const server = path.join(out, 'server', 'sftp-server.nix');
    expect(evalNixos<string>([server], 'config.services.bento-server.chrootDir')).toBe(config.chrootDir);
    const users = evalNixos<Record<string, { home: string; openssh: { authorizedKeys: { keys: string[] } } }>>([server], 'config.users.users');
    expect(users.router?.home).toBe(`${config.chrootDir}/router`);
    expect(users.router?.openssh.authorizedKeys.keys).toEqual([hostileKey]);
    // The prune service runs the text of prune-logs.sh, with the module's chrootDir in its environment.
    const prune = evalNixos<{ environment: Record<string, string>; script: string }>([server], 'config.systemd.services.bento-prune-logs');
    expect(prune.environment.BENTO_CHROOT_DIR).toBe(config.chrootDir);
    expect(prune.script).toBe(readFileSync(path.join(out, 'server', 'prune-logs.sh'), 'utf8'));
    expect(evalNixos<string>([server], 'config.systemd.timers.bento-prune-logs.timerConfig.OnCalendar')).toBe('minutely');
    const client = [path.join(out, 'client', 'bento-module.nix'), path.join(out, 'client', 'bento-units.nix')];
    expect(evalNixos<string>(client, 'config.services.bento.updateCalendar')).toBe(config.updateCalendar);
    expect(nothingOwned()).toEqual([]);
  });

  it.skipIf(!isRoot)('make tmpfiles rules that create the chroots at their literal paths', () => {
    const rules = evalNixos<string[]>([path.join(out, 'server', 'sftp-server.nix')], 'config.systemd.tmpfiles.rules');
    // Applied by the real systemd-tmpfiles under a root of their own, whose users it looks up there.
    const root = path.join(dir, 'tmpfiles-root');
    mkdirSync(path.join(root, 'etc'), { recursive: true });
    writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\nrouter:x:4242:4343::/x:/bin/false\nnas:x:4243:4343::/x:/bin/false\n');
    writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\nsftp_users:x:4343:\n');
    writeFileSync(path.join(dir, 'bento.conf'), rules.join('\n') + '\n');
    const applied = spawnSync('systemd-tmpfiles', ['--create', `--root=${root}`, path.join(dir, 'bento.conf')], { encoding: 'utf8' });
    expect(applied.stderr).toBe('');
    expect(applied.status).toBe(0);
    expect(statSync(path.join(root, config.chrootDir, 'router', 'logs')).uid).toBe(4242);
    expect(nothingOwned()).toEqual([]);
  });

  it('setup-debian.sh passes them to the system tools as single arguments', () => {
    const bin = path.join(dir, 'setup-bin');
    mkdirSync(bin);
    for (const tool of ['id', 'getent', 'groupadd', 'useradd', 'usermod', 'install', 'sshd', 'systemctl', 'systemd-sysusers', 'chpasswd']) {
      writeFileSync(path.join(bin, tool), `#!/bin/sh\n{ echo "== ${tool}"; printf '%s\\n' "$@"; } >> "$FAKE_SERVER/calls"\n[ ${tool} = id ] && [ "$1" = -u ] && [ $# = 1 ] && echo 0\n[ ${tool} = id ] && [ $# = 2 ] && exit 1\nexit 0\n`);
      chmodSync(path.join(bin, tool), 0o755);
    }
    const keysDir = path.join(dir, 'keys.d');
    const sshdDir = path.join(dir, 'sshd_config.d');
    mkdirSync(keysDir);
    mkdirSync(sshdDir); // install is stubbed: it creates nothing
    const fake = path.join(dir, 'setup-server');
    mkdirSync(fake);
    const prune = path.join(dir, 'sbin', 'bento-prune-logs');
    const systemdDir = path.join(dir, 'systemd');
    mkdirSync(path.dirname(prune));
    mkdirSync(systemdDir);
    const result = spawnSync('sh', [path.join(out, 'server', 'setup-debian.sh')], {
      encoding: 'utf8',
      env: {
        ...process.env,
        PATH: `${bin}:${process.env.PATH}`,
        FAKE_SERVER: fake,
        BENTO_AUTHORIZED_KEYS_DIR: keysDir,
        BENTO_SSHD_CONFIG_D: sshdDir,
        BENTO_PRUNE_LOGS: prune,
        BENTO_SYSTEMD_DIR: systemdDir,
        BENTO_NO_RELOAD: '1',
      },
    });
    expect(result.stderr).toContain("nas has no key");
    expect(result.status).toBe(0);
    const calls = readFileSync(path.join(fake, 'calls'), 'utf8');
    // A CHROOT_DIR systemd-sysusers would read as several fields or specifiers: useradd, at the account's uid.
    expect(calls).toContain(`== useradd\n--system\n--uid\n70001\n--no-create-home\n--home-dir\n${config.chrootDir}/router\n--gid\nsftp_users\n--shell\n/usr/sbin/nologin\nrouter\n`);
    expect(calls).toContain(`== install\n-d\n-m\n0755\n-o\nrouter\n-g\nsftp_users\n${config.chrootDir}/router/logs\n`);
    expect(readFileSync(path.join(keysDir, 'router'), 'utf8')).toBe(`${hostileKey}\n`);
    expect(readFileSync(path.join(sshdDir, 'bento.conf'), 'utf8')).toContain('Match Group sftp_users\n');
    // The prune it installs is the generated one, and runs with the hostile CHROOT_DIR as data.
    expect(readFileSync(prune, 'utf8')).toBe(readFileSync(path.join(out, 'server', 'prune-logs.sh'), 'utf8'));
    expect(readFileSync(path.join(systemdDir, 'bento-prune-logs.service'), 'utf8')).toContain(`ExecStart=/bin/sh ${prune}\n`);
    expect(readFileSync(path.join(systemdDir, 'bento-prune-logs.timer'), 'utf8')).toContain('OnCalendar=minutely\n');
    expect(spawnSync('sh', [prune], { encoding: 'utf8' }).status).toBe(0);
    expect(nothingOwned()).toEqual([]);
  });

  it.skipIf(!isRoot)('update.sh runs its cycle with them as data (sftp, nixos-rebuild stubbed)', () => {
    // A fake server holding a configuration whose build fails.
    const server = path.join(dir, 'server');
    writeFakeChroot(server, {
      'configuration.nix': '{ }\n',
      'update.sh': readFileSync(path.join(out, 'systems/router/update.sh'), 'utf8'),
      'bento-client.sh': readFileSync(path.join(out, 'client/bento-client.sh'), 'utf8'),
    });
    const varBento = path.join(dir, 'var-bento');
    mkdirSync(varBento);

    const run = runClientScript(installClient(path.join(out, 'systems/router/update.sh'), varBento), varBento, {
      tools: { sftp: path.join(STUBS_DIR, 'sftp'), ssh: path.join(STUBS_DIR, 'ssh'), 'nixos-rebuild': path.join(STUBS_DIR, 'nixos-rebuild') },
      toolEnv: { FAKE_SERVER: server, RECORD_EXIT: '1' },
    });
    expect(run.stderr).toContain('the build failed');
    expect(run.status).toBe(1);
    expect(readFileSync(path.join(server, 'sftp-args'), 'utf8')).toContain(`\nrouter@${config.remoteIp}\n`);
    const calls = readFileSync(path.join(server, 'calls'), 'utf8');
    expect(calls).toContain(
      `== nixos-rebuild\nbuild\n--no-flake\n-I\nnixos-config=/var/bento/configuration.nix\n--option\n${config.rebuildArgs[1]}\n${config.rebuildArgs[2]}\n`,
    );
    // The configuration was installed, the failure reported, the state remembered.
    expect(readFileSync(path.join(varBento, 'configuration.nix'), 'utf8')).toBe('{ }\n');
    // The failure log, and the heartbeat after it (docs/protocol.md §5a).
    expect(readdirSync(path.join(server, 'logs')).sort()).toEqual([expect.stringMatching(/^\d{8}-\d{4}_00000000000000000000000000000000-unknown_failure\.log\.gz$/), 'heartbeat']);
    expect(existsSync(path.join(varBento, '.bento', 'state'))).toBe(true);
    expect(nothingOwned()).toEqual([]);
  });
});
