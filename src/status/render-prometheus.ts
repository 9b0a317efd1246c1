/**
 * `bento status --prometheus FILE`: the fleet as metrics for node-exporter's
 * textfile collector. node-exporter may read the file at any moment, so it is
 * replaced atomically (a temporary file in the same directory, then rename).
 */
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { secondsBetween } from './elapsed.js';
import { STATE_IDS, type SystemStatus } from './states.js';

/** The exposition text: HELP and TYPE once per metric, then every sample. */
export function renderPrometheus(statuses: readonly SystemStatus[], nowMs: number): string {
  const lines: string[] = [
    '# HELP bento_system_state State of each system in bento status: 1 for its current state, 0 for the others.',
    '# TYPE bento_system_state gauge',
  ];
  for (const status of statuses) {
    for (const state of STATE_IDS) {
      lines.push(`bento_system_state{system="${escapeLabelValue(status.name)}",state="${state}"} ${status.state === state ? 1 : 0}`);
    }
  }
  // Systems without a log, or without last_change_date, have no sample:
  // an absent series is how Prometheus says "no value".
  lines.push(
    '# HELP bento_last_log_age_seconds Seconds since the server received the latest log of each system.',
    '# TYPE bento_last_log_age_seconds gauge',
  );
  for (const status of statuses) {
    if (status.latestLog) lines.push(`bento_last_log_age_seconds{system="${escapeLabelValue(status.name)}"} ${secondsBetween(status.latestLog.mtimeMs, nowMs)}`);
  }
  lines.push(
    '# HELP bento_last_change_age_seconds Seconds since the files of each system were last published (last_change_date).',
    '# TYPE bento_last_change_age_seconds gauge',
  );
  for (const status of statuses) {
    if (status.lastChangeMs !== null) lines.push(`bento_last_change_age_seconds{system="${escapeLabelValue(status.name)}"} ${secondsBetween(status.lastChangeMs, nowMs)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Label values escape backslash, double quote and line feed (exposition format). */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (char) => (char === '\n' ? '\\n' : `\\${char}`));
}

/** Writes `content` to `file` so that a reader sees either the old or the new file, never a part. */
export async function writeFileAtomically(file: string, content: string): Promise<void> {
  // node-exporter only reads *.prom, so the temporary name must not end in .prom.
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(temporary, content, { mode: 0o644, flag: 'wx' });
    await rename(temporary, file);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}
