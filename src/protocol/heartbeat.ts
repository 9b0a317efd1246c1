/**
 * The heartbeat (docs/protocol.md §5a): one small file a machine writes into
 * its logs/ on every poll, in the SFTP session it opens anyway, and again in
 * the session that uploads a log after a switch. Its mtime, from the
 * server's clock, says when the machine was last seen; its text, what it
 * runs:
 *
 *   bento heartbeat of web-1 on 2026-11-26 10:00:00 UTC
 *   protocol: 2
 *   configuration: <last_change_date of the configuration installed>
 *   running: <store path basename of /run/current-system>
 *   booted: <store path basename of /run/booted-system>
 *   reboot-pending: no
 *   reboot-window: Mon..Fri 02:00-05:00     (with REBOOT_WINDOW)
 *   reboot-waiting: window                  (a pending reboot outside it; slot: REBOOT_MAX)
 *   rebooted-with: <token>                  (booted since it used that reboot slot)
 *   <empty line>
 *
 * A log header (log-header.ts) with no log after it: the same first line,
 * the same `protocol` and `configuration` fields, three more. The writer is
 * the client's `write_heartbeat` (templates/client/lib/heartbeat.sh).
 *
 * The machine wrote it: the parser never throws, a field not of its form is
 * unknown, and a reader reads no more than HEARTBEAT_READ_BYTES.
 */
import { commonFields, parseHeaderFields, type LogHeader } from './log-header.js';
import { storeBasenameProblem } from './store-path.js';

/** Its name in logs/: not a log's (log-name.ts), so no log reader counts it. */
export const HEARTBEAT_FILE = 'heartbeat';

/** What the server reads of it at most; the client's is a few hundred bytes. */
export const HEARTBEAT_READ_BYTES = 4096;

export interface Heartbeat extends LogHeader {
  /** Store path basename of the system the machine runs. */
  running?: string;
  /** Store path basename of the system it booted (absent without /run/booted-system). */
  booted?: string;
  /** The booted kernel, initrd or kernel modules differ from the running system's: a reboot would change them. */
  rebootPending?: boolean;
  /** Its reboot window (REBOOT_WINDOW), normalised: `Mon..Fri 02:00-05:00`; absent: any time. */
  rebootWindow?: string;
  /** What its pending reboot waits for: `window` (closed now), `slot` (REBOOT_MAX: a reboot slot). */
  rebootWaiting?: RebootWait;
  /** The token of the reboot slot it rebooted with, once it booted again (docs/protocol.md §12). */
  rebootedWith?: string;
}

/** What a pending reboot may wait for (docs/protocol.md §5a). */
export type RebootWait = 'window' | 'slot';

/** A reboot window as the client writes it: weekdays as systemd writes them, a time range. */
const REBOOT_WINDOW = /^[*A-Za-z.,]{1,40} [0-9]{2}:[0-9]{2}-[0-9]{2}:[0-9]{2}$/;

/** What `text`, a heartbeat's content, says; {} when it is not one. */
export function parseHeartbeat(text: string): Heartbeat {
  const values = parseHeaderFields(text);
  if (!values) return {};
  const heartbeat: Heartbeat = commonFields(values);
  const running = storePath(values.get('running'));
  if (running) heartbeat.running = running;
  const booted = storePath(values.get('booted'));
  if (booted) heartbeat.booted = booted;
  const reboot = values.get('reboot-pending');
  if (reboot === 'yes' || reboot === 'no') heartbeat.rebootPending = reboot === 'yes';
  const window = values.get('reboot-window');
  if (window && REBOOT_WINDOW.test(window)) heartbeat.rebootWindow = window;
  const wait = values.get('reboot-waiting');
  if (wait === 'window' || wait === 'slot') heartbeat.rebootWaiting = wait;
  const token = values.get('rebooted-with');
  if (token && /^[0-9a-f]{32}$/.test(token)) heartbeat.rebootedWith = token;
  return heartbeat;
}

function storePath(value: string | null | undefined): string | undefined {
  return value && storeBasenameProblem(value) === undefined ? value : undefined;
}
