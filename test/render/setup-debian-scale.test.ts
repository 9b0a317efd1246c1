/**
 * setup-debian.sh at scale, for real: 1,000 systems' accounts, chroots and
 * keys made by the generated script in a private mount namespace with a copy
 * of /etc (bench/lib/private-etc.sh), as root; then run again, and with
 * accounts an earlier bento made as system accounts. This machine's
 * /etc/passwd is never touched. Its speed is measured by
 * bench/setup-debian-bench.sh, not here.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isRoot } from '../helpers/shell.js';

const ROOT = path.join(import.meta.dirname, '..', '..');
const PRIVATE_ETC = path.join(ROOT, 'bench', 'lib', 'private-etc.sh');
const RENDER = path.join(ROOT, 'bench', 'lib', 'render-setup.mjs');
/** In the copy of /etc: a server not set up yet, without the user who evaluates fleet code (this machine's, made for the test run, is copied). */
// The copy of /etc without bento-eval: its user and group renamed by hand,
// their ids kept taken. The tests running beside this one evaluate as this
// machine's bento-eval: userdel refuses (exit 8) while a process runs as
// its uid, and an account the setup made at that uid could not be moved
// (usermod -u refuses too).
const NO_EVALUATOR = "sed -i 's/^bento-eval:/bento-eval-of-this-machine:/' /etc/passwd /etc/shadow /etc/group /etc/gshadow";
const canUnshare = isRoot && spawnSync('unshare', ['--mount', 'true']).status === 0;

