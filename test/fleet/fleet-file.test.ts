/**
 * fleet/fleet-file.ts: a file of the fleet read whole only as a regular
 * file and only up to a limit, refusals naming it. A FIFO in its place:
 * test/commands/generate-fifo.test.ts, through the CLI, in a child process.
 */
import { mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { FLEET_FILE_LIMIT, readFleetFile } from '../../src/fleet/fleet-file.js';

const fleet = mkdtempSync(path.join(os.tmpdir(), 'bento-fleet-file-'));
afterAll(() => rmSync(fleet, { recursive: true, force: true }));

describe('readFleetFile', () => {
  it('reads a regular file, through a link too', () => {
    writeFileSync(path.join(fleet, 'window'), '* 01:00-04:00\n');
    symlinkSync('window', path.join(fleet, 'REBOOT_WINDOW'));
    expect(readFleetFile(path.join(fleet, 'REBOOT_WINDOW'), 'hosts/laptop/REBOOT_WINDOW', 'its machines’ reboot window')).toBe('* 01:00-04:00\n');
  });

  it('refuses a link to a device (a read without end) and a file larger than the limit, naming it; open errors stay as they are', () => {
    symlinkSync('/dev/zero', path.join(fleet, 'laptop.pub'));
    expect(() => readFleetFile(path.join(fleet, 'laptop.pub'), 'keys/laptop.pub', 'the public key of laptop')).toThrow(
      new UserError('keys/laptop.pub is not a regular file: bento reads the public key of laptop from it'),
    );
    writeFileSync(path.join(fleet, 'uids.txt'), '');
    truncateSync(path.join(fleet, 'uids.txt'), FLEET_FILE_LIMIT + 1);
    expect(() => readFleetFile(path.join(fleet, 'uids.txt'), 'uids.txt', 'the uid of each system')).toThrow('uids.txt holds more than 16 MiB: bento reads the uid of each system from it, which takes far less');
    expect(() => readFleetFile(path.join(fleet, 'missing'), 'missing', 'nothing')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});
