/**
 * The binary caches of prebuilt systems in the chroots (docs/protocol.md §11;
 * the Nix calls behind them are nix/store-copy.ts). For each
 * configuration of a prebuilt system, deploy publishes next to it, in the
 * machine's chroot, a Nix binary cache of the system's closure: a narinfo per
 * store path and the NAR files, signed with the server's key, in
 * `<name>/.cache-<id>/` (<id>: the first 16 hex digits of the configuration's
 * manifest digest, so a machine finds the cache of exactly the configuration
 * it downloaded), plus the system's store path and every narinfo in one
 * gzipped file, a single download.
 *
 * - **Stored once.** `nix copy` writes the closures into one pool,
 *   CHROOT_DIR/.bento-cache/ (root's alone, no machine sees it); each
 *   chroot's cache holds hard links to the pool's files, so a NAR shared by
 *   a hundred machines takes its space once while each machine sees only its
 *   own closure.
 * - **Atomic.** A cache is written under a temporary name and renamed into
 *   place before its configuration is published: a machine never sees a
 *   half-written cache.
 * - **Kept as long as needed.** The caches of the configurations a chroot
 *   keeps (the current one and the one before, as publish.ts keeps them)
 *   stay; older ones are removed, and then every pool file no chroot links
 *   to any more (its link count is back to one).
 * - **GC roots.** Each kept cache's system is an indirect GC root of the
 *   server's store (`.bento-cache/roots/<name>-<id>`), released with it.
 * - **Pinned.** Which system a configuration must run is itself signed: the
 *   pin, a store path named `bento-system-<manifest digest>` whose content
 *   is the system's store path, is copied with the closure. A machine takes
 *   the system its configuration's pin names, so that an older signed
 *   system copied into a newer cache is refused.
 * - **Checked.** What deploy wrote into each cache (the size, and for the
 *   files the signatures do not cover their sha256) is recorded in the pool,
 *   `.bento-cache/index/<name>-<id>`; every deploy checks the published
 *   cache against it, as it checks config/ against its manifest, and
 *   publishes it again when they differ.
 * - **Elsewhere.** With CACHE_STORE, the closures are copied, signed, to that
 *   store instead, and the chroot's cache holds only the system's store path
 *   and its pin.
 */
