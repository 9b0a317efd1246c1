/**
 * setup-debian.sh and existing accounts: it sets up only bento's own SFTP
 * users, by the rule deploy applies (src/chroot/accounts.ts,
 * bentoAccountProblem). The system tools are stubbed from a fake passwd.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { renderFleet } from '../../src/render/render-fleet.js';
import { configWith, writeRendered } from '../helpers/render.js';
import type { Config } from '../../src/config/config.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/**
 * Runs the setup script of systems `names` on a server whose accounts are
 * the passwd lines `accounts` gives for its CHROOT_DIR (the group's name in
 * the gid field).
 */
function setup(names: string[], accounts: (chrootDir: string) => string[], options: { config?: Partial<Config>; env?: Record<string, string>; owners?: [string, string][] } = {}) {
  dir ??= mkdtempSync(path.join(os.tmpdir(), 'bento-setup-'));
  const out = path.join(dir, 'generated');
  const chrootDir = path.join(dir, 'chroot');
  writeRendered(out, renderFleet({ config: configWith({ chrootDir, ...options.config }), systems: names.map((name) => ({ name, kind: 'flake' as const })) }));
  // The fake passwd names the primary group in its gid field; getent, as the
  // real one, gives numbers, from the fake group file.
  const groups = ['sftp_users:x:990:', 'users:x:100:'];
  const gidOf = (group: string) => groups.find((line) => line.startsWith(`${group}:`))?.split(':')[2] ?? group;
  const passwd = accounts(chrootDir).map((line) => line.split(':').map((field, index) => (index === 3 ? gidOf(field) : field)).join(':'));
  writeFileSync(path.join(dir, 'passwd'), passwd.map((line) => `${line}\n`).join(''));
  writeFileSync(path.join(dir, 'group'), groups.map((line) => `${line}\n`).join(''));
  const bin = path.join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  const record = `{ echo "== $(basename "$0")"; printf '%s\\n' "$@"; } >> "$FAKE_DIR/calls"`;
  const stubs: Record<string, string> = {
    // id -u NAME / id -gn NAME / id -g NAME, from the fake passwd; id -u alone: root.
    id: `[ $# = 1 ] && { echo 0; exit 0; }\nline=$(grep "^$2:" "$FAKE_DIR/passwd") || exit 1\ncase $1 in -u) echo "$line" | cut -d: -f3 ;; *) echo "$line" | cut -d: -f4 ;; esac`,
    // getent passwd|group [NAME...], as the real one: every entry, or those of NAME...; nothing of shadow.
    getent: `db=$1; shift\ncase $db in passwd | group) ;; *) exit 0 ;; esac\n[ $# = 0 ] && exec cat "$FAKE_DIR/$db"\nfor name; do grep "^$name:" "$FAKE_DIR/$db"; done`,
    ...Object.fromEntries(['groupadd', 'useradd', 'usermod', 'install', 'systemd-sysusers', 'chpasswd'].map((tool) => [tool, record])),
    // What it was asked to make, kept: the script removes its file.
    'systemd-sysusers': `${record}\ncat "$1" >> "$FAKE_DIR/sysusers.conf"`,
    // stat -c %U:%G -- PATH: the owner the fake owners file gives PATH, else the real one.
    stat: `for file; do :; done\nowner=$(grep "^$file " "$FAKE_DIR/owners" | cut -d' ' -f2)\n[ -n "$owner" ] && { echo "$owner"; exit 0; }\nexec /usr/bin/stat "$@"`,
  };
  writeFileSync(path.join(dir, 'owners'), (options.owners ?? []).map(([file, owner]) => `${file} ${owner}\n`).join(''));
  for (const [tool, body] of Object.entries(stubs)) {
    writeFileSync(path.join(bin, tool), `#!/bin/sh\n${body}\n`);
    chmodSync(path.join(bin, tool), 0o755);
  }
  for (const sub of ['keys.d', 'sshd_config.d', 'sbin', 'systemd']) mkdirSync(path.join(dir, sub), { recursive: true });
  const run = spawnSync('sh', [path.join(out, 'server', 'setup-debian.sh')], {
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      FAKE_DIR: dir,
      BENTO_AUTHORIZED_KEYS_DIR: path.join(dir, 'keys.d'),
      BENTO_SSHD_CONFIG_D: path.join(dir, 'sshd_config.d'),
      BENTO_PRUNE_LOGS: path.join(dir, 'sbin', 'bento-prune-logs'),
      BENTO_SYSTEMD_DIR: path.join(dir, 'systemd'),
      BENTO_NO_RELOAD: '1',
      ...options.env,
    },
  });
  let calls = '';
  try {
    calls = readFileSync(path.join(dir, 'calls'), 'utf8');
  } catch {
    // nothing called
  }
  return { ...run, calls, chrootDir };
}

