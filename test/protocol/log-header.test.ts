/**
 * The log header (docs/protocol.md §5): the one parser on recorded and
 * hostile texts, and on the header the real client writes (its update.sh run
 * against a fake server), read back from the uploaded file as the server
 * reads it.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { LOG_HEADER_MAX_BYTES, LOG_PROTOCOL_VERSION, parseLogHeader } from '../../src/protocol/log-header.js';
import { renderSystemFiles } from '../../src/render/render-fleet.js';
import { readLogHeaderFile } from '../../src/status/log-header-file.js';
import { configWith, withClientLibrary, writeRendered } from '../helpers/render.js';
import { isRoot, runClientScript, STUBS_DIR, writeFakeChroot } from '../helpers/shell.js';

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

describe('readLogHeaderFile', () => {
  const write = (name: string, content: Uint8Array) => {
    const file = path.join(dir, name);
    writeFileSync(file, content);
    return file;
  };

  it('reads the header of a gzip log, whole or cut short after it', async () => {
    const log = gzipSync(`${FIRST}\nprotocol: 1\nconfiguration: ${DIGEST}\n\n${'build output\n'.repeat(1000)}`);
    expect(await readLogHeaderFile(write('whole.log.gz', log))).toEqual({ protocol: 1, configuration: DIGEST });
    expect(await readLogHeaderFile(write('cut.log.gz', log.subarray(0, 60)))).toEqual({});
    const random = gzipSync(Buffer.concat([Buffer.from(`${FIRST}\nprotocol: 1\nconfiguration: ${DIGEST}\n\n`), Buffer.alloc(1 << 20, 1)]));
    expect(await readLogHeaderFile(write('long.log.gz', random.subarray(0, random.length - 100)))).toEqual({ protocol: 1, configuration: DIGEST });
  });

  it('says nothing of a file that is not gzip, a bomb, a link or a directory', async () => {
    expect(await readLogHeaderFile(write('plain.log.gz', Buffer.from(`${FIRST}\nprotocol: 1\nconfiguration: ${DIGEST}\n\n`)))).toEqual({});
    // 1 GiB of zeros in about 1 MiB: only its start is inflated.
    const bomb = gzipSync(Buffer.alloc(64 << 20), { level: 9 });
    expect(await readLogHeaderFile(write('bomb.log.gz', bomb))).toEqual({});
    const target = write('target.log.gz', gzipSync(`${FIRST}\nconfiguration: ${DIGEST}\n\n`));
    symlinkSync(target, path.join(dir, 'link.log.gz'));
    expect(await readLogHeaderFile(path.join(dir, 'link.log.gz'))).toEqual({});
    mkdirSync(path.join(dir, 'dir.log.gz'));
    expect(await readLogHeaderFile(path.join(dir, 'dir.log.gz'))).toEqual({});
    expect(await readLogHeaderFile(path.join(dir, 'missing.log.gz'))).toEqual({});
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
    const run = runClientScript(path.join(machine, 'systems/router/update.sh'), varBento, {
      tools: { sftp: path.join(STUBS_DIR, 'sftp'), ssh: path.join(STUBS_DIR, 'ssh'), 'nixos-rebuild': rebuild },
      toolEnv: { FAKE_SERVER: server },
    });
    expect(run.stderr).toContain('the build failed');
    const [log] = readdirSync(path.join(server, 'logs'));
    const published = readFileSync(path.join(server, 'last_change_date'), 'utf8').split(' ')[0];
    expect(await readLogHeaderFile(path.join(server, 'logs', log ?? ''))).toEqual({ protocol: LOG_PROTOCOL_VERSION, configuration: published });
  });
});
