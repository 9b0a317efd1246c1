/**
 * util/confined-file.ts: whether a file opened by path may be shown to
 * whoever chose the path — inside the boundary, or readable by everyone.
 * Through the fleet's files: test/fleet/fleet-file.test.ts, config.sh in
 * test/config/config.test.ts.
 */
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { confinementProblem, notToBeShownMessage } from '../../src/util/confined-file.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'bento-confined-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
chmodSync(root, 0o755);
const fleet = path.join(root, 'fleet');
mkdirSync(fleet, { mode: 0o755 });

describe('confinementProblem', () => {
  it('lets a file inside the boundary be read whatever its mode, and one outside only when everyone may read it', () => {
    writeFileSync(path.join(fleet, 'own'), 'x', { mode: 0o600 });
    const own = path.join(fleet, 'own');
    expect(confinementProblem(own, statSync(own), fleet)).toBeUndefined();
    writeFileSync(path.join(root, 'public'), 'x', { mode: 0o644 });
    symlinkSync(path.join(root, 'public'), path.join(fleet, 'public-link'));
    expect(confinementProblem(path.join(fleet, 'public-link'), statSync(path.join(root, 'public')), fleet)).toBeUndefined();
    writeFileSync(path.join(root, 'secret'), 'x', { mode: 0o640 });
    symlinkSync(path.join(root, 'secret'), path.join(fleet, 'secret-link'));
    expect(confinementProblem(path.join(fleet, 'secret-link'), statSync(path.join(root, 'secret')), fleet)).toBe(`it is ${path.join(root, 'secret')}, outside the fleet directory, which not everyone may read`);
    // No boundary: only what everyone may read, the fleet's own file too.
    expect(confinementProblem(own, statSync(own), undefined)).toBe(`it is ${own}, which not everyone may read`);
  });

  it('counts a directory above that others may not search as unreadable, though the file itself is 0644', () => {
    mkdirSync(path.join(root, 'private'), { mode: 0o700 });
    writeFileSync(path.join(root, 'private', 'notes'), 'x', { mode: 0o644 });
    symlinkSync(path.join(root, 'private', 'notes'), path.join(fleet, 'notes-link'));
    expect(confinementProblem(path.join(fleet, 'notes-link'), statSync(path.join(root, 'private', 'notes')), fleet)).toMatch(/which not everyone may read$/);
  });

  it('refuses when the file found at its real path is not the one opened (a link switched in between)', () => {
    writeFileSync(path.join(fleet, 'other'), 'y', { mode: 0o644 });
    const opened = statSync(path.join(root, 'public'));
    expect(confinementProblem(path.join(fleet, 'other'), opened, fleet)).toBe('it changed while bento opened it (a link switched?)');
    expect(confinementProblem(path.join(fleet, 'gone'), opened, fleet)).toBe('it cannot be found again (ENOENT)');
    expect(lstatSync(path.join(fleet, 'public-link')).isSymbolicLink()).toBe(true);
  });

  it('words the refusal with what bento reads from the file and what to do', () => {
    expect(notToBeShownMessage('keys/a.pub', 'the public key of a', 'it is /etc/shadow, outside the fleet directory, which not everyone may read')).toBe(
      'keys/a.pub is not read: it is /etc/shadow, outside the fleet directory, which not everyone may read. bento reads the public key of a from it as root and quotes it in its messages: keep the file in the fleet directory, or make it readable by everyone',
    );
  });
});