describe('setup-debian.sh with existing accounts', () => {
  it("accepts bento's own users (group sftp_users, home CHROOT_DIR/<name>, nologin or false)", () => {
    const run = setup(['nas', 'router'], (chrootDir) => [`nas:x:998:sftp_users::${chrootDir}/nas:/usr/sbin/nologin`, `router:x:996:sftp_users::${chrootDir}/router/:/bin/false`]);
    expect(run.stderr).toContain('nas has no key');
    expect(run.status).toBe(0);
    expect(run.calls).toContain(`== install\n-d\n-m\n0755\n-o\nroot\n-g\nsftp_users\n${run.chrootDir}/nas\n`);
    expect(run.calls).toContain(`== install\n-d\n-m\n0755\n-o\nroot\n-g\nsftp_users\n${run.chrootDir}/router\n`);
    expect(run.calls).not.toContain('== useradd');
  });

  it.each([
    ['a person (group, home and shell)', 'webapp:x:1000:users::/home/webapp:/bin/bash', 'its primary group is users, not sftp_users; its home is /home/webapp, not CHROOT/webapp; its shell /bin/bash can log in'],
    ['a login shell alone', 'webapp:x:998:sftp_users::CHROOT/webapp:/bin/sh', 'its shell /bin/sh can log in'],
    ['another home alone', 'webapp:x:998:sftp_users::/srv/webapp-data:/usr/sbin/nologin', 'its home is /srv/webapp-data, not CHROOT/webapp'],
    ['the home of another CHROOT_DIR with a login shell', 'webapp:x:998:sftp_users::/srv/old/webapp:/bin/sh', 'its home is /srv/old/webapp, not CHROOT/webapp; its shell /bin/sh can log in'],
  ])('refuses %s, as deploy does, and leaves it alone', (_what, line, why) => {
    const run = setup(['webapp'], (chrootDir) => [line.replace('CHROOT', chrootDir)]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`setup-debian.sh: user webapp exists and is not a bento SFTP user (${why.replaceAll('CHROOT', run.chrootDir)}): bento only sets up its own users`);
    expect(run.calls).not.toContain('== usermod');
    expect(run.calls).not.toContain(`${run.chrootDir}/webapp`);
  });
});

