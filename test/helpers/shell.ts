/** Running generated shell scripts in tests. */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderChangeStamp, renderManifest } from '../../src/protocol/manifest.js';
import type { Config } from '../../src/config/config.js';
import { renderSystemFiles } from '../../src/render/render-fleet.js';
import { CLIENT_LIBRARY_NAME } from '../../src/render/client-library.js';
import { sha256 } from '../../src/util/hash.js';
import { evalNixos, linkPackages } from './nixos.js';
import { withClientLibrary, writeRendered } from './render.js';
import { DURABILITY_CALLS } from './strace.js';

export const STUBS_DIR = path.join(import.meta.dirname, '..', 'fixtures', 'client-stubs');
/** Recording stand-ins of what `bento build test|switch` runs to apply a built system (nix-env, systemd-run, nix-copy-closure, ssh). */
export const APPLY_STUBS_DIR = path.join(import.meta.dirname, '..', 'fixtures', 'apply-stubs');
export const isRoot = process.getuid?.() === 0;

export interface ScriptRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** How long the script ran (runClientScript: its namespace's setup included, not the making of its packages). */
  seconds?: number;
}

const REPO = path.join(import.meta.dirname, '..', '..');
/** Where the unit's packages are in the script's namespace (the run's own are mounted there). */
const PKGS_MOUNT = '/var/bento-unit-packages';

/** Which nixpkgs package provides each tool a test may stand in for (what the unit's path holds). */
const PACKAGE_OF: Record<string, string> = {
  sftp: 'openssh',
  ssh: 'openssh',
  'nixos-rebuild': 'nixos-rebuild',
  nix: 'nix',
  'nix-env': 'nix',
  'nix-store': 'nix',
  systemctl: 'systemd',
  'systemd-run': 'systemd',
};

/** The packages of the client unit's PATH that are this machine's tools (the others are stand-ins or empty). */
const TOOL_PACKAGES = ['coreutils', 'findutils', 'gnugrep', 'gnused', 'openssh', 'git', 'gzip', 'diffutils', 'util-linux', 'nix', 'jq'];

let hostTools: string | undefined;
/**
 * This machine's tools of the packages the client unit names (linkPackages:
 * the Debian packages that hold them), once per test process, in a
 * directory removed on exit, or with the run's directory (global-setup.ts)
 * when vitest stops the process first. Not systemd: a real systemctl would
 * act on this machine.
 */
