/**
 * The builds stage without Nix (src/builds/build-systems.ts): what a system
 * is built from (its staging copy) and the line each build prints.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatBuildLine, stageForBuild, type ClientFileCopies } from '../../src/builds/build-systems.js';
import { UserError } from '../../src/errors.js';
import { sha256 } from '../../src/util/hash.js';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'bento-builds-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A snapshot of a host directory and a generated/ holding the client files of `name`. */
function fixture(name: string, hostFiles: Record<string, string>): { filesDir: string; generatedDir: string; stagingRoot: string } {
  const root = mkdtempSync(path.join(scratch, `${name}-`));
  const filesDir = path.join(root, 'snapshot');
  for (const [file, content] of Object.entries(hostFiles)) {
    mkdirSync(path.dirname(path.join(filesDir, file)), { recursive: true });
    writeFileSync(path.join(filesDir, file), content);
  }
  const generatedDir = path.join(root, 'generated');
  mkdirSync(path.join(generatedDir, 'client'), { recursive: true });
  mkdirSync(path.join(generatedDir, 'systems', name), { recursive: true });
  writeFileSync(path.join(generatedDir, 'client', 'gitignore'), '/.bento/\n');
  writeFileSync(path.join(generatedDir, 'client', 'bento-units.nix'), '{ }\n');
  writeFileSync(path.join(generatedDir, 'client', 'bento-module.nix'), '{ }\n');
  writeFileSync(path.join(generatedDir, 'client', 'bento-client.sh'), '# the client library\n');
  writeFileSync(path.join(generatedDir, 'systems', name, 'update.sh'), `# update.sh of ${name}\n`);
  writeFileSync(path.join(generatedDir, 'systems', name, 'bootstrap.sh'), `# bootstrap.sh of ${name}\n`);
  const stagingRoot = path.join(root, 'staging');
  mkdirSync(stagingRoot);
  return { filesDir, generatedDir, stagingRoot };
}