describe('setup-debian.sh after CHROOT_DIR moved', () => {
  it("moves the home of bento's user of the earlier CHROOT_DIR into the new one (usermod --home), and sets up its chroot there", () => {
    const run = setup(['nas', 'router'], (chrootDir) => [`nas:x:998:sftp_users::/srv/old-chroot/nas:/usr/sbin/nologin`, `router:x:996:sftp_users::${chrootDir}/router:/usr/sbin/nologin`]);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`setup-debian.sh: nas was set up for another CHROOT_DIR: its home moves from /srv/old-chroot/nas to ${run.chrootDir}/nas\n`);
    expect(run.calls).toContain(`== usermod\n--home\n${run.chrootDir}/nas\nnas\n`);
    expect(run.calls).not.toContain(`--home\n${run.chrootDir}/router\n`);
    expect(run.calls).toContain(`== install\n-d\n-m\n0755\n-o\nroot\n-g\nsftp_users\n${run.chrootDir}/nas\n`);
    expect(run.calls).toContain(`== install\n-d\n-m\n0755\n-o\nnas\n-g\nsftp_users\n${run.chrootDir}/nas/logs\n`);
  });

  it('moves it from an old chroot that is still there (root:sftp_users), saying where its logs stay', () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'bento-setup-'));
    const old = path.join(dir, 'old-chroot', 'nas');
    mkdirSync(path.join(old, 'logs'), { recursive: true });
    const run = setup(['nas'], () => [`nas:x:998:sftp_users::${old}/:/usr/sbin/nologin`], { owners: [[old, 'root:sftp_users']] });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`its home moves from ${old} to ${run.chrootDir}/nas; the logs it sent before stay in ${old}/logs\n`);
    expect(run.calls).toContain(`== usermod\n--home\n${run.chrootDir}/nas\nnas\n`);
  });

  it('leaves alone an account whose home <dir>/<name> exists and is not a chroot bento made (not root:sftp_users)', () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'bento-setup-'));
    const other = path.join(dir, 'people', 'nas');
    mkdirSync(other, { recursive: true });
    const run = setup(['nas'], () => [`nas:x:998:sftp_users::${other}:/usr/sbin/nologin`]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`setup-debian.sh: user nas exists and is not a bento SFTP user (its home is ${other}, not ${run.chrootDir}/nas)`);
    expect(run.calls).not.toContain('== usermod');
  });
});

describe('setup-debian.sh and the alerts', () => {
  const nas = (chrootDir: string) => [`nas:x:998:sftp_users::${chrootDir}/nas:/usr/sbin/nologin`];
  const units = () => ['service', 'timer'].map((kind) => path.join(dir ?? '', 'systemd', `bento-notify.${kind}`));

  it('installs the bento-notify timer when config.sh sets a hook, and removes it once none is set', () => {
    const run = setup(['nas'], nas, { config: { notifyUrl: 'https://ntfy.example.org/T0KEN' }, env: { BENTO_BIN: '/usr/local/bin/bento', BENTO_FLEET_DIR: '/srv/fleet' } });
    expect(run.status).toBe(0);
    const [service = '', timer = ''] = units().map((file) => readFileSync(file, 'utf8'));
    expect(service).toContain('\nExecStart=/usr/local/bin/bento --dir /srv/fleet notify\n');
    expect(timer).toContain('\nOnCalendar=*:0/5\n');
    // The token stays in config.sh, read by bento notify when it runs.
    expect(service + timer).not.toContain('T0KEN');
    const again = setup(['nas'], nas);
    expect(again.status).toBe(0);
    for (const file of units()) expect(existsSync(file)).toBe(false);
  });

  it('finds the fleet it was generated into (<fleet>/generated/server/), and says why there is no timer when it cannot', () => {
    const run = setup(['nas'], nas, { config: { notifyCommand: 'logger -t bento' }, env: { BENTO_BIN: '/usr/local/bin/bento', BENTO_FLEET_DIR: '' } });
    expect(run.stderr).toContain('config.sh sets NOTIFY_COMMAND or NOTIFY_URL, but the fleet directory is unknown (set BENTO_FLEET_DIR): no bento-notify timer');
    expect(run.status).toBe(0);
    for (const file of units()) expect(existsSync(file)).toBe(false);
    writeFileSync(path.join(dir ?? '', 'config.sh'), '');
    const found = setup(['nas'], nas, { config: { notifyCommand: 'logger -t bento' }, env: { BENTO_BIN: '/usr/local/bin/bento', BENTO_FLEET_DIR: '' } });
    expect(found.stderr).not.toContain('bento-notify');
    expect(readFileSync(units()[0] ?? '', 'utf8')).toContain(`\nExecStart=/usr/local/bin/bento --dir ${dir} notify\n`);
  });
});

