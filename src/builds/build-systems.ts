/**
 * Builds a selection of systems: the systems of every flake together
 * (buildFlakesSystems: one evaluation, one build), non-flake systems one
 * Nix call each, concurrently up to `jobs`. Each is built from a staging
 * copy of what its machine will build (stageForBuild), made from the
 * fleet's snapshot.
 */
import { chmodSync, linkSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { ChangedWhileCopiedError, readRegularFile, readVerifiedFile } from '../util/make-dirs.js';
import { mapLimit } from '../util/concurrency.js';
import type { FleetSystem } from '../fleet/fleet.js';
import { copyHostTree } from '../fleet/host-tree.js';
import { addEverythingToGit, addEverythingToGitEach } from '../nix/flake-tree.js';
import { makeTempDir, removeTempDirLater } from '../util/temp-dir.js';
import { buildFlakesSystems, buildNonFlakeSystem, type BuildOutcome, type NixBuildOptions } from '../nix/build.js';
import { nixErrorHeadline } from '../nix/nix.js';
import { shareWithEvaluator } from '../nix/unprivileged.js';
import { clientFilesOf } from '../render/render-fleet.js';
import type { Progress } from '../progress.js';

export interface SystemBuildResult {
  name: string;
  kind: FleetSystem['kind'];
  ok: boolean;
  /** Full store path of the toplevel (not built when only evaluated). */
  storePath?: string;
  error?: string;
  /** Nix's output, kept for failures. */
  log: string;
  seconds: number;
}

export interface BuildSystemsOptions {
  generatedDir: string;
  nix: NixBuildOptions;
  jobs: number;
  /** Called as each system finishes (progress lines). */
  onResult?: (result: SystemBuildResult) => void;
  /** What generate wrote into generated/ (ClientFileDigests). */
  clientFiles?: ClientFileDigests;
}

/**
 * The SHA-256 and mode of a client file of generated/ as generate wrote it,
 * by its path there (chroot/assemble.ts, RenderedFiles.lookup); undefined
 * when unknown. The fleet's writers control generated/: what a staging
 * copy gets from it must be what bento wrote, not what a link put there
 * since leads to (Nix would put it in the store, which everyone reads).
 */
export type ClientFileDigests = (generated: string) => { sha256: string; executable: boolean } | undefined;

/**
 * Lays out in a fresh staging directory what the machine will build: the
 * system's files (from the fleet's snapshot) and its client files, which
 * win over host files of the same name, as in publication. A flake is then
 * made a git work tree with everything added, as the client does: Nix sees
 * only what git tracks, so a nested .gitignore leaves out here exactly what
 * it leaves out on the machine (docs/protocol.md §6, step 3). Staging
 * copies laid out with the same `copies` share their client files (linkOrCopy).
 */
export async function stageForBuild(system: StagedSystem, generatedDir: string, stagingRoot: string, copies: ClientFileCopies = new Map(), digests?: ClientFileDigests): Promise<string> {
  const dir = layOutForBuild(system, generatedDir, stagingRoot, copies, digests);
  if (system.kind === 'flake') await addEverythingToGit(dir);
  return dir;
}

type StagedSystem = Pick<FleetSystem, 'name' | 'kind' | 'filesDir' | 'hostDirName'>;

/**
 * Where each client file of generated/ was first copied in this run (into a
 * staging copy), by its path in generated/: the staging copies after it
 * link to that copy (linkOrCopy).
 */
export type ClientFileCopies = Map<string, string>;

/** stageForBuild's files, without git. */
function layOutForBuild(system: StagedSystem, generatedDir: string, stagingRoot: string, copies: ClientFileCopies, digests?: ClientFileDigests): string {
  const dir = mkdtempSync(path.join(stagingRoot, `${system.name}-`));
  // filesDir is a snapshot: a copy without links, so it is its own boundary;
  // its files are what the staging copy must hold, so it holds them (links).
  copyHostTree(system.filesDir, dir, { where: `hosts/${system.hostDirName}`, boundary: system.filesDir, linked: true });
  try {
    for (const { generated, published } of clientFilesOf(system.name)) linkOrCopy(path.join(generatedDir, generated), path.join(dir, published), copies, digests?.(generated));
  } catch (error) {
    if (error instanceof ChangedWhileCopiedError) throw new UserError(error.message);
    throw error;
  }
  return dir;
}

/**
 * A client file of generated/ into a staging copy: a hard link to the copy
 * an earlier staging copy of this run made of it (`copies`), else a copy,
 * which the next ones link to. Either way the same bytes and mode, the
 * generated file's, for Nix to read; the client files all systems share
 * are written once a run, not once a flake (bench/README.md). Never a link
 * to generated/ itself: a link (and its removal with the staging copy)
 * changes the file's ctime, and generate's record of generated/
 * (render/generate-record.ts) would then find those files changed and the
 * next generate, the one every deploy runs first, render the whole fleet
 * again.
 */
function linkOrCopy(source: string, target: string, copies: ClientFileCopies, expected?: ReturnType<ClientFileDigests>): void {
  const first = copies.get(source);
  try {
    if (first === undefined) {
      copyClientFile(source, target, expected);
      copies.set(source, target);
    } else linkSync(first, target);
    return;
  } catch (error) {
    // A host file of that name (the client's file wins): removed, never
    // written into, for it is a link to the snapshot's file.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      unlinkSync(target);
      linkOrCopy(source, target, copies, expected);
      return;
    }
    if (first === undefined) throw error;
  }
  // The first copy is gone (a non-flake system's staging copy is removed once
  // it is built) or its link count is full: copied again, and linked to from now on.
  copies.delete(source);
  linkOrCopy(source, target, copies, expected);
}

