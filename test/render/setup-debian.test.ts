/**
 * setup-debian.sh and existing accounts: it sets up only bento's own SFTP
 * users, by the rule deploy applies (src/chroot/accounts.ts,
 * bentoAccountProblem). The system tools are stubbed from a fake passwd.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { renderFleet } from '../../src/render/render-fleet.js';
import { configWith, writeRendered } from '../helpers/render.js';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Runs the setup script of systems `names` on a server whose accounts are
 * the passwd lines `accounts` gives for its CHROOT_DIR (the group's name in
 * the gid field).
 */
function setup(names: string[], accounts: (chrootDir: string) => string[]) {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bento-setup-'));
  const out = path.join(dir, 'generated');
  const chrootDir = path.join(dir, 'chroot');
  writeRendered(out, renderFleet({ config: configWith({ chrootDir }), systems: names.map((name) => ({ name, kind: 'flake' as const })) }));
  writeFileSync(path.join(dir, 'passwd'), accounts(chrootDir).map((line) => `${line}\n`).join(''));
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  const record = `{ echo "== $(basename "$0")"; printf '%s\\n' "$@"; } >> "$FAKE_DIR/calls"`;
  const stubs: Record<string, string> = {
    // id -u NAME / id -gn NAME / id -g NAME, from the fake passwd; id -u alone: root.
    id: `[ $# = 1 ] && { echo 0; exit 0; }\nline=$(grep "^$2:" "$FAKE_DIR/passwd") || exit 1\ncase $1 in -u) echo "$line" | cut -d: -f3 ;; *) echo "$line" | cut -d: -f4 ;; esac`,
    getent: `[ "$1" = passwd ] || exit 0\ngrep "^$2:" "$FAKE_DIR/passwd"`,
    ...Object.fromEntries(['groupadd', 'useradd', 'usermod', 'install'].map((tool) => [tool, record])),
  };
  for (const [tool, body] of Object.entries(stubs)) {
    writeFileSync(path.join(bin, tool), `#!/bin/sh\n${body}\n`);
    chmodSync(path.join(bin, tool), 0o755);
  }
  for (const sub of ['keys.d', 'sshd_config.d', 'sbin', 'systemd']) mkdirSync(path.join(dir, sub));
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
    ['another home alone', 'webapp:x:998:sftp_users::/srv/elsewhere/webapp:/usr/sbin/nologin', 'its home is /srv/elsewhere/webapp, not CHROOT/webapp'],
  ])('refuses %s, as deploy does, and leaves it alone', (_what, line, why) => {
    const run = setup(['webapp'], (chrootDir) => [line.replace('CHROOT', chrootDir)]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`setup-debian.sh: user webapp exists and is not a bento SFTP user (${why.replaceAll('CHROOT', run.chrootDir)}): bento only sets up its own users`);
    expect(run.calls).not.toContain('== usermod');
    expect(run.calls).not.toContain(`${run.chrootDir}/webapp`);
  });
});
