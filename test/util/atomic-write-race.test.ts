/**
 * util/atomic-write.ts as root, in a directory another user writes (the
 * evaluator, made by global-setup.ts, stands for generated/'s writers or
 * node-exporter's user): that user may rename root's new temporary file away
 * and put a link in its place at any moment, here right after its content
 * was written (node:fs wrapped only to give the user that moment), and root
 * must not change what the link leads to.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EVALUATOR_USER } from '../../src/nix/unprivileged.js';
import { temporaryPathOf, writeFileAtomically, writeFileAtomicallySync } from '../../src/util/atomic-write.js';

/** Runs once, right after the next write of a file's content. */
const race: { after?: () => void } = {};
function raced(): void {
  const after = race.after;
  race.after = undefined;
  after?.();
}

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const writeFileSync: typeof fs.writeFileSync = (...args) => {
    fs.writeFileSync(...args);
    raced();
  };
  return { ...fs, default: { ...fs, writeFileSync }, writeFileSync };
});
vi.mock('node:fs/promises', async (importOriginal) => {
  const fsp = await importOriginal<typeof import('node:fs/promises')>();
  const writeFile: typeof fsp.writeFile = async (...args) => {
    await fsp.writeFile(...args);
    raced();
  };
  const open: typeof fsp.open = async (...args) => {
    const handle = await fsp.open(...args);
    const write = handle.writeFile.bind(handle);
    handle.writeFile = async (...writeArgs) => {
      await write(...writeArgs);
      raced();
    };
    return handle;
  };
  return { ...fsp, default: { ...fsp, writeFile, open }, writeFile, open };
});

const { uid, gid } = (() => {
  const fields = spawnSync('getent', ['passwd', EVALUATOR_USER], { encoding: 'utf8' }).stdout.split(':');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
})();

let work: string;
let shared: string;
let victim: string;
beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'bento-atomic-race-'));
  chmodSync(work, 0o755);
  // The other user's directory, where root writes.
  shared = path.join(work, 'shared');
  mkdirSync(shared, { mode: 0o755 });
  chownSync(shared, uid, gid);
  // Root's, out of that user's reach.
  victim = path.join(work, 'shadow');
  writeFileSync(victim, 'secret\n', { mode: 0o600 });
  chmodSync(victim, 0o600);
});
afterEach(() => {
  race.after = undefined;
  rmSync(work, { recursive: true, force: true });
});

/** What the other user does: root's temporary file moved away, a link to the victim in its place. */
function swapForLink(temporary: string): () => void {
  return () => {
    const result = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', 'sh', '-c', 'mv "$1" "$1.moved" && ln -s "$2" "$1"', 'sh', temporary, victim], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
  };
}

describe.skipIf(process.getuid?.() !== 0).each([
  ['writeFileAtomicallySync', async (file: string) => writeFileAtomicallySync(file, 'new\n', 0o755, { durable: false })],
  ['writeFileAtomically', (file: string) => writeFileAtomically(file, 'new\n', 0o755, { durable: false })],
])('%s in a directory another user writes', (_name, write) => {
  it('sets the mode of the file it wrote, never of what a link swapped in for it leads to', async () => {
    const file = path.join(shared, 'bento.prom');
    race.after = swapForLink(temporaryPathOf(file));
    await write(file).catch(() => undefined);
    expect(race.after, 'the other user had its moment').toBeUndefined();
    expect(statSync(victim).mode & 0o7777).toBe(0o600);
    expect(statSync(victim).uid).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('secret\n');
    // The file root wrote, moved away by the other user, got its mode.
    expect(lstatSync(`${temporaryPathOf(file)}.moved`).mode & 0o7777).toBe(0o755);
  });
});
