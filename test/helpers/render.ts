/** Rendering helpers for tests: a config with defaults and files written to disk. */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULTS, type Config } from '../../src/config/config.js';
import type { RenderedFile } from '../../src/render/render-fleet.js';
import { CLIENT_LIBRARY_NAME, renderClientLibrary } from '../../src/render/client-library.js';

/** A Config with defaults; remoteHosts follows remoteIp unless given (one server). */
export function configWith(overrides: Partial<Config> = {}): Config {
  const remoteIp = overrides.remoteHosts?.[0] ?? overrides.remoteIp ?? 'bento.example.org';
  return { ...DEFAULTS, chrootDir: '/home/chroot', remoteIp, remoteHosts: [remoteIp], ...overrides };
}

export function writeRendered(dir: string, files: readonly RenderedFile[]): void {
  for (const file of files) {
    const target = path.join(dir, file.path);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, file.content);
    chmodSync(target, file.mode);
  }
}

/**
 * `files` with the client's library beside each system's update.sh, as a
 * machine has them in /var/bento, where update.sh reads it (load_library in
 * templates/client/load-library.sh): for tests that run a rendered update.sh.
 */
export function withClientLibrary(files: readonly RenderedFile[]): RenderedFile[] {
  const libraries = files
    .filter((file) => file.path.endsWith('/update.sh'))
    .map((file) => ({ path: file.path.replace(/update\.sh$/, CLIENT_LIBRARY_NAME), content: renderClientLibrary(), mode: 0o644 }));
  return [...files, ...libraries];
}
