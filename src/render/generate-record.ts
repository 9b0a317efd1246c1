/**
 * The record of the last generate that found generated/ up to date, so that
 * the next one with the same inputs neither renders nor reads generated/
 * back: a generate with nothing changed (and the one every deploy runs
 * first) then costs a few thousand lstat calls (bench/README.md).
 *
 * It holds the digest of everything rendering depends on (renderInputsDigest:
 * the fleet model that goes into the templates, and the identity of this
 * bento's code and templates, so a new bento renders again), and the lstat
 * of every directory and file of generated/ (device, inode, size, mtime and
 * ctime in nanoseconds, mode), taken before writeOutput found each file's
 * content to be the rendered one, with each file's SHA-256 (what deploy
 * assembles, chroot/assemble.ts). The next generate skips rendering only
 * when the digest is the same and every one of those lstats still is: an
 * edit, a chmod, a removal or a rename changes a file's ctime, which no
 * process can set back, and an entry added or removed anywhere in the tree
 * changes its directory's. Anything else means rendering, as without it.
 *
 * A record is made only by a generate that wrote and removed nothing, and
 * only when every lstat it holds is safely older than the moment it was
 * taken (git calls the others "racy": a change within the same clock tick
 * could leave every field as it was). So the generate after one that wrote
 * renders once more, and records.
 *
 * Where it is kept is the caller's (commands/shared/generate-record-store.ts):
 * never in generated/, which users commit and which must stay what the fleet
 * renders to, nor in the fleet.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, type BigIntStats } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Fleet } from '../fleet/fleet.js';
import { NIX_MODULES_DIR, PACKAGE_ROOT, TEMPLATES_DIR } from '../paths.js';
import type { RenderedFile } from './render-fleet.js';
import { readDirIfAny } from '../util/read-dir.js';

/** Where the record is kept: its text, or undefined when there is none that can be trusted. */
export interface RecordStore {
  read(): string | undefined;
  /** Replaces it; a record that cannot be written is no failure. */
  write(text: string): void;
}

/** What a file of generated/ holds, by its digest (what deploy assembles). */
export interface GeneratedDigest {
  sha256: string;
  mode: number;
}

const FORMAT = 'bento generate record 1';

/** An lstat as decimal strings: dev, ino, size, mtime ns, ctime ns, mode (type bits included). */
type Stamp = [dev: string, ino: string, size: string, mtimeNs: string, ctimeNs: string, mode: string];

interface GenerateRecord {
  inputs: string;
  outputDir: string;
  statTimeNs: bigint;
  dirs: Map<string, Stamp>;
  files: Map<string, { sha256: string; stamp: Stamp }>;
}

/**
 * The directory of bento's own code: dist/ when built, src/ when run from
 * source (tests). This module is render/generate-record in either, or a
 * chunk of dist/ itself in the bundle (src/main.ts).
 */
const CODE_DIR = ((here) => (path.basename(here) === 'render' ? path.dirname(here) : here))(path.dirname(fileURLToPath(import.meta.url)));

let codeDigest: string | undefined;

/**
 * The identity of the code that renders: every file of bento's code
 * (whatever module the rendering moves to, and templates compiled into the
 * build), of templates/ and nix/modules/, the package's and Handlebars'
 * package.json, and node's version. Read once a run, and only when a record
 * is kept.
 */
export function codeIdentity(): string {
  codeDigest ??= codeIdentityOf([CODE_DIR, TEMPLATES_DIR, NIX_MODULES_DIR]);
  return codeDigest;
}

/** codeIdentity with the files of `dirs` (each file by its path and content). */
export function codeIdentityOf(dirs: readonly string[]): string {
  const hash = createHash('sha256');
  const add = (label: string, content: string | Buffer) => hash.update(`${label}\0${content.length}\0`).update(content);
  add('node', process.version);
  for (const file of [path.join(PACKAGE_ROOT, 'package.json'), handlebarsPackage()]) add(file, readOptional(file));
  for (const dir of dirs) {
    for (const relative of listTree(dir)) add(path.join(dir, relative), readFileSync(path.join(dir, relative)));
  }
  return hash.digest('hex');
}

function handlebarsPackage(): string {
  try {
    return createRequire(import.meta.url).resolve('handlebars/package.json');
  } catch {
    return 'handlebars: not found';
  }
}

function readOptional(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Every regular file under `dir`, relative, sorted; links and the rest are not followed. */
function listTree(dir: string, prefix = ''): string[] {
  const found: string[] = [];
  const entries = readdirSync(path.join(dir, prefix), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) found.push(...listTree(dir, relative));
    else if (entry.isFile()) found.push(relative);
  }
  return found;
}

/**
 * JSON with the keys of every object sorted, Maps and Sets as arrays; throws
 * on anything else that JSON would not show faithfully (a value the model
 * may hold one day), so that the record is then not used.
 */
