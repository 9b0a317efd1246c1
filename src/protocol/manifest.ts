/**
 * The manifest published with every configuration: one `sha256sum` line per
 * file, so a machine checks its download with `sha256sum -c`. The digest of
 * the manifest itself goes into last_change_date, which tells the machine
 * both that something changed and which download to expect.
 */
import { sha256 } from '../util/hash.js';
import { byText } from '../util/text.js';

export const MANIFEST_NAME = '.bento-manifest';

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

/** The content of last_change_date for a manifest: its digest, then a note for people. */
export function renderChangeStamp(manifest: string, publishedAt: Date): string {
  return renderChangeStampOfDigest(sha256(manifest), publishedAt);
}

/** The same, from the manifest's digest. */
export function renderChangeStampOfDigest(digest: string, publishedAt: Date): string {
  return `${digest} ${publishedAt.toISOString()}\n`;
}
