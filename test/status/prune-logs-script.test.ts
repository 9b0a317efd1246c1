/**
 * The server's minutely prune (templates/server/prune-logs.sh.hbs), run as
 * its systemd unit runs it on Debian (`/bin/sh FILE`, systemd's PATH and
 * nothing else), as root, on real accounts: it touches only the logs/ of
 * bento's own machines (the account rule, never through a link), prints
 * names escaped, and replaces a log over LOG_SIZE_LIMIT by a short log of
 * the same name and mtime, so the result it reports survives.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { OVERSIZE_LOG_TEXT, renderServerFiles } from '../../src/render/render-fleet.js';
import { readChroot } from '../../src/status/read-chroot.js';
import { decideStatus } from '../../src/status/states.js';
import { configWith } from '../helpers/render.js';
import { isRoot } from '../helpers/shell.js';
import { useTestServer } from '../helpers/server.js';
import { LOG_CONTENT, logName, storePath } from './fixtures.js';

const suite = useTestServer();
const LIMIT = 64 * 1024;
/** systemd's PATH for a unit (Debian), and no other variable. */
const UNIT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin';

/** Writes the generated prune for the test server's CHROOT_DIR; returns its path. */
function writePrune(): string {
  const { chrootDir } = suite.server;
  const script = renderServerFiles({ config: configWith({ chrootDir, logSizeLimit: LIMIT }), systems: [] }).find((file) => file.path === 'server/prune-logs.sh');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-prune-'));
  suite.later(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'bento-prune-logs');
  writeFileSync(file, script?.content ?? '', { mode: 0o755 });
  return file;
}

function runPrune(file: string, pathFirst?: string) {
  return spawnSync('/bin/sh', [file], { encoding: 'utf8', env: { PATH: pathFirst ? `${pathFirst}:${UNIT_PATH}` : UNIT_PATH } });
}

/** A directory with logs/, owned as bento's setup makes them (logs/ by `owner`). */
function makeSystemDir(dir: string, owner: string | undefined): string {
  mkdirSync(path.join(dir, 'logs'), { recursive: true, mode: 0o755 });
  if (owner) {
    const { uid, gid } = idsOf(owner);
    chownSync(dir, 0, gid);
    chownSync(path.join(dir, 'logs'), uid, gid);
  }
  return path.join(dir, 'logs');
}

/** An executable file: the prune deletes it from a machine's logs/. */
function plant(logs: string, name = 'rotate.sh'): string {
  const file = path.join(logs, name);
  writeFileSync(file, '#!/bin/sh\n');
  chmodSync(file, 0o755);
  return file;
}

/** A uid and gid, as `id` reads them. */
function idsOf(user: string): { uid: number; gid: number } {
  const id = (flag: string) => Number(spawnSync('id', [flag, user], { encoding: 'utf8' }).stdout.trim());
  return { uid: id('-u'), gid: id('-g') };
}

/**
 * A machine (`label`) whose logs/ hold a log over the limit and a symbolic
 * link of its own to `target` outside the chroot (left from an SFTP server
 * that allowed symlink requests, the original bento's say: this one refuses
 * them), and a directory of fake tools where `tool` (mktemp or touch), once
 * the real one has run, lets the machine rename its link, as itself, onto
 * the name `onto` gives (a shell word; `$out` is mktemp's output): the
 * machine's move lands between two steps of the prune, at the worst moment.
 */
