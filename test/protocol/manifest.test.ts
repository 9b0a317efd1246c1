/** The manifest (docs/protocol.md §4): GNU sha256sum's format, and last_change_date naming its digest. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderChangeStamp, renderChangeStampOfDigest, renderManifest } from '../../src/protocol/manifest.js';
import { sha256 } from '../../src/util/hash.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-manifest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('renderManifest', () => {
  it('writes one sorted line per file, as sha256sum does', () => {
    expect(renderManifest([
      { path: 'z/b.sh', sha256: 'b'.repeat(64) },
      { path: 'a.sh', sha256: 'a'.repeat(64) },
    ])).toBe(`${'a'.repeat(64)}  ./a.sh\n${'b'.repeat(64)}  ./z/b.sh\n`);
    expect(renderManifest([])).toBe('');
  });

  it('escapes a backslash or a newline in a name as GNU sha256sum does, so sha256 -c checks the files', () => {
    const files = { 'plain.sh': 'echo plain\n', 'sub/with space': 'x', 'back\\slash': 'y', 'new\nline': 'z' };
    mkdirSync(path.join(dir, 'sub'));
    for (const [name, content] of Object.entries(files)) writeFileSync(path.join(dir, name), content);
    const manifest = renderManifest(Object.entries(files).map(([name, content]) => ({ path: name, sha256: sha256(content) })));
    expect(manifest).toContain(`\\${sha256('y')}  ./back\\\\slash\n`);
    expect(manifest).toContain(`\\${sha256('z')}  ./new\\nline\n`);
    const checked = spawnSync('sha256sum', ['-c', '--strict', '-'], { cwd: dir, input: manifest, encoding: 'utf8' });
    expect(checked.stderr).toBe('');
    expect(checked.status).toBe(0);
    writeFileSync(path.join(dir, 'new\nline'), 'changed');
    expect(spawnSync('sha256sum', ['-c', '--quiet', '-'], { cwd: dir, input: manifest, encoding: 'utf8' }).status).toBe(1);
  });
});

describe('renderChangeStamp', () => {
  it('names the digest of the manifest, then when it was published', () => {
    const at = new Date('2026-11-26T10:00:00.000Z');
    expect(renderChangeStamp('manifest text\n', at)).toBe(`${sha256('manifest text\n')} 2026-11-26T10:00:00.000Z\n`);
    expect(renderChangeStampOfDigest('ab'.repeat(32), at)).toBe(`${'ab'.repeat(32)} 2026-11-26T10:00:00.000Z\n`);
  });
});
