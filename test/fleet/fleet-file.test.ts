/**
 * fleet/fleet-file.ts: a file of the fleet read whole only as a regular
 * file and only up to a limit, refusals naming it. A FIFO in its place:
 * test/commands/generate-fifo.test.ts, through the CLI, in a child process.
 */
import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { FLEET_FILE_LIMIT, readFleetFile } from '../../src/fleet/fleet-file.js';

// A real path, as readFleetFile takes the fleet directory.
const fleet = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bento-fleet-file-')));
afterAll(() => rmSync(fleet, { recursive: true, force: true }));

describe('readFleetFile', () => {
  it('reads a regular file, through a link too', () => {
    writeFileSync(path.join(fleet, 'window'), '* 01:00-04:00\n');
    symlinkSync('window', path.join(fleet, 'REBOOT_WINDOW'));
    expect(readFleetFile(path.join(fleet, 'REBOOT_WINDOW'), 'hosts/laptop/REBOOT_WINDOW', 'its machines’ reboot window', fleet)).toBe('* 01:00-04:00\n');
  });

  it('refuses a link to a device (a read without end) and a file larger than the limit, naming it; open errors stay as they are', () => {
    symlinkSync('/dev/zero', path.join(fleet, 'laptop.pub'));
    expect(() => readFleetFile(path.join(fleet, 'laptop.pub'), 'keys/laptop.pub', 'the public key of laptop', fleet)).toThrow(
      new UserError('keys/laptop.pub is not a regular file: bento reads the public key of laptop from it'),
    );
    writeFileSync(path.join(fleet, 'uids.txt'), '');
    truncateSync(path.join(fleet, 'uids.txt'), FLEET_FILE_LIMIT + 1);
    expect(() => readFleetFile(path.join(fleet, 'uids.txt'), 'uids.txt', 'the uid of each system', fleet)).toThrow('uids.txt holds more than 16 MiB: bento reads the uid of each system from it, which takes far less');
    expect(() => readFleetFile(path.join(fleet, 'missing'), 'missing', 'nothing', fleet)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('reads a link out of the fleet directory only to a file everyone may read: its writer would read the rest in the messages', () => {
    const outside = mkdtempSync(path.join(os.tmpdir(), 'bento-fleet-file-outside-'));
    try {
      const inner = path.join(fleet, 'inner');
      mkdirSync(inner);
      // A file of root's (0600), and one in a directory only root may enter.
      writeFileSync(path.join(outside, 'secret'), 'root:$6$hash:20228::::::\n', { mode: 0o600 });
      mkdirSync(path.join(outside, 'private'), { mode: 0o700 });
      writeFileSync(path.join(outside, 'private', 'notes'), 'root:$6$hash:20228::::::\n', { mode: 0o644 });
      writeFileSync(path.join(outside, 'public'), '* 01:00-04:00\n', { mode: 0o644 });
      chmodSync(outside, 0o755);
      symlinkSync(path.join(outside, 'secret'), path.join(inner, 'a.pub'));
      symlinkSync(path.join(outside, 'private', 'notes'), path.join(inner, 'b.pub'));
      symlinkSync(path.join(outside, 'public'), path.join(inner, 'window'));
      for (const name of ['a.pub', 'b.pub']) {
        const message = (() => {
          try {
            readFleetFile(path.join(inner, name), `keys/${name}`, 'the public key of laptop', fleet);
            return 'read';
          } catch (error) {
            expect(error).toBeInstanceOf(UserError);
            return (error as Error).message;
          }
        })();
        expect(message).not.toContain('$6$');
        expect(message).toMatch(new RegExp(`^keys/${name.replace('.', '\\.')} is not read: it is ${outside}/.*, outside the fleet directory, which not everyone may read\\. bento reads the public key of laptop from it as root`));
      }
      expect(readFleetFile(path.join(inner, 'window'), 'hosts/laptop/REBOOT_WINDOW', 'the reboot window', fleet)).toBe('* 01:00-04:00\n');
      // Inside the fleet directory, a file only root may read is read (the fleet's own, where its writers keep it).
      writeFileSync(path.join(inner, 'own'), 'x y\n', { mode: 0o600 });
      symlinkSync('own', path.join(inner, 'own-link'));
      expect(readFleetFile(path.join(inner, 'own-link'), 'uids.txt', 'the uids', fleet)).toBe('x y\n');
      // No fleet directory (a host's REBOOT_WINDOW read from bento's snapshot): only what everyone may read.
      expect(() => readFleetFile(path.join(inner, 'own-link'), 'uids.txt', 'the uids', undefined)).toThrow(/which not everyone may read/);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
