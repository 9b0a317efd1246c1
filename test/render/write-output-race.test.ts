/**
 * render/write-output.ts against a writer of generated/ who swaps one of its
 * directories for a link after bento looked at it (node:fs wrapped only to
 * give that writer its moment: right before bento removes an extra file, or
 * creates its temporary file): bento keeps working in the directory it
 * looked at, and nothing the link leads to is removed or replaced. A
 * removal that looks at its name first (Node's rm: an lstat, then the
 * removal) gets the writer's move after that look, its worst moment.
 */
import fs, { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { writeOutput } from '../../src/render/write-output.js';
import type { RenderedFile } from '../../src/render/render-fleet.js';

/**
 * Runs once, before the next call of the wrapped function on a name `when`
 * accepts; with `afterLook`, before the removal of that name acts, after
 * the look a removal takes at it first (rm's lstat).
 */
const race: { when?: (name: string) => boolean; swap?: () => void; afterLook?: boolean } = {};
function maybeRace(file: unknown, moment: 'call' | 'look' | 'removal' = 'call'): void {
  if (moment !== 'removal' && (moment === 'look') !== (race.afterLook ?? false)) return;
  if (typeof file !== 'string' || !race.when?.(path.basename(file))) return;
  const swap = race.swap;
  race.when = undefined;
  race.swap = undefined;
  swap?.();
}

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const rmSync: typeof fs.rmSync = (file, ...rest) => {
    maybeRace(file);
    fs.rmSync(file, ...rest);
  };
  const openSync = ((file: Parameters<typeof fs.openSync>[0], ...rest: unknown[]) => {
    maybeRace(file);
    return (fs.openSync as (...args: unknown[]) => number)(file, ...rest);
  }) as typeof fs.openSync;
  const unlinkSync: typeof fs.unlinkSync = (file) => {
    maybeRace(file, 'removal');
    fs.unlinkSync(file);
  };
  return { ...fs, default: { ...fs, rmSync, openSync, unlinkSync }, rmSync, openSync, unlinkSync };
});

// rm's own look, inside Node (which calls lstatSync of the real node:fs): the moment of afterLook.
const realFs = (await vi.importActual<{ default: { lstatSync: typeof fs.lstatSync } }>('node:fs')).default;
const realLstatSync = realFs.lstatSync;
beforeEach(() => {
  realFs.lstatSync = ((file: string, ...rest: unknown[]) => {
    const stats = (realLstatSync as (...args: unknown[]) => unknown)(file, ...rest);
    maybeRace(file, 'look');
    return stats;
  }) as typeof fs.lstatSync;
});
afterEach(() => {
  realFs.lstatSync = realLstatSync;
});

let work: string;
let outDir: string;
let victim: string;
beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'bento-write-race-'));
  outDir = path.join(work, 'generated');
  victim = path.join(work, 'etc');
  mkdirSync(victim);
  writeFileSync(path.join(victim, 'passwd'), 'root:x:0:0\n');
  writeFileSync(path.join(victim, 'update.sh'), 'the victim\'s own\n');
});
afterEach(() => {
  race.when = undefined;
  race.swap = undefined;
  race.afterLook = undefined;
  rmSync(work, { recursive: true, force: true });
});

const file = (content: string): RenderedFile => ({ path: 'systems/x/update.sh', content, mode: 0o644 });
/** The writer's move: systems/x renamed away, a link to the victim in its place. */
const swap = () => {
  renameSync(path.join(outDir, 'systems', 'x'), path.join(outDir, 'systems', 'x.moved'));
  symlinkSync(victim, path.join(outDir, 'systems', 'x'));
};

/** The writer's other move: the file at `file` replaced by a directory holding a file of its own. */
const directoryInPlaceOf = (file: string) => {
  rmSync(file);
  mkdirSync(file);
  writeFileSync(path.join(file, 'keep'), 'the writer\'s own\n');
};

