/**
 * The logs a rollout's decisions read (decision.ts), with what their
 * headers say: for each system of the rollout whose wave was published, the
 * logs that reached the server since, each one's header read
 * (log-header-file.ts). Only those few logs are opened: the others do not
 * change a decision.
 */
import path from 'node:path';
import type { RolloutState } from '../protocol/rollout-file.js';
import { LOGS_DIR } from '../protocol/layout.js';
import { readLogHeaderFile } from '../status/log-header-file.js';
import { readChroot } from '../status/read-chroot.js';
import type { ReportedLog } from './decision.js';

/** Each system's logs since its publication, with their headers; [] for a system without. */
export async function readRolloutLogs(chrootDir: string, state: RolloutState, logSizeLimit?: number): Promise<(name: string) => readonly ReportedLog[]> {
  const snapshot = await readChroot(chrootDir, logSizeLimit === undefined ? {} : { logSizeLimit });
  const byName = new Map<string, ReportedLog[]>();
  for (const system of snapshot.systems) {
    const publishedAt = state.systems[system.name]?.publishedAt;
    if (publishedAt === undefined) continue;
    const since = Date.parse(publishedAt);
    const logs: ReportedLog[] = [];
    for (const log of system.logs) {
      if (log.mtimeMs <= since || log.log.result === 'autoupdate') continue;
      logs.push({ ...log, header: await readLogHeaderFile(path.join(chrootDir, system.name, LOGS_DIR, log.fileName)) });
    }
    byName.set(system.name, logs);
  }
  return (name) => byName.get(name) ?? [];
}