describe('setup-debian.sh and the reboot slots', () => {
  const nas = (chrootDir: string) => [`nas:x:998:sftp_users::${chrootDir}/nas:/usr/sbin/nologin`];
  const units = () => ['service', 'timer'].map((kind) => path.join(dir ?? '', 'systemd', `bento-reboots.${kind}`));

  it('installs the bento-reboots timer with REBOOT_MAX, and removes it once unset', () => {
    const run = setup(['nas'], nas, { config: { rebootMax: 2 }, env: { BENTO_BIN: '/usr/local/bin/bento', BENTO_FLEET_DIR: '/srv/fleet' } });
    expect(run.status).toBe(0);
    const [service = '', timer = ''] = units().map((file) => readFileSync(file, 'utf8'));
    expect(service).toContain('\nExecStart=/usr/local/bin/bento --dir /srv/fleet reboots\n');
    expect(timer).toContain('\nOnCalendar=*:0/5\n');
    expect(existsSync(path.join(dir ?? '', 'systemd', 'bento-notify.timer'))).toBe(false);
    const again = setup(['nas'], nas);
    expect(again.status).toBe(0);
    for (const file of units()) expect(existsSync(file)).toBe(false);
  });

  it('says why there is no timer when the fleet directory is unknown', () => {
    const run = setup(['nas'], nas, { config: { rebootMax: 1 }, env: { BENTO_BIN: '/usr/local/bin/bento', BENTO_FLEET_DIR: '' } });
    expect(run.stderr).toContain('config.sh sets REBOOT_MAX, but the fleet directory is unknown (set BENTO_FLEET_DIR): no bento-reboots timer');
    expect(run.status).toBe(0);
  });
});

describe('setup-debian.sh and BENTO_AUTHORIZED_KEYS_DIR', () => {
  const nas = (chrootDir: string) => [`nas:x:998:sftp_users::${chrootDir}/nas:/usr/sbin/nologin`];

  it("names the keys' directory in bento.conf's AuthorizedKeysFile: sshd reads the keys where the script puts them", () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'bento-setup-'));
    // A trailing slash too: sshd gets one.
    const run = setup(['nas'], nas, { env: { BENTO_AUTHORIZED_KEYS_DIR: `${dir}/keys.d/` } });
    expect(run.stderr).toContain('nas has no key');
    expect(run.status).toBe(0);
    const installed = readFileSync(path.join(dir, 'sshd_config.d', 'bento.conf'), 'utf8');
    const generated = readFileSync(path.join(dir, 'generated', 'server', 'sshd_config'), 'utf8');
    expect(installed).toContain(`\n\tAuthorizedKeysFile ${dir}/keys.d/%u\n`);
    // That line alone differs from the generated sshd_config.
    expect(installed.replace(`${dir}/keys.d/%u`, '/etc/ssh/authorized_keys.d/%u')).toBe(generated);
  });

  it.each([['keys.d'], ['/srv/my keys'], ['/srv/a/../b'], ['/srv/%u'], ['/srv/k|x']])('refuses %j, changing nothing', (keysDir) => {
    const run = setup(['nas'], nas, { env: { BENTO_AUTHORIZED_KEYS_DIR: keysDir } });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(`setup-debian.sh: BENTO_AUTHORIZED_KEYS_DIR must be an absolute path of letters, digits and ._/+- (it becomes sshd's AuthorizedKeysFile), got '${keysDir}'\n`);
    expect(run.calls).toBe('');
  });
});

