/**
 * Once per vitest run, before any test file:
 * - a cache directory of its own (XDG_CACHE_HOME), so that `bento status`
 *   run by the tests remembers nothing in the user's home, removed at the end;
 * - the nixpkgs lib the NixOS module tests evaluate with, found once
 *   (test/fixtures/nixos/nixpkgs-lib.nix: BENTO_NIXPKGS_LIB, ../shared, or
 *   the pinned fetch), said, and passed on as BENTO_NIXPKGS_LIB;
 * - as root, the group sftp_users that the server fixtures (server.ts) put
 *   their users in: made here, once, because test files run three at once
 *   and two of them making it (or one removing it under another) race;
 * - as root, the user bento-eval who evaluates fleet code, as setup-debian.sh
 *   makes it on a server (its systemd-sysusers line): the tests' servers are
 *   set-up servers (a run without it evaluates as nobody, and warns).
 * What the run made is removed at its end; what was there stays.
 * The test processes inherit the variables.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { flakeNamesCachePath } from '../../src/chroot/flake-names-cache.js';
import { generateRecordPath } from '../../src/commands/shared/generate-record-store.js';
import { EVALUATOR_USER } from '../../src/nix/unprivileged.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { DEFAULT_CONFIG } from './fleet.js';

/** The group of bento's SFTP users (docs/protocol.md), which the server fixtures use. */
export const SFTP_GROUP = 'sftp_users';

const NIXPKGS_LIB = path.join(import.meta.dirname, '..', 'fixtures', 'nixos', 'nixpkgs-lib.nix');

/** Where the nixpkgs lib is, and which of its sources gave it. */
export function locateNixpkgsLib(env: NodeJS.ProcessEnv = process.env): { source: string; dir: string } | { problem: string } {
  const run = spawnSync('nix-instantiate', ['--eval', '--strict', '--json', '--expr', `import ${NIXPKGS_LIB} { }`], { encoding: 'utf8', env });
  if (run.status !== 0) {
    const tail = String(run.stderr || run.error?.message || '').trim().split('\n').slice(-3).join('\n');
    return { problem: `BENTO_NIXPKGS_LIB is not set, there is no ../shared/nixpkgs-lib next to the checkout, and the pinned fetch (test/fixtures/nixos/nixpkgs-lib.nix) failed:\n${tail}` };
  }
  return JSON.parse(run.stdout) as { source: string; dir: string };
}

function groupExists(name: string): boolean {
  return spawnSync('getent', ['group', name]).status === 0;
}

function userExists(name: string): boolean {
  return spawnSync('getent', ['passwd', name]).status === 0;
}

/** The systemd-sysusers line setup-debian.sh makes bento-eval with, read from its template: the same user, made the same way. */
export function evaluatorSysusersLine(): string {
  const template = readFileSync(path.join(PACKAGE_ROOT, 'templates', 'server', 'setup-debian.sh.hbs'), 'utf8');
  const line = new RegExp(`printf '%s\\\\n' '(u ${EVALUATOR_USER} [^']*)'`).exec(template)?.[1];
  if (line === undefined) throw new Error(`templates/server/setup-debian.sh.hbs has no systemd-sysusers line for ${EVALUATOR_USER}`);
  return line;
}

export default function setup(): () => void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-test-cache-'));
  process.env.XDG_CACHE_HOME = dir;
  // Where test helpers put what they make once per test process (shell.ts):
  // removed here, at the end of the run, as a test process may be stopped
  // before its own exit handlers run. Readable by the users tests run as.
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'bento-test-run-'));
  chmodSync(runDir, 0o755);
  process.env.BENTO_TEST_RUN_DIR = runDir;

  // Said, not fatal here: the tests that need it fail with the same reason.
  const lib = locateNixpkgsLib();
  if ('problem' in lib) {
    process.stdout.write(`nixpkgs lib for the NixOS module tests: none; ${lib.problem}\n`);
  } else {
    process.stdout.write(`nixpkgs lib for the NixOS module tests: ${lib.source} (${lib.dir})\n`);
    process.env.BENTO_NIXPKGS_LIB = lib.dir;
  }

  let madeGroup = false;
  if (process.getuid?.() === 0 && !groupExists(SFTP_GROUP)) {
    execFileSync('groupadd', ['--system', SFTP_GROUP]);
    madeGroup = true;
  }
  let madeEvaluator = false;
  if (process.getuid?.() === 0 && !userExists(EVALUATOR_USER)) {
    execFileSync('systemd-sysusers', ['--inline', evaluatorSysusersLine()], { stdio: 'ignore' });
    madeEvaluator = true;
  }
  return () => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(runDir, { recursive: true, force: true });
    // The record generate as root keeps of the test fleets' CHROOT_DIR and of
    // the example's, which tests generate from copies of, and the flakes'
    // names it keeps with deploy's (commands/shared/generate-record-store.ts,
    // chroot/flake-names-cache.ts).
    const chrootDirs = [DEFAULT_CONFIG, readFileSync(path.join(PACKAGE_ROOT, 'example', 'config.sh'), 'utf8')].map((config) => /^CHROOT_DIR=(.*)$/m.exec(config)?.[1]);
    for (const chrootDir of chrootDirs) {
      if (process.getuid?.() !== 0 || !chrootDir) continue;
      rmSync(generateRecordPath(chrootDir), { force: true });
      rmSync(flakeNamesCachePath(chrootDir), { force: true });
    }
    if (madeGroup) spawnSync('groupdel', [SFTP_GROUP]);
    // userdel removes its group too (USERGROUPS_ENAB); groupdel if it did not.
    if (madeEvaluator) {
      spawnSync('userdel', [EVALUATOR_USER]);
      if (groupExists(EVALUATOR_USER)) spawnSync('groupdel', [EVALUATOR_USER]);
    }
  };
}