import { accessSync, chmodSync, chownSync, constants, copyFileSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { addFileToStore, addIndirectGcRoot, closureOf, removeIndirectGcRoot, copyToBinaryCache, hashPartOf, parseNarinfo, type Narinfo } from '../nix/store-copy.js';
import type { SigningKey } from '../nix/signing-key.js';
import { writeFileAtomicallySync } from '../util/atomic-write.js';
import { flushParentSync, flushTreeSync } from '../util/durable.js';
import { sha256, sha256File } from '../util/hash.js';
import { makeTempDir } from '../util/temp-dir.js';
import { readDirIfAny } from '../util/read-dir.js';
import { CACHE_NARINFO_BUNDLE, CACHE_PIN_FILE, CACHE_POOL, CACHE_SYSTEM_FILE, cacheDirName, pinStoreName, systemChroot } from '../protocol/layout.js';
import { MANIFEST_NAME } from '../protocol/manifest.js';

export interface SystemCacheOptions {
  chrootDir: string;
  /** Group of the cache directories: sftp_users, as for the version directories. */
  sftpGroupId: number;
  /** The server's key: needed to publish a cache (undefined: only removing old ones). */
  signingKey?: Pick<SigningKey, 'secretFile' | 'publicKey'>;
  /** CACHE_STORE: copy the closures there instead of into the chroot ('' or undefined: the chroot). */
  cacheStore?: string;
}

export interface SystemCacheTarget {
  name: string;
  /** Manifest digest of the configuration the cache goes with. */
  digest: string;
  /** The system built for it, when the system is prebuilt; undefined: not prebuilt (only old caches are removed). */
  storePath?: string;
}

const CACHE_ENTRY = /^\.cache-([0-9a-f]{16})$/;
const CACHE_LEFTOVER = /^\.cache-.*\.tmp-\d+$/;
const NIX_CACHE_INFO = 'nix-cache-info';
const SIGNED_BY = 'signed-by';

interface Pool {
  dir: string;
  nar: string;
  roots: string;
  /** What deploy published in each cache: `<name>-<id>`, a CacheRecord. */
  index: string;
}

function poolOf(chrootDir: string): Pool {
  const dir = path.join(chrootDir, CACHE_POOL);
  return { dir, nar: path.join(dir, 'nar'), roots: path.join(dir, 'roots'), index: path.join(dir, 'index') };
}

/**
 * What deploy wrote into a cache, by path relative to it: the size of every
 * file, and the sha256 of those no signature covers (system, pin,
 * nix-cache-info, narinfos.gz). The narinfos and NARs are signed, so their
 * sizes are enough to find one replaced, added or cut short cheaply: a
 * deploy checks every prebuilt system's cache.
 */
type CacheRecord = Record<string, { size: number; sha256?: string }>;

/** `<name>-<16 hex digits of the digest>`: the name of a cache's GC root and of its record. */
function cacheKey(name: string, id: string): string {
  return `${name}-${id.slice('.cache-'.length)}`;
}

/** Pools swept whole by this process already (the sweep after a killed deploy). */
const sweptPools = new Set<string>();

/**
 * Publishes the binary cache of `target`'s system (a prebuilt system after
 * its build), then removes the caches its chroot no longer keeps and the
 * pool files nothing links to any more. For a system that is not prebuilt
 * (no storePath), only the removal. Call it before the configuration itself
 * is published: a machine that sees the configuration finds its cache.
 */
export async function publishSystemCache(target: SystemCacheTarget, options: SystemCacheOptions): Promise<void> {
  const { chrootDir } = options;
  const systemDir = systemChroot(chrootDir, target.name).dir;
  const pool = poolOf(chrootDir);
  if (target.storePath === undefined && !hasCaches(systemDir)) return;
  if (target.storePath !== undefined && !options.signingKey) throw new Error(`${target.name} is prebuilt, but no signing key was loaded`);
  ensurePool(pool, options.signingKey?.publicKey);
  if (!sweptPools.has(pool.dir)) {
    sweptPools.add(pool.dir);
    sweepPool(pool, undefined);
  }
  const id = cacheDirName(target.digest);
  if (target.storePath !== undefined) {
    await writeSystemCache({ systemDir, name: target.name, id, digest: target.digest, storePath: target.storePath }, pool, options);
    await addIndirectGcRoot(path.join(pool.roots, cacheKey(target.name, id)), target.storePath);
  }
  removeStaleCaches(systemDir, target.name, cacheIdsToKeep(chrootDir, target.name, target.storePath === undefined ? undefined : target.digest), pool);
}

function hasCaches(systemDir: string): boolean {
  return (readDirIfAny(systemDir) ?? []).some((entry) => CACHE_ENTRY.test(entry) || CACHE_LEFTOVER.test(entry));
}

/**
 * The pool, root's alone (0700). Its narinfos are signed by the key in
 * `signed-by`: when the key changed (rotated), they are removed, and `nix
 * copy` writes them again, signed by the new key; the NARs stay (Nix does
 * not rewrite a NAR that is there), and caches published before keep
 * their own links to the old narinfos, which their configurations trust.
 */
function ensurePool(pool: Pool, publicKey: string | undefined): void {
  for (const dir of [pool.dir, pool.nar, pool.roots, pool.index]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  chownSync(pool.dir, 0, 0);
  chmodSync(pool.dir, 0o700);
  if (publicKey === undefined) return;
  const record = path.join(pool.dir, SIGNED_BY);
  let signedBy: string | undefined;
  try {
    signedBy = readFileSync(record, 'utf8').trim();
  } catch {
    signedBy = undefined;
  }
  if (signedBy === publicKey) return;
  for (const entry of readdirSync(pool.dir)) if (entry.endsWith('.narinfo')) unlinkSync(path.join(pool.dir, entry));
  writeFileAtomicallySync(record, `${publicKey}\n`, 0o644);
}

/** A pool file that no cache links to: removed (all of them, or those among `candidates`). */
function sweepPool(pool: Pool, candidates: readonly string[] | undefined): void {
  const files =
    candidates ??
    [
      ...readdirSync(pool.dir).filter((entry) => entry.endsWith('.narinfo')),
      ...readdirSync(pool.nar).map((entry) => `nar/${entry}`),
    ];
  for (const relative of files) {
    const file = path.join(pool.dir, relative);
    const stats = lstatSync(file, { throwIfNoEntry: false });
    if (stats?.isFile() && stats.nlink === 1) unlinkSync(file);
  }
}

interface CacheEntry {
  narinfo: Narinfo;
  text: string;
  /** The size of the pool's narinfo file (text may have gained a final newline). */
  size: number;
}

interface CacheTarget {
  systemDir: string;
  name: string;
  /** `.cache-<id>` */
  id: string;
  digest: string;
  storePath: string;
}

/**
 * Adds the pin of configuration `digest` to the server's store: a file
 * named pinStoreName(digest) holding `storePath`. The same pin is the same
 * store path, so a deploy that publishes a cache again adds it again
 * rather than keeping a GC root for it (it is in the pool or CACHE_STORE
 * once copied; the store's copy is needed only by that copy).
 */
async function addPin(digest: string, storePath: string): Promise<string> {
  const dir = makeTempDir('pin');
  try {
    const file = path.join(dir, pinStoreName(digest));
    writeFileSync(file, `${storePath}\n`, { mode: 0o644 });
    return await addFileToStore(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Copies the closure and its pin into the pool (or CACHE_STORE), then lays out the chroot's cache, renames it into place and records it. */
async function writeSystemCache(target: CacheTarget, pool: Pool, options: SystemCacheOptions): Promise<void> {
  const { systemDir, id, storePath } = target;
  const external = Boolean(options.cacheStore);
  const secretFile = (options.signingKey as SigningKey).secretFile;
  try {
    accessSync(secretFile, constants.R_OK);
  } catch {
    throw new Error(`cannot read the signing key ${secretFile} (SIGNING_KEY): deploy signs with it; restore it, or move its .pub away too to make a new one (docs/prebuilt.md, "Rotating the key")`);
  }
  const pin = await addPin(target.digest, storePath);
  let entries: CacheEntry[] = [];
  if (external) {
    await copyToBinaryCache(options.cacheStore as string, [storePath, pin], secretFile);
  } else {
    await copyToPool(pool, [storePath, pin], secretFile);
    const paths = [...(await closureOf(storePath)), pin];
    entries = readPoolEntries(pool, paths);
    const damaged = entries.filter((entry) => !poolNarIntact(pool, entry.narinfo));
    if (damaged.length > 0) {
      // A NAR gone (a pool cleaned by hand, a killed sweep) or cut short
      // where it is (a cache's file is the pool's): Nix skips a path whose
      // narinfo is there and never rewrites a NAR file that exists, so both
      // are removed (the caches linking the bad file keep it, and their
      // deploy check finds it) and copied again.
      for (const { narinfo } of damaged) {
        rmSync(path.join(pool.dir, `${hashPartOf(narinfo.storePath)}.narinfo`), { force: true });
        rmSync(path.join(pool.dir, narinfo.url), { force: true });
      }
      await copyToPool(pool, [storePath, pin], secretFile);
      entries = readPoolEntries(pool, paths);
      const still = entries.find((entry) => !poolNarIntact(pool, entry.narinfo));
      if (still) throw new Error(`${pool.dir}: nix copy left ${still.narinfo.url} (of ${still.narinfo.storePath}) missing or not of its FileSize`);
    }
  }

  const final = path.join(systemDir, id);
  const temporary = `${final}.tmp-${process.pid}`;
  const record: CacheRecord = {};
  // Modes set explicitly, whatever the umask: the machine's user reads all of it.
  const write = (relative: string, content: string | Buffer) => {
    writeReadable(path.join(temporary, relative), content);
    record[relative] = { size: Buffer.byteLength(content), sha256: sha256(content) };
  };
  rmSync(temporary, { recursive: true, force: true });
  try {
    mkdirSync(temporary, { mode: 0o750 });
    chownSync(temporary, 0, options.sftpGroupId);
    chmodSync(temporary, 0o750);
    write(CACHE_SYSTEM_FILE, `${storePath}\n`);
    write(CACHE_PIN_FILE, `${pin}\n`);
    if (!external) {
      write(NIX_CACHE_INFO, 'StoreDir: /nix/store\n');
      mkdirSync(path.join(temporary, 'nar'));
      chmodSync(path.join(temporary, 'nar'), 0o755);
      for (const { narinfo, size } of entries) {
        const name = `${hashPartOf(narinfo.storePath)}.narinfo`;
        linkOrCopy(path.join(pool.dir, name), path.join(temporary, name));
        record[name] = { size };
        const nar = path.join(temporary, narinfo.url);
        if (!isFile(nar)) linkOrCopy(path.join(pool.dir, narinfo.url), nar);
        record[narinfo.url] = { size: narinfo.fileSize };
      }
      // Every narinfo in one file, separated by empty lines: the machine's one download.
      write(CACHE_NARINFO_BUNDLE, gzipSync(entries.map((entry) => entry.text).join('\n')));
    }
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true });
    throw error;
  }
  if (isDir(final) && sameTree(final, temporary)) {
    // Already published whole (a machine may be reading it): left alone.
    rmSync(temporary, { recursive: true, force: true });
  } else {
    // Whole on the disk before it has its name (util/durable.ts).
    flushTreeSync(temporary);
    rmSync(final, { recursive: true, force: true });
    renameSync(temporary, final);
    flushParentSync(final);
  }
  writeCacheRecord(pool, cacheKey(target.name, id), record);
}

/** The pool's NAR of `narinfo` is there, of the size its narinfo gives. */
function poolNarIntact(pool: Pool, narinfo: Narinfo): boolean {
  const stats = lstatSync(path.join(pool.dir, narinfo.url), { throwIfNoEntry: false });
  return stats !== undefined && stats.isFile() && stats.size === narinfo.fileSize;
}

function writeCacheRecord(pool: Pool, key: string, record: CacheRecord): void {
  const sorted = Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  writeFileAtomicallySync(path.join(pool.index, key), `${JSON.stringify(sorted, null, 1)}\n`, 0o600);
}

/** The record of a cache, or undefined when there is none or it cannot be read as one (it is then published again). */
function readCacheRecord(pool: Pool, key: string): CacheRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path.join(pool.index, key), 'utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const record: CacheRecord = {};
  for (const [relative, entry] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof entry !== 'object' || entry === null) return undefined;
    const { size, sha256: digest } = entry as { size?: unknown; sha256?: unknown };
    if (!Number.isSafeInteger(size) || (size as number) < 0) return undefined;
    if (digest !== undefined && (typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest))) return undefined;
    record[relative] = digest === undefined ? { size: size as number } : { size: size as number, sha256: digest };
  }
  return record;
}

