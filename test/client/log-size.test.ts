/**
 * The client keeps its logs within LOG_SIZE_LIMIT (docs/protocol.md §5): a
 * build that prints more than fits is cut to its start and end, so the
 * server's prune never deletes a machine's real log and status reads it.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { renderSystemFiles } from '../../src/render/render-fleet.js';
import { configWith, withClientLibrary, writeRendered } from '../helpers/render.js';
import { installClient, isRoot, runClientScript, STUBS_DIR, writeFakeChroot } from '../helpers/shell.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-log-size-'));
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LIMIT = 64 * 1024;

describe.skipIf(!isRoot)('a log over LOG_SIZE_LIMIT', () => {
  it('is cut to its start and end, fits the limit, and says what was left out', () => {
    writeRendered(dir, withClientLibrary(renderSystemFiles(configWith({ logSizeLimit: LIMIT }), { name: 'router', kind: 'non-flake' })));
    // A fake server with a configuration whose build prints 1 MB it cannot compress, then fails.
    const server = path.join(dir, 'server');
    writeFakeChroot(server, { 'configuration.nix': '{ }\n' });
    const rebuild = path.join(dir, 'nixos-rebuild');
    writeFileSync(
      rebuild,
      '#!/bin/sh\necho "FIRST LINE of the build"\nhead -c 1000000 /dev/urandom | base64\necho "LAST LINE of the build"\nexit 1\n',
    );
    chmodSync(rebuild, 0o755);
    const varBento = path.join(dir, 'var-bento');
    mkdirSync(varBento);

    const run = runClientScript(installClient(path.join(dir, 'systems/router/update.sh'), varBento), varBento, {
      tools: { sftp: path.join(STUBS_DIR, 'sftp'), ssh: path.join(STUBS_DIR, 'ssh'), 'nixos-rebuild': rebuild },
      toolEnv: { FAKE_SERVER: server },
    });
    expect(run.stderr).toContain('the build failed');
    expect(run.status).toBe(1);
    const logs = readdirSync(path.join(server, 'logs'));
    // The log, and the heartbeat sent after it (docs/protocol.md §5a).
    expect(logs.sort()).toEqual([expect.stringMatching(/^\d{8}-\d{4}_00000000000000000000000000000000-unknown_failure\.log\.gz$/), 'heartbeat']);
    const log = path.join(server, 'logs', logs[0] ?? '');
    expect(statSync(log).size).toBeLessThanOrEqual(LIMIT);
    const text = gunzipSync(readFileSync(log)).toString();
    expect(text).toMatch(/^bento update of router on /);
    expect(text).toContain('FIRST LINE of the build');
    expect(text).toMatch(/\[bento: \d+ bytes of this log were left out here to fit LOG_SIZE_LIMIT\]/);
    expect(text.trimEnd().endsWith('LAST LINE of the build')).toBe(true);
  });
});
