/** A flake as the machine builds it: a git work tree with everything added, readable by everyone. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { addEverythingToGit, gitFlakeRef } from '../../src/nix/flake-tree.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-flake-tree-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let umask: number | undefined;
afterEach(() => {
  if (umask !== undefined) process.umask(umask);
  umask = undefined;
});

describe('addEverythingToGit', () => {
  it('tracks every file but those .gitignore files leave out, in a repository everyone can read', async () => {
    const tree = path.join(dir, 'host');
    mkdirSync(path.join(tree, 'sub'), { recursive: true });
    writeFileSync(path.join(tree, 'flake.nix'), '{ }\n');
    writeFileSync(path.join(tree, 'sub', 'kept.nix'), '{ }\n');
    writeFileSync(path.join(tree, 'sub', 'secret.key'), 'x\n');
    writeFileSync(path.join(tree, 'sub', '.gitignore'), '*.key\n');
    umask = process.umask(0o077);
    await addEverythingToGit(tree);
    const tracked = spawnSync('git', ['ls-files'], { cwd: tree, encoding: 'utf8', env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' } });
    expect(tracked.stdout.split('\n').filter(Boolean).sort()).toEqual(['flake.nix', 'sub/.gitignore', 'sub/kept.nix']);
    expect(statSync(path.join(tree, '.git', 'index')).mode & 0o044).toBe(0o044);
  });

  it("gives each tree git's top level only: none of the empty directories git makes when it first writes there", async () => {
    const tree = path.join(dir, 'bare');
    mkdirSync(tree);
    writeFileSync(path.join(tree, 'flake.nix'), '{ }\n');
    await addEverythingToGit(tree);
    expect(readdirSync(path.join(tree, '.git')).sort()).toEqual(['HEAD', 'config', 'index', 'objects', 'refs']);
    expect(readdirSync(path.join(tree, '.git', 'refs'))).toEqual([]);
    const head = spawnSync('git', ['rev-parse', '--git-dir'], { cwd: tree, encoding: 'utf8', env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' } });
    expect(head.stdout.trim()).toBe('.git');
  });
});

describe('gitFlakeRef', () => {
  it('names the work tree as a git+file: flake, with an attribute when given one', () => {
    expect(gitFlakeRef('/tmp/stage/web')).toBe('git+file:///tmp/stage/web');
    expect(gitFlakeRef('/tmp/stage/web', 'nixosConfigurations.web')).toBe('git+file:///tmp/stage/web#nixosConfigurations.web');
  });
});