function toolPackages(): string {
  if (hostTools === undefined) {
    const dir = mkdtempSync(path.join(process.env.BENTO_TEST_RUN_DIR ?? os.tmpdir(), 'bento-unit-tools-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    chmodSync(dir, 0o755);
    linkPackages(dir, TOOL_PACKAGES);
    hostTools = dir;
  }
  return hostTools;
}

let unitEnvironmentCache: Record<string, string> | undefined;
/**
 * The environment systemd gives the bento-upgrade unit, as NixOS evaluates
 * the client module (utils/bento.nix with the example fleet's generated
 * bento-module.nix and bento-units.nix: test/fixtures/nixos/eval.nix): its `path` packages
 * (under PKGS_MOUNT), systemd's default ones, its `environment`. Evaluated
 * once per test process.
 */
export function unitEnvironment(): Record<string, string> {
  if (unitEnvironmentCache === undefined) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-unit-module-'));
    try {
      mkdirSync(path.join(dir, 'utils'));
      copyFileSync(path.join(REPO, 'utils/bento.nix'), path.join(dir, 'utils/bento.nix'));
      copyFileSync(path.join(REPO, 'generated/client/bento-units.nix'), path.join(dir, 'bento-units.nix'));
      copyFileSync(path.join(REPO, 'generated/client/bento-module.nix'), path.join(dir, 'bento-module.nix'));
      unitEnvironmentCache = evalNixos<Record<string, string>>([path.join(dir, 'utils/bento.nix')], 'environments."bento-upgrade"', PKGS_MOUNT);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return { ...unitEnvironmentCache };
}

/**
 * The unit's packages for one run, in `dir`: this machine's tools of each
 * (toolPackages), and the stand-ins in `tools` (tool name -> file) in the
 * package that provides the real tool, each a wrapper that sets `toolEnv`
 * (the stand-ins' own settings: the script never sees them) and adds this
 * machine's /usr/bin and /bin to the end of PATH (a stand-in plays a
 * program that brings its own dependencies). A package with no tool here
 * (systemd, nixos-rebuild, unless stood in for) is empty.
 */
function makeUnitPackages(dir: string, tools: Record<string, string>, toolEnv: Record<string, string>): void {
  const host = toolPackages();
  const packages = new Set([...readdirSync(host), 'systemd', 'nixos-rebuild']);
  const exports = Object.entries(toolEnv)
    .map(([name, value]) => `export ${name}=${shellQuote(value)}\n`)
    .join('');
  for (const name of packages) {
    const standIns = Object.entries(tools).filter(([tool]) => {
      const owner = PACKAGE_OF[tool];
      if (owner === undefined) throw new Error(`runClientScript: no package of the unit provides ${tool}`);
      return owner === name;
    });
    if (standIns.length === 0 && existsSync(path.join(host, name))) {
      symlinkSync(path.join(host, name), path.join(dir, name));
      continue;
    }
    mkdirSync(path.join(dir, name, 'bin'), { recursive: true });
    if (existsSync(path.join(host, name, 'bin'))) {
      for (const tool of readdirSync(path.join(host, name, 'bin'))) symlinkSync(path.join(host, name, 'bin', tool), path.join(dir, name, 'bin', tool));
    }
    for (const [tool, file] of standIns) {
      const wrapper = path.join(dir, name, 'bin', tool);
      rmSync(wrapper, { force: true });
      writeFileSync(wrapper, `#!/bin/sh\n${exports}PATH="$PATH:/usr/bin:/bin"\nexec ${shellQuote(file)} "$@"\n`, { mode: 0o755 });
    }
  }
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/** How runClientScript runs a client script. */
export interface ClientRunOptions {
  /** Stand-ins for the unit's tools: tool name (sftp, ssh, nixos-rebuild, nix-env, systemctl, ...) -> file. */
  tools?: Record<string, string>;
  /** Settings of the stand-ins (FAKE_SERVER, ...), set in their wrappers only. */
  toolEnv?: Record<string, string>;
  /** Mount point -> what is bound there (e.g. a directory over /nix/var/nix/profiles). */
  binds?: Record<string, string>;
  /**
   * Mount point -> size of a tmpfs mounted there after the binds (a small
   * disk the test can fill), holding what was there: a machine's disk that
   * fills up still has its update.sh, library and state.
   */
  tmpfs?: Record<string, string>;
  /**
   * The exact environment of the script, in place of the unit's: for a
   * script run by hand (bootstrap.sh on a fresh machine). Nothing else is
   * added to it.
   */
  env?: Record<string, string>;
  /**
   * A file where strace writes the script's fsync and rename calls (and
   * those of the tools it runs), with the paths the script sees in its
   * namespace (test/helpers/strace.ts reads it).
   */
  trace?: string;
}

/**
 * What a machine's bootstrap.sh leaves in /var/bento (the host directory
 * `varBento`) for its timer to run: `script`, a rendered update.sh, as
 * update.sh, and the library beside it as bento-client.sh. Returns the
 * installed update.sh, the script runClientScript runs as the unit.
 */
export function installClient(script: string, varBento: string): string {
  const installed = path.join(varBento, 'update.sh');
  copyFileSync(script, installed);
  copyFileSync(path.join(path.dirname(script), CLIENT_LIBRARY_NAME), path.join(varBento, CLIENT_LIBRARY_NAME));
  return installed;
}

/**
 * Runs a client script as the bento-upgrade unit runs it: its ExecStart,
 * `/bin/sh /var/bento/update.sh` (`script` must be `varBento`'s update.sh,
 * as installClient leaves it: the unit runs nothing else), with exactly the
 * unit's environment (unitEnvironment: its packages made
 * of this machine's tools and the given stand-ins) and nothing else, in a
 * mount namespace of its own with `varBento` mounted over /var/bento, as a
 * machine would see it, then `binds` and `tmpfs`, in the unit's
 * WorkingDirectory (/var/bento; / for a script run by hand). The script itself is not
 * modified. Needs root (unshare -m).
 */
export function runClientScript(script: string, varBento: string, options: ClientRunOptions = {}): ScriptRun {
  // The mount points must exist on the host. They are left in place (empty):
  // removing one could pull it from under a test file running in parallel.
  mkdirSync('/var/bento', { recursive: true });
  mkdirSync(PKGS_MOUNT, { recursive: true });
  const packages = mkdtempSync(path.join(os.tmpdir(), 'bento-unit-pkgs-'));
  chmodSync(packages, 0o755);
  // Where a tmpfs's mount point is seen from while its content is copied in.
  const under = mkdtempSync(path.join(os.tmpdir(), 'bento-unit-under-'));
  // A script run by hand runs where it is; the unit runs the machine's own update.sh.
  if (!options.env && path.resolve(script) !== path.join(path.resolve(varBento), 'update.sh')) {
    throw new Error(`runClientScript: the unit runs /var/bento/update.sh, not ${script}: installClient(script, varBento) first, as a machine's bootstrap.sh would`);
  }
  const command = options.env ? script : '/var/bento/update.sh';
  try {
    makeUnitPackages(packages, options.tools ?? {}, options.toolEnv ?? {});
    const environment = options.env ?? unitEnvironment();
    const assignments = Object.entries(environment).map(([name, value]) => `${name}=${value}`);
    const binds: [string, string][] = [[PKGS_MOUNT, packages], ...Object.entries(options.binds ?? {})];
    const mounts = binds.flatMap(([target, source]) => [source, target]);
    const disks = Object.entries(options.tmpfs ?? {}).flatMap(([target, size]) => [target, size]);
    const shell = [
      'var_bento=$0; under=$1; shift',
      'mount --bind "$var_bento" /var/bento || exit 1',
      'while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 1; shift 2; done; shift',
      'while [ "$1" != -- ]; do { mount --bind "$1" "$under" && mount -t tmpfs -o "size=$2" tmpfs "$1" && cp -a "$under/." "$1/" && umount "$under"; } || exit 1; shift 2; done; shift',
      // The unit's WorkingDirectory; a script run by hand starts where its
      // person is, which it may not count on: the root. Not the test's cwd
      // (the checkout), where a relative path would find what no machine has.
      `cd ${options.env ? '/' : '/var/bento'} || exit 1`,
      'exec "$@"',
    ].join('; ');
    // strace runs in the namespace, so that it names the paths the script sees.
    const tracer = options.trace ? ['/usr/bin/strace', '-f', '-y', '-qq', '-o', options.trace, '-e', DURABILITY_CALLS] : [];
    const start = process.hrtime.bigint();
    const result = spawnSync('unshare', ['-m', 'sh', '-c', shell, varBento, under, ...mounts, '--', ...disks, '--', ...tracer, '/usr/bin/env', '-i', ...assignments, '/bin/sh', command], {
      encoding: 'utf8',
      // For unshare and mount only: the script gets `environment`.
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      timeout: 60_000,
    });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    return { status: result.status, stdout: result.stdout, stderr: result.stderr, seconds };
  } finally {
    rmSync(packages, { recursive: true, force: true });
    rmSync(under, { recursive: true, force: true });
  }
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
  /** Its update.sh, as generated and installed in its /var/bento (installClient). */
  script: string;
  /** The fake server's chroot (served by the sftp stand-in through FAKE_SERVER). */
  server: string;
  /** What is mounted over /var/bento. */
  varBento: string;
  /** Its stand-ins (runClientScript's tools): sftp is the flaky one (test/fixtures/client-stubs/sftp-flaky), ssh a recorder. */
  tools: Record<string, string>;
}

/**
 * A machine `router` without a real server: its update.sh rendered with
 * `config`, a fake chroot publishing a configuration.nix (and the client's
 * files), its /var/bento
 * with that update.sh and its library (installClient: the machine was
 * bootstrapped) and `queued` waiting from an earlier run, and stand-ins whose sftp is the
 * flaky one. The directory (named after `prefix`) is removed by `cleanups`.
 */
export function makeStubbedRouter(config: Config, prefix: string, queued: string, cleanups: (() => void)[]): StubbedRouter {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  chmodSync(dir, 0o755);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeRendered(dir, withClientLibrary(renderSystemFiles(config, { name: 'router', kind: 'non-flake' })));
  const server = path.join(dir, 'server');
  const rendered = path.join(dir, 'systems/router');
  // As every server publishes it: with the machine's update.sh and its library (docs/protocol.md §4).
  writeFakeChroot(server, {
    'configuration.nix': '{ }\n',
    'update.sh': readFileSync(path.join(rendered, 'update.sh'), 'utf8'),
    [CLIENT_LIBRARY_NAME]: readFileSync(path.join(rendered, CLIENT_LIBRARY_NAME), 'utf8'),
  });
  const varBento = path.join(dir, 'var-bento');
  mkdirSync(path.join(varBento, '.bento', 'pending'), { recursive: true });
  writeFileSync(path.join(varBento, '.bento', 'pending', queued), 'an earlier run');
  const script = installClient(path.join(rendered, 'update.sh'), varBento);
  const tools = { sftp: path.join(STUBS_DIR, 'sftp-flaky'), ssh: path.join(STUBS_DIR, 'ssh') };
  return { dir, script, server, varBento, tools };
}
