/**
 * bento deploy of prebuilt systems, as a whole process against real Nix and
 * a real chroot (docs/protocol.md §11): the signing key made on first use
 * where SIGNING_KEY says and refused in the fleet; the cache published
 * before the configuration; a system whose cache cannot be published keeps
 * what it had; NOLOCALBUILD with a prebuilt system refused.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { bento } from '../helpers/cli.js';
import { makeFleet, type TestFleet } from '../helpers/fleet.js';
import { createTestServer, snapshotTree, type TestServer } from '../helpers/server.js';
import { isRoot } from '../helpers/shell.js';

const NIX_ENV = { NIX_PATH: `nixpkgs=${path.join(PACKAGE_ROOT, 'example', 'offline-nixpkgs')}`, NIX_CONFIG: 'substituters =\nsandbox = false\n' };

let server: TestServer;
let keys: string;
const fleets: TestFleet[] = [];
let n: (name: string) => string;

beforeAll(() => {
  if (!isRoot) return;
  server = createTestServer();
  n = (name) => `${server.prefix}${name}`;
  keys = mkdtempSync(path.join(os.tmpdir(), 'bento-deploy-keys-'));
});
afterAll(() => {
  fleets.forEach((fleet) => fleet.cleanup());
  server?.cleanup();
  if (keys) rmSync(keys, { recursive: true, force: true });
});

function newFleet(config: string, hosts: Parameters<typeof makeFleet>[0]['hosts']): TestFleet {
  const fleet = makeFleet({ config: `CHROOT_DIR=${server.chrootDir}\nREMOTE_IP=127.0.0.1\n${config}`, hosts });
  fleets.push(fleet);
  return fleet;
}

function deploy(fleet: TestFleet) {
  return bento(['deploy'], { env: { BENTO_DIR: fleet.root, ...NIX_ENV } });
}

function states(): Record<string, string> {
  const file = path.join(server.chrootDir, 'states.txt');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  return Object.fromEntries(text.trim().split('\n').filter(Boolean).map((line) => line.split('=') as [string, string]));
}

function currentCache(name: string): string {
  const digest = readFileSync(path.join(server.chrootDir, name, 'last_change_date'), 'utf8').slice(0, 16);
  return path.join(server.chrootDir, name, `.cache-${digest}`);
}

describe.skipIf(!isRoot)('bento deploy of prebuilt systems', () => {
  it('makes the signing key where SIGNING_KEY says, and publishes each prebuilt system with its cache; a prebuilt system without flakes gets its states.txt line', () => {
    const secret = path.join(keys, 'first', 'signing-key');
    const fleet = newFleet(`SIGNING_KEY=${secret}\n`, {
      pi: { flake: [n('pi')], files: { PREBUILT: '' } },
      [n('box')]: { nonFlake: true, files: { PREBUILT: '' } },
      other: { flake: [n('other')] },
    });
    server.addUsers([n('pi'), n('box'), n('other')]);
    const run = deploy(fleet);
    expect(run.stderr).toContain('deploy: 3 published, 0 unchanged, 0 failed');
    expect(run.status).toBe(0);

    expect(statSync(secret).mode & 0o777).toBe(0o600);
    const publicKey = readFileSync(`${secret}.pub`, 'utf8').trim();
    expect(readFileSync(path.join(fleet.root, 'generated', 'systems', n('pi'), 'update.sh'), 'utf8')).toContain(`BENTO_PREBUILT=1\nBENTO_CACHE_KEY=${publicKey}\n`);
    expect(readFileSync(path.join(fleet.root, 'generated', 'systems', n('other'), 'update.sh'), 'utf8')).toContain("BENTO_PREBUILT=0\nBENTO_CACHE_KEY=''\n");
    expect(readFileSync(path.join(fleet.root, 'generated', 'client', 'bento-units.nix'), 'utf8')).toContain(`serverPublicKey = lib.mkDefault "${publicKey}";`);

    for (const name of [n('pi'), n('box')]) {
      expect(readFileSync(path.join(currentCache(name), 'system'), 'utf8')).toBe(`/nix/store/${states()[name]}\n`);
      expect(existsSync(path.join(currentCache(name), 'narinfos.gz'))).toBe(true);
    }
    // Not prebuilt: no cache.
    expect(readdirSync(path.join(server.chrootDir, n('other'))).filter((entry) => entry.startsWith('.cache-'))).toEqual([]);
    expect(states()[n('box')]).toMatch(new RegExp(`^[0-9a-z]{32}-nixos-system-${n('box')}-24\\.05$`));

    // Nothing changed: nothing touched, the caches included.
    const before = snapshotTree(server.chrootDir);
    expect(deploy(fleet).stderr).toContain('deploy: 0 published, 3 unchanged, 0 failed');
    expect(snapshotTree(server.chrootDir)).toEqual(before);
  });

  it('refuses a SIGNING_KEY inside the fleet: nothing is made or published', () => {
    const fleet = newFleet('SIGNING_KEY=/will-be-replaced\n', { pi: { flake: [n('pi2')], files: { PREBUILT: '' } } });
    const inside = path.join(fleet.root, 'keys', 'signing-key');
    writeFileSync(path.join(fleet.root, 'config.sh'), `CHROOT_DIR=${server.chrootDir}\nREMOTE_IP=127.0.0.1\nSIGNING_KEY=${inside}\n`);
    server.addUsers([n('pi2')]);
    const run = deploy(fleet);
    expect(run.stderr).toContain(`SIGNING_KEY=${inside} is inside the fleet directory`);
    expect(run.status).toBe(1);
    expect(existsSync(inside)).toBe(false);
    expect(existsSync(path.join(server.chrootDir, n('pi2'), 'config'))).toBe(false);
  });

  it('a system whose closure cannot be published keeps what it had published, and deploy fails naming it', () => {
    const secret = path.join(keys, 'second', 'signing-key');
    const fleet = newFleet(`SIGNING_KEY=${secret}\n`, { a: { flake: [n('pa')], files: { PREBUILT: '' } }, b: { flake: [n('pb')], files: { PREBUILT: '' } } });
    server.addUsers([n('pa'), n('pb')]);
    expect(deploy(fleet).status).toBe(0);
    const before = snapshotTree(path.join(server.chrootDir, n('pa')));
    const statesBefore = states();

    // Both change; pa's closures can no longer be written (a store Nix cannot open).
    writeFileSync(path.join(fleet.root, 'hosts', 'a', `${n('pa')}.nix`), '# changed\n');
    writeFileSync(path.join(fleet.root, 'hosts', 'b', `${n('pb')}.nix`), '# changed\n');
    writeFileSync(path.join(fleet.root, 'config.sh'), `CHROOT_DIR=${server.chrootDir}\nREMOTE_IP=127.0.0.1\nSIGNING_KEY=${secret}\nCACHE_STORE=file:///proc/bento-nowhere\nCACHE_URL=http://127.0.0.1:1\n`);
    const run = deploy(fleet);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`${n('pa')}: cannot publish its prebuilt system, nothing was published:`);
    expect(run.stderr).toContain(`${n('pb')}: cannot publish its prebuilt system, nothing was published:`);
    expect(snapshotTree(path.join(server.chrootDir, n('pa')))).toEqual(before);
    expect(states()[n('pa')]).toBe(statesBefore[n('pa')]);
  });

  it('NOLOCALBUILD=1 with a prebuilt system is refused before anything is built', () => {
    const fleet = newFleet(`SIGNING_KEY=${path.join(keys, 'third', 'signing-key')}\nNOLOCALBUILD=1\n`, { pi: { flake: [n('pi3')], files: { PREBUILT: '' } } });
    const run = deploy(fleet);
    expect(run.stderr).toContain('hosts/pi/PREBUILT: a prebuilt system must be built on this server, but NOLOCALBUILD=1 (config.sh) only evaluates');
    expect(run.status).toBe(1);
    expect(run.stdout).not.toContain('building');
  });
});
