/** The logs a rollout's decisions read: those received since each system's wave was published, with their headers. */
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { readRolloutLogs } from '../../src/rollout/reported-logs.js';
import { writtenRolloutState } from '../helpers/rollout-state.js';
import { addSystem, ago, logName, makeChroot, writeLog } from '../status/fixtures.js';

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

const DIGEST = 'ab'.repeat(32);

describe('readRolloutLogs', () => {
  it('gives each published system the logs since its publication, but autoupdate ones, with their headers', async () => {
    const made = await makeChroot();
    cleanup = made.cleanup;
    const before = logName('cnw', 'failure', '20240601-1151');
    const after = logName('cnw', 'success', '20240601-1155');
    const auto = logName('cnw', 'autoupdate', '20240601-1157');
    await addSystem(made.dir, 'canary', { lastChangeAgo: 600 });
    await writeLog(path.join(made.dir, 'canary', 'logs', before), 500);
    await writeLog(path.join(made.dir, 'canary', 'logs', after), 300, gzipSync(`bento update of canary on 2024-06-01 11:55:00 UTC\nprotocol: 1\nconfiguration: ${DIGEST}\n\nswitching\n`));
    await writeLog(path.join(made.dir, 'canary', 'logs', auto), 200);
    await addSystem(made.dir, 'web-1', { lastChangeAgo: 600, logs: [[logName('wnw', 'success', '20240601-1155'), 300]] });

    const state = writtenRolloutState();
    state.systems.canary!.publishedAt = new Date(ago(400)).toISOString();
    const logsOf = await readRolloutLogs(made.dir, state);
    expect(logsOf('canary').map((log) => [log.fileName, log.header])).toEqual([[after, { protocol: 1, configuration: DIGEST }]]);
    expect(logsOf('web-1')).toEqual([]); // its wave is not published
    expect(logsOf('not-in-it')).toEqual([]);
  });
});
