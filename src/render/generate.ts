/**
 * The generate stage: the fleet model rendered and written into generated/.
 * `bento generate` runs it, and so do deploy and build first, so what they
 * build and publish always matches config.sh, hosts/ and keys/.
 */
import path from 'node:path';
import { attachSigningKey, loadFleet, releaseFleet, type Fleet, type LoadFleetOptions } from '../fleet/fleet.js';
import { recordUids } from '../fleet/uids.js';
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
}

export interface GenerateResult {
  fleet: Fleet;
  outputDir: string;
  summary: WriteSummary;
  /** What the output directory was brought to hold: each file as written there, or found there already. */
  files: readonly RenderedFile[];
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
    const older = await olderClientEntryWarning(options.fleetDir);
    if (older !== undefined) fleet.warnings.push(older);
    const complete = fleet.brokenHosts.length === 0;
    const files = renderGeneratedFiles(fleet);
    const summary = await writeOutput(outputDir, files, { prune: complete });
    return { fleet, outputDir, summary, files, complete };
  } catch (error) {
    await releaseFleet(fleet);
    throw error;
  }
}