/**
 * A client file of generated/ copied to `target` (which must not exist),
 * read without following a link, and only while it holds what generate
 * wrote (`expected`); its mode is the generated file's, 0755 or 0644.
 */
function copyClientFile(source: string, target: string, expected: ReturnType<ClientFileDigests>): void {
  let bytes: Buffer;
  let executable: boolean;
  if (expected) {
    bytes = readVerifiedFile(source, expected.sha256);
    executable = expected.executable;
  } else {
    const read = readRegularFile(source);
    bytes = read.bytes;
    executable = (read.mode & 0o111) !== 0;
  }
  writeFileSync(target, bytes, { flag: 'wx' });
  chmodSync(target, executable ? 0o755 : 0o644);
}

export interface ShowingProgressOptions extends Omit<BuildSystemsOptions, 'onResult'> {
  print: (line: string) => void;
  progress?: Pick<Progress, 'start' | 'advance' | 'stop'>;
}

/**
 * buildSystems for a person: a line per system as it finishes, the status
 * line of `progress`, and Nix's output of each failed build (all of it was
 * streamed already with `verbose`). Deploy and build share it.
 */
export async function buildSystemsShowingProgress(systems: readonly FleetSystem[], options: ShowingProgressOptions): Promise<SystemBuildResult[]> {
  const width = Math.max(0, ...systems.map((system) => system.name.length));
  options.progress?.start(systems.length, options.nix.evaluateOnly ? 'evaluated' : 'built');
  const results = await buildSystems(systems, {
    ...options,
    onResult: (result) => {
      options.print(formatBuildLine(result, width));
      options.progress?.advance();
    },
  }).finally(() => options.progress?.stop());
  for (const failure of results) {
    if (!failure.ok && !options.nix.verbose && failure.log.trim()) options.print(`--- ${failure.name}: Nix output ---\n${failure.log.trimEnd()}`);
  }
  return results;
}

/**
 * `  ok      nas        1.2s  abcd1234…-nixos-system-nas-24.05`, names padded
 * to `nameWidth`; a failure shows Nix's `error:` line (its whole output follows the build lines).
 */
export function formatBuildLine(build: SystemBuildResult, nameWidth = 0): string {
  const status = build.ok ? 'ok    ' : 'FAILED';
  const what = build.ok ? shortStorePath(build.storePath ?? '') : nixErrorHeadline(build.error ?? '');
  return `  ${status}  ${build.name.padEnd(nameWidth)}  ${`${build.seconds.toFixed(1)}s`.padStart(6)}  ${what}`;
}

function shortStorePath(storePath: string): string {
  const base = path.basename(storePath);
  return base.length > 40 ? `${base.slice(0, 8)}…${base.slice(32)}` : base;
}

export async function buildSystems(systems: readonly FleetSystem[], options: BuildSystemsOptions): Promise<SystemBuildResult[]> {
  const stagingRoot = makeTempDir('build');
  try {
    // Flakes are built from here by an unprivileged user (nix/unprivileged.ts).
    await shareWithEvaluator(stagingRoot);
    const flakes = new Map<string, FleetSystem[]>();
    const nonFlakes: FleetSystem[] = [];
    for (const system of systems) {
      if (system.kind !== 'flake') nonFlakes.push(system);
      else if (flakes.has(system.hostDir)) flakes.get(system.hostDir)?.push(system);
      else flakes.set(system.hostDir, [system]);
    }
    const results: SystemBuildResult[] = [];
    const report = (group: readonly FleetSystem[], outcomes: Map<string, BuildOutcome>, started: bigint) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      for (const system of group) {
        const outcome = outcomes.get(system.name);
        const result: SystemBuildResult = outcome?.ok
          ? { name: system.name, kind: system.kind, ok: true, storePath: outcome.storePath, log: outcome.log, seconds }
          : { name: system.name, kind: system.kind, ok: false, error: outcome?.error ?? 'no result from Nix', log: outcome?.log ?? '', seconds };
        results.push(result);
        options.onResult?.(result);
      }
    };
    const copies: ClientFileCopies = new Map();
    const buildFlakes = async () => {
      const started = process.hrtime.bigint();
      const groups = [...flakes.values()];
      // One staging copy a flake, whichever of its systems it is laid out for: they share the flake's files.
      const dirs = groups.map((group) => layOutForBuild(group[0] as FleetSystem, options.generatedDir, stagingRoot, copies, options.clientFiles));
      await addEverythingToGitEach(dirs, options.jobs);
      await buildFlakesSystems(
        groups.map((group, index) => ({ dir: dirs[index] as string, names: group.map((system) => system.name) })),
        { ...options.nix, jobs: options.jobs, onFlake: (index, outcomes) => report(groups[index] as FleetSystem[], outcomes, started) },
      );
    };
    const buildNonFlake = async (system: FleetSystem) => {
      const started = process.hrtime.bigint();
      const staging = layOutForBuild(system, options.generatedDir, stagingRoot, copies, options.clientFiles);
      const outcome = await buildNonFlakeSystem(path.join(staging, 'configuration.nix'), options.nix);
      rmSync(staging, { recursive: true, force: true });
      report([system], new Map([[system.name, outcome]]), started);
    };
    const tasks = [...(flakes.size > 0 ? [buildFlakes] : []), ...nonFlakes.map((system) => () => buildNonFlake(system))];
    await mapLimit(tasks, options.jobs, (task) => task());
    const byName = new Map(results.map((result) => [result.name, result]));
    return systems.map((system) => byName.get(system.name) as SystemBuildResult);
  } finally {
    // What was built no longer needs its staging copies: removed while the caller goes on.
    removeTempDirLater(stagingRoot);
  }
}