describe('setup-debian.sh and the accounts\' uids (uids.txt, SFTP_UIDS)', () => {
  it('makes new accounts at their uid, all in one systemd-sysusers run, not as system accounts of 100–999, password *', () => {
    const run = setup(['nas', 'router'], () => []);
    expect(run.status).toBe(0);
    expect(run.calls).not.toContain('== useradd');
    const sysusers = run.calls.split('== ').filter((call) => call.startsWith('systemd-sysusers'));
    expect(sysusers).toHaveLength(1);
    expect(run.calls).toContain('== chpasswd\n-e\n');
  });

  it("moves bento's account made as a system account by an earlier bento to its uid (usermod -u, which also moves its logs/)", () => {
    const run = setup(['nas', 'router'], (chrootDir) => [`nas:x:998:sftp_users::${chrootDir}/nas:/usr/sbin/nologin`, `router:x:70001:sftp_users::${chrootDir}/router:/usr/sbin/nologin`]);
    expect(run.status).toBe(0);
    expect(run.calls).toContain('== usermod\n-u\n70000\nnas\n');
    expect(run.calls).not.toContain('-u\n70001\nrouter');
    expect(run.stdout).toContain('setup-debian.sh: nas moves from uid 998 to 70000 (the fleet\'s uids.txt, in SFTP_UIDS): its logs/ moves with it\n');
  });

  it('refuses, changing nothing, when the uid uids.txt gives a system is another account\'s', () => {
    const run = setup(['nas', 'router'], (chrootDir) => ['postgres:x:70001:users::/var/lib/postgresql:/bin/bash', `nas:x:998:sftp_users::${chrootDir}/nas:/usr/sbin/nologin`]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("setup-debian.sh: uid 70001, which the fleet's uids.txt gives router, is user postgres's: set SFTP_UIDS in config.sh to a range no other account uses");
    expect(run.calls).not.toContain('== usermod');
    expect(run.calls).not.toContain('== systemd-sysusers');
    expect(run.calls).not.toContain(`${run.chrootDir}/nas`);
  });

  it('leaves the uid of an account at its uid alone, and sets its password when its shadow entry cannot be read', () => {
    const run = setup(['nas'], (chrootDir) => [`nas:x:70000:sftp_users::${chrootDir}/nas:/usr/sbin/nologin`]);
    expect(run.status).toBe(0);
    expect(run.calls).toContain("== usermod\n--password\n*\n--expiredate\n\nnas\n");
    expect(run.calls).not.toContain('-u\n');
  });
});

describe('setup-debian.sh and the user who evaluates fleet code', () => {
  const nas = (chrootDir: string) => [`nas:x:70000:sftp_users::${chrootDir}/nas:/usr/sbin/nologin`];
  const made = () => readFileSync(path.join(dir ?? '', 'sysusers.conf'), 'utf8');

  it('makes bento-eval, a system user and group of its own without login shell or home, in the one systemd-sysusers run, and says so', () => {
    const run = setup(['nas', 'router'], nas);
    expect(run.status, run.stderr).toBe(0);
    expect(run.calls.split('== ').filter((call) => call.startsWith('systemd-sysusers'))).toHaveLength(1);
    expect(made()).toContain('\nu bento-eval - "bento fleet code evaluator" /nonexistent /usr/sbin/nologin\n');
    expect(run.stdout).toContain('setup-debian.sh: made the system user bento-eval, who evaluates fleet code for bento (docs/security.md)\n');
  });

  it('leaves an existing bento-eval alone, and says nothing of it', () => {
    const run = setup(['nas'], (chrootDir) => [...nas(chrootDir), 'bento-eval:x:983:users::/nonexistent:/usr/sbin/nologin']);
    expect(run.status, run.stderr).toBe(0);
    expect(run.calls).not.toContain('== systemd-sysusers');
    expect(run.calls).not.toContain('== useradd');
    expect(run.stdout).not.toContain('bento-eval');
  });

  it('makes nothing when it refuses an account', () => {
    const run = setup(['webapp'], () => ['webapp:x:1000:users::/home/webapp:/bin/bash']);
    expect(run.status).toBe(1);
    expect(run.calls).not.toContain('== systemd-sysusers');
    expect(run.calls).not.toContain('bento-eval');
  });
});
