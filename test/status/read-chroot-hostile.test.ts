/**
 * A chroot built the way a hostile or broken client (or a half-finished
 * deploy) leaves it. status must not throw, must show every system it cannot
 * read as unknown with a warning, must decide the others from their real
 * logs alone (an entry that is not a log is named in a warning and changes
 * nothing), and must never let a raw control character through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { statusCommand } from '../../src/commands/status.js';
import { readChroot } from '../../src/status/read-chroot.js';
import { Collector, RAW_CONTROL } from '../helpers/collect.js';
import { NOW, addSystem, ago, hash, logName, makeChroot, storePath, touch, writeLog } from './fixtures.js';

const HOSTILE_LOG = `20240601-1200_${hash('996vw3r6')}-x\n\x1b[2J\x1b]0;pwned\x07_success.log.gz`;
const ESCAPE_LOG = `\x1b[31m20240601-1200_${hash('996vw3r6')}-x_success.log.gz`;
const MANY = 5_000;

let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await makeChroot());
  await writeFile(path.join(dir, 'states.txt'), `good=${storePath('996vw3r6')}\nevil\x1b[2J=oops\nmany=${storePath('996vw3r6')}\n`);
  await addSystem(dir, 'good', { lastChangeAgo: 600, logs: [[logName('996vw3r6', 'success'), 60]] });
  await addSystem(dir, 'failing', { lastChangeAgo: 600, logs: [[logName('1dyc4lgr', 'failure'), 60]] });

  await addSystem(dir, 'newline', { logs: [[logName('996vw3r6', 'success'), 60]] });
  await touch(path.join(dir, 'newline', 'logs', HOSTILE_LOG), 30);
  await addSystem(dir, 'escape', { logs: [[logName('996vw3r6', 'success'), 60]] });
  await touch(path.join(dir, 'escape', 'logs', ESCAPE_LOG), 30);

  await addSystem(dir, 'logsfile');
  await rm(path.join(dir, 'logsfile', 'logs'), { recursive: true });
  await writeFile(path.join(dir, 'logsfile', 'logs'), 'not a directory');

  await addSystem(dir, 'nologs');
  await rm(path.join(dir, 'nologs', 'logs'), { recursive: true });

  await addSystem(dir, 'nodate', { lastChangeAgo: null, logs: [[logName('996vw3r6', 'success'), 60]] });

  // Unreadable: a symbolic link loop (EACCES would not stop root).
  await addSystem(dir, 'loop');
  await rm(path.join(dir, 'loop', 'logs'), { recursive: true });
  await symlink('logs', path.join(dir, 'loop', 'logs'));
  await addSystem(dir, 'locked', { logs: [[logName('996vw3r6', 'success'), 60]] });
  await chmod(path.join(dir, 'locked', 'logs'), 0o000);

  // Valid names that are not regular files.
  await addSystem(dir, 'notfile', { logs: [[logName('996vw3r6', 'success'), 60]] });
  await mkdir(path.join(dir, 'notfile', 'logs', logName('996vw3r6', 'failure', '20240601-1201')));
  await addSystem(dir, 'linked', { logs: [[logName('996vw3r6', 'success'), 60]] });
  await symlink('/etc/passwd', path.join(dir, 'linked', 'logs', logName('996vw3r6', 'success', '20240601-1202')));

  // Huge counts: 5,000 good logs (one newer than the change), and 5,000 bad names.
  await addSystem(dir, 'many', { lastChangeAgo: 600 });
  await Promise.all(
    Array.from({ length: MANY }, (_, i) => writeLog(path.join(dir, 'many', 'logs', logName('996vw3r6', 'success', `2024${String(1 + (i % 12)).padStart(2, '0')}01-${String(i % 24).padStart(2, '0')}00`, `x-${i}`)), i === 0 ? 10 : 1_000 + i)),
  );
  await addSystem(dir, 'junk');
  await Promise.all(Array.from({ length: MANY }, (_, i) => writeFile(path.join(dir, 'junk', 'logs', `junk-${i}\x1b[0m`), '')));

  await writeFile(path.join(dir, 'evil\n\x1b[2J\x1b[31mname'), '');
  await mkdir(path.join(dir, '\x1b]0;title\x07'));
  // C1 CSI and a right-to-left override: JSON quoting leaves them raw, sanitize does not.
  await mkdir(path.join(dir, 'c1\u009b2J\u202eevil'));
}, 120_000);

afterAll(async () => {
  await chmod(path.join(dir, 'locked', 'logs'), 0o755).catch(() => undefined);
  await cleanup();
});

async function runStatus(extra: { json?: boolean } = {}) {
  const stdout = new Collector();
  const stderr = new Collector();
  const code = await statusCommand({ chrootDir: dir, isTTY: false, noColor: true, now: NOW, ...extra }, { stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** Systems status cannot read: unknown. */
const BROKEN = ['logsfile', 'loop', 'nodate', 'nologs'];
/** Systems whose logs/ holds entries that are not logs next to real ones: decided by the real ones. */
const STRAY = { escape: 'up to date 💚', linked: 'up to date 💚', newline: 'up to date 💚', notfile: 'up to date 💚', junk: 'new machine' };

