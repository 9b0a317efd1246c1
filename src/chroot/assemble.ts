/**
 * What a system's config/ must hold: its files from the fleet's snapshot,
 * plus its generated client files, each with its SHA-256. The manifest of
 * that list is compared with the published one to decide whether anything
 * changed, without copying or building anything.
 */
import { lstatSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import type { FleetSystem } from '../fleet/fleet.js';
import { clientFilesOf, type RenderedFile } from '../render/render-fleet.js';
import { renderedDigest, type GeneratedDigest } from '../render/generate-record.js';
import { HashCache, listHashedHostFiles } from '../fleet/host-tree.js';
import { sha256 } from '../util/hash.js';
import { renderManifest } from '../protocol/manifest.js';
import { byText } from '../util/text.js';
import { ChangedWhileCopiedError, readRegularFile } from '../util/make-dirs.js';

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
   * The digest and whether it is executable, of the file at `generated` (a
   * path of generated/); undefined when it was neither rendered nor known.
   */
  lookup(generated: string): { sha256: string; executable: boolean } | undefined {
    if (this.answers.has(generated)) return this.answers.get(generated);
    const answer = this.fromGenerate(generated) ?? this.fromRendered(generated);
    this.answers.set(generated, answer);
    return answer;
  }

  /** From generate's record (GenerateResult.digests), which it checked against the disk. */
  private fromGenerate(generated: string): { sha256: string; executable: boolean } | undefined {
    const known = this.known?.get(generated);
    return known ? { sha256: known.sha256, executable: (known.mode & 0o111) !== 0 } : undefined;
  }

  private fromRendered(generated: string): { sha256: string; executable: boolean } | undefined {
    const file = this.byPath.get(generated);
    if (!file) return undefined;
    // From the parts it was written and compared from (RenderedFile.bytes), else its text as UTF-8.
    return { sha256: renderedDigest(file), executable: (file.mode & 0o111) !== 0 };
  }
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
    if (!lstatSync(source, { throwIfNoEntry: false })) throw new UserError(`${source} is missing: run \`bento generate\``);
    // Not known from generate: hashed as read, never through a link (the
    // fleet's writers control generated/), and copied only while it holds that.
    let read: { bytes: Buffer; mode: number };
    try {
      read = readRegularFile(source);
    } catch (error) {
      if (error instanceof ChangedWhileCopiedError) throw new UserError(error.message);
      throw error;
    }
    byPath.set(published, { relative: published, source, executable: (read.mode & 0o111) !== 0, sha256: sha256(read.bytes) });
  }
  const files = [...byPath.values()].sort(byText((file) => file.relative));
  const manifest = renderManifest(files.map((file) => ({ path: file.relative, sha256: file.sha256 })));
  return { name: system.name, files, manifest, digest: sha256(manifest), shadowed };
}
