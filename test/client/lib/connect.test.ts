/**
 * The decisions of templates/client/lib/connect.sh on their own (shell
 * tier: sourced, no root, no sshd): the backoff between rounds, how a
 * session's end is read (answered, unreachable, refused), which servers a
 * session tries, how an IPv6 address is written for sftp.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runSourced, shellQuote, tempDir } from '../../helpers/sourced.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

/** connect.sh, with the setting its top level reads (the run's CONNECT_RETRY budget). */
const connect = (script: string) => runSourced(['connect'], script, { BENTO_CONNECT_RETRY: '60' });

describe('backoff_ms', () => {
  /** backoff_ms ROUND with random_below stubbed to answer `pick` of its range ('min' or 'max'). */
  function backoff(round: number, pick: 'min' | 'max'): number {
    const stub = pick === 'min' ? 'random_below() { echo 0; }' : 'random_below() { echo $(($1 - 1)); }';
    const run = connect(`${stub}\nbackoff_ms ${round}`);
    expect(run.stderr).toBe('');
    return Number(run.stdout);
  }

  it('pauses from 1 s up to 2^round s, at most 16 s', () => {
    expect([1, 2, 3, 4, 5, 30].map((round) => backoff(round, 'min'))).toEqual([1000, 1000, 1000, 1000, 1000, 1000]);
    expect([1, 2, 3, 4, 5, 30].map((round) => backoff(round, 'max'))).toEqual([2000, 4000, 8000, 16000, 16000, 16000]);
  });

  it('draws from the kernel: a range of up to 15001 values stays within bounds', () => {
    const run = connect(`i=0; while [ $i -lt 50 ]; do backoff_ms 9; i=$((i + 1)); done`);
    const pauses = run.stdout.trim().split('\n').map(Number);
    expect(pauses).toHaveLength(50);
    for (const pause of pauses) {
      expect(pause).toBeGreaterThanOrEqual(1000);
      expect(pause).toBeLessThanOrEqual(16000);
    }
    // Fifty draws from 15001 values are not all the same.
    expect(new Set(pauses).size).toBeGreaterThan(1);
  });
});

describe('ms_as_seconds', () => {
  it('writes milliseconds as sleep takes seconds', () => {
    expect(connect(`ms_as_seconds 1250; ms_as_seconds 16000; ms_as_seconds 7`).stdout).toBe('1.250\n16.000\n0.007\n');
  });
});

describe('session_outcome', () => {
  /** session_outcome STATUS with sftp.out holding `said`. */
  function outcome(status: number, said: string): string {
    const state = tempDir('bento-outcome-', cleanups);
    writeFileSync(path.join(state, 'sftp.out'), said);
    return connect(`STATE_DIR=${shellQuote(state)}; session_outcome ${status}`).stdout.trim();
  }

  it('takes any status but ssh\'s 255 for a server that answered (a command of the batch failed)', () => {
    expect(outcome(0, '')).toBe('answered');
    expect(outcome(1, 'remote open("/last_change_date"): No such file or directory\n')).toBe('answered');
  });

  it('retries what a later attempt may get through: refused or dropped connections, timeouts, no route, DNS failing for now', () => {
    for (const said of [
      'ssh: connect to host 10.0.0.1 port 22: Connection refused',
      'kex_exchange_identification: read: Connection reset by peer',
      'Connection closed by 10.0.0.1 port 22',
      'ssh: connect to host b port 22: Connection timed out',
      'ssh: Could not resolve hostname b: Temporary failure in name resolution',
      'ssh: connect to host 10.0.0.1 port 22: No route to host',
    ]) {
      expect(outcome(255, `${said}\nConnection closed\n`), said).toBe('unreachable');
    }
  });

  it('does not retry what another round would meet the same way: a refused key or host key, an unknown name', () => {
    for (const said of [
      'router@10.0.0.1: Permission denied (publickey).',
      'Host key verification failed.',
      'ssh: Could not resolve hostname nowhere: Name or service not known',
      'Unable to negotiate with 10.0.0.1 port 22: no matching host key type found',
    ]) {
      expect(outcome(255, `${said}\nConnection closed\n`), said).toBe('refused');
    }
  });
});

describe('servers', () => {
  it('tries every server of REMOTE_IP in order until the run chose one, then that one alone', () => {
    const run = connect(`BENTO_SERVERS='a\nb'; BENTO_REMOTE_HOST=a; session_servers; echo --; use_server b; BENTO_SERVER_CHOSEN=1; session_servers`);
    expect(run.stdout).toBe('a\nb\n--\nb\n');
  });

  it('writes an IPv6 address in brackets for sftp, not for ssh', () => {
    const run = connect(`use_server fd00::1; echo "$BENTO_REMOTE_HOST $BENTO_SFTP_HOST"; use_server host.example; echo "$BENTO_REMOTE_HOST $BENTO_SFTP_HOST"`);
    expect(run.stdout).toBe('fd00::1 [fd00::1]\nhost.example host.example\n');
  });
});
