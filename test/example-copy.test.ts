/**
 * example/README.md: the example fleet copied out of the repository builds,
 * with the commands that page gives (run as written, but for the copy's
 * place and the repository's path, and `bento` the built CLI).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { markedShellBlocks } from './helpers/marked-blocks.js';

const ROOT = path.join(import.meta.dirname, '..');
const work = mkdtempSync(path.join(os.tmpdir(), 'bento-example-copy-'));
// As /tmp/bento-example would be: configuration.nix files are evaluated as
// bento-eval (or nobody), who must be able to read the stand-in nixpkgs (docs/security.md).
chmodSync(work, 0o755);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The block of example/README.md marked `<!-- example: copy -->`. */
function copyBlock(): string {
  const page = readFileSync(path.join(ROOT, 'example', 'README.md'), 'utf8');
  const block = markedShellBlocks(page, 'example').find((marked) => marked.name === 'copy');
  if (!block) throw new Error('example/README.md has no block marked <!-- example: copy -->');
  return block.script;
}

describe('the example fleet, copied out of the repository', () => {
  it('builds every system with the settings example/README.md gives', () => {
    const block = copyBlock().replaceAll('/tmp/bento-example', path.join(work, 'fleet'));
    expect(block).toContain('bento build');
    const script = `bento() { node ${JSON.stringify(path.join(ROOT, 'dist', 'main.js'))} "$@"; }\nset -eu\n${block}`;
    const run = spawnSync('sh', ['-c', script], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work } });
    expect(run.stderr + run.stdout, run.stderr).toContain('build: 4 ok, 0 failed');
    expect(run.status).toBe(0);
  });

  it('needs the stand-in nixpkgs the page names: without NIX_PATH the non-flake router fails', () => {
    const block = copyBlock()
      .replaceAll('/tmp/bento-example', path.join(work, 'bare'))
      .replace(/^export NIX_PATH=\S+ /m, 'export NIX_PATH= ');
    const script = `bento() { node ${JSON.stringify(path.join(ROOT, 'dist', 'main.js'))} "$@"; }\n${block}`;
    const run = spawnSync('sh', ['-c', script], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work } });
    expect(run.stderr + run.stdout).toMatch(/router/);
    expect(run.status).not.toBe(0);
  });
});
