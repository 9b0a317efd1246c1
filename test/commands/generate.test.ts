/** `bento generate`, run in-process on a fleet without flakes: what it says, and each failed host directory named, sanitized. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateCommand, reportBrokenHosts } from '../../src/commands/generate.js';
import { skippedHostDirMessage } from '../../src/fleet/fleet.js';
import { Collector } from '../helpers/collect.js';
import { makeFleet, type TestFleet } from '../helpers/fleet.js';

let fleet: TestFleet | undefined;
afterEach(() => {
  fleet?.cleanup();
  fleet = undefined;
});

describe('generateCommand', () => {
  it('says where it wrote, how many systems and files; then that nothing changed', async () => {
    fleet = makeFleet({ hosts: { router: { nonFlake: true } } });
    const outputDir = path.join(fleet.root, 'out');
    const first = { stdout: new Collector(), stderr: new Collector() };
    expect(await generateCommand({ fleetDir: fleet.root, outputDir }, first)).toBe(0);
    expect(first.stdout.text).toBe('');
    expect(first.stderr.text).toMatch(new RegExp(`^${outputDir}: 1 systems, [1-9][0-9]* files written, 0 unchanged, 0 removed\\n$`));
    expect(existsSync(path.join(outputDir, 'systems', 'router', 'update.sh'))).toBe(true);
    const again = { stdout: new Collector(), stderr: new Collector() };
    expect(await generateCommand({ fleetDir: fleet.root, outputDir }, again)).toBe(0);
    expect(again.stderr.text).toMatch(new RegExp(`^${outputDir}: 1 systems, 0 files written, [1-9][0-9]* unchanged, 0 removed\\n$`));
  });


  it('skips hosts/common (neither flake.nix nor configuration.nix) with one line, and generates the rest, server files included', async () => {
    fleet = makeFleet({ hosts: { router: { nonFlake: true }, common: { files: { 'base.nix': '{ }\n' } } } });
    const outputDir = path.join(fleet.root, 'out');
    const io = { stdout: new Collector(), stderr: new Collector() };
    expect(await generateCommand({ fleetDir: fleet.root, outputDir }, io)).toBe(0);
    const lines = io.stderr.text.trimEnd().split('\n');
    expect(lines).toEqual([skippedHostDirMessage('common'), expect.stringMatching(/: 1 systems, /) as string]);
    expect(existsSync(path.join(outputDir, 'systems', 'router', 'update.sh'))).toBe(true);
    expect(existsSync(path.join(outputDir, 'server', 'setup-debian.sh'))).toBe(true);
  });
});

describe('reportBrokenHosts', () => {
  it('names each failed host directory on a line of its own, its message sanitized', async () => {
    const stderr = new Collector();
    await reportBrokenHosts({ stdout: new Collector(), stderr }, [
      { hostDirName: 'a', place: 'hosts/a/flake.nix', message: 'syntax error\u001b[2J' },
      { hostDirName: 'b', place: 'hosts/b', message: 'not readable' },
    ]);
    expect(stderr.text).toBe('error: hosts/a/flake.nix: syntax error\\x1b[2J\nerror: hosts/b: not readable\n');
  });

  it("keeps the lines of Nix's error, which place it, under the host directory's line (never \\x0a)", async () => {
    const stderr = new Collector();
    const message = "error: undefined variable 'foo'\n       at /nix/store/iwfpmh9wmndixcrnvlgqgmgjv47dqgal-source/flake.nix:3:62:\n             |                                                              ^";
    await reportBrokenHosts({ stdout: new Collector(), stderr }, [{ hostDirName: 'a', place: 'hosts/a/flake.nix', message }]);
    expect(stderr.text).toBe(
      "error: hosts/a/flake.nix: undefined variable 'foo'\n         at /nix/store/iwfpmh9wmndixcrnvlgqgmgjv47dqgal-source/flake.nix:3:62:\n               |                                                              ^\n",
    );
  });
});
