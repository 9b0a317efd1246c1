/**
 * The generate stage: the fleet model rendered and written into generated/.
 * `bento generate` runs it, and so do deploy and build first, so what they
 * build and publish always matches config.sh, hosts/ and keys/.
 */
import path from 'node:path';
import type { Config } from '../config/config.js';
import { attachSigningKey, loadFleet, releaseFleet, type Fleet, type LoadFleetOptions } from '../fleet/fleet.js';
import { recordUids } from '../fleet/uids.js';
import { makeRecord, recordedOutput, renderInputsDigest, statOutput, type GeneratedDigest, type RecordStore } from './generate-record.js';
import { olderClientEntryWarning } from './init-fleet.js';
import { renderFleet, type RenderedFile } from './render-fleet.js';
import { writeOutput, type WriteSummary } from './write-output.js';

export interface GenerateOptions {
  fleetDir: string;
  /** Where to write (default: <fleetDir>/generated). */
  outputDir?: string;
  jobs?: number;
  /** Keep the fleet's snapshot of hosts/ (deploy, build); the caller releases it (releaseFleet). */
  snapshot?: boolean;
  /** System names already known (fleet/fleet.ts, LoadFleetOptions). */
  namesCache?: LoadFleetOptions['namesCache'];
  /**
   * Where the record of the last generate is kept for this fleet
   * (generate-record.ts): with one, a generate whose inputs and output are
   * as recorded renders nothing. None: always render.
   */
  record?: (config: Config) => RecordStore | undefined;
}

export interface GenerateResult {
  fleet: Fleet;
  outputDir: string;
  summary: WriteSummary;
  /**
   * The files rendered, each as written into the output directory or found
   * there already: all of them, or none when the record said the output
   * directory was up to date (`digests` then says what it holds).
   */
  files: readonly RenderedFile[];
  /** The digest and mode of every file of the output directory, when known without hashing `files` (from the record, or taken to make it). */
  digests?: ReadonlyMap<string, GeneratedDigest>;
  /** False when some host directories failed: their files and the server files were kept as they were. */
  complete: boolean;
}

/**
 * The files generated/ must hold. When part of the fleet failed to load, the
 * server files are left out: rewriting them without the broken flake's
 * systems would delete those machines' users on the next server rebuild.
 */
export function renderGeneratedFiles(fleet: Fleet): RenderedFile[] {
  const files = renderFleet(fleet);
  return fleet.brokenHosts.length > 0 ? files.filter((file) => !file.path.startsWith('server/')) : files;
}

export function defaultOutputDir(fleetDir: string): string {
  return path.join(fleetDir, 'generated');
}

/** Loads the fleet and brings the output directory up to date; writes only what changed. */
export async function generateOutput(options: GenerateOptions): Promise<GenerateResult> {
  const fleet = await loadFleet(options.fleetDir, { jobs: options.jobs, snapshot: options.snapshot, namesCache: options.namesCache });
  try {
    const outputDir = options.outputDir ?? defaultOutputDir(options.fleetDir);
    await attachSigningKey(fleet, outputDir);
    // Recorded before rendering: the server files name every account's uid.
    fleet.uids = (await recordUids(options.fleetDir, fleet.systems.map((system) => system.name), fleet.config.sftpUids)).uids;
    const older = olderClientEntryWarning(options.fleetDir);
    if (older !== undefined) fleet.warnings.push(older);
    const complete = fleet.brokenHosts.length === 0;
    // A fleet with a broken host directory is rendered in part, and never recorded.
    const store = complete ? options.record?.(fleet.config) : undefined;
    const inputs = store ? renderInputsDigest(fleet, outputDir) : undefined;
    if (store && inputs) {
      const recorded = recordedOutput(store.read(), inputs, outputDir);
      if (recorded) return { fleet, outputDir, summary: { written: [], unchanged: recorded.size, removed: [] }, files: [], digests: recorded, complete };
    }
    const files = renderGeneratedFiles(fleet);
    // Taken before writeOutput reads the files: a change after it shows in the lstats recorded.
    const before = store && inputs ? statOutput(outputDir) : undefined;
    const summary = await writeOutput(outputDir, files, { prune: complete });
    if (store && inputs && before && summary.written.length === 0 && summary.removed.length === 0) {
      const record = makeRecord(inputs, outputDir, before, files);
      if (record) {
        store.write(record.text);
        return { fleet, outputDir, summary, files, digests: record.digests, complete };
      }
    }
    return { fleet, outputDir, summary, files, complete };
  } catch (error) {
    await releaseFleet(fleet);
    throw error;
  }
}
