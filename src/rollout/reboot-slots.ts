/**
 * `bento reboots`: at most REBOOT_MAX machines reboot at once
 * (docs/protocol.md §12, docs/reboots.md). The server never connects to a
 * machine: it reads what each machine's heartbeat says (src/status's
 * reader), decides which slots end and who gets the free ones
 * (decideRebootSlots, pure), records that in CHROOT_DIR/reboots.json and
 * writes or removes each machine's CHROOT_DIR/<name>/reboot-slot, which the
 * machine reads at its next poll.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/config.js';
import { UserError } from '../errors.js';
import { assignWaves } from '../fleet/waves.js';
import {
  readRebootRecord, REBOOT_SLOT_FILE, rebootsFilePath, renderRebootSlot, writeRebootRecord, type RebootRecord,
} from '../protocol/reboot-slots.js';
import { compareText } from '../util/text.js';
import { writeFileAtomicallySync } from '../util/atomic-write.js';
import { readChroot, type SystemSnapshot } from '../status/read-chroot.js';
import { listChrootDir } from '../protocol/layout.js';

/** What bento reboots knows of one machine: its latest heartbeat. */
export interface RebootObservation {
  name: string;
  /** When its heartbeat arrived (the server's clock); null without one. */
  heartbeatMs: number | null;
  /** Its heartbeat says its reboot waits for a slot (in its window, none held). */
  waitsForSlot: boolean;
  /** Its heartbeat says a reboot would change its kernel, initrd or modules. */
  rebootPending: boolean;
  /** The token its heartbeat says it rebooted with, if any. */
  rebootedWith?: string;
  /** Its wave of ROLLOUT_WAVES, if any. */
  wave?: number;
}

export interface SlotPolicy {
  /** REBOOT_MAX: slots held at once, fleet-wide. */
  max: number;
  /** REBOOT_MAX_PER_WAVE: slots held at once within one wave; 0: no cap. */
  maxPerWave: number;
  /** REBOOT_SLOT_TIME, seconds. */
  slotSeconds: number;
}

export interface SlotEvent {
  name: string;
  kind: 'granted' | 'released' | 'expired';
  why: string;
}

/**
 * The next record. A slot ends when its machine's heartbeat, newer than
 * the grant, says it rebooted with that token, or no longer needs a
 * reboot; when the machine left CHROOT_DIR; or when it expires. A machine
 * waits while its latest heartbeat says so (one whose slot just expired
 * only once it reported again after the grant, at the end of the line).
 * Free slots go to the machines waiting longest (then by name), within the
 * wave's cap.
 */
export function decideRebootSlots(
  record: RebootRecord,
  observations: readonly RebootObservation[],
  policy: SlotPolicy,
  nowMs: number,
  newToken: () => string,
): { record: RebootRecord; events: SlotEvent[] } {
  const now = new Date(nowMs).toISOString();
  const byName = new Map(observations.map((seen) => [seen.name, seen]));
  const events: SlotEvent[] = [];
  const next: RebootRecord = { version: 1, slots: {}, waiting: {} };
  /** Machines whose slot ended in this run, with the time it was granted. */
  const ended = new Map<string, number>();
  for (const [name, slot] of Object.entries(record.slots)) {
    const seen = byName.get(name);
    const grantedMs = Date.parse(slot.grantedAt);
    const since = seen?.heartbeatMs !== null && seen?.heartbeatMs !== undefined && seen.heartbeatMs >= grantedMs;
    let end: SlotEvent | undefined;
    if (!seen) end = { name, kind: 'released', why: 'it left CHROOT_DIR' };
    else if (since && seen.rebootedWith === slot.token) end = { name, kind: 'released', why: 'it rebooted and reported back' };
    else if (since && !seen.rebootPending) end = { name, kind: 'released', why: 'it needs no reboot any more' };
    else if (nowMs >= Date.parse(slot.expiresAt)) end = { name, kind: 'expired', why: `it did not report a reboot by ${slot.expiresAt}` };
    if (end) {
      events.push(end);
      ended.set(name, grantedMs);
    } else {
      next.slots[name] = slot;
    }
  }
  for (const seen of observations) {
    if (!seen.waitsForSlot || next.slots[seen.name]) continue;
    const endedMs = ended.get(seen.name);
    if (endedMs !== undefined) {
      // A machine that lost its slot waits again only once it said so after the grant, from now on.
      if (seen.heartbeatMs === null || seen.heartbeatMs < endedMs) continue;
      next.waiting[seen.name] = now;
    } else {
      next.waiting[seen.name] = record.waiting[seen.name] ?? now;
    }
  }
  const held = () => Object.keys(next.slots);
  const line = Object.entries(next.waiting).sort(([a, since], [b, other]) => compareText(since, other) || compareText(a, b));
  for (const [name] of line) {
    if (held().length >= policy.max) break;
    const wave = byName.get(name)?.wave;
    if (policy.maxPerWave > 0 && wave !== undefined && held().filter((other) => byName.get(other)?.wave === wave).length >= policy.maxPerWave) continue;
    next.slots[name] = { token: newToken(), grantedAt: now, expiresAt: new Date(nowMs + policy.slotSeconds * 1000).toISOString() };
    delete next.waiting[name];
    events.push({ name, kind: 'granted', why: `until ${next.slots[name].expiresAt}` });
  }
  return { record: next, events };
}

