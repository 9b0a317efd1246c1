/** `bento init`, run in-process: the fleet it writes, what it says next, and a refusal. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initCommand } from '../../src/commands/init.js';
import { UserError } from '../../src/errors.js';
import { INIT_FILES } from '../../src/render/init-fleet.js';
import { Collector } from '../helpers/collect.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'bento-init-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('initCommand', () => {
  it('says which files it created and what to do next, on stderr; nothing on stdout', async () => {
    const fleetDir = path.join(root, 'fleet');
    const stdout = new Collector();
    const stderr = new Collector();
    expect(await initCommand({ fleetDir }, { stdout, stderr })).toBe(0);
    expect(stdout.text).toBe('');
    expect(stderr.text).toBe([`created a bento fleet in ${fleetDir}:`, ...INIT_FILES.map((file) => `  ${file}`), 'next: edit config.sh, put each machine under hosts/ and its root key in keys/<name>.pub, then run `bento generate`', ''].join('\n'));
  });

  it('refuses an existing fleet with a UserError', async () => {
    const fleetDir = mkdtempSync(path.join(root, 'existing-'));
    writeFileSync(path.join(fleetDir, 'config.sh'), '');
    await expect(initCommand({ fleetDir }, { stdout: new Collector(), stderr: new Collector() })).rejects.toBeInstanceOf(UserError);
  });
});