describe('writeOutput, a directory of generated/ swapped for a link while it writes', () => {
  it('removes an extra file from the directory it looked at, never through the link', async () => {
    await writeOutput(outDir, [file('u\n')], { prune: true });
    writeFileSync(path.join(outDir, 'systems', 'x', 'passwd'), 'planted\n');
    race.when = (name) => name === 'passwd';
    race.swap = swap;
    await writeOutput(outDir, [file('u\n')], { prune: true });
    expect(race.swap).toBeUndefined(); // the moment came
    expect(readFileSync(path.join(victim, 'passwd'), 'utf8')).toBe('root:x:0:0\n');
    expect(existsSync(path.join(outDir, 'systems', 'x.moved', 'passwd'))).toBe(false);
  });

  it('replaces a file in the directory it looked at, never through the link', async () => {
    await writeOutput(outDir, [file('old\n')], { prune: true });
    race.when = (name) => name.startsWith('.update.sh.tmp-');
    race.swap = swap;
    await writeOutput(outDir, [file('new\n')], { prune: true });
    expect(race.swap).toBeUndefined();
    expect(readFileSync(path.join(victim, 'update.sh'), 'utf8')).toBe('the victim\'s own\n');
    expect(readFileSync(path.join(outDir, 'systems', 'x.moved', 'update.sh'), 'utf8')).toBe('new\n');
  });

  it('creates a missing file in the directory it made, never through the link', async () => {
    await writeOutput(outDir, [{ path: 'systems/x/other.sh', content: 'o\n', mode: 0o644 }], { prune: false });
    rmSync(path.join(victim, 'update.sh'));
    race.when = (name) => name === 'update.sh';
    race.swap = swap;
    await writeOutput(outDir, [file('created\n')], { prune: false });
    expect(race.swap).toBeUndefined();
    expect(existsSync(path.join(victim, 'update.sh'))).toBe(false);
    expect(readFileSync(path.join(outDir, 'systems', 'x.moved', 'update.sh'), 'utf8')).toBe('created\n');
  });

  it('never removes what is in a directory swapped in for an extra file after bento looked at it', async () => {
    await writeOutput(outDir, [file('u\n')], { prune: true });
    const extra = path.join(outDir, 'systems', 'x', 'passwd');
    writeFileSync(extra, 'planted\n');
    race.when = (name) => name === 'passwd';
    race.afterLook = true;
    race.swap = () => directoryInPlaceOf(extra);
    await writeOutput(outDir, [file('u\n')], { prune: true }).catch(() => undefined);
    expect(race.swap).toBeUndefined();
    expect(readFileSync(path.join(extra, 'keep'), 'utf8')).toBe('the writer\'s own\n');
  });

  it('never removes what is in a directory swapped in at its temporary name after bento looked at it', async () => {
    await writeOutput(outDir, [file('old\n')], { prune: true });
    const temporary = path.join(outDir, 'systems', 'x', `.update.sh.tmp-${process.pid}`);
    writeFileSync(temporary, 'planted\n');
    race.when = (name) => name === path.basename(temporary);
    race.afterLook = true;
    race.swap = () => directoryInPlaceOf(temporary);
    await writeOutput(outDir, [file('new\n')], { prune: true }).catch(() => undefined);
    expect(race.swap).toBeUndefined();
    expect(readFileSync(path.join(temporary, 'keep'), 'utf8')).toBe('the writer\'s own\n');
  });

  it('never enters another directory its path leads to meanwhile, when it must enter the output directory again', async () => {
    // The fleet reached through a link its writers control (above generated/): repointed, with a directory moved so that '..' leads elsewhere.
    const fleetA = path.join(work, 'fleet-a');
    const fleetB = path.join(work, 'fleet-b');
    const fleet = path.join(work, 'fleet');
    mkdirSync(fleetA);
    symlinkSync(fleetA, fleet);
    const files = (content: string): RenderedFile[] => ['x', 'y'].map((name) => ({ path: `systems/${name}/update.sh`, content, mode: 0o644 }));
    const other = path.join(fleetB, 'generated', 'systems', 'y', 'update.sh');
    mkdirSync(path.dirname(other), { recursive: true });
    writeFileSync(other, 'another fleet\'s\n');
    await writeOutput(path.join(fleet, 'generated'), files('old\n'), { prune: true });
    race.when = (name) => name === `.update.sh.tmp-${process.pid}`;
    race.swap = () => {
      renameSync(path.join(fleetA, 'generated', 'systems', 'x'), path.join(fleetA, 'generated', 'x.moved'));
      rmSync(fleet);
      symlinkSync(fleetB, fleet);
    };
    await expect(writeOutput(path.join(fleet, 'generated'), files('new\n'), { prune: true })).rejects.toThrow('changed while bento wrote in it');
    expect(race.swap).toBeUndefined();
    expect(readFileSync(other, 'utf8')).toBe('another fleet\'s\n');
  });

  it('never goes back to another directory its working directory\'s path leads to meanwhile', async () => {
    const home = path.join(work, 'home');
    mkdirSync(home);
    await writeOutput(outDir, [file('old\n')], { prune: true });
    race.when = (name) => name === `.update.sh.tmp-${process.pid}`;
    race.swap = () => {
      renameSync(home, `${home}.moved`);
      symlinkSync(victim, home);
    };
    const before = process.cwd();
    process.chdir(home);
    try {
      await writeOutput(outDir, [file('new\n')], { prune: true });
      expect(race.swap).toBeUndefined();
      expect(process.cwd()).not.toBe(victim);
      expect(process.cwd()).toBe('/');
    } finally {
      process.chdir(before);
    }
  });

  it('goes back to the working directory it had, and refuses a directory that is a link when it enters it', async () => {
    const before = process.cwd();
    await writeOutput(outDir, [file('u\n')], { prune: true });
    swap();
    await expect(writeOutput(outDir, [file('v\n')], { prune: true })).rejects.toThrow(`${path.join(outDir, 'systems', 'x')} is a symbolic link (to ${victim})`);
    expect(process.cwd()).toBe(before);
    expect(readFileSync(path.join(victim, 'update.sh'), 'utf8')).toBe('the victim\'s own\n');
  });
});
