/**
 * The Nix side of prebuilt systems' binary caches (docs/protocol.md §11;
 * what deploy publishes in the chroot with it is chroot/prebuilt-cache.ts): copying a
 * closure into one, signed; the closure and GC roots of the server's store;
 * and the parsing of narinfo files, the format every binary cache shares
 * (Nix's src/libstore/nar-info.cc).
 */
import { readlinkSync, rmSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { run } from '../exec.js';
import { runNix } from './nix.js';
import { readDirIfAny } from '../util/read-dir.js';

/**
 * How NARs are compressed: zstd, level 12 (of what Nix 2.8 writes and
 * reads: xz, zstd, bzip2, gzip, none). The server writes each NAR once for
 * the whole fleet, every machine decodes it: level 12 is much faster than
 * xz to write and to decode, for somewhat more bytes (the figures:
 * bench/README.md, measured by bench/prebuilt-bench.sh).
 */
export const NAR_COMPRESSION = 'zstd';
export const NAR_COMPRESSION_LEVEL = 12;

export interface Narinfo {
  storePath: string;
  /** Where the NAR is, relative to the cache: `nar/<file hash>.nar.<compression>`. */
  url: string;
  compression: string;
  fileSize: number;
  narHash: string;
  narSize: number;
  /** Basenames of the store paths it refers to. */
  references: string[];
  sigs: string[];
}

/** Parses a .narinfo file; throws on a missing or malformed field. */
export function parseNarinfo(text: string): Narinfo {
  const fields = new Map<string, string>();
  const sigs: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const colon = line.indexOf(': ');
    if (colon < 0) {
      // "References: " with no references ends in a space, which some writers trim.
      if (/^[A-Za-z]+:$/.test(line)) fields.set(line.slice(0, -1), '');
      else throw new Error(`not a narinfo line: ${JSON.stringify(line)}`);
      continue;
    }
    const key = line.slice(0, colon);
    const value = line.slice(colon + 2);
    if (key === 'Sig') sigs.push(value);
    else fields.set(key, value);
  }
  const need = (key: string) => {
    const value = fields.get(key);
    if (value === undefined) throw new Error(`narinfo without ${key}`);
    return value;
  };
  // Digits without a leading zero, at most 15 (under 2^53: exact as a JavaScript number).
  const number = (key: string) => {
    const value = need(key);
    if (!/^(0|[1-9]\d{0,14})$/.test(value)) throw new Error(`narinfo ${key} is not a number of at most 15 digits without a leading zero: ${JSON.stringify(value)}`);
    return Number(value);
  };
  const storePath = need('StorePath');
  if (!/^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+$/.test(storePath)) throw new Error(`narinfo StorePath is not a store path: ${JSON.stringify(storePath)}`);
  const url = need('URL');
  if (!/^nar\/[0-9a-z]+\.nar(\.[a-z0-9]+)?$/.test(url)) throw new Error(`narinfo URL is not nar/<hash>.nar[.<compression>]: ${JSON.stringify(url)}`);
  const references = (fields.get('References') ?? '').split(' ').filter((reference) => reference !== '');
  return {
    storePath,
    url,
    compression: fields.get('Compression') ?? 'bzip2',
    fileSize: number('FileSize'),
    narHash: need('NarHash'),
    narSize: number('NarSize'),
    references,
    sigs,
  };
}

/** The hash part of a store path: its narinfo is `<hash part>.narinfo`. */
export function hashPartOf(storePath: string): string {
  const base = storePath.slice(storePath.lastIndexOf('/') + 1);
  return base.slice(0, 32);
}

/**
 * `url` with the store parameters that make `nix copy --to` sign with
 * `secretKeyFile` and compress, unless the URL sets them itself. Values are
 * percent-encoded (Nix decodes them).
 */
export function signingStoreUrl(url: string, secretKeyFile: string, compression = NAR_COMPRESSION, level = NAR_COMPRESSION_LEVEL): string {
  const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  const present = new Set(query.split('&').map((pair) => pair.split('=')[0]));
  const add: string[] = [];
  if (!present.has('secret-key')) add.push(`secret-key=${encodeURIComponent(secretKeyFile)}`);
  if (!present.has('compression')) {
    add.push(`compression=${compression}`);
    if (!present.has('compression-level')) add.push(`compression-level=${level}`);
  }
  if (add.length === 0) return url;
  return `${url}${url.includes('?') ? (url.endsWith('?') || url.endsWith('&') ? '' : '&') : '?'}${add.join('&')}`;
}

/**
 * Copies the closures of `storePaths` into the binary cache at `storeUrl`,
 * signing each narinfo it writes with `secretKeyFile`. Paths the cache
 * already holds are skipped by Nix (their NARs are not written again).
 */
export async function copyToBinaryCache(storeUrl: string, storePaths: readonly string[], secretKeyFile: string): Promise<void> {
  await runNix(['copy', '--to', signingStoreUrl(storeUrl, secretKeyFile), ...storePaths]);
}

/**
 * Adds a regular file to the Nix store, as `nix-store --add` does: a path
 * named after the file, whose hash is that of its content (the same file
 * gives the same path), with no references. Returns the store path.
 */
export async function addFileToStore(file: string): Promise<string> {
  const result = await run('nix-store', ['--add', file]);
  const storePath = result.stdout.trim();
  if (!/^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[^/\n]+$/.test(storePath)) throw new Error(`nix-store --add ${file} printed no store path: ${JSON.stringify(result.stdout)}`);
  return storePath;
}

/** Every store path in the closure of `storePath` (nix-store --query --requisites), itself included. */
export async function closureOf(storePath: string): Promise<string[]> {
  const result = await run('nix-store', ['--query', '--requisites', storePath]);
  return result.stdout.split('\n').filter((line) => line !== '');
}

/**
 * Makes `link` a GC root of `storePath`: a symbolic link there, registered
 * as an indirect root (nix-store --add-root), so the server's
 * nix-collect-garbage keeps the path for as long as the link exists, and
 * removing the link is all it takes to release it.
 */
export async function addIndirectGcRoot(link: string, storePath: string): Promise<void> {
  await run('nix-store', ['--realise', storePath, '--add-root', link, '--indirect']);
}

/** Where nix-store --add-root registers indirect roots (Nix's default state directory). */
export const AUTO_ROOTS_DIR = '/nix/var/nix/gcroots/auto';

/**
 * Releases a root made by addIndirectGcRoot: the link, and Nix's record of
 * it in gcroots/auto (which the collector would otherwise drop only on
 * its next run).
 */
export function removeIndirectGcRoot(link: string, autoRootsDir = AUTO_ROOTS_DIR): void {
  rmSync(link, { force: true });
  removeAutoRoots((target) => target === link, autoRootsDir);
}

/** Removes Nix's records of indirect GC roots (in gcroots/auto) whose link `matches` accepts. */
export function removeAutoRoots(matches: (link: string) => boolean, autoRootsDir = AUTO_ROOTS_DIR): void {
  for (const entry of readDirIfAny(autoRootsDir) ?? []) {
    const record = path.join(autoRootsDir, entry);
    try {
      if (matches(readlinkSync(record))) unlinkSync(record);
    } catch {
      // not a link, or gone meanwhile
    }
  }
}
