/**
 * What the machine records is on its disk before it counts
 * (templates/client/lib/: record_file, queue_log,
 * install_config): the configuration it installs, the state that says which
 * configuration was tried, the logs it queues. Checked on the system calls
 * of a real run (strace), as the unit runs update.sh: every file renamed
 * into /var/bento was flushed before the rename, and its directory after.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderSystemFiles } from '../../src/render/render-fleet.js';
import { renderClientLibrary } from '../../src/render/client-library.js';
import { configWith, withClientLibrary, writeRendered } from '../helpers/render.js';
import { installClient, isRoot, runClientScript, STUBS_DIR, writeFakeChroot } from '../helpers/shell.js';
import { durabilityProblems, parseStraceLog } from '../helpers/strace.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-client-durable-'));
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!isRoot)('the client flushes what it records', () => {
  it('installs the configuration, records the state and queues its log, each flushed before its rename and its directory after', () => {
    writeRendered(dir, withClientLibrary(renderSystemFiles(configWith({}), { name: 'router', kind: 'non-flake' })));
    const server = path.join(dir, 'server');
    const script = path.join(dir, 'systems/router/update.sh');
    writeFakeChroot(server, { 'configuration.nix': '{ }\n', 'hardware.nix': '{ }\n', 'update.sh': readFileSync(script, 'utf8'), 'bento-client.sh': renderClientLibrary() });
    // A build that fails: the configuration is installed and recorded as tried, a failure log queued.
    const rebuild = path.join(dir, 'nixos-rebuild');
    writeFileSync(rebuild, '#!/bin/sh\necho "the build fails"\nexit 1\n', { mode: 0o755 });
    const varBento = path.join(dir, 'var-bento');
    mkdirSync(varBento, { mode: 0o700 });
    // The machine's earlier configuration, which the new one replaces.
    writeFileSync(path.join(varBento, 'configuration.nix'), '# the earlier one\n');
    const trace = path.join(dir, 'strace.log');

    const run = runClientScript(installClient(script, varBento), varBento, {
      tools: { sftp: path.join(STUBS_DIR, 'sftp'), ssh: path.join(STUBS_DIR, 'ssh'), 'nixos-rebuild': rebuild },
      toolEnv: { FAKE_SERVER: server },
      trace,
    });
    expect(run.stderr).toContain('the build failed');
    // The server has the log, so nothing stays queued: the check reads where it was queued.
    const onHost = (traced: string) => traced.replace(/^\/var\/bento(?=\/|$)/, varBento);
    const { problems, renamed } = durabilityProblems(parseStraceLog(readFileSync(trace, 'utf8')), {
      roots: ['/var/bento'],
      // Scratch: the build's log, git's own files while the download is made ready, the download itself, and
      // the heartbeat (sent, and written anew, on every run: docs/protocol.md §5a).
      ignore: (to) =>
        to.startsWith('/var/bento/.bento/incoming/') || to.startsWith('/var/bento/.bento/previous/') || to === '/var/bento/.bento/build.log' || to === '/var/bento/.bento/heartbeat',
      onHost,
    });
    expect(problems).toEqual([]);
    expect(renamed).toContain('/var/bento/.bento/state');
    expect(renamed).toContain('/var/bento/update.sh');
    expect(renamed).toContain('/var/bento/configuration.nix');
    expect(renamed.some((file) => /^\/var\/bento\/\.bento\/pending\/\d{8}-\d{4}_.*_failure\.log\.gz$/.test(file))).toBe(true);
  });
});
