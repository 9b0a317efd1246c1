/**
 * Publication into a system's chroot. The new files are written into a
 * fresh versioned directory, then the `config` symlink is replaced by a
 * rename (atomic), and only then is last_change_date rewritten: a machine
 * polling meanwhile downloads either the old files or the new ones, never a
 * mix, and a deploy killed at any point leaves the chroot whole.
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { AssembledFile, Assembly } from './assemble.js';
import { listChrootDir, stagingAreaName, systemChroot, versionDirName } from '../protocol/layout.js';
import { MANIFEST_NAME, renderChangeStampOfDigest } from '../protocol/manifest.js';
import { recordStates } from './record-state.js';
import { writeFileAtomicallySteps } from '../util/atomic-write.js';
import { flushSync, runStepsSync, runStepsTogether, treeToFlush, type DurableSteps, type StepsOutcome } from '../util/durable.js';
import { ChangedWhileCopiedError, copyFilesWithModes, type CopySharing } from '../util/make-dirs.js';
import { UserError } from '../errors.js';
import { sha256, sha256File } from '../util/hash.js';
import { dirUnchangedSinceRecorded, recordDir, recordFile, statTimeNow, unchangedSinceRecorded, type RecordedDir, type RecordedFile, type SystemStats } from './published-stats.js';

export interface Published {
  /** The manifest config/ holds now, if any. */
  manifest?: string;
  /** The digest last_change_date announces, if any. */
  stampDigest?: string;
}

/** What the chroot holds for a system now. */
export function readPublished(chrootDir: string, name: string): Published {
  const chroot = systemChroot(chrootDir, name);
  return {
    manifest: readOrUndefined(path.join(chroot.config, MANIFEST_NAME)),
    stampDigest: stampDigestOf(readOrUndefined(chroot.lastChangeDate)),
  };
}