function raceSetup(label: string, tool: 'mktemp' | 'touch', target: string, onto: (logs: string, big: string) => string) {
  const { chrootDir } = suite.server;
  const name = suite.n(label);
  suite.server.addUsers([name]);
  const logs = makeSystemDir(path.join(chrootDir, name), name);
  const big = logName('fcz1s2yp', 'success', '20240601-1100', `nixos-system-${name}-24.05`);
  writeFileSync(path.join(logs, big), Buffer.alloc(LIMIT + 1, 1));
  const link = path.join(logs, 'planted');
  symlinkSync(target, link);
  const { uid, gid } = idsOf(name);
  lchownSync(link, uid, gid);
  const bin = mkdtempSync(path.join(os.tmpdir(), 'bento-race-bin-'));
  suite.later(() => rmSync(bin, { recursive: true, force: true }));
  const run = tool === 'mktemp' ? 'out=$(/usr/bin/mktemp "$@") || exit; printf \'%s\\n\' "$out"' : '/usr/bin/touch "$@" || exit';
  writeFileSync(
    path.join(bin, tool),
    `#!/bin/sh\n${run}\nsetpriv --reuid=${uid} --regid=${gid} --clear-groups mv -f -T '${link}' "${onto(logs, big)}" 2>/dev/null || :\n`,
    { mode: 0o755 },
  );
  return { logs, big, bin };
}

function secondsAgo(seconds: number): number {
  return Date.now() / 1000 - seconds;
}

