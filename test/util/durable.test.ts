/**
 * Flushing to the disk: what a power cut would show cannot be observed in a
 * test, so these check what can be: every kind of entry is flushed without
 * error, and a link is never followed.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { flush, flushParentSync, flushSync, flushTreeSync } from '../../src/util/durable.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-durable-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('flushing', () => {
  it('flushes a file and a directory, synchronously or not, without changing them', async () => {
    const file = path.join(dir, 'states.txt');
    writeFileSync(file, 'a=b\n', { mode: 0o600 });
    flushSync(file);
    flushSync(dir);
    await flush(file);
    flushParentSync(file);
    expect(readFileSync(file, 'utf8')).toBe('a=b\n');
  });

  it('refuses to follow a link, or to flush what does not exist', async () => {
    const target = path.join(dir, 'target');
    writeFileSync(target, 'x');
    symlinkSync(target, path.join(dir, 'link'));
    expect(() => flushSync(path.join(dir, 'link'))).toThrow(expect.objectContaining({ code: 'ELOOP' }));
    await expect(flush(path.join(dir, 'link'))).rejects.toMatchObject({ code: 'ELOOP' });
    expect(() => flushSync(path.join(dir, 'missing'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('flushes a whole tree, links inside it included as entries, never followed', () => {
    const tree = path.join(dir, 'tree');
    mkdirSync(path.join(tree, 'a', 'b'), { recursive: true });
    writeFileSync(path.join(tree, 'a', 'b', 'file'), 'y');
    // A link to a FIFO would block an open that followed it.
    symlinkSync('/nonexistent/bento-durable', path.join(tree, 'a', 'dangling'));
    symlinkSync('/dev/zero', path.join(tree, 'device'));
    expect(() => flushTreeSync(tree)).not.toThrow();
  });
});