describe('a hostile chroot', () => {
  it('reads without throwing and marks exactly the broken systems', async () => {
    const snapshot = await readChroot(dir);
    const names = snapshot.systems.map((system) => system.name);
    expect(names).toEqual(['escape', 'failing', 'good', 'junk', 'linked', 'locked', 'logsfile', 'loop', 'many', 'newline', 'nodate', 'nologs', 'notfile']);
    const many = snapshot.systems.find((system) => system.name === 'many');
    // 5,000 logs read, one kept: the latest (the only one status needs here).
    expect(many?.logs.map((log) => log.mtimeMs)).toEqual([ago(10)]);
  });

  it('shows broken systems as unknown and the others normally, with no raw control character', async () => {
    const { code, stdout, stderr } = await runStatus();
    expect(code).toBe(2); // "failing" is failing; unknown systems do not change the exit status
    expect(stdout).not.toMatch(RAW_CONTROL);
    expect(stderr).not.toMatch(RAW_CONTROL);

    const rows = new Map(stdout.trimEnd().split('\n').slice(2).map((line) => [line.split(' ')[0], line]));
    for (const name of BROKEN) expect(rows.get(name), name).toContain('unknown ❓');
    for (const [name, state] of Object.entries(STRAY)) expect(rows.get(name), name).toContain(state);
    expect(rows.get('good')).toContain('up to date 💚');
    expect(rows.get('failing')).toContain('failing 🔥');
    expect(rows.get('many')).toMatch(/^many +996vw3r6 +996vw3r6 💚 +up to date 💚 +10s ago +\(last log 10s\)$/);
    // root reads a 000 directory anyway; another user gets a warning and unknown.
    expect(rows.get('locked')).toMatch(process.getuid?.() === 0 ? /up to date/ : /unknown/);
    expect(rows.size).toBe(13);
  });

  it('explains every unknown state and every ignored entry in a sanitized warning', async () => {
    const { stderr } = await runStatus();
    const warnings = stderr.trimEnd().split('\n');
    for (const line of warnings) expect(line).toMatch(/^warning: /);
    for (const name of [...BROKEN, ...Object.keys(STRAY)]) expect(stderr, name).toMatch(new RegExp(`^warning: ${name}[/:]`, 'm'));
    expect(stderr).toContain('newline/logs holds an entry that is not a log (ignored): "20240601-1200_');
    // Quoted names are JSON strings: control characters come out as \n, \u001b...
    expect(stderr).toContain('-x\\n\\u001b[2J\\u001b]0;pwned\\u0007_success.log.gz"');
    expect(stderr).toContain('logsfile/logs is not a directory');
    expect(stderr).toContain('nologs/logs cannot be read: ENOENT');
    expect(stderr).toContain('loop/logs cannot be read: ELOOP');
    expect(stderr).toContain('nodate/last_change_date is missing');
    expect(stderr).toMatch(/notfile\/logs holds an entry that is not a log \(ignored\): .*\(not a regular file\)/);
    expect(stderr).toMatch(/linked\/logs holds an entry that is not a log \(ignored\): .*\(not a regular file\)/);
    // 5,000 bad names: one warning that quotes three and counts the rest.
    expect(stderr).toMatch(/^warning: junk\/logs holds 5000 entries that are not logs \(ignored\): .* and 4997 more$/m);
    expect(stderr).toContain('states.txt:2: ignored, not <system name>=<store path>: "evil\\u001b[2J=oops"');
    expect(stderr).toContain('ignored "evil\\n\\u001b[2J\\u001b[31mname" in CHROOT_DIR: not a system name');
    expect(stderr).toContain('ignored "\\u001b]0;title\\u0007" in CHROOT_DIR: not a system name');
    expect(stderr).toContain('ignored "c1\\x9b2J\\u{202e}evil" in CHROOT_DIR: not a system name');
    expect(stderr).not.toMatch(/[\u0080-\u009f\u202a-\u202e]/);
    expect(warnings.length).toBeLessThan(20);
  });

  it('gives the same answer as JSON, parseable and free of control characters', async () => {
    const { code, stdout } = await runStatus({ json: true });
    expect(code).toBe(2);
    expect(stdout).not.toMatch(RAW_CONTROL);
    const states = Object.fromEntries((JSON.parse(stdout) as { name: string; state: string }[]).map((row) => [row.name, row.state]));
    for (const name of BROKEN) expect(states[name], name).toBe('unknown');
    expect(states).toMatchObject({ good: 'up-to-date', failing: 'failing', many: 'up-to-date', escape: 'up-to-date', linked: 'up-to-date', junk: 'new-machine' });
  });

  it('marks every system unknown when states.txt exists but cannot be read', async () => {
    const other = await makeChroot();
    try {
      await mkdir(path.join(other.dir, 'states.txt'));
      await addSystem(other.dir, 'x1', { lastChangeAgo: 600, logs: [[logName('996vw3r6', 'success'), 60]] });
      const stdout = new Collector();
      const stderr = new Collector();
      const code = await statusCommand({ chrootDir: other.dir, isTTY: false, noColor: true, now: NOW }, { stdout, stderr });
      expect(code).toBe(0);
      expect(stdout.text).toMatch(/^x1 +\? +996vw3r6 ❓ +unknown ❓/m);
      expect(stderr.text).toContain('warning: states.txt cannot be read: EISDIR');
    } finally {
      await other.cleanup();
    }
  });
});