function readOrUndefined(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The digest a last_change_date's text announces. */
function stampDigestOf(text: string | undefined): string | undefined {
  return text?.split(/\s/)[0] || undefined;
}

/** True when config/ holds exactly `assembly` and last_change_date announces it. */
export function isPublished(published: Published, assembly: Assembly): boolean {
  return published.manifest === assembly.manifest && published.stampDigest === assembly.digest;
}

/**
 * The system's directory and logs/ with the ownership sshd's ChrootDirectory
 * demands: <name>/ root:sftp_users 0755 (nothing looser), logs/ owned by the
 * system's user so it can upload there and nowhere else. Something else in
 * their place (a file, a symbolic link an administrator made) is not
 * replaced: the system fails, naming it. A system that had left the fleet
 * loses its `removed` marker.
 */
export function ensureSystemDirs(chrootDir: string, name: string, uid: number, sftpGroupId: number): void {
  const chroot = systemChroot(chrootDir, name);
  ensureDir(chroot.dir, 0, sftpGroupId);
  ensureDir(chroot.logs, uid, sftpGroupId);
  // In the fleet again after it left (retire.ts): no longer removed. (Looked for first: rmSync of a missing file throws and catches an error.)
  if (lstatSync(chroot.removed, { throwIfNoEntry: false })) rmSync(chroot.removed, { force: true });
}

/** A 0755 directory with that owner; left untouched when it already is one. */
function ensureDir(dir: string, uid: number, gid: number): void {
  const stats = lstatSync(dir, { throwIfNoEntry: false });
  if (stats && !stats.isDirectory()) {
    const what = stats.isSymbolicLink() ? `a symbolic link (to ${readlinkSync(dir)})` : 'not a directory';
    throw new Error(`${dir} is ${what}: bento does not replace it; make it a directory, or move it away`);
  }
  if (!stats) mkdirSync(dir, { mode: 0o755 });
  if (!stats || stats.uid !== uid || stats.gid !== gid) chownSync(dir, uid, gid);
  if (!stats || (stats.mode & 0o7777) !== 0o755) chmodSync(dir, 0o755);
}

/**
 * The files of config/ that do not hold what the published manifest says
 * (changed, missing or unreadable), for a chroot whose manifest equals
 * `assembly`'s: such a chroot is published again. Empty when it is whole.
 * Reads every published file: a deploy that finds nothing to build checks
 * what the machines will download.
 */
export function publishedContentProblems(chrootDir: string, assembly: Assembly): string[] {
  return checkPublishedContent(chrootDir, assembly).problems;
}

/**
 * publishedContentProblems, reading only the files whose lstat is not the
 * one `recorded` (chroot/published-stats.ts) holds for their digest; and,
 * when the chroot is whole, the record of its files now (`stats`): each
 * lstat taken before its content was read or matched.
 */
export function checkPublishedContent(chrootDir: string, assembly: Assembly, recorded?: SystemStats): { problems: string[]; stats?: SystemStats } {
  return checkContentAt(statTimeNow(), chrootDir, assembly, recorded);
}

/**
 * readPublished and, when config/ holds `assembly`'s manifest,
 * checkPublishedContent: the manifest and last_change_date are read only
 * when their lstat is not the one `recorded` holds for `assembly`'s digest
 * (chroot/published-stats.ts). A system published as it was recorded costs
 * an lstat per file, nothing read. `problems` and `stats` are
 * checkPublishedContent's (undefined when the manifests differ, nothing
 * checked), `stats` with the manifest's and last_change_date's lstats when
 * they hold `assembly`'s digest.
 */
export function checkPublication(chrootDir: string, assembly: Assembly, recorded?: SystemStats, shared?: SharedFileChecks): { published: Published; problems?: string[]; stats?: SystemStats } {
  const chroot = systemChroot(chrootDir, assembly.name);
  const statTimeNs = statTimeNow();
  const lstat = (file: string) => {
    try {
      return lstatSync(file, { bigint: true, throwIfNoEntry: false });
    } catch {
      return undefined;
    }
  };
  const manifestFile = path.join(chroot.config, MANIFEST_NAME);
  const manifestStats = lstat(manifestFile);
  let manifestRecord: RecordedFile | undefined;
  let manifest: string | undefined;
  if (recorded && unchangedSinceRecorded(recorded.manifest, recorded.statTimeNs, assembly.digest, manifestStats)) {
    manifest = assembly.manifest;
    manifestRecord = recorded.manifest;
  } else {
    manifest = readOrUndefined(manifestFile);
    if (manifest === assembly.manifest && manifestStats?.isFile()) manifestRecord = recordFile(assembly.digest, manifestStats);
  }
  const stampStats = lstat(chroot.lastChangeDate);
  let stampRecord: RecordedFile | undefined;
  let stampDigest: string | undefined;
  if (manifest === assembly.manifest && recorded && unchangedSinceRecorded(recorded.stamp, recorded.statTimeNs, assembly.digest, stampStats)) {
    stampDigest = assembly.digest;
    stampRecord = recorded.stamp;
  } else {
    stampDigest = stampDigestOf(readOrUndefined(chroot.lastChangeDate));
    if (stampDigest === assembly.digest && stampStats?.isFile()) stampRecord = recordFile(assembly.digest, stampStats);
  }
  const published: Published = { manifest, stampDigest };
  if (manifest !== assembly.manifest) return { published };
  const content = checkContentAt(statTimeNs, chrootDir, assembly, recorded, shared);
  if (!content.stats) return { published, problems: content.problems };
  // Dated by the record only when everything was taken from it (checkContentAt): else now.
  const allRecorded = content.stats.statTimeNs === recorded?.statTimeNs && manifestRecord === recorded.manifest && stampRecord === recorded.stamp;
  const stats: SystemStats = { statTimeNs: allRecorded ? recorded.statTimeNs : String(statTimeNs), files: content.stats.files };
  if (manifestRecord) stats.manifest = manifestRecord;
  if (stampRecord) stats.stamp = stampRecord;
  return { published, problems: content.problems, stats };
}

/**
 * The published files one pass over many systems (a plan, or the record
 * after a publication) found to hold their digest, by device and inode,
 * each as a record dated by that system's check: a file linked into many
 * version directories (sharingByContent) is read once, then trusted for
 * the others as a record is (unchangedSinceRecorded: the same file,
 * unchanged since, and not racy then).
 */
export type SharedFileChecks = Map<string, { record: RecordedFile; statTimeNs: string }>;

function checkContentAt(statTimeNs: bigint, chrootDir: string, assembly: Assembly, recorded?: SystemStats, shared?: SharedFileChecks): { problems: string[]; stats?: SystemStats } {
  const config = systemChroot(chrootDir, assembly.name).config;
  const problems: string[] = [];
  const files: Record<string, RecordedFile> = {};
  for (const file of assembly.files) {
    const target = path.join(config, file.relative);
    try {
      const stats = lstatSync(target, { bigint: true, throwIfNoEntry: false });
      if (recorded && unchangedSinceRecorded(recorded.files[file.relative], recorded.statTimeNs, file.sha256, stats)) {
        files[file.relative] = recorded.files[file.relative] as RecordedFile;
        continue;
      }
      const inode = shared && stats?.isFile() ? `${stats.dev}:${stats.ino}` : undefined;
      const checked = inode === undefined ? undefined : shared?.get(inode);
      if (checked && unchangedSinceRecorded(checked.record, checked.statTimeNs, file.sha256, stats)) {
        files[file.relative] = checked.record;
        continue;
      }
      if (sha256File(target) !== file.sha256) problems.push(`${file.relative} differs from the manifest`);
      else if (stats?.isFile()) {
        const record = recordFile(file.sha256, stats);
        files[file.relative] = record;
        if (inode !== undefined) shared?.set(inode, { record, statTimeNs: String(statTimeNs) });
      }
    } catch (error) {
      problems.push(`${file.relative} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
  }
  if (problems.length > 0) return { problems };
  // Kept from the record (and so dated by it) only when every file was: a file read now is dated now.
  const allRecorded = recorded !== undefined && assembly.files.every((file) => files[file.relative] === recorded.files[file.relative]);
  return { problems, stats: { statTimeNs: allRecorded ? recorded.statTimeNs : String(statTimeNs), files } };
}

export interface PublishOptions {
  /** Group of the published files: sftp_users, so that the machine's user reads them and local users of the server do not. */
  sftpGroupId: number;
  now: Date;
}

/**
 * Writes `assembly` into a new version directory of the system's chroot,
 * without publishing it (config/ and last_change_date are left alone);
 * returns its name. The directory is root:sftp_users 0750: the machine
 * (whose primary group is sftp_users) reads it, local users of the server
 * cannot, and the files in it may keep their modes. A version directory of
 * the same name that is current is never written over (a machine may be
 * downloading it): a configuration published again to repair it gets a new
 * name.
 */
export function stageVersion(chrootDir: string, assembly: Assembly, options: PublishOptions, sharing?: VersionSharing): string {
  return runStepsSync(stageVersionSteps(chrootDir, assembly, options, sharing));
}

/**
 * stageVersion for many systems at once: each directory is written, then
 * they are all flushed together, then renamed into place (util/durable.ts,
 * runStepsTogether). In the order given: each version's name, or why that
 * system's failed.
 */
export async function stageVersions(chrootDir: string, systems: readonly { assembly: Assembly; options: PublishOptions }[]): Promise<StepsOutcome<string>[]> {
  const sharing = sharingByContent();
  return await runStepsTogether(systems.map(({ assembly, options }) => stageVersionSteps(chrootDir, assembly, options, sharing)));
}

function* stageVersionSteps(chrootDir: string, assembly: Assembly, options: PublishOptions, sharing?: VersionSharing): DurableSteps<string> {
  const { systemDir, versionName } = versionNameFor(chrootDir, assembly, options);
  const temporary = `${path.join(systemDir, versionName)}.tmp-${process.pid}`;
  writeVersionAt(temporary, assembly, options, sharing);
  // Whole on the disk before it has its name (util/durable.ts): a power cut
  // never leaves a version directory with empty files to be published.
  yield treeToFlush(temporary);
  const named = yield* renameVersionSteps({ systemDir, versionName, temporary });
  // Staged one after the other (a rollout's), the next links to the files under their new name.
  sharing?.moved(temporary, path.join(systemDir, named));
  return named;
}

/** A version directory written under a temporary name (a leftover to removeLeftovers until renamed), and the name it is to get. */
export interface WrittenVersion {
  /** The system's directory in the chroot. */
  systemDir: string;
  versionName: string;
  temporary: string;
}

/** The name `assembly`'s version directory gets: a current one of that name is never written over. */
function versionNameFor(chrootDir: string, assembly: Assembly, options: PublishOptions): { systemDir: string; versionName: string } {
  const chroot = systemChroot(chrootDir, assembly.name);
  let versionName = versionDirName(assembly.digest);
  if (currentVersion(chroot.config) === versionName) versionName = `${versionName}-${options.now.getTime().toString(36)}`;
  return { systemDir: chroot.dir, versionName };
}

/** `assembly` written in a fresh directory at `temporary`; nothing is left of it when it fails. */
function writeVersionAt(temporary: string, assembly: Assembly, options: PublishOptions, sharing?: VersionSharing): void {
  rmSync(temporary, { recursive: true, force: true });
  try {
    writeVersionDir(temporary, assembly, options.sftpGroupId, sharing);
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true });
    // A file of the fleet's changed since it was checked (hosts/, generated/): the user's to stop.
    if (error instanceof ChangedWhileCopiedError) throw new UserError(error.message);
    throw error;
  }
}

/** The end of stageVersion: the written (and flushed) directory gets its name, then the system's directory is flushed. */
function* renameVersionSteps(written: WrittenVersion): DurableSteps<string> {
  const versionDir = path.join(written.systemDir, written.versionName);
  // An older directory of that name (not the current one): replaced.
  rmSync(versionDir, { recursive: true, force: true });
  renameSync(written.temporary, versionDir);
  yield [written.systemDir];
  return written.versionName;
}

/** This deploy's staging area in CHROOT_DIR (protocol/layout.ts, stagingAreaName): where writeVersionsAhead writes. */
function stagingArea(chrootDir: string): string {
  return path.join(chrootDir, stagingAreaName(process.pid));
}

/**
 * The first half of stageVersions, ahead of the build whose result decides
 * which of them are published (the files do not depend on it): each
 * system's version directory written into this deploy's staging area of
 * CHROOT_DIR (root's, 0700), not into the system's directory, which stays
 * untouched for a system that is not published after all; one system per
 * turn of the event loop so that the build's processes are tended
 * meanwhile, then all flushed together. By system: what was written, or
 * why it could not be. Those to publish are then renamed into their
 * systems' directories (stageWrittenVersions), the rest go with the
 * staging area (discardVersionsAhead); one left by a killed deploy is a
 * leftover, removed by the next (removeLeftovers).
 */
export async function writeVersionsAhead(chrootDir: string, systems: readonly { assembly: Assembly; options: PublishOptions }[]): Promise<Map<string, StepsOutcome<WrittenVersion>>> {
  const outcomes = new Map<string, StepsOutcome<WrittenVersion>>();
  if (systems.length === 0) return outcomes;
  const staging = stagingArea(chrootDir);
  try {
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { mode: 0o700 });
    chmodSync(staging, 0o700);
  } catch {
    // Never thrown (the build is not waiting for it): nothing written ahead, each system is staged whole after the build.
    return outcomes;
  }
  const written: { name: string; version: WrittenVersion }[] = [];
  const sharing = sharingByContent();
  for (const { assembly, options } of systems) {
    await new Promise((resolve) => setImmediate(resolve));
    try {
      const { systemDir, versionName } = versionNameFor(chrootDir, assembly, options);
      // System names are distinct and never dot names: one entry each, named after the system.
      const temporary = path.join(staging, assembly.name);
      writeVersionAt(temporary, assembly, options, sharing);
      written.push({ name: assembly.name, version: { systemDir, versionName, temporary } });
    } catch (error) {
      outcomes.set(assembly.name, { ok: false, error });
    }
  }
  const flushed = await runStepsTogether(written.map(({ version }) => flushWrittenSteps(version)));
  written.forEach(({ name }, index) => outcomes.set(name, flushed[index] as StepsOutcome<WrittenVersion>));
  return outcomes;
}

function* flushWrittenSteps(written: WrittenVersion): DurableSteps<WrittenVersion> {
  yield treeToFlush(written.temporary);
  return written;
}

/**
 * stageVersions for systems of which some were written ahead
 * (writeVersionsAhead, `written` by system): those are only renamed into
 * place, the others staged whole; all of them step by step together. In
 * the order given: each version's name, or why that system's failed.
 */
export async function stageWrittenVersions(chrootDir: string, systems: readonly { assembly: Assembly; options: PublishOptions }[], written: ReadonlyMap<string, WrittenVersion>): Promise<StepsOutcome<string>[]> {
  return await runStepsTogether(
    systems.map(({ assembly, options }) => {
      const version = written.get(assembly.name);
      return version ? placeWrittenSteps(chrootDir, version, assembly, options) : stageVersionSteps(chrootDir, assembly, options);
    }),
  );
}

/**
 * A version written ahead renamed into its system's directory; when that
 * directory is another mount (an administrator's, a bind mount: rename
 * fails with EXDEV), staged there whole instead, as without writing ahead.
 */
function* placeWrittenSteps(chrootDir: string, written: WrittenVersion, assembly: Assembly, options: PublishOptions): DurableSteps<string> {
  const versionDir = path.join(written.systemDir, written.versionName);
  // An older directory of that name (not the current one): replaced.
  rmSync(versionDir, { recursive: true, force: true });
  try {
    renameSync(written.temporary, versionDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    return yield* stageVersionSteps(chrootDir, assembly, options);
  }
  yield [written.systemDir];
  return written.versionName;
}

/** The staging area of writeVersionsAhead removed, with the versions left in it (not to be published: a build failed, or changed nothing). */
export function discardVersionsAhead(chrootDir: string): void {
  rmSync(stagingArea(chrootDir), { recursive: true, force: true });
}

/**
 * Publishes a staged version directory: config/ is switched to it by a
 * rename, then last_change_date announces it (docs/protocol.md §4). Keeps
 * the version before it (a machine may still be downloading it) and those
 * in `keep` (staged for a later wave); removes the others.
 */
export function activateVersion(chrootDir: string, assembly: Pick<Assembly, 'name' | 'digest'>, versionName: string, now: Date, keep: ReadonlySet<string> = new Set()): void {
  runStepsSync(activateVersionSteps(chrootDir, assembly, versionName, now, keep));
}

function* activateVersionSteps(chrootDir: string, assembly: Pick<Assembly, 'name' | 'digest'>, versionName: string, now: Date, keep: ReadonlySet<string> = new Set()): DurableSteps<void> {
  const chroot = systemChroot(chrootDir, assembly.name);
  const previous = currentVersion(chroot.config);
  const swap = yield* swapConfigLinkSteps(chroot.config, versionName, now);
  try {
    yield* announceSteps(chrootDir, assembly, now);
  } catch (error) {
    // config/ goes back to what it was: left on the new files, it would hold a
    // configuration states.txt does not name (the caller puts its line back),
    // and the next deploy would only announce it, never correcting that line.
    try {
      restoreConfigLink(chroot.config, swap);
    } catch (restore) {
      throw new ConfigSwitchedError(`${(error as Error).message}; and config/ could not be put back (${(restore as Error).message})`);
    }
    throw error;
  }
  try {
    removeOldVersions(chroot.dir, new Set([versionName, ...(previous ? [previous] : []), ...keep]));
  } catch {
    // Published and announced: a version directory that stays is removed by the next publication.
  }
}

/**
 * activateVersion failed after config/ was switched to the new version and
 * could not be put back: the new files are published but not announced (a
 * deploy killed between the two steps leaves the same), and the next deploy
 * announces them. Their states.txt line must stay.
 */
export class ConfigSwitchedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigSwitchedError';
  }
}

/** A staged version directory to publish, and the store path states.txt names for it (undefined: no line, a system without a flake). */
export interface StagedPublication {
  system: Pick<Assembly, 'name' | 'digest'>;
  versionName: string;
  storeBasename: string | undefined;
}

export interface BatchOutcome {
  /** In the order given. */
  published: string[];
  /** Which step failed and what stays published, in the order given. */
  failed: { name: string; reason: string }[];
}

/**
 * Publishes staged version directories and records their store paths in
 * states.txt. states.txt names only what is published: every line of the
 * batch is written first, in one replacement of the file, then each system
 * is published; the lines of those whose publication failed are put back,
 * in one more replacement. Each system's failure is its own; its reason
 * says which step failed and what stays published.
 */
export function publishStagedBatch(chrootDir: string, batch: readonly StagedPublication[], now: Date): BatchOutcome {
  const recorded = recordBatch(chrootDir, batch);
  if (!recorded.previous) return recorded.outcome;
  const activations = batch.map((item): StepsOutcome<void> => {
    try {
      return { ok: true, value: activateVersion(chrootDir, item.system, item.versionName, now) };
    } catch (error) {
      return { ok: false, error };
    }
  });
  return settleBatch(chrootDir, batch, recorded.previous, activations);
}

/**
 * publishStagedBatch with the systems activated together: each step of
 * every activation (config/ switched, last_change_date written, renamed),
 * their flushes at once (util/durable.ts, runStepsTogether). Each system's
 * own steps keep their order; its failure is its own.
 */
export async function publishStagedBatchTogether(chrootDir: string, batch: readonly StagedPublication[], now: Date): Promise<BatchOutcome> {
  const recorded = recordBatch(chrootDir, batch);
  if (!recorded.previous) return recorded.outcome;
  const activations = await runStepsTogether(batch.map((item) => activateVersionSteps(chrootDir, item.system, item.versionName, now)));
  return settleBatch(chrootDir, batch, recorded.previous, activations);
}

/** states.txt with every line of `batch`, before any is published: the lines it replaced, or the batch's outcome when nothing is to be (or can be) published. */
function recordBatch(chrootDir: string, batch: readonly StagedPublication[]): { previous: Map<string, string | undefined>; outcome?: undefined } | { previous?: undefined; outcome: BatchOutcome } {
  const outcome: BatchOutcome = { published: [], failed: [] };
  if (batch.length === 0) return { outcome };
  try {
    return { previous: recordStates(chrootDir, new Map(batch.map((item) => [item.system.name, item.storeBasename]))) };
  } catch (error) {
    for (const item of batch) outcome.failed.push({ name: item.system.name, reason: `cannot record it in states.txt, nothing was published: ${(error as Error).message}` });
    return { outcome };
  }
}

/** The outcome of `batch` from each system's activation (in its order); the states.txt lines of those that failed before config/ switched are put back, in one write. */
function settleBatch(chrootDir: string, batch: readonly StagedPublication[], previous: Map<string, string | undefined>, activations: readonly StepsOutcome<void>[]): BatchOutcome {
  const outcome: BatchOutcome = { published: [], failed: [] };
  const putBack = new Map<string, string | undefined>();
  const reasons = new Map<string, string>();
  batch.forEach((item, index) => {
    const { name } = item.system;
    const activation = activations[index] as StepsOutcome<void>;
    if (activation.ok) {
      outcome.published.push(name);
      return;
    }
    const { error } = activation;
    if (error instanceof ConfigSwitchedError) {
      reasons.set(name, `publication stopped half-way: config/ holds the new files, not announced yet (the next deploy announces them): ${error.message}`);
      return;
    }
    reasons.set(name, `publication failed, its previous files stay published: ${(error as Error).message}`);
    putBack.set(name, previous.get(name));
  });
  if (putBack.size > 0) {
    try {
      recordStates(chrootDir, putBack);
    } catch (restore) {
      for (const name of putBack.keys()) reasons.set(name, `${reasons.get(name) ?? ''}; and its states.txt line could not be put back (${(restore as Error).message})`);
    }
  }
  for (const item of batch) {
    const reason = reasons.get(item.system.name);
    if (reason !== undefined) outcome.failed.push({ name: item.system.name, reason });
  }
  return outcome;
}

/** publishStagedBatch for one system; throws its failure's reason. */
export function publishStaged(chrootDir: string, system: Pick<Assembly, 'name' | 'digest'>, versionName: string, storeBasename: string | undefined, now: Date): void {
  const failure = publishStagedBatch(chrootDir, [{ system, versionName, storeBasename }], now).failed[0];
  if (failure) throw new Error(failure.reason);
}

/** True when config/ is `versionName` and last_change_date announces `digest`: activating it again would change nothing. */
export function isActive(chrootDir: string, name: string, versionName: string, digest: string): boolean {
  const chroot = systemChroot(chrootDir, name);
  return currentVersion(chroot.config) === versionName && readPublished(chrootDir, name).stampDigest === digest;
}

/** The digest of the manifest a version directory holds (what last_change_date must announce for it). */
export function versionDigest(chrootDir: string, name: string, versionName: string): string {
  return sha256(readFileSync(path.join(systemChroot(chrootDir, name).dir, versionName, MANIFEST_NAME)));
}

/** The version directory config/ points to now, if any. */
export function activeVersion(chrootDir: string, name: string): string | undefined {
  return currentVersion(systemChroot(chrootDir, name).config);
}

/**
 * Rewrites last_change_date for what config/ already holds: completes a
 * deploy that was stopped between swapping config and announcing it.
 */
export function announceSystem(chrootDir: string, assembly: Pick<Assembly, 'name' | 'digest'>, now: Date): void {
  runStepsSync(announceSteps(chrootDir, assembly, now));
}

function announceSteps(chrootDir: string, assembly: Pick<Assembly, 'name' | 'digest'>, now: Date): DurableSteps<void> {
  return writeFileAtomicallySteps(systemChroot(chrootDir, assembly.name).lastChangeDate, renderChangeStampOfDigest(assembly.digest, now));
}

function writeVersionDir(dir: string, assembly: Assembly, sftpGroupId: number, sharing?: VersionSharing): void {
  mkdirSync(dir, { mode: 0o750 });
  chownSync(dir, 0, sftpGroupId);
  chmodSync(dir, 0o750);
  // Every mode below set explicitly: mkdir and open apply the umask, and the machine must read it all.
  copyFilesWithModes(dir, assembly.files, sharing);
  const manifest = path.join(dir, MANIFEST_NAME);
  writeFileSync(manifest, assembly.manifest, { mode: 0o644 });
  chmodSync(manifest, 0o644);
}

/** Files written into version directories, for others of the same call to link to (sharingByContent). */
export interface VersionSharing extends CopySharing<AssembledFile> {
  /** The directory `from`, written with this sharing, is now named `to`: its files are linked to there. */
  moved(from: string, to: string): void;
}

/**
 * The version directories one deploy writes share their files by content:
 * the client library, the NixOS modules and a flake's files are the same
 * in many systems' directories, and creating each file once, the others
 * hard links to it, is most of the writing saved (bench/README.md). A
 * published file is never written in place (a new version is a new
 * directory), and each is root's and read-only to the machine whose chroot
 * holds it, so what one name holds is what every other does. Only within
 * one call (one staging area, or the systems' directories of one
 * CHROOT_DIR): versions of different deploys never share a file. Removing
 * one system's old version (or retiring a system) changes the ctime of the
 * files it shared with others' current ones, and the record of those
 * (published-stats.ts) then has every deploy read and hash them again, each
 * once (SharedFileChecks: a removed version's few files, whatever the
 * number of systems sharing them), until one that publishes records them
 * anew from its plan (a deploy with nothing to do writes no record): that
 * costs less than writing them each time, and less than checking every
 * other system's files again when saving the record (tried: an lstat per
 * published file of the fleet, 0.4–0.5 s at 10,000 systems, on every
 * deploy that publishes, a `--name` deploy of one system included). The
 * link count is the one thing a machine sees of this
 * (an SFTP listing shows it): how many versions hold the same bytes, not
 * what another machine's files are.
 */
export function sharingByContent(): VersionSharing {
  // Each file by the directory it was written into, one place per directory:
  // a rename moves that place, not every file remembered (a fleet's worth).
  const places = new Map<string, { dir: string }>();
  const written = new Map<string, { place: { dir: string }; relative: string }>();
  const key = (file: AssembledFile) => `${file.executable ? 'x' : '-'}${file.sha256}`;
  return {
    linkSource: (file) => {
      const first = written.get(key(file));
      return first && path.join(first.place.dir, first.relative);
    },
    written: (file, dir) => {
      let place = places.get(dir);
      if (!place) places.set(dir, (place = { dir }));
      written.set(key(file), { place, relative: file.relative });
    },
    moved: (from, to) => {
      const place = places.get(from);
      if (!place) return;
      place.dir = to;
      places.delete(from);
      places.set(to, place);
    },
  };
}

/** The version directory `config` points to, if it is a link. */
function currentVersion(configLink: string): string | undefined {
  try {
    return readlinkSync(configLink);
  } catch {
    return undefined;
  }
}

/** What config/ was before swapConfigLink: a link to `previous`, a plain directory moved to `legacy`, or nothing. */
interface ConfigSwap {
  previous?: string;
  legacy?: string;
}

function* swapConfigLinkSteps(configLink: string, versionName: string, now: Date): DurableSteps<ConfigSwap> {
  const swap: ConfigSwap = { previous: currentVersion(configLink) };
  const existing = lstatSync(configLink, { throwIfNoEntry: false });
  if (existing?.isDirectory()) {
    // A chroot published by the original bento: its config/ is a plain
    // directory, which a symlink cannot replace in one rename. Moved aside,
    // it is removed with the other old versions.
    swap.legacy = path.join(path.dirname(configLink), `.config-legacy-${now.getTime()}`);
  }
  yield* replaceLinkSteps(configLink, versionName, swap.legacy);
  return swap;
}

/** Puts config/ back as it was before swapConfigLink. */
function restoreConfigLink(configLink: string, swap: ConfigSwap): void {
  if (swap.legacy) {
    rmSync(configLink, { force: true });
    renameSync(swap.legacy, configLink);
    flushSync(path.dirname(configLink));
  } else if (swap.previous) {
    replaceLink(configLink, swap.previous);
  } else {
    rmSync(configLink, { force: true });
    flushSync(path.dirname(configLink));
  }
}

/** Makes `configLink` a link to `target` by a rename. */
function replaceLink(configLink: string, target: string): void {
  runStepsSync(replaceLinkSteps(configLink, target));
}

/** replaceLink as steps; a directory in its place is first moved to `aside`. */
function* replaceLinkSteps(configLink: string, target: string, aside?: string): DurableSteps<void> {
  const link = `${configLink}.tmp-${process.pid}`;
  rmSync(link, { force: true });
  symlinkSync(target, link);
  let movedAside = false;
  try {
    if (aside) {
      renameSync(configLink, aside);
      movedAside = true;
    }
    renameSync(link, configLink);
    // The switch is durable before last_change_date announces it.
    yield [path.dirname(configLink)];
  } catch (error) {
    rmSync(link, { force: true });
    if (movedAside && aside) renameSync(aside, configLink);
    throw error;
  }
}

/** Removes version directories not in `keep`, and leftovers of interrupted runs. */
function removeOldVersions(systemDir: string, keep: ReadonlySet<string>): void {
  for (const entry of readdirSync(systemDir)) {
    if (!entry.startsWith('.config-') && !isLeftover(entry)) continue;
    if (keep.has(entry)) continue;
    rmSync(path.join(systemDir, entry), { recursive: true, force: true });
  }
}

/**
 * Temporary names in a system's directory: the config link's, version
 * directories being written, last_change_date's (of this bento and of
 * earlier ones), and reboot-slot's (bento reboots, which holds the same
 * lock as deploy).
 */
function isLeftover(entry: string): boolean {
  return /^config\.tmp-\d+$|^\.config-.*\.tmp-\d+$|^\.?last_change_date\.tmp-\d+$|^\.reboot-slot\.tmp-\d+$/.test(entry);
}

/**
 * Removes what a deploy that was killed left behind: temporary files in
 * CHROOT_DIR (states.txt's, of this bento and of earlier ones) and in the
 * directories of `names`. Run under the deploy lock, so no other deploy is
 * writing them.
 */
export function removeLeftovers(chrootDir: string, names: readonly string[], recorded?: ReadonlyMap<string, Pick<SystemStats, 'dir'>>): void {
  // Recursive: a killed deploy's staging area (writeVersionsAhead) is a directory.
  for (const entry of listChrootDir(chrootDir).temporaries) rmSync(path.join(chrootDir, entry), { recursive: true, force: true });
  for (const name of names) {
    const dir = systemChroot(chrootDir, name).dir;
    const stats = lstatSync(dir, { bigint: true, throwIfNoEntry: false });
    // Found without leftovers by a deploy (recordSystemDir), and no entry made or removed since: not listed.
    if (dirUnchangedSinceRecorded(recorded?.get(name)?.dir, stats)) continue;
    const entries = stats?.isDirectory() ? readdirSync(dir) : [];
    for (const entry of entries) if (isLeftover(entry)) rmSync(path.join(dir, entry), { recursive: true, force: true });
  }
}

/**
 * The record of a system's directory (chroot/published-stats.ts,
 * SystemStats.dir), taken under the deploy lock after removeLeftovers: it
 * holds no leftover, and nothing else makes one meanwhile; with `list`
 * (after a publication), listed to be sure, and undefined when it holds
 * one. `recorded` is kept when the directory did not change since.
 */
export function recordSystemDir(chrootDir: string, name: string, recorded?: RecordedDir, options: { list?: boolean } = {}): RecordedDir | undefined {
  const dir = systemChroot(chrootDir, name).dir;
  const statTimeNs = statTimeNow();
  const stats = lstatSync(dir, { bigint: true, throwIfNoEntry: false });
  if (!stats?.isDirectory()) return undefined;
  if (dirUnchangedSinceRecorded(recorded, stats)) return recorded;
  if (options.list && readdirSync(dir).some(isLeftover)) return undefined;
  return recordDir(statTimeNs, stats);
}