describe('stageForBuild', () => {
  it("lays out the host's files with the client files, which win over host files of the same name", async () => {
    const { filesDir, generatedDir, stagingRoot } = fixture('router', { 'configuration.nix': '{ }\n', 'update.sh': 'a host file of that name\n', 'sub/x.nix': 'x\n' });
    const dir = await stageForBuild({ name: 'router', kind: 'non-flake', filesDir, hostDirName: 'router' }, generatedDir, stagingRoot);
    expect(path.dirname(dir)).toBe(stagingRoot);
    expect(readdirSync(dir).sort()).toEqual(['.gitignore', 'bento-client.sh', 'bento-module.nix', 'bento-units.nix', 'bootstrap.sh', 'configuration.nix', 'sub', 'update.sh']);
    expect(readFileSync(path.join(dir, 'update.sh'), 'utf8')).toBe('# update.sh of router\n');
    expect(readFileSync(path.join(dir, 'sub', 'x.nix'), 'utf8')).toBe('x\n');
  });

  it("holds the snapshot's files as hard links, nothing written again, and never writes into one", async () => {
    const { filesDir, generatedDir, stagingRoot } = fixture('gateway', { 'configuration.nix': '{ }\n', 'update.sh': 'a host file of that name\n', 'sub/x.nix': 'x\n' });
    const dir = await stageForBuild({ name: 'gateway', kind: 'non-flake', filesDir, hostDirName: 'gateway' }, generatedDir, stagingRoot);
    expect(statSync(path.join(dir, 'sub', 'x.nix')).ino).toBe(statSync(path.join(filesDir, 'sub', 'x.nix')).ino);
    expect(readFileSync(path.join(dir, 'update.sh'), 'utf8')).toBe('# update.sh of gateway\n');
    // The host file the client's replaced was a link to the snapshot's: that one is as it was.
    expect(readFileSync(path.join(filesDir, 'update.sh'), 'utf8')).toBe('a host file of that name\n');
  });

  it("never links to generated/'s files, whose lstats generate's record trusts (a link changes a file's ctime)", async () => {
    const { filesDir, generatedDir, stagingRoot } = fixture('relay', { 'configuration.nix': '{ }\n', 'bento-client.sh': 'a host file of that name\n' });
    const generatedFiles = ['client/gitignore', 'client/bento-units.nix', 'client/bento-module.nix', 'client/bento-client.sh', 'systems/relay/update.sh', 'systems/relay/bootstrap.sh'];
    const before = generatedFiles.map((file) => lstatSync(path.join(generatedDir, file), { bigint: true }));
    const dir = await stageForBuild({ name: 'relay', kind: 'non-flake', filesDir, hostDirName: 'relay' }, generatedDir, stagingRoot);
    generatedFiles.forEach((file, index) => {
      const stats = lstatSync(path.join(generatedDir, file), { bigint: true });
      expect(stats.nlink, file).toBe(1n);
      expect([stats.ino, stats.ctimeNs], file).toEqual([before[index]?.ino, before[index]?.ctimeNs]);
    });
    expect(readFileSync(path.join(dir, 'bento-client.sh'), 'utf8')).toBe('# the client library\n');
    expect(readFileSync(path.join(dir, 'bootstrap.sh'), 'utf8')).toBe('# bootstrap.sh of relay\n');
  });

  it('writes the client files every system shares once for staging copies laid out together, even when the first is removed meanwhile', async () => {
    const { filesDir, generatedDir, stagingRoot } = fixture('alpha', { 'configuration.nix': '{ }\n' });
    mkdirSync(path.join(generatedDir, 'systems', 'beta'));
    writeFileSync(path.join(generatedDir, 'systems', 'beta', 'update.sh'), '# update.sh of beta\n');
    writeFileSync(path.join(generatedDir, 'systems', 'beta', 'bootstrap.sh'), '# bootstrap.sh of beta\n');
    chmodSync(path.join(generatedDir, 'client', 'bento-client.sh'), 0o755);
    const copies: ClientFileCopies = new Map();
    const alpha = await stageForBuild({ name: 'alpha', kind: 'non-flake', filesDir, hostDirName: 'alpha' }, generatedDir, stagingRoot, copies);
    const beta = await stageForBuild({ name: 'beta', kind: 'non-flake', filesDir, hostDirName: 'alpha' }, generatedDir, stagingRoot, copies);
    expect(statSync(path.join(beta, 'bento-module.nix')).ino).toBe(statSync(path.join(alpha, 'bento-module.nix')).ino);
    expect(statSync(path.join(beta, 'bento-client.sh')).mode & 0o777).toBe(0o755);
    expect(readFileSync(path.join(beta, 'update.sh'), 'utf8')).toBe('# update.sh of beta\n');
    rmSync(alpha, { recursive: true });
    rmSync(beta, { recursive: true });
    const again = await stageForBuild({ name: 'alpha', kind: 'non-flake', filesDir, hostDirName: 'alpha' }, generatedDir, stagingRoot, copies);
    expect(readFileSync(path.join(again, 'bento-module.nix'), 'utf8')).toBe('{ }\n');
    expect(readFileSync(path.join(again, 'update.sh'), 'utf8')).toBe('# update.sh of alpha\n');
  });

  it('copies, with their modes, the files of a generated/ on another file system', async () => {
    const { filesDir, generatedDir: local, stagingRoot } = fixture('printer', { 'configuration.nix': '{ }\n' });
    const generatedDir = mkdtempSync(path.join('/dev/shm', 'bento-builds-generated-'));
    try {
      cpSync(local, generatedDir, { recursive: true });
      chmodSync(path.join(generatedDir, 'systems', 'printer', 'bootstrap.sh'), 0o755);
      expect(statSync(generatedDir).dev).not.toBe(statSync(stagingRoot).dev);
      const dir = await stageForBuild({ name: 'printer', kind: 'non-flake', filesDir, hostDirName: 'printer' }, generatedDir, stagingRoot);
      expect(readFileSync(path.join(dir, 'update.sh'), 'utf8')).toBe('# update.sh of printer\n');
      expect(statSync(path.join(dir, 'bootstrap.sh')).mode & 0o777).toBe(0o755);
      expect(statSync(path.join(dir, 'update.sh')).ino).not.toBe(statSync(path.join(generatedDir, 'systems', 'printer', 'update.sh')).ino);
    } finally {
      rmSync(generatedDir, { recursive: true, force: true });
    }
  });

  it('copies a client file only while it holds what generate wrote: one replaced by a link since (to a file only root reads) fails the staging copy, and nothing of it is copied', async () => {
    const { filesDir, generatedDir, stagingRoot } = fixture('kiosk', { 'configuration.nix': '{ }\n' });
    /** What generate wrote, as deploy and build know it (RenderedFiles.lookup). */
    const written = new Map<string, { sha256: string; executable: boolean }>();
    for (const entry of readdirSync(generatedDir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const file = path.join(entry.parentPath, entry.name);
      written.set(path.relative(generatedDir, file), { sha256: sha256(readFileSync(file)), executable: false });
    }
    const digests = (generated: string) => written.get(generated);
    const system = { name: 'kiosk', kind: 'non-flake' as const, filesDir, hostDirName: 'kiosk' };
    const fine = await stageForBuild(system, generatedDir, stagingRoot, new Map(), digests);
    expect(readFileSync(path.join(fine, 'update.sh'), 'utf8')).toBe('# update.sh of kiosk\n');
    expect(statSync(path.join(fine, 'update.sh')).mode & 0o777).toBe(0o644);

    const secret = path.join(scratch, 'kiosk-secret');
    writeFileSync(secret, 'the server\'s signing key\n', { mode: 0o600 });
    const update = path.join(generatedDir, 'systems', 'kiosk', 'update.sh');
    rmSync(update);
    symlinkSync(secret, update);
    const swapped = stageForBuild(system, generatedDir, stagingRoot, new Map(), digests);
    await expect(swapped).rejects.toThrow(UserError);
    await expect(stageForBuild(system, generatedDir, stagingRoot, new Map(), digests)).rejects.toThrow(`${update} changed while bento copied it (it cannot be opened as a file: ELOOP)`);
    // Its own text in place of the link: not what generate wrote either.
    rmSync(update);
    writeFileSync(update, 'echo something else\n');
    await expect(stageForBuild(system, generatedDir, stagingRoot, new Map(), digests)).rejects.toThrow('it no longer holds what bento wrote there');
    for (const entry of readdirSync(stagingRoot, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) expect(readFileSync(path.join(entry.parentPath, entry.name), 'utf8')).not.toContain('signing key');
    }
  });

  it('makes a flake a git work tree with everything added, so a nested .gitignore leaves out what it leaves out on the machine', async () => {
    const { filesDir, generatedDir, stagingRoot } = fixture('laptop', { 'flake.nix': '{ }\n', 'secrets/.gitignore': '*.key\n', 'secrets/a.key': 'k\n', 'secrets/b.nix': 'b\n' });
    const dir = await stageForBuild({ name: 'laptop', kind: 'flake', filesDir, hostDirName: 'laptop' }, generatedDir, stagingRoot);
    const tracked = spawnSync('git', ['ls-files'], { cwd: dir, encoding: 'utf8' });
    expect(tracked.status).toBe(0);
    expect(tracked.stdout.trim().split('\n').sort()).toEqual(['.gitignore', 'bento-client.sh', 'bento-module.nix', 'bento-units.nix', 'bootstrap.sh', 'flake.nix', 'secrets/.gitignore', 'secrets/b.nix', 'update.sh']);
  });
});

describe('formatBuildLine', () => {
  it('prints a success with its time and the store path, shortened', () => {
    const storePath = '/nix/store/abcd1234efgh5678ijkl9012mnop3456-nixos-system-nas-24.05';
    expect(formatBuildLine({ name: 'nas', kind: 'flake', ok: true, storePath, log: '', seconds: 1.23 }, 6)).toBe('  ok      nas       1.2s  abcd1234…-nixos-system-nas-24.05');
  });

  it("prints a failure with Nix's error line: the cause, not the caret under the source or the consequence", () => {
    expect(formatBuildLine({ name: 'router', kind: 'non-flake', ok: false, error: 'error: builder failed\nerror: 1 dependency failed\n', log: '', seconds: 12.04 }, 6)).toBe(
      '  FAILED  router   12.0s  error: builder failed',
    );
    // As summarizeNixError gives a syntax error of Nix 2.8.
    const syntax = "error: syntax error, unexpected end of file, expecting ';'\n       at /nix/store/ji4rnc3lryzrxqa04swh6wwh259g0bs9-source/flake.nix:5:2:\n            4|   };\n            5| }\n             |  ^";
    expect(formatBuildLine({ name: 'nas', kind: 'flake', ok: false, error: syntax, log: '', seconds: 0.5 }, 3)).toBe("  FAILED  nas    0.5s  error: syntax error, unexpected end of file, expecting ';'");
  });
});
