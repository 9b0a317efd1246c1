/**
 * The shell client's shared code: plain POSIX sh sources under
 * templates/client/lib/, one concern each, shellchecked and tested on their
 * own (test/client/lib/). They are joined, in the order below, into one
 * library: what every machine runs, published beside each machine's short
 * update.sh (docs/protocol.md §4) and inlined into its self-contained
 * bootstrap.sh. No Handlebars here: the sources hold no value of the fleet;
 * the one generated line is the log protocol version, from its definition.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TEMPLATES_DIR } from '../paths.js';
import { LOG_PROTOCOL_VERSION } from '../protocol/log-header.js';
import { sha256 } from '../util/hash.js';
import { GENERATED_HEADER } from './template-engine.js';

/** The library's sources (templates/client/lib/<name>.sh), in the order they are joined: each defines what the later ones use at their top level. */
export const CLIENT_LIBRARY_SOURCES = ['core', 'server-values', 'connect', 'logs', 'heartbeat', 'disk-space', 'fetch', 'switch', 'health', 'prebuilt', 'self-update', 'main'] as const;

/** The library's name beside update.sh in the chroot's config/ and in generated/client/. */
export const CLIENT_LIBRARY_NAME = 'bento-client.sh';

export const CLIENT_LIBRARY_DIR = path.join(TEMPLATES_DIR, 'client', 'lib');

/** The file of one source. */
export function clientLibrarySource(name: string, dir = CLIENT_LIBRARY_DIR): string {
  return path.join(dir, `${name}.sh`);
}

/**
 * A source without its shellcheck directives, which speak of the file alone
 * (its shell, the variables it shares with the other sources).
 */
function sourceBody(text: string): string {
  return text
    .split('\n')
    .filter((line) => !line.startsWith('# shellcheck '))
    .join('\n');
}

const cache = new Map<string, string>();

/** The library's text: a header, the log protocol version, then every source. */
export function renderClientLibrary(dir = CLIENT_LIBRARY_DIR): string {
  const known = cache.get(dir);
  if (known !== undefined) return known;
  const parts = [
    '# shellcheck shell=sh disable=SC2034',
    `# ${GENERATED_HEADER}`,
    '#',
    "# The bento client's code, the same for every machine: each machine's",
    '# update.sh (its settings) reads it, once its SHA-256 is the one the',
    '# script names (docs/protocol.md §4). Sources: templates/client/lib/.',
    '',
    '# The protocol version this client speaks: its logs\' header and its heartbeat (docs/protocol.md §5, §5a).',
    `BENTO_LOG_PROTOCOL=${LOG_PROTOCOL_VERSION}`,
    '',
    ...CLIENT_LIBRARY_SOURCES.map((name) => sourceBody(readFileSync(clientLibrarySource(name, dir), 'utf8'))),
  ];
  const text = parts.join('\n');
  cache.set(dir, text);
  return text;
}

const encoded = new Map<string, { bytes: Buffer; digest: string }>();

/**
 * The library's UTF-8 bytes and their SHA-256, computed once per run: every
 * machine's bootstrap.sh holds the library and its update.sh names the
 * digest, and encoding or hashing it for each of thousands of machines was
 * most of generate's work (bench/README.md).
 */
function encodedLibrary(dir: string): { bytes: Buffer; digest: string } {
  let known = encoded.get(dir);
  if (known === undefined) {
    const bytes = Buffer.from(renderClientLibrary(dir), 'utf8');
    known = { bytes, digest: sha256(bytes) };
    encoded.set(dir, known);
  }
  return known;
}

/** The library's text as UTF-8 bytes (shared: never modify them). */
export function clientLibraryBytes(dir = CLIENT_LIBRARY_DIR): Buffer {
  return encodedLibrary(dir).bytes;
}

/** The SHA-256 (hex) of the library, which update.sh checks before reading it. */
export function clientLibraryDigest(dir = CLIENT_LIBRARY_DIR): string {
  return encodedLibrary(dir).digest;
}
