/**
 * Reboot slots (docs/protocol.md §12): with REBOOT_MAX, `bento reboots`
 * lets at most that many machines reboot at once. Two formats:
 *
 * - `CHROOT_DIR/reboots.json`, the server's record (root's, 0644): the slots
 *   it granted (token, when, until when, by the server's clock) and the
 *   machines waiting for one, since when;
 * - `CHROOT_DIR/<name>/reboot-slot`, root's 0644 in the machine's chroot: the
 *   slot it holds, which it reads in its poll (`get reboot-slot`):
 *
 *     bento reboot slot of web-1
 *     token: <32 hex digits>
 *     expires: 2026-12-07T03:00:00.000Z
 *
 * The machine reboots only with a token it has not used, and reports the
 * one it used in its heartbeat once it booted (`rebooted-with`, §5a).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { writeFileAtomicallySync } from '../util/atomic-write.js';
import { REBOOTS_FILE } from './layout.js';
import { SYSTEM_NAME } from './names.js';

/** In a system's chroot: the slot it holds. */
export const REBOOT_SLOT_FILE = 'reboot-slot';

/** A slot's token: 32 lowercase hex digits (128 random bits). */
export const REBOOT_TOKEN = /^[0-9a-f]{32}$/;

export interface RebootSlot {
  token: string;
  /** ISO 8601 (Date.toISOString), the server's clock. */
  grantedAt: string;
  expiresAt: string;
}

export interface RebootRecord {
  version: 1;
  /** The slots held, by system name. */
  slots: Record<string, RebootSlot>;
  /** The systems waiting for a slot, with the time bento reboots first saw them wait. */
  waiting: Record<string, string>;
}

export const EMPTY_REBOOT_RECORD: RebootRecord = { version: 1, slots: {}, waiting: {} };

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

export function rebootsFilePath(chrootDir: string): string {
  return path.join(chrootDir, REBOOTS_FILE);
}

/** Parses reboots.json, taking back only what bento writes; throws an Error naming the field. */
export function parseRebootRecord(text: string): RebootRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON: ${(error as Error).message}`);
  }
  const file = objectOf(value, 'the file');
  if (Object.keys(file).some((key) => !['version', 'slots', 'waiting'].includes(key))) throw new Error('the file has a key bento does not write');
  if (file.version !== 1) throw new Error('version is not 1');
  const record: RebootRecord = { version: 1, slots: {}, waiting: {} };
  for (const [name, slot] of Object.entries(objectOf(file.slots, 'slots'))) {
    if (!SYSTEM_NAME.test(name)) throw new Error(`slots has ${JSON.stringify(name)}, not a system name`);
    const { token, grantedAt, expiresAt, ...rest } = objectOf(slot, `slots.${name}`);
    if (Object.keys(rest).length > 0) throw new Error(`slots.${name} has a key bento does not write`);
    if (typeof token !== 'string' || !REBOOT_TOKEN.test(token)) throw new Error(`slots.${name}.token is not 32 hex digits`);
    record.slots[name] = { token, grantedAt: timeOf(grantedAt, `slots.${name}.grantedAt`), expiresAt: timeOf(expiresAt, `slots.${name}.expiresAt`) };
  }
  for (const [name, since] of Object.entries(objectOf(file.waiting, 'waiting'))) {
    if (!SYSTEM_NAME.test(name)) throw new Error(`waiting has ${JSON.stringify(name)}, not a system name`);
    record.waiting[name] = timeOf(since, `waiting.${name}`);
  }
  return record;
}

function objectOf(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where} is not an object`);
  return value as Record<string, unknown>;
}

function timeOf(value: unknown, where: string): string {
  if (typeof value !== 'string' || !ISO_TIME.test(value) || Number.isNaN(Date.parse(value))) throw new Error(`${where} is not a time as bento writes it`);
  return value;
}

/** The record of CHROOT_DIR; empty without one. A damaged one is a UserError naming it. */
export function readRebootRecord(chrootDir: string): RebootRecord {
  const file = rebootsFilePath(chrootDir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, slots: {}, waiting: {} };
    throw new UserError(`cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    return parseRebootRecord(text);
  } catch (error) {
    throw new UserError(`${file} is damaged: ${(error as Error).message}`, 'remove it: bento reboots then forgets the slots it granted and hands them out anew (remove the reboot-slot files of the chroots with it)');
  }
}

export function writeRebootRecord(chrootDir: string, record: RebootRecord): void {
  writeFileAtomicallySync(rebootsFilePath(chrootDir), `${JSON.stringify(record, null, 2)}\n`);
}

/** The text of a machine's reboot-slot file. */
export function renderRebootSlot(name: string, slot: RebootSlot): string {
  return `bento reboot slot of ${name}\ntoken: ${slot.token}\nexpires: ${slot.expiresAt}\n`;
}
