/**
 * Flushing to the disk: what a power cut would show cannot be observed in a
 * test, so these check what can be: every kind of entry is flushed without
 * error, and a link is never followed.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { flush, flushParentSync, flushSync, flushTreeSync, runStepsSync, runStepsTogether, treeToFlush, type DurableSteps } from '../../src/util/durable.js';

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

describe('durable steps', () => {
  /** Steps that record what happens to them: a write asking for `asks` in turn, then returning `name`. */
  function recorded(name: string, asks: string[][], log: string[]): DurableSteps<string> {
    return (function* () {
      for (const [step, files] of asks.entries()) {
        log.push(`${name} step ${step}`);
        try {
          yield files;
        } catch (error) {
          log.push(`${name} caught ${(error as NodeJS.ErrnoException).code}`);
          throw error;
        }
      }
      log.push(`${name} done`);
      return name;
    })();
  }

  it('lists a tree as flushTreeSync flushes it: files, then the directory holding them, links left out', () => {
    const tree = path.join(dir, 'listed');
    mkdirSync(path.join(tree, 'sub'), { recursive: true });
    writeFileSync(path.join(tree, 'sub', 'f'), 'f');
    writeFileSync(path.join(tree, 'g'), 'g');
    symlinkSync('/dev/zero', path.join(tree, 'link'));
    const listed = treeToFlush(tree);
    expect([...listed].sort()).toEqual([tree, path.join(tree, 'g'), path.join(tree, 'sub'), path.join(tree, 'sub', 'f')].sort());
    expect(listed.indexOf(path.join(tree, 'sub', 'f'))).toBeLessThan(listed.indexOf(path.join(tree, 'sub')));
    expect(listed.at(-1)).toBe(tree);
  });

  it('runs steps alone: each asks, is flushed, goes on; a flush that fails is thrown at its step', () => {
    const file = path.join(dir, 'alone');
    writeFileSync(file, 'x');
    const log: string[] = [];
    expect(runStepsSync(recorded('a', [[file], [dir]], log))).toBe('a');
    expect(log).toEqual(['a step 0', 'a step 1', 'a done']);
    const failing: string[] = [];
    expect(() => runStepsSync(recorded('b', [[file], [path.join(dir, 'missing')], [dir]], failing))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(failing).toEqual(['b step 0', 'b step 1', 'b caught ENOENT']);
  });

  it('runs many writes step by step together; the failure of one is its own', async () => {
    const file = path.join(dir, 'together');
    writeFileSync(file, 'x');
    const log: string[] = [];
    const thrower = (function* (): DurableSteps<string> {
      log.push('t step 0');
      yield [file];
      throw new Error('t failed');
    })();
    const outcomes = await runStepsTogether([
      recorded('a', [[file, dir], [dir]], log),
      recorded('b', [[path.join(dir, 'missing')], [dir]], log),
      thrower,
      recorded('c', [], log),
    ]);
    expect(outcomes).toEqual([
      { ok: true, value: 'a' },
      { ok: false, error: expect.objectContaining({ code: 'ENOENT' }) },
      { ok: false, error: new Error('t failed') },
      { ok: true, value: 'c' },
    ]);
    // In step: every first step before any second one.
    expect(log.slice(0, 4)).toEqual(['a step 0', 'b step 0', 't step 0', 'c done']);
    expect(log.slice(4)).toEqual(['a step 1', 'b caught ENOENT', 'a done']);
    await expect(runStepsTogether([])).resolves.toEqual([]);
  });
});
