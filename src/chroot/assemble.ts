/**
 * What a system's config/ must hold: its files from the fleet's snapshot,
 * plus its generated client files, each with its SHA-256. The manifest of
 * that list is compared with the published one to decide whether anything
 * changed, without copying or building anything.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import type { FleetSystem } from '../fleet/fleet.js';
import { clientFilesOf } from '../render/render-fleet.js';
import { HashCache, listHashedHostFiles } from '../fleet/host-tree.js';
import { sha256 } from '../util/hash.js';
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

/** The files of `system`'s configuration: host files, then the generated client files (which win). */
export function assembleSystem(system: Pick<FleetSystem, 'name' | 'filesDir' | 'hostDirName' | 'files'>, generatedDir: string, cache: HashCache): Assembly {
  const byPath = new Map<string, AssembledFile>();
  // The files the fleet listed and hashed when it was loaded, else filesDir's
  // (the fleet's snapshot: a copy without links, its own boundary).
  const hostFiles = system.files ?? listHashedHostFiles(system.filesDir, { where: `hosts/${system.hostDirName}`, boundary: system.filesDir }, cache);
  for (const file of hostFiles) byPath.set(file.relative, { ...file });
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
