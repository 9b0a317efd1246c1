/**
 * The log header (docs/protocol.md §5): the one parser on recorded and
 * hostile texts, and on the header the real client writes (its update.sh run
 * against a fake server), read back from the uploaded file as the server
 * reads it.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOG_HEADER_MAX_BYTES, LOG_PROTOCOL_VERSION, parseLogHeader } from '../../src/protocol/log-header.js';
import { renderSystemFiles } from '../../src/render/render-fleet.js';
import { readLogHeaderFile } from '../../src/status/log-header-file.js';
import { configWith, withClientLibrary, writeRendered } from '../helpers/render.js';
import { installClient, isRoot, runClientScript, STUBS_DIR, writeFakeChroot } from '../helpers/shell.js';

const DIGEST = 'ab'.repeat(32);
const FIRST = 'bento update of web-1 on 2026-11-26 10:00:00 UTC';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-log-header-'));
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('parseLogHeader', () => {
  it('reads the protocol version and the configuration of a version 1 header', () => {
    const text = `${FIRST}\nprotocol: 1\nconfiguration: ${DIGEST} 2026-11-26T10:00:00Z\n\nbuilding the configuration\n`;
    expect(parseLogHeader(text)).toEqual({ protocol: 1, configuration: DIGEST });
  });

  it('reads the configuration of a client older than version 1 (no protocol line), and knows nothing of a log without a header', () => {
    expect(parseLogHeader(`${FIRST}\nconfiguration: ${DIGEST} 2026-11-26T10:00:00Z\n\nbuilding\n`)).toEqual({ configuration: DIGEST });
    // The original bento's log: build output from its first line.
    expect(parseLogHeader(`building the system configuration...\nconfiguration: ${DIGEST}\n\nactivating\n`)).toEqual({});
    expect(parseLogHeader('')).toEqual({});
  });

  it('skips keys it does not know (a later version adds some) and reads a later version number', () => {
    expect(parseLogHeader(`${FIRST}\nprotocol: 3\nheartbeat: 60\nconfiguration: ${DIGEST}\n\n`)).toEqual({ protocol: 3, configuration: DIGEST });
  });

  it('takes a value that is not of its form, or a key given twice, as unknown', () => {
    expect(parseLogHeader(`${FIRST}\nprotocol: 1\nconfiguration: \n\n`)).toEqual({ protocol: 1 });
    expect(parseLogHeader(`${FIRST}\nprotocol: one\nconfiguration: ${DIGEST.toUpperCase()}\n\n`)).toEqual({});
    expect(parseLogHeader(`${FIRST}\nprotocol: 1\nconfiguration: ${DIGEST}x\n\n`)).toEqual({ protocol: 1 });
    expect(parseLogHeader(`${FIRST}\nconfiguration: ${DIGEST}\nconfiguration: ${'cd'.repeat(32)}\n\n`)).toEqual({});
    expect(parseLogHeader(`${FIRST}\nprotocol: 1\nprotocol: 1\n\n`)).toEqual({});
  });

  it('finds no header past LOG_HEADER_MAX_BYTES, nor after a first line that is not bento\'s', () => {
    const padding = `note: ${'x'.repeat(LOG_HEADER_MAX_BYTES)}\n`;
    expect(parseLogHeader(`${FIRST}\n${padding}configuration: ${DIGEST}\n\n`)).toEqual({});
    expect(parseLogHeader(`evil\n${FIRST}\nconfiguration: ${DIGEST}\n\n`)).toEqual({});
    expect(parseLogHeader(`bento update of ../../etc on now\nconfiguration: ${DIGEST}\n\n`)).toEqual({});
  });
});

describe.skipIf(!isRoot)('the header the client writes', () => {
  it('names the protocol version and the configuration the run applied, as the server parses it', async () => {
    const machine = path.join(dir, 'client');
    writeRendered(machine, withClientLibrary(renderSystemFiles(configWith({}), { name: 'router', kind: 'non-flake' })));
    const server = path.join(machine, 'server');
    writeFakeChroot(server, { 'configuration.nix': '{ }\n' });
    const rebuild = path.join(machine, 'nixos-rebuild');
    writeFileSync(rebuild, '#!/bin/sh\necho "the build fails"\nexit 1\n', { mode: 0o755 });
    const varBento = path.join(machine, 'var-bento');
    mkdirSync(varBento);
    const run = runClientScript(installClient(path.join(machine, 'systems/router/update.sh'), varBento), varBento, {
      tools: { sftp: path.join(STUBS_DIR, 'sftp'), ssh: path.join(STUBS_DIR, 'ssh'), 'nixos-rebuild': rebuild },
      toolEnv: { FAKE_SERVER: server },
    });
    expect(run.stderr).toContain('the build failed');
    const [log] = readdirSync(path.join(server, 'logs'));
    const published = readFileSync(path.join(server, 'last_change_date'), 'utf8').split(' ')[0];
    expect(await readLogHeaderFile(path.join(server, 'logs', log ?? ''))).toEqual({ protocol: LOG_PROTOCOL_VERSION, configuration: published });
  });
});