/** What Nix 2.8 takes in the path of a file:// store URL: it neither accepts nor decodes anything else (a space, say). */
const URL_SAFE_PATH = /^[A-Za-z0-9._~!$&'()*+,;=:@/-]+$/;

/**
 * `nix copy` of the closure into the pool. A CHROOT_DIR whose path a store
 * URL cannot hold (`/srv/bento chroots`) is reached through a symbolic link
 * in a private temporary directory.
 */
async function copyToPool(pool: Pool, storePaths: readonly string[], secretFile: string): Promise<void> {
  if (URL_SAFE_PATH.test(pool.dir)) {
    await copyToBinaryCache(`file://${pool.dir}`, storePaths, secretFile);
    return;
  }
  const dir = makeTempDir('pool');
  try {
    const link = path.join(dir, 'pool');
    symlinkSync(pool.dir, link);
    if (!URL_SAFE_PATH.test(link)) throw new Error(`neither ${pool.dir} nor ${link} can be written as a Nix store URL`);
    await copyToBinaryCache(`file://${link}`, storePaths, secretFile);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The pool's narinfo of every path of `paths`, sorted by store path. */
function readPoolEntries(pool: Pool, paths: readonly string[]): CacheEntry[] {
  return [...paths].sort().map((storePath) => {
    const file = path.join(pool.dir, `${hashPartOf(storePath)}.narinfo`);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new Error(`${file}: nix copy wrote no narinfo for ${storePath} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    const narinfo = parseNarinfo(text);
    if (narinfo.storePath !== storePath) throw new Error(`${file} describes ${narinfo.storePath}, not ${storePath}`);
    return { narinfo, text: text.endsWith('\n') ? text : `${text}\n`, size: Buffer.byteLength(text) };
  });
}

function writeReadable(file: string, content: string | Buffer): void {
  writeFileSync(file, content);
  chmodSync(file, 0o644);
}

/** A hard link to the pool's file (made 0644: nix copy honours the umask); a copy when the chroot is on another file system. */
function linkOrCopy(source: string, target: string): void {
  if ((lstatSync(source).mode & 0o777) !== 0o644) chmodSync(source, 0o644);
  try {
    linkSync(source, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    copyFileSync(source, target);
    chmodSync(target, 0o644);
  }
}

/** Same entries, each the same file (the same inode) or with the same content. */
function sameTree(a: string, b: string): boolean {
  try {
    const left = listTree(a).sort();
    const right = listTree(b).sort();
    if (left.join('\n') !== right.join('\n')) return false;
    return left.every((relative) => {
      const x = statSync(path.join(a, relative));
      const y = statSync(path.join(b, relative));
      if (x.ino === y.ino && x.dev === y.dev) return true;
      return x.size === y.size && sha256(readFileSync(path.join(a, relative))) === sha256(readFileSync(path.join(b, relative)));
    });
  } catch {
    return false;
  }
}

/**
 * The cache ids a chroot keeps: those of the configurations publish.ts keeps
 * (the one being published, `newDigest`, and the one `config` points to,
 * which becomes the previous), and the one last_change_date announces (a
 * deploy stopped before announcing the current one).
 */
export function cacheIdsToKeep(chrootDir: string, name: string, newDigest: string | undefined): Set<string> {
  const chroot = systemChroot(chrootDir, name);
  const keep = new Set<string>();
  if (newDigest) keep.add(cacheDirName(newDigest));
  try {
    const match = /^\.config-([0-9a-f]{16})/.exec(readlinkSync(chroot.config));
    if (match) keep.add(`.cache-${match[1]}`);
  } catch {
    // no config link (a first publication, or the original bento's directory)
  }
  try {
    keep.add(cacheDirName(sha256(readFileSync(path.join(chroot.config, MANIFEST_NAME), 'utf8'))));
  } catch {
    // nothing published
  }
  try {
    const announced = readFileSync(chroot.lastChangeDate, 'utf8').split(/\s/)[0] ?? '';
    if (/^[0-9a-f]{64}$/.test(announced)) keep.add(cacheDirName(announced));
  } catch {
    // nothing announced
  }
  return keep;
}

/** Removes the system's caches not in `keep` (and leftovers of killed deploys), their GC roots, then the pool files they alone held. */
function removeStaleCaches(systemDir: string, name: string, keep: ReadonlySet<string>, pool: Pool): void {
  const candidates = new Set<string>();
  const entries = readDirIfAny(systemDir);
  if (!entries) return;
  for (const entry of entries) {
    const match = CACHE_ENTRY.exec(entry);
    const leftover = CACHE_LEFTOVER.test(entry) && !entry.endsWith(`.tmp-${process.pid}`);
    if (!leftover && (!match || keep.has(entry))) continue;
    const dir = path.join(systemDir, entry);
    for (const file of listCacheFiles(dir)) candidates.add(file);
    rmSync(dir, { recursive: true, force: true });
    if (match) {
      removeIndirectGcRoot(path.join(pool.roots, cacheKey(name, entry)));
      rmSync(path.join(pool.index, cacheKey(name, entry)), { force: true });
    }
  }
  // Roots and records of caches that are gone (removed by hand, or a deploy killed in between).
  const present = new Set(readdirSync(systemDir).map((entry) => CACHE_ENTRY.exec(entry)?.[1]).filter((id) => id !== undefined));
  const gone = (key: string) => key.startsWith(`${name}-`) && /^[0-9a-f]{16}$/.test(key.slice(name.length + 1)) && !present.has(key.slice(name.length + 1));
  for (const root of readdirSync(pool.roots)) if (gone(root)) removeIndirectGcRoot(path.join(pool.roots, root));
  for (const record of readdirSync(pool.index)) if (gone(record)) rmSync(path.join(pool.index, record), { force: true });
  if (candidates.size > 0) sweepPool(pool, [...candidates]);
}

/** The pool-relative names of a cache's narinfo and NAR files. */
function listCacheFiles(dir: string): string[] {
  const files: string[] = [];
  try {
    for (const entry of readdirSync(dir)) if (entry.endsWith('.narinfo')) files.push(entry);
  } catch {
    return files;
  }
  try {
    for (const entry of readdirSync(path.join(dir, 'nar'))) files.push(`nar/${entry}`);
  } catch {
    // a cache of CACHE_STORE: no NARs
  }
  return files;
}

/**
 * What is wrong with a prebuilt system's published cache for `digest` (it
 * is then published again), or an empty list: every file that differs from
 * what deploy recorded when it wrote the cache (missing, of another size,
 * another content for the files no signature covers), and every file deploy
 * did not put there — as config/ is checked against its manifest. An older
 * cache copied over it, a NAR removed or cut short would otherwise fail
 * that machine's update (or, before the pin, pass it an older system)
 * until the next configuration. Cheap, as it runs for every prebuilt
 * system on every deploy: two directory reads, an lstat per file, and the
 * sha256 of four small files.
 */
export function systemCacheProblems(chrootDir: string, name: string, digest: string): string[] {
  const id = cacheDirName(digest);
  const cacheDir = path.join(systemChroot(chrootDir, name).dir, id);
  if (!isFile(path.join(cacheDir, CACHE_SYSTEM_FILE))) return [`${id}/${CACHE_SYSTEM_FILE} (its prebuilt system) is missing`];
  const record = readCacheRecord(poolOf(chrootDir), cacheKey(name, id));
  if (!record) return [`${id} has no record of what deploy published there`];
  const problems: string[] = [];
  for (const [relative, expected] of Object.entries(record)) {
    const file = path.join(cacheDir, relative);
    const stats = lstatSync(file, { throwIfNoEntry: false });
    if (!stats?.isFile()) {
      problems.push(`${id}/${relative}${relative.startsWith('nar/') ? ' (a NAR of its prebuilt system)' : ''} is missing`);
    } else if (stats.size !== expected.size || (expected.sha256 !== undefined && sha256File(file) !== expected.sha256)) {
      problems.push(`${id}/${relative} is not what deploy published there`);
    }
  }
  for (const relative of listTree(cacheDir)) {
    if (!(relative in record)) problems.push(`${id}/${relative} was not published there by deploy`);
  }
  return problems.sort();
}

/** Every entry under `dir` but directories, by relative path. */
function listTree(dir: string, prefix = ''): string[] {
  let entries;
  try {
    entries = readdirSync(path.join(dir, prefix), { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    return entry.isDirectory() ? listTree(dir, relative) : [relative];
  });
}

function isFile(file: string): boolean {
  return lstatSync(file, { throwIfNoEntry: false })?.isFile() ?? false;
}

function isDir(dir: string): boolean {
  return lstatSync(dir, { throwIfNoEntry: false })?.isDirectory() ?? false;
}