function canonical(value: unknown): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`not a finite number: ${value}`);
    return value;
  }
  if (Array.isArray(value)) return value.map((item: unknown) => (item === undefined ? null : canonical(item)));
  if (value instanceof Map) return { map: [...value.entries()].map(([key, item]) => [canonical(key), canonical(item)]) };
  if (value instanceof Set) return { set: [...value].map(canonical) };
  if (typeof value === 'object') {
    const prototype = Object.getPrototypeOf(value) as unknown;
    if (prototype !== Object.prototype && prototype !== null) throw new Error('an object of a class');
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const item = (value as Record<string, unknown>)[key];
      if (item !== undefined) sorted[key] = canonical(item);
    }
    return sorted;
  }
  throw new Error(`a ${typeof value}`);
}

/**
 * The digest of everything rendering depends on: the fleet model (config.sh's
 * values, every field of every system but where its files are read from,
 * the signing key, the uids), the output directory and the code's identity.
 * Undefined when the model holds something it cannot digest faithfully.
 */
export function renderInputsDigest(fleet: Pick<Fleet, 'root' | 'config' | 'systems' | 'signingKey' | 'uids'>, outputDir: string): string | undefined {
  // filesDir is a temporary snapshot's path on every run, and files lists
  // what a host directory holds: rendering reads neither (PREBUILT,
  // SELF_UPDATE and REBOOT_WINDOW are in the model already).
  const systems = fleet.systems.map(({ filesDir: _filesDir, files: _files, ...rest }) => rest);
  try {
    const model = canonical({ root: fleet.root, config: fleet.config, systems, signingKey: fleet.signingKey, uids: fleet.uids, outputDir: path.resolve(outputDir) });
    return createHash('sha256').update(`${FORMAT}\n${codeIdentity()}\n${JSON.stringify(model)}`).digest('hex');
  } catch {
    return undefined;
  }
}

/** What generated/ held before writeOutput compared it: each entry's lstat, taken after `statTimeNs`. */
export interface OutputStats {
  statTimeNs: bigint;
  dirs: Map<string, BigIntStats>;
  /** Everything that is no directory (a link is not followed). */
  others: Map<string, BigIntStats>;
}

/** The wall clock now, in nanoseconds (rounded down): taken before the lstats it dates. */
function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/** The lstat of every entry of `outputDir` (nothing when it is missing or no directory). */
export function statOutput(outputDir: string): OutputStats {
  const stats: OutputStats = { statTimeNs: nowNs(), dirs: new Map(), others: new Map() };
  const walk = (relative: string) => {
    const dir = relative === '.' ? outputDir : path.join(outputDir, relative);
    for (const name of readDirIfAny(dir) ?? []) {
      const child = relative === '.' ? name : `${relative}/${name}`;
      const entry = lstatSync(path.join(outputDir, child), { bigint: true, throwIfNoEntry: false });
      if (!entry) continue;
      if (entry.isDirectory()) {
        stats.dirs.set(child, entry);
        walk(child);
      } else {
        stats.others.set(child, entry);
      }
    }
  };
  const top = lstatSync(outputDir, { bigint: true, throwIfNoEntry: false });
  if (top) (top.isDirectory() ? stats.dirs : stats.others).set('.', top);
  if (top?.isDirectory()) walk('.');
  return stats;
}

function stampOf(stats: BigIntStats): Stamp {
  return [String(stats.dev), String(stats.ino), String(stats.size), String(stats.mtimeNs), String(stats.ctimeNs), String(stats.mode)];
}

/**
 * Whether a change after `statTimeNs` would show in this lstat: its ctime
 * safely older than that moment. The kernel's clock for file times lags the
 * wall clock by at most a tick, far less than the margin; a file system
 * whose times look like whole milliseconds or coarser gets a margin of
 * seconds (as published-stats.ts).
 */
function settled(stats: BigIntStats | bigint, statTimeNs: bigint): boolean {
  const ctimeNs = typeof stats === 'bigint' ? stats : stats.ctimeNs;
  const margin = ctimeNs % 1_000_000n === 0n ? 2_000_000_000n : 50_000_000n;
  return ctimeNs + margin < statTimeNs;
}

/** The SHA-256 of a rendered file's content, from the parts it was written from. */
export function renderedDigest(file: RenderedFile): string {
  const hash = createHash('sha256');
  for (const part of file.bytes ?? [file.content]) hash.update(part);
  return hash.digest('hex');
}

/**
 * The record of generated/ holding exactly `files`, which writeOutput found
 * there without writing or removing anything, given its lstats taken before
 * (`before`); undefined when it cannot vouch for them: an entry that is not
 * what was rendered, a file more or less, or a change too recent to show.
 */
