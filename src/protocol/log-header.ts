/**
 * The header of a machine's log (docs/protocol.md §5, "The log header"):
 * the first lines of every log the client writes, before the first empty
 * line. A line for people, then `key: value` lines: the protocol version
 * the client speaks and the configuration the run applied. The one parser
 * of it, for every reader (the rollout's decisions today, the heartbeat of
 * a later protocol version tomorrow); the writer is the client's
 * `log_header` (templates/client/lib/logs.sh), which gets its
 * version number from here.
 *
 * Everything in a log is written by the machine: the parser never throws,
 * and what it cannot read with certainty it reports as unknown, which every
 * reader takes for the cautious answer.
 */

/**
 * The version of the protocol this bento's client speaks (`protocol: 2`).
 * 1: the log header; 2: the heartbeat too (docs/protocol.md §5, heartbeat.ts).
 */
export const LOG_PROTOCOL_VERSION = 2;

/** The header lies in this many bytes at the start of a log (uncompressed), its empty line included. */
export const LOG_HEADER_MAX_BYTES = 4096;

/** What a log's header says. Absent fields: the log does not say (or not in a form that can be trusted). */
export interface LogHeader {
  /**
   * The protocol version the client speaks. Absent in the logs of clients
   * older than version 1 (which wrote the `configuration:` line already)
   * and in logs without a header (the original bento's).
   */
  protocol?: number;
  /**
   * sha256 of the manifest of the configuration the run applied: the digest
   * `last_change_date` announced when the machine downloaded it (§4).
   */
  configuration?: string;
}

/** The first line, for people: `bento update of web-1 on 2026-11-26 10:00:00 UTC`. */
const FIRST_LINE = /^bento [a-z-]+ of [a-z_][a-z0-9_-]{0,31} on [^\n]*$/;
/** `key: value`; keys a later version adds are skipped. */
const FIELD = /^([a-z][a-z0-9-]*): (.*)$/;
const PROTOCOL = /^[1-9][0-9]{0,5}$/;
/** last_change_date's content: the manifest's sha256, then (for people) a space and a time. */
const CONFIGURATION = /^([0-9a-f]{64})(?: [^\n]*)?$/;

/**
 * Reads the header at the start of `text` (a log's first bytes,
 * uncompressed, LOG_HEADER_MAX_BYTES or more of them). A text that does not
 * start with bento's first line, or whose header does not end with an empty
 * line within LOG_HEADER_MAX_BYTES, has no header: nothing is known. A known
 * key given twice, or with a value not of its form, is unknown.
 */
export function parseLogHeader(text: string): LogHeader {
  const values = parseHeaderFields(text);
  return values ? commonFields(values) : {};
}

/**
 * The `key: value` lines of a header at the start of `text` (its first line
 * `bento <what> of <name> on <time>`, its end an empty line within
 * LOG_HEADER_MAX_BYTES); undefined when there is no such header. A key
 * given twice maps to null: which of its values is meant cannot be told.
 * The heartbeat (heartbeat.ts) is such a header alone.
 */
export function parseHeaderFields(text: string): Map<string, string | null> | undefined {
  const end = text.slice(0, LOG_HEADER_MAX_BYTES).indexOf('\n\n');
  if (end === -1) return undefined;
  const [first, ...lines] = text.slice(0, end).split('\n');
  if (first === undefined || !FIRST_LINE.test(first)) return undefined;
  const values = new Map<string, string | null>();
  for (const line of lines) {
    const field = FIELD.exec(line);
    if (!field) continue;
    const [, key, value] = field as unknown as [string, string, string];
    values.set(key, values.has(key) ? null : value);
  }
  return values;
}

/** `protocol` and `configuration`, the fields every header has, where they have their form. */
export function commonFields(values: ReadonlyMap<string, string | null>): LogHeader {
  const header: LogHeader = {};
  const protocol = values.get('protocol');
  if (protocol && PROTOCOL.test(protocol)) header.protocol = Number(protocol);
  const configuration = CONFIGURATION.exec(values.get('configuration') ?? '');
  if (configuration) header.configuration = configuration[1];
  return header;
}

