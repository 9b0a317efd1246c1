/** What a system's config/ must hold: its host files and its generated client files (which win), hashed, with their manifest. */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assembleSystem, HashCache, RenderedFiles } from '../../src/chroot/assemble.js';
import { UserError } from '../../src/errors.js';
import { renderManifest } from '../../src/protocol/manifest.js';
import { clientFilesOf } from '../../src/render/render-fleet.js';
import { sha256 } from '../../src/util/hash.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'bento-assemble-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** hosts/web with a configuration.nix and a file named as a generated one; generated/ with web's client files. */
function fleet(name: string): { filesDir: string; generatedDir: string; clientFiles: { generated: string; published: string }[] } {
  const filesDir = path.join(root, name, 'hosts', 'web');
  const generatedDir = path.join(root, name, 'generated');
  const clientFiles = clientFilesOf('web');
  mkdirSync(path.join(filesDir, 'sub'), { recursive: true });
  writeFileSync(path.join(filesDir, 'configuration.nix'), '{ }\n');
  writeFileSync(path.join(filesDir, 'sub', 'run.sh'), 'echo\n');
  chmodSync(path.join(filesDir, 'sub', 'run.sh'), 0o755);
  writeFileSync(path.join(filesDir, clientFiles[0]!.published), 'the host\'s own\n');
  for (const { generated } of clientFiles) {
    mkdirSync(path.dirname(path.join(generatedDir, generated)), { recursive: true });
    writeFileSync(path.join(generatedDir, generated), `generated ${generated}\n`, { mode: 0o755 });
  }
  return { filesDir, generatedDir, clientFiles };
}

describe('assembleSystem', () => {
  it('lists host files then client files sorted, the client files winning, with their hashes, modes and manifest', () => {
    const { filesDir, generatedDir, clientFiles } = fleet('a');
    const assembly = assembleSystem({ name: 'web', filesDir, hostDirName: 'web' }, generatedDir, new HashCache());
    const shadowedFile = clientFiles[0]!.published;
    expect(assembly.shadowed).toEqual([shadowedFile]);
    const relatives = assembly.files.map((file) => file.relative);
    expect(relatives).toEqual([...relatives].sort());
    expect(relatives).toEqual(expect.arrayContaining(['configuration.nix', 'sub/run.sh', ...clientFiles.map((file) => file.published)]));
    const byPath = new Map(assembly.files.map((file) => [file.relative, file]));
    expect(byPath.get(shadowedFile)).toMatchObject({ source: path.join(generatedDir, clientFiles[0]!.generated), sha256: sha256(`generated ${clientFiles[0]!.generated}\n`), executable: true });
    expect(byPath.get('configuration.nix')).toMatchObject({ sha256: sha256('{ }\n'), executable: false });
    expect(byPath.get('sub/run.sh')?.executable).toBe(true);
    expect(assembly.manifest).toBe(renderManifest(assembly.files.map((file) => ({ path: file.relative, sha256: file.sha256 }))));
    expect(assembly.digest).toBe(sha256(assembly.manifest));
    expect(assembly.name).toBe('web');
  });

  it('refuses to assemble without the generated files, saying to run bento generate', () => {
    const { filesDir, generatedDir, clientFiles } = fleet('b');
    rmSync(path.join(generatedDir, clientFiles[0]!.generated));
    expect(() => assembleSystem({ name: 'web', filesDir, hostDirName: 'web' }, generatedDir, new HashCache())).toThrow(UserError);
    expect(() => assembleSystem({ name: 'web', filesDir, hostDirName: 'web' }, generatedDir, new HashCache())).toThrow('is missing: run `bento generate`');
  });
});

describe('RenderedFiles', () => {
  it('gives the generated files their digest and mode from what was rendered, the same assembly as from the disk; a file not rendered is read', () => {
    const { filesDir, generatedDir, clientFiles } = fleet('c');
    const fromDisk = assembleSystem({ name: 'web', filesDir, hostDirName: 'web' }, generatedDir, new HashCache());
    const [first, second, ...rest] = clientFiles.map((file) => file.generated);
    // As render-fleet gives them: text alone, or text with the parts it is written from.
    const text = (generated: string) => `generated ${generated}\n`;
    const rendered = new RenderedFiles([
      { path: first!, content: text(first!), mode: 0o755 },
      { path: second!, content: text(second!), mode: 0o755, bytes: [Buffer.from('generated '), Buffer.from(`${second!}\n`)] },
      ...rest.slice(1).map((generated) => ({ path: generated, content: text(generated), mode: 0o755 })),
    ]);
    expect(rendered.lookup(second!)).toEqual({ sha256: sha256(text(second!)), executable: true });
    expect(rendered.lookup('systems/other/update.sh')).toBeUndefined();
    expect(assembleSystem({ name: 'web', filesDir, hostDirName: 'web' }, generatedDir, new HashCache(), rendered)).toEqual(fromDisk);
    // What was rendered is what counts for those files; the one left out (rest[0]) is read from generated/.
    writeFileSync(path.join(generatedDir, rest[0]!), 'changed on the disk\n');
    writeFileSync(path.join(generatedDir, first!), 'changed too\n');
    const mixed = new Map(assembleSystem({ name: 'web', filesDir, hostDirName: 'web' }, generatedDir, new HashCache(), rendered).files.map((file) => [file.source, file]));
    expect(mixed.get(path.join(generatedDir, rest[0]!))?.sha256).toBe(sha256('changed on the disk\n'));
    expect(mixed.get(path.join(generatedDir, first!))?.sha256).toBe(sha256(text(first!)));
    expect(new RenderedFiles([{ path: first!, content: '', mode: 0o644 }]).lookup(first!)?.executable).toBe(false);
  });
});

describe('HashCache', () => {
  it('hashes a file once while its size and mtime stay, again when they change', () => {
    const file = path.join(root, 'cached');
    writeFileSync(file, 'one');
    utimesSync(file, 1_000, 1_000);
    const cache = new HashCache();
    expect(cache.hash(file)).toBe(sha256('one'));
    writeFileSync(file, 'two');
    utimesSync(file, 1_000, 1_000);
    expect(cache.hash(file)).toBe(sha256('one')); // same size and mtime: taken as unchanged
    utimesSync(file, 2_000, 2_000);
    expect(cache.hash(file)).toBe(sha256('two'));
  });
});
