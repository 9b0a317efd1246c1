/**
 * The manifest published with every configuration: one `sha256sum` line per
 * file, so a machine checks its download with `sha256sum -c`. The digest of
 * the manifest itself goes into last_change_date, which tells the machine
 * both that something changed and which download to expect.
 */
import { sha256 } from '../util/hash.js';
import { byText } from '../util/text.js';

export const MANIFEST_NAME = '.bento-manifest';

/**
 * Files of a configuration that the client reads itself, beside those bento
 * generates (docs/protocol.md §6: the SELF_UPDATE and REBOOT flags): a
 * change to one reaches the machine even when its system stays the same (§4).
 */
export const CLIENT_FLAG_FILES: readonly string[] = ['SELF_UPDATE', 'REBOOT'];

export interface ManifestEntry {
  /** Relative path with '/' separators. */
  path: string;
  sha256: string;
}

/**
 * GNU sha256sum's format: `<hash>  ./<path>`, sorted by path; a name with a
 * backslash or newline is escaped and its line starts with a backslash.
 */
export function renderManifest(entries: readonly ManifestEntry[]): string {
  return [...entries]
    .sort(byText((entry) => entry.path))
    .map(({ path, sha256: hash }) => {
      const name = `./${path}`;
      if (!/[\\\n\r]/.test(name)) return `${hash}  ${name}\n`;
      const escaped = name.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
      return `\\${hash}  ${escaped}\n`;
    })
    .join('');
}

/**
 * The entries of a manifest renderManifest wrote (path → sha256); undefined
 * when a line is not one it writes (a manifest of the original bento, a
 * damaged one).
 */
export function parseManifest(text: string): Map<string, string> | undefined {
  const entries = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const match = /^(\\?)([0-9a-f]{64}) {2}\.\/(.+)$/.exec(line);
    if (!match) return undefined;
    const name = match[1] ? (match[3] as string).replace(/\\(.)/g, (_, char: string) => ({ n: '\n', r: '\r' })[char] ?? char) : (match[3] as string);
    entries.set(name, match[2] as string);
  }
  return entries;
}

/** The paths whose file differs between two manifests: added, removed or changed. Undefined when one cannot be read. */
export function changedPaths(before: string, after: string): string[] | undefined {
  const old = parseManifest(before);
  const now = parseManifest(after);
  if (!old || !now) return undefined;
  const paths = new Set([...old.keys(), ...now.keys()]);
  return [...paths].filter((file) => old.get(file) !== now.get(file)).sort();
}

/** The content of last_change_date for a manifest: its digest, then a note for people. */
export function renderChangeStamp(manifest: string, publishedAt: Date): string {
  return renderChangeStampOfDigest(sha256(manifest), publishedAt);
}

/** The same, from the manifest's digest. */
export function renderChangeStampOfDigest(digest: string, publishedAt: Date): string {
  return `${digest} ${publishedAt.toISOString()}\n`;
}