describe.skipIf(!isRoot)('prune-logs.sh', () => {
  it("leaves alone what is not a bento machine's logs/: another directory, a link, a directory without a bento account", () => {
    const { chrootDir } = suite.server;
    const web = suite.n('web');
    const other = suite.n('other');
    const linked = suite.n('lnk');
    suite.server.addUsers([web, linked]);
    suite.server.addUsers([other], '/srv/elsewhere');
    const prune = writePrune();
    const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'bento-elsewhere-'));
    suite.later(() => rmSync(elsewhere, { recursive: true, force: true }));

    const own = plant(makeSystemDir(path.join(chrootDir, web), web));
    // HHApp/logs is an application's, not a system's (not even a system name).
    const app = plant(makeSystemDir(path.join(chrootDir, 'HHApp'), undefined));
    // A link in CHROOT_DIR to a directory elsewhere, named like a system and not.
    const outside = plant(makeSystemDir(elsewhere, undefined));
    symlinkSync(elsewhere, path.join(chrootDir, 'x'));
    symlinkSync(elsewhere, path.join(chrootDir, linked));
    // A directory named like a system, without an account; one whose account's home is elsewhere.
    const ghost = plant(makeSystemDir(path.join(chrootDir, suite.n('ghost')), undefined));
    const foreign = plant(makeSystemDir(path.join(chrootDir, other), other));

    const run = runPrune(prune);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(`prune-logs: deleted ${own} (10 bytes, mode 755)\n`);
    for (const kept of [app, outside, ghost, foreign]) expect(existsSync(kept), kept).toBe(true);
  });

  it('finds the accounts with getent, as deploy does: one that only NSS knows (LDAP, say) is pruned too', () => {
    const { chrootDir } = suite.server;
    const name = suite.n('nss');
    suite.server.addUsers([name]);
    const prune = writePrune();
    const own = plant(makeSystemDir(path.join(chrootDir, name), name));
    // /etc/passwd without the account; a getent that knows it (as an NSS source would).
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-nss-'));
    suite.later(() => rmSync(dir, { recursive: true, force: true }));
    const line = spawnSync('getent', ['passwd', name], { encoding: 'utf8' }).stdout;
    writeFileSync(path.join(dir, 'passwd'), readFileSync('/etc/passwd', 'utf8').split('\n').filter((entry) => !entry.startsWith(`${name}:`)).join('\n'));
    writeFileSync(path.join(dir, 'accounts'), line);
    mkdirSync(path.join(dir, 'bin'));
    writeFileSync(
      path.join(dir, 'bin', 'getent'),
      `#!/bin/sh\nif [ "$1" = passwd ]; then shift; for key in "$@"; do grep "^$key:" '${dir}/accounts'; done; exit 0; fi\nexec /usr/bin/getent "$@"\n`,
      { mode: 0o755 },
    );
    const run = spawnSync('unshare', ['-m', 'sh', '-c', 'mount --bind "$1" /etc/passwd && exec env -i PATH="$2" /bin/sh "$3"', 'sh', path.join(dir, 'passwd'), `${dir}/bin:${UNIT_PATH}`, prune], {
      encoding: 'utf8',
    });
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe(`prune-logs: deleted ${own} (10 bytes, mode 755)\n`);
    expect(existsSync(own)).toBe(false);
  });

  it('prints every name escaped: a machine writes no line or terminal escape into the journal', () => {
    const { chrootDir } = suite.server;
    const name = suite.n('esc');
    suite.server.addUsers([name]);
    const prune = writePrune();
    const logs = makeSystemDir(path.join(chrootDir, name), name);
    plant(logs, 'evil\nprune-logs: deleted everything\x1b]0;owned\x07\x1b[2J\\x0a\xe9');
    const run = runPrune(prune);
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(`prune-logs: deleted ${logs}/evil\\x0aprune-logs: deleted everything\\x1b]0;owned\\x07\\x1b[2J\\x5cx0a\\xc3\\xa9 (10 bytes, mode 755)\n`);
    expect(readdirSync(logs)).toEqual([]);
  });

  it('keeps the result of a log over LOG_SIZE_LIMIT (an older client): a short log of the same name and mtime; deletes other oversize files, set-ID files, stale uploads', async () => {
    const { chrootDir } = suite.server;
    const name = suite.n('old');
    suite.server.addUsers([name]);
    const prune = writePrune();
    const logs = makeSystemDir(path.join(chrootDir, name), name);
    const system = storePath('fcz1s2yp', `nixos-system-${name}-24.05`);
    writeFileSync(path.join(chrootDir, 'states.txt'), `${name}=${system}\n`);
    writeFileSync(path.join(chrootDir, name, 'last_change_date'), '');
    utimesSync(path.join(chrootDir, name, 'last_change_date'), secondsAgo(7200), secondsAgo(7200));
    // The machine was up to date before, then switched to the new system and
    // sent a log bigger than the limit (its client does not cut logs).
    const before = logName('1dyc4lgr', 'success', '20240601-0900', `nixos-system-${name}-24.05`);
    writeFileSync(path.join(logs, before), LOG_CONTENT);
    utimesSync(path.join(logs, before), secondsAgo(9000), secondsAgo(9000));
    const big = logName('fcz1s2yp', 'success', '20240601-1100', `nixos-system-${name}-24.05`);
    writeFileSync(path.join(logs, big), Buffer.alloc(LIMIT + 1, 1));
    utimesSync(path.join(logs, big), secondsAgo(3600), secondsAgo(3600));
    const receivedMs = statSync(path.join(logs, big)).mtimeMs;
    writeFileSync(path.join(logs, 'junk.bin'), Buffer.alloc(LIMIT + 1));
    writeFileSync(path.join(logs, '.stale.log.gz.tmp-123'), 'half');
    utimesSync(path.join(logs, '.stale.log.gz.tmp-123'), secondsAgo(7200), secondsAgo(7200));
    writeFileSync(path.join(logs, '.fresh.log.gz.tmp-124'), 'half');
    writeFileSync(path.join(logs, 'setuid'), 'x');
    chmodSync(path.join(logs, 'setuid'), 0o4644);
    const statusBefore = (await readChroot(chrootDir)).systems.filter((snapshot) => snapshot.name === name).map((system) => decideStatus(system));
    expect(statusBefore[0]?.state).toBe('rebuild-pending');

    const run = runPrune(prune);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout.split('\n').sort()).toEqual(
      [
        '',
        `prune-logs: deleted ${logs}/junk.bin (${LIMIT + 1} bytes, mode 644)`,
        `prune-logs: deleted ${logs}/.stale.log.gz.tmp-123 (4 bytes, mode 644)`,
        `prune-logs: deleted ${logs}/setuid (1 bytes, mode 4644)`,
        `prune-logs: emptied ${logs}/${big} (${LIMIT + 1} bytes, over LOG_SIZE_LIMIT): a short log in its place keeps its name and result`,
      ].sort(),
    );
    expect(readdirSync(logs).sort()).toEqual([before, big, '.fresh.log.gz.tmp-124'].sort());
    const stub = statSync(path.join(logs, big));
    expect(stub.mtimeMs).toBe(receivedMs);
    expect(stub.mode & 0o777).toBe(0o644);
    expect(gunzipSync(readFileSync(path.join(logs, big))).toString()).toBe(OVERSIZE_LOG_TEXT);
    // Status reads it as any log: the machine switched, and says so.
    const statusAfter = (await readChroot(chrootDir)).systems.filter((snapshot) => snapshot.name === name).map((system) => decideStatus(system));
    expect(statusAfter[0]).toMatchObject({ state: 'up-to-date', latestLog: { fileName: big } });
    // Nothing more to do.
    expect(runPrune(prune)).toMatchObject({ status: 0, stdout: '' });
    rmSync(path.join(chrootDir, 'states.txt'));
  });

  it("never writes through a machine's link: one renamed onto the short log's temporary file, between its creation and its writing, does not make root truncate or chmod a file outside the chroot", () => {
    const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'bento-victim-'));
    suite.later(() => rmSync(elsewhere, { recursive: true, force: true }));
    const victim = path.join(elsewhere, 'shadow');
    writeFileSync(victim, 'secret\n', { mode: 0o600 });
    // The machine sees the temporary file appear and renames its link onto it ($out: mktemp's output).
    const { logs, big, bin } = raceSetup('tmpwrite', 'mktemp', victim, () => '$out');
    const prune = writePrune();

    const run = runPrune(prune, bin);
    expect(readFileSync(victim, 'utf8')).toBe('secret\n');
    expect(statSync(victim).mode & 0o777).toBe(0o600);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(gunzipSync(readFileSync(path.join(logs, big))).toString()).toBe(OVERSIZE_LOG_TEXT);
  });

  it("never moves the short log through a machine's link: one to a directory outside, renamed onto the log just before the short log replaces it, is replaced itself", () => {
    const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'bento-victim-'));
    suite.later(() => rmSync(elsewhere, { recursive: true, force: true }));
    // Just after touch copied the log's mtime, the machine puts its link in the log's place.
    const { logs, big, bin } = raceSetup('logmove', 'touch', elsewhere, (dir, log) => path.join(dir, log));
    const prune = writePrune();

    const run = runPrune(prune, bin);
    expect(readdirSync(elsewhere)).toEqual([]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(lstatSync(path.join(logs, big)).isFile()).toBe(true);
    expect(gunzipSync(readFileSync(path.join(logs, big))).toString()).toBe(OVERSIZE_LOG_TEXT);
  });

  it("never reads a time through a machine's link: one renamed onto the log before its mtime is copied gives the short log the link's own, not that of what it points to", () => {
    const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'bento-victim-'));
    suite.later(() => rmSync(elsewhere, { recursive: true, force: true }));
    utimesSync(elsewhere, secondsAgo(9 * 86400), secondsAgo(9 * 86400));
    const hidden = statSync(elsewhere).mtimeMs;
    // As soon as the short log's temporary file exists, the machine puts its link in the log's place.
    const { logs, big, bin } = raceSetup('logtime', 'mktemp', elsewhere, (dir, log) => path.join(dir, log));
    const prune = writePrune();

    const run = runPrune(prune, bin);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(readdirSync(elsewhere)).toEqual([]);
    const stub = lstatSync(path.join(logs, big));
    expect(stub.isFile()).toBe(true);
    expect(stub.mtimeMs).not.toBe(hidden);
  });

  it("removes a short log's temporary file that a killed run left in the machine's directory, once an hour old", () => {
    const { chrootDir } = suite.server;
    const name = suite.n('killed');
    suite.server.addUsers([name]);
    makeSystemDir(path.join(chrootDir, name), name);
    const stale = path.join(chrootDir, name, '.bento-prune-AbC123.tmp-77');
    const fresh = path.join(chrootDir, name, '.bento-prune-dEf456.tmp-78');
    writeFileSync(stale, 'x');
    utimesSync(stale, secondsAgo(7200), secondsAgo(7200));
    writeFileSync(fresh, 'x');
    const prune = writePrune();

    expect(runPrune(prune)).toMatchObject({ status: 0, stderr: '' });
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
  });
});
