/**
 * Once per vitest run: a cache directory of its own (XDG_CACHE_HOME), so that
 * `bento status` run by the tests remembers nothing in the user's home, and
 * it is removed at the end. The test processes inherit the variable.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-test-cache-'));
  process.env.XDG_CACHE_HOME = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
