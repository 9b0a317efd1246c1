/**
 * What a system's config/ must hold: its files from the fleet's snapshot,
 * plus its generated client files, each with its SHA-256. The manifest of
 * that list is compared with the published one to decide whether anything
 * changed, without copying or building anything.
 */
import { createHash } from 'node:crypto';
import { lstatSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import type { FleetSystem } from '../fleet/fleet.js';
import { clientFilesOf, type RenderedFile } from '../render/render-fleet.js';
import type { GeneratedDigest } from '../render/generate-record.js';
import { HashCache, listHashedHostFiles } from '../fleet/host-tree.js';
import { sha256, sha256File } from '../util/hash.js';
import { recordFile, statTimeNow, unchangedSinceRecorded, type RecordedFile, type SystemStats } from './published-stats.js';
import { renderManifest } from '../protocol/manifest.js';
import { byText } from '../util/text.js';

export interface AssembledFile {
  /** Path inside config/, with '/' separators. */
  relative: string;
  /** Where the content comes from. */
  source: string;
  executable: boolean;
  sha256: string;
}

export interface Assembly {
  name: string;
  files: AssembledFile[];
  manifest: string;
  /** sha256 of the manifest: the identity of this configuration. */
  digest: string;
  /** Host files replaced by a generated client file of the same name. */
  shadowed: string[];
}

export { HashCache };

/**
 * The files generated/ was just brought to hold (render/generate.ts,
 * GenerateResult.files and digests), by their path in it: the digest of each is taken
 * from what was rendered, once a run, instead of reading the file back.
 * writeOutput compared each of them with the disk (or wrote it), mode
 * included, so it is what the file holds; a system's bootstrap.sh holds the
 * whole client library, and reading and hashing it again for every system
 * was a large part of a deploy with nothing to do.
 */
export class RenderedFiles {
  private readonly byPath: Map<string, RenderedFile>;
  private readonly answers = new Map<string, { sha256: string; executable: boolean } | undefined>();
  private recorded?: { generatedDir: string; stats: SystemStats };

  /**
   * `known`: the digest and mode of files of generated/ known already
   * (GenerateResult.digests: from generate's record, when it rendered
   * nothing, or taken to make it), which win over hashing `files`.
   */
  constructor(
    files: readonly RenderedFile[],
    private readonly known?: ReadonlyMap<string, GeneratedDigest>,
  ) {
    this.byPath = new Map(files.map((file) => [file.path, file]));
  }

  /**
   * Takes the digests of generated/'s files from deploy's record
   * (chroot/published-stats.ts, PublishedRecord.generated) when a file's
   * lstat is the recorded one: what the disk holds is then what was
   * recorded, and (written or compared by generate) what was rendered.
   */
  useRecord(generatedDir: string, stats: SystemStats | undefined): void {
    this.recorded = stats ? { generatedDir, stats } : undefined;
    this.answers.clear();
  }

  /**
   * The digest and whether it is executable, of the file at `generated` (a
   * path of generated/); undefined when it was neither rendered nor found
   * as recorded.
   */
  lookup(generated: string): { sha256: string; executable: boolean } | undefined {
    if (this.answers.has(generated)) return this.answers.get(generated);
    const answer = this.fromGenerate(generated) ?? this.fromRecord(generated) ?? this.fromRendered(generated);
    this.answers.set(generated, answer);
    return answer;
  }

  /** From generate's record (GenerateResult.digests), which it checked against the disk. */
  private fromGenerate(generated: string): { sha256: string; executable: boolean } | undefined {
    const known = this.known?.get(generated);
    return known ? { sha256: known.sha256, executable: (known.mode & 0o111) !== 0 } : undefined;
  }

  private fromRecord(generated: string): { sha256: string; executable: boolean } | undefined {
    if (!this.recorded) return undefined;
    const source = path.join(this.recorded.generatedDir, generated);
    const entry = this.recorded.stats.files[source];
    if (!entry) return undefined;
    const stats = lstatSync(source, { bigint: true, throwIfNoEntry: false });
    if (!stats || !unchangedSinceRecorded(entry, this.recorded.stats.statTimeNs, entry[0], stats)) return undefined;
    return { sha256: entry[0], executable: (stats.mode & 0o111n) !== 0n };
  }

  private fromRendered(generated: string): { sha256: string; executable: boolean } | undefined {
    const file = this.byPath.get(generated);
    if (!file) return undefined;
    const hash = createHash('sha256');
    // The parts it was written and compared from (RenderedFile.bytes), else its text as UTF-8.
    for (const part of file.bytes ?? [file.content]) hash.update(part);
    return { sha256: hash.digest('hex'), executable: (file.mode & 0o111) !== 0 };
  }
}

/**
 * The record of the files of generated/ at `sources` (absolute paths) for
 * deploy's record (PublishedRecord.generated): each lstat taken after the
 * record's time and before its content is hashed, those unchanged since
 * `previous` kept as they were. Undefined when there are none.
 */
export function recordGeneratedFiles(sources: Iterable<string>, previous?: SystemStats): SystemStats | undefined {
  const statTimeNs = statTimeNow();
  const files: Record<string, RecordedFile> = {};
  let allKept = previous !== undefined;
  for (const source of [...new Set(sources)].sort()) {
    const stats = lstatSync(source, { bigint: true, throwIfNoEntry: false });
    if (!stats?.isFile()) continue;
    const known = previous?.files[source];
    if (previous && known && unchangedSinceRecorded(known, previous.statTimeNs, known[0], stats)) {
      files[source] = known;
      continue;
    }
    allKept = false;
    files[source] = recordFile(sha256File(source), stats);
  }
  if (Object.keys(files).length === 0) return undefined;
  return { statTimeNs: allKept && previous ? previous.statTimeNs : String(statTimeNs), files };
}

/**
 * The files of `system`'s configuration: host files, then the generated
 * client files (which win), those of `rendered` taken from it.
 */
export function assembleSystem(system: Pick<FleetSystem, 'name' | 'filesDir' | 'hostDirName' | 'files'>, generatedDir: string, cache: HashCache, rendered?: RenderedFiles): Assembly {
  const byPath = new Map<string, AssembledFile>();
  // The files the fleet listed and hashed when it was loaded, else filesDir's
  // (the fleet's snapshot: a copy without links, its own boundary).
  const hostFiles = system.files ?? listHashedHostFiles(system.filesDir, { where: `hosts/${system.hostDirName}`, boundary: system.filesDir }, cache);
  for (const file of hostFiles) byPath.set(file.relative, { ...file });
  const shadowed: string[] = [];
  for (const { generated, published } of clientFilesOf(system.name)) {
    if (byPath.has(published)) shadowed.push(published);
    const source = path.join(generatedDir, generated);
    const known = rendered?.lookup(generated);
    if (known) {
      byPath.set(published, { relative: published, source, executable: known.executable, sha256: known.sha256 });
      continue;
    }
    const stats = statSync(source, { throwIfNoEntry: false });
    if (!stats) throw new UserError(`${source} is missing: run \`bento generate\``);
    byPath.set(published, { relative: published, source, executable: (stats.mode & 0o111) !== 0, sha256: cache.hash(source) });
  }
  const files = [...byPath.values()].sort(byText((file) => file.relative));
  const manifest = renderManifest(files.map((file) => ({ path: file.relative, sha256: file.sha256 })));
  return { name: system.name, files, manifest, digest: sha256(manifest), shadowed };
}
