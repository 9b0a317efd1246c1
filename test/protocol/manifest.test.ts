/** The manifest (docs/protocol.md §4): GNU sha256sum's format, and last_change_date naming its digest. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { changedPaths, CLIENT_FLAG_FILES, parseManifest, renderChangeStamp, renderChangeStampOfDigest, renderManifest } from '../../src/protocol/manifest.js';
import { sha256 } from '../../src/util/hash.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { clientFilesOf } from '../../src/render/render-fleet.js';

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

describe('parseManifest and changedPaths', () => {
  const a = 'a'.repeat(64);
  const b = 'b'.repeat(64);

  it('read back what renderManifest writes, escaped names included', () => {
    const entries = [{ path: 'flake.nix', sha256: a }, { path: 'back\\slash', sha256: b }, { path: 'new\nline', sha256: a }, { path: 'sub/x y', sha256: b }];
    expect(parseManifest(renderManifest(entries))).toEqual(new Map(entries.map((entry) => [entry.path, entry.sha256])));
    expect(parseManifest('')).toEqual(new Map());
    expect(parseManifest('not a manifest\n')).toBeUndefined();
  });

  it('name the files added, removed or changed', () => {
    const before = renderManifest([{ path: 'flake.nix', sha256: a }, { path: 'a.nix', sha256: a }, { path: 'gone', sha256: a }]);
    const after = renderManifest([{ path: 'flake.nix', sha256: a }, { path: 'a.nix', sha256: b }, { path: 'new', sha256: a }]);
    expect(changedPaths(before, after)).toEqual(['a.nix', 'gone', 'new']);
    expect(changedPaths(before, before)).toEqual([]);
    expect(changedPaths('junk\n', after)).toBeUndefined();
  });
});

describe('CLIENT_FLAG_FILES', () => {
  it("lists every file of the configuration the client's shell reads, but bento's own and the flake's", () => {
    const libDir = path.join(PACKAGE_ROOT, 'templates', 'client', 'lib');
    const read = new Set<string>();
    for (const file of readdirSync(libDir)) {
      for (const match of readFileSync(path.join(libDir, file), 'utf8').matchAll(/\$BENTO_DIR\/([A-Za-z0-9_.-]+)/g)) read.add(match[1] as string);
    }
    const bentos = clientFilesOf('x').map((file) => file.published);
    // .bento is the client's own state; the flake's files and configuration.nix reach the machine through its system.
    const others = ['.bento', 'flake.nix', 'flake.lock', 'configuration.nix'];
    expect([...read].filter((name) => !bentos.includes(name) && !others.includes(name)).sort()).toEqual([...CLIENT_FLAG_FILES].sort());
  });
});
