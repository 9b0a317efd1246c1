/**
 * The binary caches of prebuilt systems in the chroots, against real Nix
 * (docs/protocol.md §11): one pool, hard links into each chroot, GC roots,
 * the caches a chroot keeps, the pool files nothing uses removed.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheIdsToKeep, publishSystemCache, systemCacheProblems, type SystemCacheOptions } from '../../src/chroot/prebuilt-cache.js';
import { parseNarinfo } from '../../src/nix/store-copy.js';
import { loadSigningKey, type SigningKey } from '../../src/nix/signing-key.js';
import { sha256 } from '../../src/util/hash.js';
import { createTestServer, type TestServer } from '../helpers/server.js';
import { isRoot } from '../helpers/shell.js';

const NIX_ENV = { ...process.env, NIX_CONFIG: 'substituters =\nsandbox = false\n' };
let server: TestServer;
let work: string;
let key: SigningKey;
let options: SystemCacheOptions;
let gid: number;

/** A tiny system: a toplevel depending on a shared package and one of its own. */
function buildSystem(name: string, own: string): string {
  const file = path.join(work, `${name}-${own}.nix`);
  writeFileSync(
    file,
    `let
  package = name: text: derivation { inherit name; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; args = [ "-c" "mkdir -p $out && head -c 20000 /dev/urandom > $out/data && echo \${text} > $out/text" ]; };
  shared = package "bento-test-shared-${server.prefix}" "shared";
  mine = package "bento-test-${name}-${own}-${server.prefix}" "${own}";
in derivation { name = "nixos-system-${name}"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; inherit shared mine; args = [ "-c" "mkdir -p $out && ln -s $shared $out/shared && ln -s $mine $out/mine" ]; }
`,
  );
  return execFileSync('nix-build', ['--no-out-link', file], { encoding: 'utf8', env: NIX_ENV, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function closure(storePath: string): string[] {
  return execFileSync('nix-store', ['-qR', storePath], { encoding: 'utf8' }).trim().split('\n').sort();
}

/** A digest as a manifest would have, and the chroot publish.ts would leave after publishing it. */
function published(name: string, label: string): string {
  const manifest = `${label}\n`;
  const digest = sha256(manifest);
  const dir = path.join(server.chrootDir, name);
  const version = `.config-${digest.slice(0, 16)}`;
  mkdirSync(path.join(dir, version), { recursive: true });
  writeFileSync(path.join(dir, version, '.bento-manifest'), manifest);
  rmSync(path.join(dir, 'config'), { force: true });
  symlinkSync(version, path.join(dir, 'config'));
  writeFileSync(path.join(dir, 'last_change_date'), `${digest} 2025-01-01T00:00:00.000Z\n`);
  return digest;
}

function digestOf(label: string): string {
  return sha256(`${label}\n`);
}

const pool = () => path.join(server.chrootDir, '.bento-cache');
const cacheDir = (name: string, digest: string) => path.join(server.chrootDir, name, `.cache-${digest.slice(0, 16)}`);

function narinfosOf(dir: string): ReturnType<typeof parseNarinfo>[] {
  return gunzipSync(readFileSync(path.join(dir, 'narinfos.gz')))
    .toString('utf8')
    .split('\n\n')
    .filter((text) => text.trim() !== '')
    .map((text) => parseNarinfo(text));
}

beforeAll(async () => {
  if (!isRoot) return;
  server = createTestServer();
  work = mkdtempSync(path.join(os.tmpdir(), 'bento-cache-test-'));
  key = await loadSigningKey(path.join(work, 'key', 'signing-key'), { keyName: 'bento-test-1' });
  gid = Number(execFileSync('getent', ['group', 'sftp_users'], { encoding: 'utf8' }).split(':')[2]);
  options = { chrootDir: server.chrootDir, sftpGroupId: gid, signingKey: key };
  for (const name of ['a', 'b']) mkdirSync(path.join(server.chrootDir, name), { recursive: true });
});

afterAll(() => {
  server?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!isRoot)('publishSystemCache', () => {
  let a1: string;
  let b1: string;

  it("publishes each system's closure, signed, as a file:// cache in its chroot, every NAR stored once", async () => {
    a1 = buildSystem('a', '1');
    b1 = buildSystem('b', '1');
    const previousUmask = process.umask(0o077);
    try {
      await publishSystemCache({ name: 'a', digest: digestOf('a1'), storePath: a1 }, options);
      await publishSystemCache({ name: 'b', digest: digestOf('b1'), storePath: b1 }, options);
    } finally {
      process.umask(previousUmask);
    }
    const dirA = cacheDir('a', digestOf('a1'));
    expect(readFileSync(path.join(dirA, 'system'), 'utf8')).toBe(`${a1}\n`);
    expect(statSync(dirA).gid).toBe(gid);
    expect(statSync(dirA).mode & 0o777).toBe(0o750);
    const narinfos = narinfosOf(dirA);
    const pin = readFileSync(path.join(dirA, 'pin'), 'utf8').trim();
    expect(narinfos.map((narinfo) => narinfo.storePath)).toEqual([...closure(a1), pin].sort());
    for (const narinfo of narinfos) {
      expect(narinfo.sigs.some((sig) => sig.startsWith('bento-test-1:'))).toBe(true);
      const nar = path.join(dirA, narinfo.url);
      // Readable by the machine whatever the umask of deploy.
      expect(statSync(nar).mode & 0o777).toBe(0o644);
      expect(statSync(path.join(dirA, 'nar')).mode & 0o777).toBe(0o755);
      expect(statSync(nar).ino).toBe(statSync(path.join(pool(), narinfo.url)).ino);
    }
    // The shared package: one file, linked from the pool and both caches.
    const shared = narinfos.find((narinfo) => narinfo.storePath.includes('bento-test-shared-')) as ReturnType<typeof parseNarinfo>;
    expect(statSync(path.join(pool(), shared.url)).nlink).toBe(3);
    expect(statSync(path.join(cacheDir('b', digestOf('b1')), shared.url)).ino).toBe(statSync(path.join(pool(), shared.url)).ino);

    // Nix itself reads it as a binary cache, and checks the signatures with the public key.
    const check = execFileSync(
      'nix',
      ['--extra-experimental-features', 'nix-command', 'path-info', '--store', `file://${dirA}`, '--json', '--sigs', a1],
      { encoding: 'utf8', env: NIX_ENV },
    );
    expect(check).toContain('bento-test-1:');
    expect(statSync(pool()).mode & 0o777).toBe(0o700);
  });

  it('roots each published system in the server store', () => {
    const root = path.join(pool(), 'roots', `a-${digestOf('a1').slice(0, 16)}`);
    expect(readlinkSync(root)).toBe(a1);
    const roots = execFileSync('nix-store', ['--gc', '--print-roots'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(roots).toContain(`${root} -> ${a1}`);
  });

  it('pins the system to its configuration: a store path bento-system-<digest> holding the system, signed like the closure', () => {
    const dir = cacheDir('a', digestOf('a1'));
    const pin = readFileSync(path.join(dir, 'pin'), 'utf8');
    expect(pin).toMatch(new RegExp(`^/nix/store/[0-9a-df-np-sv-z]{32}-bento-system-${digestOf('a1')}\\n$`));
    expect(readFileSync(pin.trim(), 'utf8')).toBe(`${a1}\n`);
    const narinfo = narinfosOf(dir).find((entry) => entry.storePath === pin.trim());
    expect(narinfo?.references).toEqual([]);
    expect(narinfo?.sigs.some((sig) => sig.startsWith('bento-test-1:'))).toBe(true);
    expect(existsSync(path.join(dir, narinfo?.url ?? 'none'))).toBe(true);
    expect(existsSync(path.join(dir, `${path.basename(pin.trim()).slice(0, 32)}.narinfo`))).toBe(true);
  });

  it('keeps the caches of the configuration being published, the current one and the announced one; removes the others and the pool files only they used', async () => {
    published('a', 'a1');
    const a2 = buildSystem('a', '2');
    await publishSystemCache({ name: 'a', digest: digestOf('a2'), storePath: a2 }, options);
    published('a', 'a2');
    expect(existsSync(cacheDir('a', digestOf('a1')))).toBe(true);
    const onlyA1 = narinfosOf(cacheDir('a', digestOf('a1'))).find((narinfo) => narinfo.storePath.includes('-a-1-')) as ReturnType<typeof parseNarinfo>;
    expect(existsSync(path.join(pool(), onlyA1.url))).toBe(true);

    const a3 = buildSystem('a', '3');
    expect([...cacheIdsToKeep(server.chrootDir, 'a', digestOf('a3'))].sort()).toEqual([`.cache-${digestOf('a2').slice(0, 16)}`, `.cache-${digestOf('a3').slice(0, 16)}`].sort());
    await publishSystemCache({ name: 'a', digest: digestOf('a3'), storePath: a3 }, options);
    expect(readdirSync(path.join(server.chrootDir, 'a')).filter((entry) => entry.startsWith('.cache-')).sort()).toEqual(
      [`.cache-${digestOf('a2').slice(0, 16)}`, `.cache-${digestOf('a3').slice(0, 16)}`].sort(),
    );
    expect(existsSync(path.join(pool(), onlyA1.url))).toBe(false);
    expect(existsSync(path.join(pool(), `${path.basename(onlyA1.storePath).slice(0, 32)}.narinfo`))).toBe(false);
    expect(existsSync(path.join(pool(), 'roots', `a-${digestOf('a1').slice(0, 16)}`))).toBe(false);
    // Nix's record of that root is gone with it.
    const records = readdirSync('/nix/var/nix/gcroots/auto').map((entry) => readlinkSync(path.join('/nix/var/nix/gcroots/auto', entry)));
    expect(records).not.toContain(path.join(pool(), 'roots', `a-${digestOf('a1').slice(0, 16)}`));
    expect(records).toContain(path.join(pool(), 'roots', `a-${digestOf('a3').slice(0, 16)}`));
    // Still used by b and a's newer caches: kept.
    const shared = narinfosOf(cacheDir('b', digestOf('b1'))).find((narinfo) => narinfo.storePath.includes('bento-test-shared-')) as ReturnType<typeof parseNarinfo>;
    expect(statSync(path.join(pool(), shared.url)).nlink).toBe(4);
  });

  it('leaves a cache already published whole alone (a machine may be reading it)', async () => {
    const dir = cacheDir('b', digestOf('b1'));
    const before = lstatSync(dir).ino;
    await publishSystemCache({ name: 'b', digest: digestOf('b1'), storePath: b1 }, options);
    expect(lstatSync(dir).ino).toBe(before);
    expect(systemCacheProblems(server.chrootDir, 'b', digestOf('b1'))).toEqual([]);
    rmSync(path.join(dir, 'system'));
    expect(systemCacheProblems(server.chrootDir, 'b', digestOf('b1'))).toEqual([`.cache-${digestOf('b1').slice(0, 16)}/system (its prebuilt system) is missing`]);
    await publishSystemCache({ name: 'b', digest: digestOf('b1'), storePath: b1 }, options);
    expect(readFileSync(path.join(dir, 'system'), 'utf8')).toBe(`${b1}\n`);
  });

  it('finds what is not as it published it in a cache (an older cache copied over it, a NAR cut short), and repairs it', async () => {
    const older = cacheDir('a', digestOf('a2'));
    const newer = cacheDir('a', digestOf('a3'));
    const id = `.cache-${digestOf('a3').slice(0, 16)}`;
    const problems = () => systemCacheProblems(server.chrootDir, 'a', digestOf('a3'));
    expect(problems()).toEqual([]);
    const a3 = readFileSync(path.join(newer, 'system'), 'utf8');
    // Another system of this fleet, signed by the same key: the older cache's index copied over the newer's.
    copyFileSync(path.join(older, 'system'), path.join(newer, 'system'));
    expect(problems()).toEqual([`${id}/system is not what deploy published there`]);
    copyFileSync(path.join(older, 'narinfos.gz'), path.join(newer, 'narinfos.gz'));
    const onlyOlder = narinfosOf(older).find((narinfo) => narinfo.storePath.includes('-a-2-')) as ReturnType<typeof parseNarinfo>;
    const narinfoName = `${path.basename(onlyOlder.storePath).slice(0, 32)}.narinfo`;
    copyFileSync(path.join(older, narinfoName), path.join(newer, narinfoName));
    copyFileSync(path.join(older, onlyOlder.url), path.join(newer, onlyOlder.url));
    expect(problems()).toEqual(
      [`${id}/system is not what deploy published there`, `${id}/narinfos.gz is not what deploy published there`, `${id}/${narinfoName} was not published there by deploy`, `${id}/${onlyOlder.url} was not published there by deploy`].sort(),
    );
    await publishSystemCache({ name: 'a', digest: digestOf('a3'), storePath: a3.trim() }, options);
    expect(problems()).toEqual([]);
    expect(readFileSync(path.join(newer, 'system'), 'utf8')).toBe(a3);
    expect(existsSync(path.join(newer, narinfoName))).toBe(false);

    // A NAR cut short where it is (the pool's file is the same inode): published again from the store.
    const mine = narinfosOf(newer).find((narinfo) => narinfo.storePath.includes('-a-3-')) as ReturnType<typeof parseNarinfo>;
    truncateSync(path.join(newer, mine.url), 100);
    expect(problems()).toEqual([`${id}/${mine.url} is not what deploy published there`]);
    await publishSystemCache({ name: 'a', digest: digestOf('a3'), storePath: a3.trim() }, options);
    expect(problems()).toEqual([]);
    expect(statSync(path.join(newer, mine.url)).size).toBe(mine.fileSize);
    expect(statSync(path.join(pool(), mine.url)).size).toBe(mine.fileSize);
  });

  it('a cache without the record of what deploy published in it (a bento before it kept one) is published again', async () => {
    const id = digestOf('a3').slice(0, 16);
    rmSync(path.join(pool(), 'index', `a-${id}`));
    expect(systemCacheProblems(server.chrootDir, 'a', digestOf('a3'))).toEqual([`.cache-${id} has no record of what deploy published there`]);
  });

  it('signs the pool again with a new key (rotation); caches published before keep their own narinfos', async () => {
    published('b', 'b1');
    const oldNarinfo = readFileSync(path.join(cacheDir('b', digestOf('b1')), `${path.basename(b1).slice(0, 32)}.narinfo`), 'utf8');
    const rotated = await loadSigningKey(path.join(work, 'key2', 'signing-key'), { keyName: 'bento-test-2' });
    await publishSystemCache({ name: 'b', digest: digestOf('b2'), storePath: b1 }, { ...options, signingKey: rotated });
    const narinfos = narinfosOf(cacheDir('b', digestOf('b2')));
    expect(narinfos.every((narinfo) => narinfo.sigs.some((sig) => sig.startsWith('bento-test-2:')))).toBe(true);
    expect(readFileSync(path.join(pool(), 'signed-by'), 'utf8').trim()).toBe(rotated.publicKey);
    expect(readFileSync(path.join(cacheDir('b', digestOf('b1')), `${path.basename(b1).slice(0, 32)}.narinfo`), 'utf8')).toBe(oldNarinfo);
  });

  it('a system no longer prebuilt: its caches go, but for the configuration still announced', async () => {
    published('b', 'b2');
    await publishSystemCache({ name: 'b', digest: digestOf('b3') }, options);
    expect(readdirSync(path.join(server.chrootDir, 'b')).filter((entry) => entry.startsWith('.cache-'))).toEqual([`.cache-${digestOf('b2').slice(0, 16)}`]);
    published('b', 'b3');
    await publishSystemCache({ name: 'b', digest: digestOf('b4') }, options);
    expect(readdirSync(path.join(server.chrootDir, 'b')).filter((entry) => entry.startsWith('.cache-'))).toEqual([]);
    expect(readdirSync(path.join(pool(), 'roots')).filter((root) => root.startsWith('b-'))).toEqual([]);
    expect(readdirSync(path.join(pool(), 'index')).filter((record) => record.startsWith('b-'))).toEqual([]);
  });

  it('with CACHE_STORE, the closure goes there, signed, and the chroot holds only the system', async () => {
    const store = path.join(work, 'external-cache');
    await publishSystemCache({ name: 'b', digest: digestOf('b5'), storePath: b1 }, { ...options, cacheStore: `file://${store}` });
    expect(readdirSync(cacheDir('b', digestOf('b5'))).sort()).toEqual(['pin', 'system']);
    const pin = readFileSync(path.join(cacheDir('b', digestOf('b5')), 'pin'), 'utf8').trim();
    for (const storePath of [b1, pin]) {
      const narinfo = parseNarinfo(readFileSync(path.join(store, `${path.basename(storePath).slice(0, 32)}.narinfo`), 'utf8'));
      expect(narinfo.sigs.some((sig) => sig.startsWith('bento-test-1:'))).toBe(true);
      expect(narinfo.compression).toBe('zstd');
    }
    expect(systemCacheProblems(server.chrootDir, 'b', digestOf('b5'))).toEqual([]);
  });
});

describe.skipIf(!isRoot)('a CHROOT_DIR with a space (which a Nix store URL cannot hold)', () => {
  it('publishes through a link of a private temporary directory', async () => {
    const chrootDir = path.join(server.chrootDir, 'spaced chroot');
    mkdirSync(path.join(chrootDir, 'c'), { recursive: true });
    const system = buildSystem('c', '1');
    await publishSystemCache({ name: 'c', digest: digestOf('c1'), storePath: system }, { ...options, chrootDir });
    expect(readFileSync(path.join(chrootDir, 'c', `.cache-${digestOf('c1').slice(0, 16)}`, 'system'), 'utf8')).toBe(`${system}\n`);
    // The closure and the pin.
    expect(readdirSync(path.join(chrootDir, '.bento-cache', 'nar')).length).toBe(closure(system).length + 1);
  });
});
