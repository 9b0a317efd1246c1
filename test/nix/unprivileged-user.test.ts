/**
 * Who evaluates fleet code as root (src/nix/unprivileged.ts), for real:
 * bento-eval when it exists (global-setup.ts makes it for the run, as
 * setup-debian.sh makes it on a server), nobody with one warning when it
 * does not (a missing name given to FleetEvaluator: the real user stays),
 * root never. The evaluator's Nix says who it is (/proc/self/status) and
 * reads files only one of the users may; bento's daemon serves that user.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NIX_FEATURE_ARGS } from '../../src/nix/nix.js';
import { EVALUATOR_USER, FALLBACK_EVALUATOR_USER, fallbackWarning, FleetEvaluator, readEvaluatorFile, type EvaluatorUsers } from '../../src/nix/unprivileged.js';
import { isRoot } from '../helpers/shell.js';

/** A name no account has: a server set up by an older bento, without bento-eval. */
const MISSING = 'bento-eval-missing';

let dir: string;
const files = { evaluator: '', nobody: '' };
const made: FleetEvaluator[] = [];

function idOf(user: string): { uid: number; gid: number } {
  const fields = spawnSync('getent', ['passwd', user], { encoding: 'utf8' }).stdout.split(':');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

beforeAll(() => {
  if (!isRoot) return;
  dir = mkdtempSync(path.join(os.tmpdir(), 'bento-evaluator-user-'));
  chmodSync(dir, 0o755);
  // Each readable by one user alone.
  for (const [which, user] of [['evaluator', EVALUATOR_USER], ['nobody', FALLBACK_EVALUATOR_USER]] as const) {
    const file = path.join(dir, `${which}-only`);
    writeFileSync(file, `${user} may read this`, { mode: 0o400 });
    const { uid, gid } = idOf(user);
    chownSync(file, uid, gid);
    files[which] = file;
  }
});

afterEach(() => made.splice(0).forEach((evaluator) => evaluator.close()));
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function evaluatorOf(users: EvaluatorUsers | undefined, warnings: string[]): FleetEvaluator {
  const evaluator = new FleetEvaluator(users, (message) => warnings.push(message));
  made.push(evaluator);
  return evaluator;
}

/** `nix eval --impure --raw --expr EXPR` as the evaluator, through bento's daemon. */
function evalAs(evaluator: FleetEvaluator, expr: string) {
  return evaluator.runTool('nix', [...NIX_FEATURE_ARGS, 'eval', '--impure', '--raw', '--expr', expr], { allowFailure: true });
}

/** The real, effective, saved and file system uids of the evaluator's Nix process. */
async function uidsOf(evaluator: FleetEvaluator): Promise<number[]> {
  const status = await evalAs(evaluator, 'builtins.readFile "/proc/self/status"');
  expect(status.exitCode, status.stderr).toBe(0);
  return (/^Uid:\s+(.*)$/m.exec(status.stdout)?.[1] ?? '').split(/\s+/).map(Number);
}

/** What each file gives the evaluator: its text, or the error. */
async function readsOf(evaluator: FleetEvaluator): Promise<{ evaluator: string; nobody: string }> {
  const read = async (file: string) => {
    const result = await evalAs(evaluator, `builtins.readFile "${file}"`);
    return result.exitCode === 0 ? result.stdout : /Permission denied/.test(result.stderr) ? 'Permission denied' : result.stderr;
  };
  return { evaluator: await read(files.evaluator), nobody: await read(files.nobody) };
}

/** The allowed-users of the nix-daemons this process started (bento's daemons: setpriv runs them as its children). */
function daemonsAllowedUsers(): string[] {
  const allowed: string[] = [];
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    try {
      const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]);
      if (ppid !== process.pid) continue;
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!args[0]?.endsWith('nix-daemon')) continue;
      const at = args.indexOf('allowed-users');
      if (at >= 0) allowed.push(args[at + 1] ?? '');
    } catch {
      // gone meanwhile
    }
  }
  return allowed;
}

