/** Running generated shell scripts in tests. */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderChangeStamp, renderManifest } from '../../src/chroot/manifest.js';
import type { Config } from '../../src/config/config.js';
import { renderSystemFiles } from '../../src/render/render-fleet.js';
import { sha256 } from '../../src/util/hash.js';
import { writeRendered } from './render.js';

export const STUBS_DIR = path.join(import.meta.dirname, '..', 'fixtures', 'client-stubs');
export const isRoot = process.getuid?.() === 0;

export interface ScriptRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a client script in its own mount namespace with `varBento` mounted
 * over /var/bento, as a machine would see it, and each of `binds` (mount
 * point -> what is mounted there, e.g. a directory over
 * /nix/var/nix/profiles), then a tmpfs of the given size at each of
 * `tmpfs` (mount point -> size, e.g. '/var/bento' -> '1m': a small disk the
 * test can fill, as a machine's that is full); the script itself is not
 * modified. Needs root (unshare -m).
 */
export function runClientScript(
  script: string,
  varBento: string,
  env: Record<string, string>,
  binds: Record<string, string> = {},
  tmpfs: Record<string, string> = {},
): ScriptRun {
  // The mount point must exist on the host. It is left in place (empty):
  // removing it could pull it from under a test file running in parallel.
  mkdirSync('/var/bento', { recursive: true });
  const mounts = Object.entries(binds).flatMap(([target, source]) => [source, target]);
  const disks = Object.entries(tmpfs).flatMap(([target, size]) => [target, size]);
  const shell = [
    'var_bento=$0 script=$1; shift',
    'mount --bind "$var_bento" /var/bento || exit 1',
    'while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 1; shift 2; done; shift',
    'while [ $# -gt 1 ]; do mount -t tmpfs -o "size=$2" tmpfs "$1" || exit 1; shift 2; done',
    'exec sh "$script"',
  ].join('; ');
  const result = spawnSync('unshare', ['-m', 'sh', '-c', shell, varBento, script, ...mounts, '--', ...disks], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function shellcheck(files: string[]): ScriptRun {
  const result = spawnSync('shellcheck', ['-s', 'sh', ...files], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * A machine's chroot as deploy publishes it, without deploy: `files` in
 * config/ with their .bento-manifest, last_change_date stamped now, an
 * empty logs/. The client scripts' tests serve it through an sftp stand-in.
 */
export function writeFakeChroot(server: string, files: Record<string, string>): void {
  mkdirSync(path.join(server, 'logs'), { recursive: true });
  mkdirSync(path.join(server, 'config'));
  for (const [name, content] of Object.entries(files)) writeFileSync(path.join(server, 'config', name), content);
  const manifest = renderManifest(Object.entries(files).map(([name, content]) => ({ path: name, sha256: sha256(content) })));
  writeFileSync(path.join(server, 'config', '.bento-manifest'), manifest);
  writeFileSync(path.join(server, 'last_change_date'), renderChangeStamp(manifest, new Date()));
}

/** The files of a stubbed machine: see makeStubbedRouter. */
export interface StubbedRouter {
  dir: string;
  /** Its update.sh, as generated. */
  script: string;
  /** The fake server's chroot (served by the sftp stand-in through FAKE_SERVER). */
  server: string;
  /** What is mounted over /var/bento. */
  varBento: string;
  /** First on PATH: sftp is the flaky stand-in (test/fixtures/client-stubs/sftp-flaky). */
  bin: string;
}

/**
 * A machine `router` without a real server: its update.sh rendered with
 * `config`, a fake chroot publishing a configuration.nix, its /var/bento
 * with `queued` waiting from an earlier run, and a bin/ whose sftp is the
 * flaky stand-in. The directory (named after `prefix`) is removed by
 * `cleanups`.
 */
export function makeStubbedRouter(config: Config, prefix: string, queued: string, cleanups: (() => void)[]): StubbedRouter {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  chmodSync(dir, 0o755);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeRendered(dir, renderSystemFiles(config, { name: 'router', kind: 'non-flake' }));
  const server = path.join(dir, 'server');
  writeFakeChroot(server, { 'configuration.nix': '{ }\n' });
  const varBento = path.join(dir, 'var-bento');
  mkdirSync(path.join(varBento, '.bento', 'pending'), { recursive: true });
  writeFileSync(path.join(varBento, '.bento', 'pending', queued), 'an earlier run');
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  symlinkSync(path.join(STUBS_DIR, 'sftp-flaky'), path.join(bin, 'sftp'));
  return { dir, script: path.join(dir, 'systems/router/update.sh'), server, varBento, bin };
}
