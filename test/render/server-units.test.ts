/**
 * Every unit of the server module (generated/server/sftp-server.nix) run as
 * NixOS runs it: the module evaluated with the real nixpkgs lib, then each
 * service's script run by bash after `set -e`, with only the environment
 * systemd gives it — its Environment= and a PATH of its `path` packages and
 * systemd's defaults, each package holding this machine's tools of the same
 * name and nothing more. A tool a script needs but its unit lacks fails here
 * as it would on the server (bento rollout advance without flock did).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderFleet } from '../../src/render/render-fleet.js';
import { CLI } from '../helpers/cli.js';
import { evalNixos, linkPackages, runUnitScript, writeModule } from '../helpers/nixos.js';
import { configWith, writeRendered } from '../helpers/render.js';
import { removeDeployCaches } from '../helpers/server.js';
import { isRoot } from '../helpers/shell.js';

interface Service {
  script: string;
  path: string[];
  serviceConfig: Record<string, unknown>;
}

let dir: string;
let chrootDir: string;
let fleetDir: string;
let pkgsDir: string;
let services: Record<string, Service>;
let environments: Record<string, Record<string, string>>;
/**
 * The fleet's one system, a real bento account (group sftp_users, home in
 * CHROOT_DIR, no shell): the pruners touch only such machines' logs. The
 * group is made once per run (test/helpers/global-setup.ts).
 */
const nas = `bu${randomBytes(2).toString('hex')}nas`;
let accountMade = false;

beforeAll(() => {
  if (!isRoot) return;
  dir = mkdtempSync(path.join(os.tmpdir(), 'bento-server-units-'));
  // sshd and bento want a chroot whose every directory is root's: not under /tmp.
  chrootDir = mkdtempSync('/srv/bento-server-units-');
  execFileSync('chmod', ['0755', chrootDir]);
  fleetDir = path.join(dir, 'fleet');
  mkdirSync(path.join(fleetDir, 'hosts'), { recursive: true });
  writeFileSync(
    path.join(fleetDir, 'config.sh'),
    `CHROOT_DIR=${chrootDir}\nREMOTE_IP=bento.example.org\nLOG_KEEP=1\nNOTIFY_COMMAND='cat > ${path.join(dir, 'alert.json')}'\n`,
  );
  const config = configWith({ chrootDir, logSizeLimit: 65536 });
  writeRendered(path.join(dir, 'generated'), renderFleet({ config, systems: [{ name: nas, kind: 'flake', key: undefined }] }));
  execFileSync('useradd', ['--system', '--no-create-home', '--home-dir', path.join(chrootDir, nas), '--gid', 'sftp_users', '--shell', '/usr/sbin/nologin', nas]);
  accountMade = true;
  const gid = Number(execFileSync('getent', ['group', 'sftp_users'], { encoding: 'utf8' }).split(':')[2]);
  const uid = Number(execFileSync('id', ['-u', nas], { encoding: 'utf8' }));
  mkdirSync(path.join(chrootDir, nas, 'logs'), { recursive: true, mode: 0o755 });
  chownSync(path.join(chrootDir, nas), 0, gid);
  chownSync(path.join(chrootDir, nas, 'logs'), uid, gid);

  // The packages: this machine's tools, and bento as its package would be
  // (bin/bento runs node by its own path, as a Nix wrapper does).
  pkgsDir = path.join(dir, 'pkgs');
  linkPackages(pkgsDir);
  mkdirSync(path.join(pkgsDir, 'bento', 'bin'), { recursive: true });
  writeFileSync(path.join(pkgsDir, 'bento', 'bin', 'bento'), `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`, { mode: 0o755 });

  const bento = `{ type = "derivation"; name = "bento"; outPath = "${pkgsDir}/bento"; }`;
  const on = writeModule(
    dir,
    'server',
    `{ services.bento-server = { prune = { enable = true; package = ${bento}; fleetDir = "${fleetDir}"; }; rollout.advance = { enable = true; package = ${bento}; fleetDir = "${fleetDir}"; }; notify = { enable = true; package = ${bento}; fleetDir = "${fleetDir}"; }; }; }`,
  );
  const server = path.join(dir, 'generated', 'server', 'sftp-server.nix');
  services = evalNixos<Record<string, Service>>([server, on], 'config.systemd.services', pkgsDir);
  environments = evalNixos<Record<string, Record<string, string>>>([server, on], 'environments', pkgsDir);
});

