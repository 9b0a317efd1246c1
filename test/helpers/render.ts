/** Rendering helpers for tests: a config with defaults and files written to disk. */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULTS, type Config } from '../../src/config/config.js';
import type { RenderedFile } from '../../src/render/render-fleet.js';

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
