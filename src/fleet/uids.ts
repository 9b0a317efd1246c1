/**
 * The uid of each machine's SFTP account on the server, recorded in the
 * fleet's uids.txt (one `name uid` a line): explicit, so that setup-debian.sh
 * and the NixOS module give the same account the same uid, and stable, so
 * that a machine keeps its uid whatever other machines come and go.
 *
 * Why a record and not a function of the name: a hash of the name into the
 * range collides (10,000 names in 30,000 uids: thousands of pairs), and
 * whatever settles a collision depends on which other names exist, so a new
 * machine could move an old one. The record assigns each new system the
 * lowest uid of SFTP_UIDS that no line holds, in name order, and never
 * changes or removes a line: a machine that leaves keeps its line (its
 * account stays on the server, locked, and owns the logs it sent), so its
 * uid is never given to another, and it gets it back if it returns. The
 * fleet directory is the source of truth and is committed; generated/ may be
 * removed and written again, so the record lives next to config.sh.
 *
 * A line whose uid is outside SFTP_UIDS (the range changed) is assigned
 * again in the new range; the server's setup moves the account.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import type { UidRange } from '../config/values.js';
import { UserError } from '../errors.js';
import { readFleetFile } from './fleet-file.js';
import { writeFileAtomically } from '../util/atomic-write.js';
import { compareText } from '../util/text.js';

export const UID_RECORD_FILE = 'uids.txt';

const HEADER = [
  '# The uid of each machine\'s SFTP account on the bento server (SFTP_UIDS in config.sh),',
  '# written by bento generate: a new system gets the lowest free uid of the range; a line',
  '# is never changed or removed, so a machine keeps its uid and a departed machine\'s uid',
  '# (its account still owns its logs) is never given to another. Commit it with the fleet.',
];

/** The lines of uids.txt: name → uid. Throws a message naming the line of a malformed one. */
export function parseUidRecord(text: string, file = UID_RECORD_FILE): Map<string, number> {
  const uids = new Map<string, number>();
  const taken = new Map<number, string>();
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const match = /^(\S+)\s+([0-9]+)$/.exec(line);
    const where = `${file}, line ${index + 1}`;
    if (!match) throw new UserError(`${where}: expected "<name> <uid>", got ${JSON.stringify(raw)}`);
    const [, name = '', uidText = ''] = match;
    const uid = Number(uidText);
    const holder = taken.get(uid);
    if (holder !== undefined) throw new UserError(`${where}: uid ${uid} of ${name} is ${holder}'s already`);
    if (uids.has(name)) throw new UserError(`${where}: ${name} has a line already`);
    uids.set(name, uid);
    taken.set(uid, name);
  });
  return uids;
}

/** uids.txt for `uids`, in uid order. */
export function formatUidRecord(uids: ReadonlyMap<string, number>): string {
  const lines = [...uids].sort(([, a], [, b]) => a - b).map(([name, uid]) => `${name} ${uid}`);
  return [...HEADER, ...lines].join('\n') + '\n';
}

export interface UidAssignment {
  /** Every recorded line still in the range, and every system of `names`. */
  uids: Map<string, number>;
  /** The systems that got a uid now, in name order. */
  added: string[];
}

/**
 * Gives each of `names` without a line in `recorded` (or with a uid outside
 * `range`) the lowest uid of `range` that no kept line holds, in name
 * order. Throws when the range is full.
 */
export function assignUids(recorded: ReadonlyMap<string, number>, names: readonly string[], range: UidRange): UidAssignment {
  const uids = new Map([...recorded].filter(([, uid]) => uid >= range.first && uid <= range.last));
  const taken = new Set(uids.values());
  const added: string[] = [];
  let next = range.first;
  for (const name of [...new Set(names)].sort(compareText)) {
    if (uids.has(name)) continue;
    while (taken.has(next)) next++;
    if (next > range.last) {
      throw new UserError(
        `SFTP_UIDS ${range.first}-${range.last} has no free uid left for ${name}: ${uids.size} are recorded in ${UID_RECORD_FILE}`,
        'widen SFTP_UIDS in config.sh (its default and why: docs/sftp-server.md, "Account uids")',
      );
    }
    uids.set(name, next);
    taken.add(next);
    added.push(name);
  }
  return { uids, added };
}

/** What uids.txt of `fleetDir` holds (nothing when it does not exist). */
export function readUidRecord(fleetDir: string): Map<string, number> {
  const file = path.join(fleetDir, UID_RECORD_FILE);
  if (!existsSync(file)) return new Map();
  let text: string;
  const hint = "it records the uid of each system's SFTP account: restore it from the fleet's history (git)";
  try {
    // The fleet writers' file: never waiting on a FIFO in its place, never reading without end (fleet-file.ts).
    text = readFleetFile(file, file, "the uid of each system's SFTP account", realpathSync(fleetDir));
  } catch (error) {
    // A directory or a file the user cannot read: the fleet's to mend, as a line it cannot parse is.
    // A directory in its place reads as states.txt's does (read(2)'s EISDIR), as it did before fleet-file.ts.
    if (error instanceof UserError && statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw new UserError(`cannot read ${file}: EISDIR: illegal operation on a directory, read`, hint);
    throw new UserError(error instanceof UserError ? error.message : `cannot read ${file}: ${(error as Error).message}`, hint);
  }
  return parseUidRecord(text, file);
}

/**
 * The uids of `names`, with those of the record: new systems are assigned
 * and uids.txt rewritten, only when something changed.
 */
export async function recordUids(fleetDir: string, names: readonly string[], range: UidRange): Promise<UidAssignment> {
  const recorded = readUidRecord(fleetDir);
  const assignment = assignUids(recorded, names, range);
  const unchanged = assignment.uids.size === recorded.size && [...recorded].every(([name, uid]) => assignment.uids.get(name) === uid);
  if (!unchanged) await writeFileAtomically(path.join(fleetDir, UID_RECORD_FILE), formatUidRecord(assignment.uids));
  return assignment;
}