export function makeRecord(inputs: string, outputDir: string, before: OutputStats, files: readonly RenderedFile[]): { text: string; digests: Map<string, GeneratedDigest> } | undefined {
  if (!before.dirs.has('.') || before.others.size !== files.length) return undefined;
  const { statTimeNs } = before;
  const record: Record<string, unknown> = { format: FORMAT, inputs, outputDir: path.resolve(outputDir), statTimeNs: String(statTimeNs) };
  const dirs: Record<string, Stamp> = {};
  for (const [relative, stats] of [...before.dirs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!settled(stats, statTimeNs)) return undefined;
    dirs[relative] = stampOf(stats);
  }
  const recorded: Record<string, [string, ...Stamp]> = {};
  const digests = new Map<string, GeneratedDigest>();
  for (const file of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const stats = before.others.get(file.path);
    if (!stats?.isFile() || Number(stats.mode & 0o777n) !== file.mode || Number(stats.size) !== byteLength(file) || !settled(stats, statTimeNs)) return undefined;
    const sha256 = renderedDigest(file);
    recorded[file.path] = [sha256, ...stampOf(stats)];
    digests.set(file.path, { sha256, mode: file.mode });
  }
  record.dirs = dirs;
  record.files = recorded;
  return { text: `${JSON.stringify(record)}\n`, digests };
}

function byteLength(file: RenderedFile): number {
  if (!file.bytes) return Buffer.byteLength(file.content, 'utf8');
  let length = 0;
  for (const part of file.bytes) length += part.length;
  return length;
}

const DECIMAL = /^(0|[1-9][0-9]{0,30})$/;
const SHA256 = /^[0-9a-f]{64}$/;

function isStamp(value: unknown): value is Stamp {
  return Array.isArray(value) && value.length === 6 && value.every((item) => typeof item === 'string' && DECIMAL.test(item));
}

/** A relative path of generated/ with '/' separators, nothing that leads out ('.' only for generated/ itself, `top`). */
function isRelative(relative: string, top: boolean): boolean {
  if (relative === '.') return top;
  return relative !== '' && relative.split('/').every((part) => part !== '' && part !== '.' && part !== '..' && !part.includes('\0'));
}

/** Parses a record's text; undefined when anything in it is unexpected (it is then not used). */
export function parseRecord(text: string): GenerateRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { format, inputs, outputDir, statTimeNs, dirs, files } = parsed as Record<string, unknown>;
  if (format !== FORMAT || typeof inputs !== 'string' || !SHA256.test(inputs) || typeof outputDir !== 'string' || !path.isAbsolute(outputDir)) return undefined;
  if (typeof statTimeNs !== 'string' || !DECIMAL.test(statTimeNs) || typeof dirs !== 'object' || dirs === null || typeof files !== 'object' || files === null) return undefined;
  const record: GenerateRecord = { inputs, outputDir, statTimeNs: BigInt(statTimeNs), dirs: new Map(), files: new Map() };
  for (const [relative, stamp] of Object.entries(dirs)) {
    if (!isRelative(relative, true) || !isStamp(stamp)) return undefined;
    record.dirs.set(relative, stamp);
  }
  if (!record.dirs.has('.')) return undefined;
  for (const [relative, entry] of Object.entries(files)) {
    if (!isRelative(relative, false) || !Array.isArray(entry) || entry.length !== 7) return undefined;
    const [sha256, ...stamp] = entry as unknown[];
    if (typeof sha256 !== 'string' || !SHA256.test(sha256) || !isStamp(stamp)) return undefined;
    record.files.set(relative, { sha256, stamp });
  }
  return record;
}

function sameStamp(recorded: Stamp, stats: BigIntStats | undefined): boolean {
  if (!stats) return false;
  const now = stampOf(stats);
  for (let i = 0; i < now.length; i++) if (now[i] !== recorded[i]) return false;
  return true;
}

/**
 * What generated/ holds, by the record's text, when the record is for
 * `inputs` and `outputDir` and every directory and file it lists is still
 * as it was: each file's digest and mode. Undefined otherwise: render.
 */
export function recordedOutput(text: string | undefined, inputs: string, outputDir: string): Map<string, GeneratedDigest> | undefined {
  const record = text === undefined ? undefined : parseRecord(text);
  if (!record || record.inputs !== inputs || record.outputDir !== path.resolve(outputDir)) return undefined;
  const lstat = (relative: string) => lstatSync(relative === '.' ? outputDir : path.join(outputDir, relative), { bigint: true, throwIfNoEntry: false });
  for (const [relative, stamp] of record.dirs) {
    const stats = lstat(relative);
    if (!stats?.isDirectory() || !sameStamp(stamp, stats) || !settled(stats, record.statTimeNs)) return undefined;
  }
  const digests = new Map<string, GeneratedDigest>();
  for (const [relative, { sha256, stamp }] of record.files) {
    const stats = lstat(relative);
    if (!stats?.isFile() || !sameStamp(stamp, stats) || !settled(stats, record.statTimeNs)) return undefined;
    digests.set(relative, { sha256, mode: Number(stats.mode & 0o777n) });
  }
  return digests;
}