/** What a machine's latest heartbeat says, for decideRebootSlots. */
export function observe(system: SystemSnapshot, wave?: number): RebootObservation {
  const says = system.heartbeat?.says ?? {};
  return {
    name: system.name,
    heartbeatMs: system.heartbeat?.receivedMs ?? null,
    waitsForSlot: says.rebootPending === true && says.rebootWaiting === 'slot',
    rebootPending: says.rebootPending === true,
    ...(says.rebootedWith ? { rebootedWith: says.rebootedWith } : {}),
    ...(wave !== undefined ? { wave } : {}),
  };
}

/**
 * One run of `bento reboots` on CHROOT_DIR (under the deploy lock, which
 * the caller holds): without REBOOT_MAX, every slot is withdrawn. Slot files
 * that end are removed before the record drops them, and new ones written
 * after it records them: a slot file never exists that the record does not
 * count.
 */
export async function runRebootSlots(config: Config, nowMs: number): Promise<{ events: SlotEvent[]; record: RebootRecord; warnings: string[] }> {
  const chrootDir = config.chrootDir;
  const record = readRebootRecord(chrootDir);
  const snapshot = await readChroot(chrootDir, { logSizeLimit: config.logSizeLimit });
  const waves = config.rolloutWaves ? assignWaves(snapshot.systems.map((system) => system.name), config.rolloutWaves) : new Map<string, number>();
  const linked = new Set(listChrootDir(chrootDir).systems.filter((system) => system.link).map((system) => system.name));
  // A machine whose directory is a link gets no slot: bento writes nothing through one.
  const observations = config.rebootMax > 0 ? snapshot.systems.filter((system) => !linked.has(system.name)).map((system) => observe(system, waves.get(system.name))) : [];
  const policy = { max: config.rebootMax, maxPerWave: config.rebootMaxPerWave, slotSeconds: config.rebootSlotTime };
  const decided = config.rebootMax > 0
    ? decideRebootSlots(record, observations, policy, nowMs, () => randomBytes(16).toString('hex'))
    : { record: { version: 1 as const, slots: {}, waiting: {} }, events: Object.keys(record.slots).map((name) => ({ name, kind: 'released' as const, why: 'REBOOT_MAX is not set' })) };
  // Written and removed only in a directory of CHROOT_DIR, never through a link (docs/protocol.md §2).
  const present = new Set(listChrootDir(chrootDir).systems.filter((system) => !system.link).map((system) => system.name));
  for (const name of Object.keys(record.slots)) {
    if (!decided.record.slots[name] || decided.record.slots[name].token !== record.slots[name]?.token) removeSlotFile(chrootDir, name, present);
  }
  // Rewritten only when it changed: a timer run with nothing to do leaves CHROOT_DIR as it was.
  if (JSON.stringify(decided.record) !== JSON.stringify(record) || !existsSync(rebootsFilePath(chrootDir))) {
    if (config.rebootMax > 0 || existsSync(rebootsFilePath(chrootDir))) {
      // A CHROOT_DIR that cannot be written (read-only, full) is the server's to mend, not a bug in bento.
      try {
        writeRebootRecord(chrootDir, decided.record);
      } catch (error) {
        throw new UserError(
          `cannot write ${rebootsFilePath(chrootDir)}: ${(error as Error).message}: no new slot is granted`,
          'make CHROOT_DIR writable (or fix what the error names), then run bento reboots again',
        );
      }
    }
  }
  const unwritten: string[] = [];
  for (const [name, slot] of Object.entries(decided.record.slots)) {
    if (record.slots[name]?.token === slot.token || !present.has(name)) continue;
    const file = path.join(chrootDir, name, REBOOT_SLOT_FILE);
    try {
      writeFileAtomicallySync(file, renderRebootSlot(name, slot), 0o644);
    } catch (error) {
      unwritten.push(`${file}: ${(error as Error).message}`);
    }
  }
  if (unwritten.length > 0) {
    // The record counts these slots already, and a slot file is written once: each such machine waits for its slot to expire.
    throw new UserError(
      `cannot write ${unwritten.join('; ')}: each of these machines holds a slot it cannot see, until the slot expires (REBOOT_SLOT_TIME)`,
      'make those directories writable (or fix what the error names); once a slot expired, bento reboots hands it out again',
    );
  }
  return { events: decided.events, record: decided.record, warnings: snapshot.warnings };
}

/** Removes a machine's reboot-slot file, never through a link (a system's directory may be one). */
function removeSlotFile(chrootDir: string, name: string, present: ReadonlySet<string>): void {
  if (!present.has(name)) return;
  rmSync(path.join(chrootDir, name, REBOOT_SLOT_FILE), { force: true });
}