afterAll(() => {
  if (accountMade) execFileSync('userdel', [nas]);
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (chrootDir) rmSync(chrootDir, { recursive: true, force: true });
  // What bento keeps of that CHROOT_DIR outside it (the timers' rollout advance takes the deploy lock).
  if (chrootDir) removeDeployCaches(chrootDir);
});

function runUnit(name: string) {
  const service = services[name] as Service;
  expect(service, name).toBeDefined();
  return runUnitScript(service.script, environments[name] as Record<string, string>, { dir });
}

describe.skipIf(!isRoot)('the server units, each run with the PATH its unit gives it', () => {
  it('the module has these units, each with a script, and nothing else on their PATH than their packages', () => {
    expect(Object.keys(services).sort()).toEqual(['bento-notify', 'bento-prune', 'bento-prune-logs', 'bento-rollout-advance']);
    for (const [name, environment] of Object.entries(environments)) {
      for (const entry of (environment.PATH as string).split(':')) expect(entry.startsWith(`${pkgsDir}/`), `${name}: ${entry}`).toBe(true);
    }
  });

  it('bento-rollout-advance takes the deploy lock (flock, and the sh it runs) and finds nothing to do', () => {
    const run = runUnit('bento-rollout-advance');
    expect(run.stderr).toBe('no rollout in progress (bento deploy starts one when config.sh sets ROLLOUT_WAVES)\n');
    expect(run.status).toBe(0);
  });

  it('bento-notify records the fleet on its first run, then runs NOTIFY_COMMAND (by /bin/sh) when the machine fails', () => {
    const first = runUnit('bento-notify');
    expect(first.stdout).toBe('NOTIFY_COMMAND: first run, the fleet as it is now recorded, nothing sent\n');
    expect(first.status).toBe(0);
    // A configuration published, then the machine's failure log.
    const store = `0123456789abcdfghijklmnpqrsvwxyz-nixos-system-${nas}-24.05`;
    const published = new Date(Date.now() - 120_000);
    writeFileSync(path.join(chrootDir, nas, 'last_change_date'), '');
    utimesSync(path.join(chrootDir, nas, 'last_change_date'), published, published);
    const log = path.join(chrootDir, nas, 'logs', `20250101-0900_${store}_failure.log.gz`);
    writeFileSync(log, gzipSync('bento: the build failed\n'));
    const run = runUnit('bento-notify');
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('NOTIFY_COMMAND: 1 transition sent\n');
    expect(run.status).toBe(0);
    expect(JSON.parse(readFileSync(path.join(dir, 'alert.json'), 'utf8'))).toMatchObject({ text: `bento: ${nas} failing`, transitions: [{ system: nas, to: 'failing', recovered: false }] });
    rmSync(log);
    rmSync(path.join(chrootDir, '.bento-alerts.json'));
  });

  it('bento-prune prunes the fleet', () => {
    const logs = path.join(chrootDir, nas, 'logs');
    const store = `0123456789abcdfghijklmnpqrsvwxyz-nixos-system-${nas}-24.05`;
    // Three runs that each sent a log, then a new configuration published at 10:05.
    writeFileSync(path.join(chrootDir, nas, 'last_change_date'), '');
    utimesSync(path.join(chrootDir, nas, 'last_change_date'), new Date('2025-01-01T10:05:00Z'), new Date('2025-01-01T10:05:00Z'));
    for (const minute of ['01', '02', '03']) {
      const log = path.join(logs, `20250101-10${minute}_${store}_success.log.gz`);
      writeFileSync(log, gzipSync('bento: up to date\n'));
      utimesSync(log, new Date(`2025-01-01T10:${minute}:00Z`), new Date(`2025-01-01T10:${minute}:00Z`));
    }
    const run = runUnit('bento-prune');
    expect(run.stderr).toContain('prune: 2 logs removed');
    expect(run.status).toBe(0);
    expect(readdirSync(logs)).toEqual([`20250101-1003_${store}_success.log.gz`]);
  });

  it('bento-prune-logs deletes what sshd cannot stop a machine from writing', () => {
    const logs = path.join(chrootDir, nas, 'logs');
    writeFileSync(path.join(logs, 'big.log.gz'), Buffer.alloc(65537));
    writeFileSync(path.join(logs, 'fine.log.gz'), Buffer.alloc(10));
    const run = runUnit('bento-prune-logs');
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('big.log.gz');
    expect(run.status).toBe(0);
    expect(readdirSync(logs)).not.toContain('big.log.gz');
    expect(readdirSync(logs)).toContain('fine.log.gz');
  });
});
