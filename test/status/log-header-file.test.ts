import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { readLogHeaderFile } from '../../src/status/log-header-file.js';

const DIGEST = 'ab'.repeat(32);
const FIRST = 'bento update of web-1 on 2026-11-26 10:00:00 UTC';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-log-header-'));
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
