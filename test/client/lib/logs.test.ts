/**
 * templates/client/lib/logs.sh on its own (shell tier: sourced, no root):
 * the log cutter that keeps a log under LOG_SIZE_LIMIT, the batch that
 * sends the queued logs whole, the header, and what tells a busy sshd and
 * the order of the servers a log goes to after a switch.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseLogHeader } from '../../../src/protocol/log-header.js';
import { runSourced, shellQuote, tempDir } from '../../helpers/sourced.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

describe('cut_log', () => {
  it('keeps the first and the last quarter of LOG_SIZE_LIMIT and says how many bytes it left out', () => {
    const state = tempDir('bento-cut-', cleanups);
    const log = path.join(state, 'build.log');
    const text = Array.from({ length: 400 }, (_, i) => `line ${String(i).padStart(4, '0')}\n`).join('');
    writeFileSync(log, text);
    const run = runSourced(['logs'], `LOG=${shellQuote(log)}; BENTO_LOG_SIZE_LIMIT=400; cut_log`);
    expect(run.stderr).toBe('');
    const left = text.length - 200;
    expect(run.stdout).toBe(`${text.slice(0, 100)}\n\n[bento: ${left} bytes of this log were left out here to fit LOG_SIZE_LIMIT]\n\n${text.slice(-100)}`);
  });
});

describe('batch_pending_logs', () => {
  it('puts each queued log under a temporary name and renames it after: a log appears on the server only whole', () => {
    const state = tempDir('bento-batch-', cleanups);
    mkdirSync(path.join(state, 'pending'));
    for (const name of ['20260101-0000_a_success.log.gz', '20260102-0000_b_failure.log.gz', '20260103-0000_c_failure.log.gz.tmp']) {
      writeFileSync(path.join(state, 'pending', name), 'x');
    }
    const run = runSourced(['logs'], `STATE_DIR=${shellQuote(state)}; batch_pending_logs; echo "pid $$"`);
    const pid = /pid (\d+)/.exec(run.stdout)?.[1];
    const lines = run.stdout.trim().split('\n').slice(0, -1);
    expect(lines).toEqual(
      ['20260101-0000_a_success.log.gz', '20260102-0000_b_failure.log.gz'].flatMap((name) => [
        `put ${state}/pending/${name} logs/.${name}.tmp-${pid}`,
        `rename logs/.${name}.tmp-${pid} logs/${name}`,
      ]),
    );
  });

  it('prints nothing, and logs_queued says no, when nothing is queued', () => {
    const state = tempDir('bento-batch-', cleanups);
    mkdirSync(path.join(state, 'pending'));
    const run = runSourced(['logs'], `STATE_DIR=${shellQuote(state)}; batch_pending_logs; echo "[$?]"; logs_queued || echo none`);
    expect(run.stdout).toBe('[0]\nnone\n');
  });
});

describe('log_header', () => {
  it('writes the header the server parses: the protocol version and the configuration applied', () => {
    const state = tempDir('bento-header-', cleanups);
    const digest = 'ab'.repeat(32);
    writeFileSync(path.join(state, 'remote-state'), `${digest} 2026-12-06T20:00:00Z\n`);
    const run = runSourced(['logs'], `STATE_DIR=${shellQuote(state)}; BENTO_MODE=update; BENTO_NAME=web-1; BENTO_LOG_PROTOCOL=1; log_header; echo building`);
    expect(run.stdout).toMatch(/^bento update of web-1 on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\nprotocol: 1\nconfiguration: /);
    expect(parseLogHeader(run.stdout)).toEqual({ protocol: 1, configuration: digest });
  });
});

describe('after a switch', () => {
  it('tells a connection sshd dropped before the login (busy) from one that never reached it', () => {
    const script = [
      "dropped_by_sshd 'kex_exchange_identification: read: Connection reset by peer' && echo busy",
      "dropped_by_sshd 'ssh_exchange_identification: Connection closed by remote host' && echo busy",
      "dropped_by_sshd 'ssh: connect to host a port 22: Connection refused' || echo away",
    ].join('\n');
    expect(runSourced(['logs'], script).stdout).toBe('busy\nbusy\naway\n');
  });

  it('sends the logs to the run\'s server first, then to the other servers of REMOTE_IP in their order', () => {
    const run = runSourced(['logs'], "BENTO_SERVERS='a\nb\nc'; BENTO_REMOTE_HOST=b; report_servers");
    expect(run.stdout).toBe('b\na\nc\n');
  });
});
