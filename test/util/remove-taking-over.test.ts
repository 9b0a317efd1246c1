/**
 * util/remove-taking-over.ts, as root with a real second user (the
 * evaluator, made by global-setup.ts): a tree partly that user's is removed
 * without following a link, and each directory is root's and closed to
 * that user before it is listed, so that the user cannot swap what root is
 * about to step into.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EVALUATOR_USER } from '../../src/nix/unprivileged.js';
import { removeTakingOver } from '../../src/util/remove-taking-over.js';

let work: string;
let outside: string;
const { uid, gid } = (() => {
  const fields = spawnSync('getent', ['passwd', EVALUATOR_USER], { encoding: 'utf8' }).stdout.split(':');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
})();

/** Runs `sh -c script DIR` as the evaluator. */
function asEvaluator(script: string, dir: string) {
  return spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', 'sh', '-c', script, 'sh', dir], { encoding: 'utf8' });
}

beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'bento-take-over-'));
  outside = path.join(work, 'outside');
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'keep'), 'root\'s\n');
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

/** A directory of root's holding a home of the evaluator's, with its own directories, a file and a link out. */
function makeTree(): { dir: string; home: string } {
  const dir = path.join(work, 'eval');
  const home = path.join(dir, 'home');
  mkdirSync(path.join(home, '.cache', 'nix'), { recursive: true });
  writeFileSync(path.join(home, '.cache', 'nix', 'fetcher-cache'), 'x');
  symlinkSync(outside, path.join(home, '.cache', 'out'));
  for (const each of [home, path.join(home, '.cache'), path.join(home, '.cache', 'nix'), path.join(home, '.cache', 'nix', 'fetcher-cache')]) chownSync(each, uid, gid);
  chmodSync(home, 0o700);
  chmodSync(dir, 0o750);
  chownSync(dir, 0, gid);
  return { dir, home };
}

describe.skipIf(process.getuid?.() !== 0)('removeTakingOver', () => {
  it('removes a tree partly another user\'s, removing its links, never what they lead to', () => {
    const { dir } = makeTree();
    removeTakingOver(dir);
    expect(existsSync(dir)).toBe(false);
    expect(readFileSync(path.join(outside, 'keep'), 'utf8')).toBe('root\'s\n');
  });

  it('takes each directory over before listing it: the other user can then neither swap it for a link nor add to it', () => {
    const { dir, home } = makeTree();
    const seen: string[] = [];
    removeTakingOver(dir, (current) => {
      seen.push(path.relative(dir, current));
      const stats = lstatSync(current);
      expect(stats.uid, current).toBe(0);
      expect(stats.mode & 0o777, current).toBe(0o700);
      if (current === path.join(home, '.cache')) {
        // What a process of the evaluator's would try: its directory swapped for a link out.
        expect(asEvaluator('mv "$1/nix" "$1/nix.old" && ln -s ../../../outside "$1/nix"', current).status).not.toBe(0);
        expect(asEvaluator('mkdir "$1/more"', current).status).not.toBe(0);
      }
    });
    expect(seen).toEqual(['', 'home', 'home/.cache', 'home/.cache/nix']);
    expect(existsSync(dir)).toBe(false);
    expect(readFileSync(path.join(outside, 'keep'), 'utf8')).toBe('root\'s\n');
  });

  it('is no error for a missing directory, and removes a link in its place without following it', () => {
    expect(() => removeTakingOver(path.join(work, 'missing'))).not.toThrow();
    const link = path.join(work, 'link');
    symlinkSync(outside, link);
    removeTakingOver(link);
    expect(existsSync(link)).toBe(false);
    expect(readFileSync(path.join(outside, 'keep'), 'utf8')).toBe('root\'s\n');
  });
});