let work: string | undefined;
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!canUnshare)('setup-debian.sh for 1,000 systems, in a private /etc', () => {
  it('makes every account at its uid of SFTP_UIDS, with chroot and key; a second run changes nothing; system accounts of an earlier bento move', () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'bento-setup-scale-'));
    const chroot = path.join(work, 'chroot');
    const render = spawnSync('node', [RENDER, work, chroot, '1000', 'uidscale'], { encoding: 'utf8' });
    expect(render.stderr).toBe('');
    // Inside the namespace: two accounts made as an earlier bento made them
    // (system accounts, uids below 1000), then the setup twice, then what is there.
    const script = `set -eu
${NO_EVALUATOR}
groupadd --system sftp_users 2> /dev/null || true
useradd --system --no-create-home --home-dir ${chroot}/uidscale00000 --gid sftp_users --shell /usr/sbin/nologin uidscale00000
useradd --system --no-create-home --home-dir ${chroot}/uidscale00001 --gid sftp_users --shell /usr/sbin/nologin uidscale00001
install -d -m 0755 ${chroot}
install -d -m 0755 -o root -g sftp_users ${chroot}/uidscale00000
install -d -m 0755 -o uidscale00000 -g sftp_users ${chroot}/uidscale00000/logs
touch ${chroot}/uidscale00000/logs/sent.log && chown uidscale00000 ${chroot}/uidscale00000/logs/sent.log
export BENTO_AUTHORIZED_KEYS_DIR=${work}/keys BENTO_SSHD_CONFIG_D=${work}/sshd BENTO_PRUNE_LOGS=${work}/sbin/prune BENTO_SYSTEMD_DIR=${work}/systemd BENTO_NO_RELOAD=1
sh ${work}/setup-debian.sh > ${work}/first.out 2> ${work}/first.err
sh ${work}/setup-debian.sh > ${work}/again.out 2> ${work}/again.err
awk -F: 'index($6, "${chroot}/") == 1 { print $1, $3 }' /etc/passwd > ${work}/accounts
awk -F: '$1 ~ /^uidscale/ { print $1, $2, $8 }' /etc/shadow > ${work}/shadow
stat -c '%n %u %U:%G %a' ${chroot}/uidscale00000/logs/sent.log ${chroot}/uidscale00999 ${chroot}/uidscale00999/logs > ${work}/stat
{ getent passwd bento-eval; getent group bento-eval; awk -F: '$1 == "bento-eval" { print $2 }' /etc/shadow; ls -d /nonexistent 2>&1 || true; } > ${work}/evaluator
`;
    writeFileSync(path.join(work, 'run.sh'), script);
    const run = spawnSync('sh', [PRIVATE_ETC, path.join(work, 'ns'), 'sh', path.join(work, 'run.sh')], { encoding: 'utf8' });
    const read = (file: string) => spawnSync('cat', [path.join(work ?? '', file)], { encoding: 'utf8' }).stdout;
    expect(run.stderr + read('first.err')).not.toMatch(/unique UID|error/i);
    expect(run.status).toBe(0);
    const accounts = read('accounts').trim().split('\n').map((line) => line.split(' '));
    expect(accounts).toHaveLength(1000);
    expect(new Set(accounts.map(([, uid]) => uid)).size).toBe(1000);
    expect(accounts.map(([, uid]) => Number(uid)).every((uid) => uid >= 70000 && uid <= 70999)).toBe(true);
    expect(accounts).toContainEqual(['uidscale00999', '70999']);
    expect(accounts).toContainEqual(['uidscale00000', '70000']);
    expect(read('first.out')).toContain('setup-debian.sh: uidscale00000 moves from uid');
    expect(read('first.out')).toContain('setup-debian.sh: 1000 system(s) ready');
    // Every password '*' (key logins only), no expiry.
    expect(read('shadow').split('\n').filter((line) => line !== '' && !line.endsWith(' * '))).toEqual([]);
    // usermod -u gave the moved account's logs to its new uid.
    expect(read('stat')).toContain(`${chroot}/uidscale00000/logs/sent.log 70000 uidscale00000:root 644`);
    expect(read('stat')).toContain(`${chroot}/uidscale00999 0 root:sftp_users 755`);
    expect(read('stat')).toContain(`${chroot}/uidscale00999/logs 70999 uidscale00999:sftp_users 755`);
    expect(read('keys/uidscale00999' as string)).toMatch(/^ssh-ed25519 \S+ uidscale00999\n$/);
    // Again: nothing to do, nothing said but the summary and the mount warning.
    expect(read('again.out')).toBe('setup-debian.sh: 1000 system(s) ready under ' + chroot + '\n');
    // The user who evaluates fleet code, made in the first run: a system user (below 1000) and group of its own, no login, no home.
    expect(read('first.out')).toContain('setup-debian.sh: made the system user bento-eval');
    expectEvaluatorUser(read('evaluator'));
  }, 180_000);

  it('makes bento-eval with useradd where there is no systemd-sysusers, its group alone left from an earlier one too', () => {
    work ??= mkdtempSync(path.join(os.tmpdir(), 'bento-setup-scale-'));
    const out = path.join(work, 'small');
    const chroot = path.join(out, 'chroot');
    const render = spawnSync('node', [RENDER, out, chroot, '2', 'evalsmall'], { encoding: 'utf8' });
    expect(render.stderr).toBe('');
    // /dev/null over systemd-sysusers: there, but not executable (command -v finds none).
    const script = `set -eu
${NO_EVALUATOR}
mount --bind /dev/null "$(command -v systemd-sysusers)"
export BENTO_AUTHORIZED_KEYS_DIR=${out}/keys BENTO_SSHD_CONFIG_D=${out}/sshd BENTO_PRUNE_LOGS=${out}/sbin/prune BENTO_SYSTEMD_DIR=${out}/systemd BENTO_NO_RELOAD=1
sh ${out}/setup-debian.sh > ${out}/first.out 2>&1
{ getent passwd bento-eval; getent group bento-eval; awk -F: '$1 == "bento-eval" { print $2 }' /etc/shadow; ls -d /nonexistent 2>&1 || true; } > ${out}/evaluator
sed -i '/^bento-eval:/d' /etc/passwd /etc/shadow
sh ${out}/setup-debian.sh > ${out}/again.out 2>&1
{ getent passwd bento-eval; getent group bento-eval; awk -F: '$1 == "bento-eval" { print $2 }' /etc/shadow; ls -d /nonexistent 2>&1 || true; } > ${out}/evaluator-again
`;
    writeFileSync(path.join(out, 'run.sh'), script);
    const run = spawnSync('sh', [PRIVATE_ETC, path.join(out, 'ns'), 'sh', path.join(out, 'run.sh')], { encoding: 'utf8' });
    const read = (file: string) => spawnSync('cat', [path.join(out, file)], { encoding: 'utf8' }).stdout;
    expect(run.stderr + read('first.out') + read('again.out')).not.toMatch(/error|failed/i);
    expect(run.status).toBe(0);
    expect(read('first.out')).toContain('setup-debian.sh: made the system user bento-eval');
    expectEvaluatorUser(read('evaluator'));
    expect(read('again.out')).toContain('setup-debian.sh: made the system user bento-eval');
    expectEvaluatorUser(read('evaluator-again'));
  }, 60_000);
});

/** getent passwd and group of bento-eval, its password field, and `ls -d /nonexistent`: a system user with a group of its own, locked, with no login shell and no home. */
function expectEvaluatorUser(text: string) {
  const [passwd = '', group = '', password = '', home = ''] = text.split('\n');
  const match = /^bento-eval:x:(\d+):(\d+):bento fleet code evaluator:\/nonexistent:\/usr\/sbin\/nologin$/.exec(passwd);
  expect(match, text).not.toBeNull();
  const [uid, gid] = [Number(match?.[1]), Number(match?.[2])];
  expect(uid).toBeGreaterThan(0);
  expect(uid).toBeLessThan(1000);
  expect(group).toBe(`bento-eval:x:${gid}:`);
  expect(gid).toBeGreaterThan(0);
  expect(password).toMatch(/^!/);
  expect(home).toContain('No such file or directory');
}