describe.skipIf(!isRoot)('the user who evaluates fleet code as root', () => {
  it('is bento-eval when the server has it: Nix runs with its uid, reads what it alone may, not what nobody alone may; the daemon serves it; no warning', async () => {
    const warnings: string[] = [];
    const evaluator = evaluatorOf(undefined, warnings);
    const { uid } = idOf(EVALUATOR_USER);
    expect(uid).toBeGreaterThan(0);
    expect(await uidsOf(evaluator)).toEqual([uid, uid, uid, uid]);
    expect(await readsOf(evaluator)).toEqual({ evaluator: `${EVALUATOR_USER} may read this`, nobody: 'Permission denied' });
    expect(evaluator.name()).toBe(EVALUATOR_USER);
    expect(daemonsAllowedUsers()).toEqual([`root ${EVALUATOR_USER}`]);
    expect(warnings).toEqual([]);
  }, 60_000);

  it('is nobody on a server without it, with one warning for the whole run that says how to make it', async () => {
    const warnings: string[] = [];
    const users = { user: MISSING, fallback: FALLBACK_EVALUATOR_USER };
    const evaluator = evaluatorOf(users, warnings);
    expect(await uidsOf(evaluator)).toEqual(Array(4).fill(65534));
    expect(await readsOf(evaluator)).toEqual({ evaluator: 'Permission denied', nobody: `${FALLBACK_EVALUATOR_USER} may read this` });
    expect(await evaluator.unreadable([files.evaluator, files.nobody])).toEqual([files.evaluator]);
    expect(evaluator.name()).toBe(FALLBACK_EVALUATOR_USER);
    expect(daemonsAllowedUsers()).toEqual([`root ${FALLBACK_EVALUATOR_USER}`]);
    expect(warnings).toEqual([fallbackWarning(users)]);
    expect(warnings[0]).toContain(`there is no user ${MISSING} on this server yet: bento evaluates fleet code as nobody`);
    expect(warnings[0]).toContain('run generated/server/setup-debian.sh (Debian), or rebuild the NixOS server with bento\'s server module (services.bento-server), again if the server was set up by an older bento');
  }, 60_000);

  it('is never root: a user of uid 0 is refused, not replaced by the fallback; without either user, refused', async () => {
    const warnings: string[] = [];
    await expect(evaluatorOf({ user: 'root', fallback: FALLBACK_EVALUATOR_USER }, warnings).evaluator()).rejects.toThrow(
      'the user root of this server is root, or has no uid and group of its own (0:0): bento evaluates fleet code as root, never as root',
    );
    await expect(evaluatorOf({ user: MISSING, fallback: 'root' }, warnings).evaluator()).rejects.toThrow(`there is no user ${MISSING} on this server, nor root (or it is root)`);
    await expect(evaluatorOf({ user: MISSING, fallback: 'bento-none-either' }, warnings).evaluator()).rejects.toThrow(`there is no user ${MISSING} on this server, nor bento-none-either`);
    expect(warnings).toEqual([]);
  });

  it('is never a user someone may log in as: an account of that name with a shell (sync: /bin/sync) is refused, not used nor replaced by the fallback', async () => {
    const warnings: string[] = [];
    const evaluator = evaluatorOf({ user: 'sync', fallback: FALLBACK_EVALUATOR_USER }, warnings);
    await expect(evaluator.evaluator()).rejects.toThrow('the user sync of this server has the login shell /bin/sync');
    await expect(evaluator.evaluator()).rejects.toMatchObject({ hint: expect.stringContaining('usermod --shell /usr/sbin/nologin sync') });
    expect(warnings).toEqual([]);
  });

  it('shares a tree for reading only (shareTree, a flake\'s copy Nix locks): bento\'s, in the evaluator\'s group, readable and searchable by it, never writable; a link is not followed', async () => {
    const evaluator = evaluatorOf(undefined, []);
    const { uid, gid } = idOf(EVALUATOR_USER);
    const tree = mkdtempSync(path.join(dir, 'tree-'));
    mkdirSync(path.join(tree, 'sub'), { mode: 0o700 });
    writeFileSync(path.join(tree, 'sub', 'secret.nix'), '{ }\n', { mode: 0o600 });
    writeFileSync(path.join(tree, 'run.sh'), 'exit 0\n', { mode: 0o705 });
    symlinkSync(files.nobody, path.join(tree, 'link'));
    const target = statSync(files.nobody);
    await evaluator.shareTree(tree);
    const modes = Object.fromEntries(['', 'sub', 'sub/secret.nix', 'run.sh'].map((entry) => {
      const stats = lstatSync(path.join(tree, entry));
      return [entry, { owner: `${stats.uid}:${stats.gid}`, mode: (stats.mode & 0o7777).toString(8) }];
    }));
    expect(modes).toEqual({ '': { owner: `0:${gid}`, mode: '750' }, sub: { owner: `0:${gid}`, mode: '750' }, 'sub/secret.nix': { owner: `0:${gid}`, mode: '640' }, 'run.sh': { owner: `0:${gid}`, mode: '745' } });
    // The link's target is as it was.
    expect(statSync(files.nobody)).toMatchObject({ uid: target.uid, gid: target.gid, mode: target.mode });
    const asEvaluator = (script: string) => spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', 'sh', '-c', script, 'sh', tree], { encoding: 'utf8' });
    const read = asEvaluator('cat "$1/sub/secret.nix" && ls "$1/sub"');
    expect(read.status, read.stderr).toBe(0);
    expect(read.stdout).toBe('{ }\nsecret.nix\n');
    for (const script of ['mkdir "$1/new"', 'mv "$1/sub" "$1/moved"', 'rm "$1/run.sh"', 'printf x > "$1/sub/secret.nix"', 'touch "$1/sub/new.nix"']) {
      expect(asEvaluator(script).status, script).not.toBe(0);
    }
  });

  it('reads back a file of the evaluator\'s no further than its limit, even grown after its size was looked at (readEvaluatorFile)', () => {
    const { uid, gid } = idOf(EVALUATOR_USER);
    const work = mkdtempSync(path.join(dir, 'lock-'));
    chownSync(work, 0, gid);
    chmodSync(work, 0o750);
    const file = path.join(work, 'flake.lock');
    writeFileSync(file, '{}\n', { mode: 0o644 });
    chownSync(file, uid, gid);
    // What a process of the evaluator's may do to its file at any time: grow it (sparse, at no cost).
    const grow = () => {
      const result = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', 'truncate', '-s', '1M', file], { encoding: 'utf8' });
      expect(result.status, result.stderr).toBe(0);
    };
    expect(() => readEvaluatorFile(file, 1024, grow)).toThrow(`${file} is larger than 1024 bytes`);
    expect(statSync(file).size).toBe(1024 * 1024);
  });
});
