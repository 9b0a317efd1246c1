/**
 * What a system's config/ must hold: its files from the fleet's snapshot,
 * plus its generated client files, each with its SHA-256. The manifest of
 * that list is compared with the published one to decide whether anything
 * changed, without copying or building anything.
 */
import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import type { FleetSystem } from '../fleet/fleet.js';
import { clientFilesOf } from '../render/render-fleet.js';
import { listHostFiles } from '../fleet/host-tree.js';
import { sha256, sha256File } from '../util/hash.js';
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

/** Hashes by real path, size and mtime, so files shared through utils/ are read once per run. */
export class HashCache {
  private readonly entries = new Map<string, { size: number; mtimeMs: number; sha256: string }>();

  hash(file: string): string {
    const real = realpathSync(file);
    const stats = statSync(real);
    const known = this.entries.get(real);
    if (known && known.size === stats.size && known.mtimeMs === stats.mtimeMs) return known.sha256;
    const digest = sha256File(real);
    this.entries.set(real, { size: stats.size, mtimeMs: stats.mtimeMs, sha256: digest });
    return digest;
  }
}


/** The files of `system`'s configuration: host files, then the generated client files (which win). */
export function assembleSystem(system: Pick<FleetSystem, 'name' | 'filesDir' | 'hostDirName'>, generatedDir: string, cache: HashCache): Assembly {
  const byPath = new Map<string, AssembledFile>();
  // filesDir is the fleet's snapshot: a copy without links, its own boundary.
  for (const file of listHostFiles(system.filesDir, { where: `hosts/${system.hostDirName}`, boundary: system.filesDir })) {
    byPath.set(file.relative, { ...file, sha256: cache.hash(file.source) });
  }
  const shadowed: string[] = [];
  for (const { generated, published } of clientFilesOf(system.name)) {
    if (byPath.has(published)) shadowed.push(published);
    const source = path.join(generatedDir, generated);
    const stats = statSync(source, { throwIfNoEntry: false });
    if (!stats) throw new UserError(`${source} is missing: run \`bento generate\``);
    byPath.set(published, { relative: published, source, executable: (stats.mode & 0o111) !== 0, sha256: cache.hash(source) });
  }
  const files = [...byPath.values()].sort(byText((file) => file.relative));
  const manifest = renderManifest(files.map((file) => ({ path: file.relative, sha256: file.sha256 })));
  return { name: system.name, files, manifest, digest: sha256(manifest), shadowed };
}
