/**
 * The client's connection retries and failover (templates/client/lib/connect.sh):
 * a session that cannot connect is tried on the next server, then again
 * after random pauses, within CONNECT_RETRY for the whole run (all its
 * sessions together), never past the bound the generated script states
 * (connectGiveUpSeconds); a refused login is not retried; once a server
 * answered, the whole run stays with it; queued logs are kept when no
 * server answers. sftp is a stand-in that fails like ssh does when sshd
 * drops a connection (test/fixtures/client-stubs/sftp-flaky).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/config.js';
import { connectGiveUpSeconds, renderSystemFiles } from '../../src/render/render-fleet.js';
import { configWith } from '../helpers/render.js';
import { isRoot, makeStubbedRouter, runClientScript, STUBS_DIR, type ScriptRun } from '../helpers/shell.js';

const QUEUED = '20240101-0000_00000000000000000000000000000000-unknown_failure.log.gz';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

interface Machine {
  dir: string;
  server: string;
  varBento: string;
  script: string;
  /** With `zeroRandom`, /dev/urandom reads zeros: every pause is the shortest, 1 s. */
  run(env?: Record<string, string>, options?: { zeroRandom?: boolean }): ScriptRun & { seconds: number };
  /** Hosts of the sftp attempts, in order, and when each started (seconds after the first). */
  attempts(): { host: string; at: number }[];
}

/**
 * A machine `router` whose update.sh (rendered with `config`) finds, on any
 * server it reaches, a configuration whose build fails (nixos-rebuild is a
 * recorder that exits 1); it has one log queued from an earlier run. With
 * `upToDate`, the machine already tried the published configuration: a
 * poll only.
 */
function makeMachine(config: Config, options: { upToDate?: boolean } = {}): Machine {
  const { dir, script, server, varBento, tools } = makeStubbedRouter(config, 'bento-connect-', QUEUED, cleanups);
  if (options.upToDate) writeFileSync(path.join(varBento, '.bento', 'state'), readFileSync(path.join(server, 'last_change_date')));

  return {
    dir,
    server,
    varBento,
    script,
    run(env = {}, options = {}) {
      const zeros = path.join(dir, 'zeros');
      writeFileSync(zeros, Buffer.alloc(64));
      const binds: Record<string, string> = options.zeroRandom ? { '/dev/urandom': zeros } : {};
      const result = runClientScript(script, varBento, {
        tools: { ...tools, 'nixos-rebuild': path.join(STUBS_DIR, 'nixos-rebuild') },
        toolEnv: { FAKE_SERVER: server, RECORD_EXIT: '1', ...env },
        binds,
      });
      return { ...result, seconds: result.seconds ?? Infinity };
    },
    attempts() {
      const file = path.join(server, 'attempts');
      if (!existsSync(file)) return [];
      const lines = readFileSync(file, 'utf8').trim().split('\n');
      const first = Number(lines[0]?.split(' ')[0]);
      return lines.map((line) => {
        const [time, host] = line.split(' ');
        return { host: host as string, at: Number(time) - first };
      });
    },
  };
}

const pending = (machine: Machine) => readdirSync(path.join(machine.varBento, '.bento', 'pending'));

describe('connectGiveUpSeconds', () => {
  it('is CONNECT_RETRY plus one TIMEOUT per server, for a whole run, and the generated script says so', () => {
    const config = configWith({ remoteHosts: ['a', 'b'], timeout: 20, connectRetry: 60 });
    expect(connectGiveUpSeconds(config)).toBe(100);
    const update = renderSystemFiles(config, { name: 'router', kind: 'flake' }).find((file) => file.path.endsWith('update.sh'))?.content;
    expect(update).toContain('a run that cannot connect gives up\n# within 100 s (CONNECT_RETRY + TIMEOUT for each server)');
    expect(update).toContain("BENTO_SERVERS='a\nb'\n");
    expect(update).toContain('BENTO_CONNECT_RETRY=60\n');
  });
});

describe.skipIf(!isRoot)('a client that cannot connect', () => {
  it('retries with random pauses, gives up within the bound, changes nothing and keeps its queued log', () => {
    const config = configWith({ remoteHosts: ['bento.test'], timeout: 1, connectRetry: 4 });
    const machine = makeMachine(config);
    const run = machine.run({ FAKE_UNREACHABLE: 'bento.test' });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('cannot reach the bento server (router@bento.test port 22); nothing was changed');
    expect(run.stderr).toContain('kex_exchange_identification: read: Connection reset by peer');
    expect(run.stdout).toMatch(/no bento server answered; trying again in [0-9]+\.[0-9]{3} s/);

    const attempts = machine.attempts();
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    // Each pause is at least 1 s and the first at most 2 s; no attempt starts after CONNECT_RETRY.
    for (let i = 1; i < attempts.length; i++) expect((attempts[i]?.at ?? 0) - (attempts[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(0.99);
    expect(attempts[1]?.at).toBeLessThanOrEqual(2.2);
    expect(attempts.at(-1)?.at).toBeLessThan(config.connectRetry);

    expect(pending(machine)).toEqual([QUEUED]);
    expect(readFileSync(path.join(machine.server, 'calls'), 'utf8')).not.toContain('nixos-rebuild');
    expect(readdirSync(path.join(machine.server, 'logs'))).toEqual([]);
  });

  it('CONNECT_RETRY is a budget for the whole run: a download after a poll that needed retries gets only what is left', () => {
    // Every pause 1 s. The poll is dropped twice and gets through at its
    // third attempt, about 2 s into the 3 s budget; the download is then
    // dropped, and a pause of 1 s no longer fits in what is left.
    const config = configWith({ remoteHosts: ['bento.test'], timeout: 1, connectRetry: 3 });
    const machine = makeMachine(config);
    const run = machine.run({ FAKE_UNREACHABLE_TIMES: '2', FAKE_UNREACHABLE_AFTER: '3' }, { zeroRandom: true });
    expect(run.stderr).toContain('downloading the configuration failed; it will be retried on the next run');
    expect(run.status).toBe(1);
    expect(run.stdout.match(/trying again in 1\.000 s/g)).toHaveLength(2);
    // Two attempts of the poll dropped, the third through, the download's one attempt dropped: no more.
    const attempts = machine.attempts();
    expect(attempts).toHaveLength(4);
    // The retries (the poll's second and third attempts, each after a pause)
    // start inside the budget; the download's one attempt is a session's
    // first, which no budget forbids, and it got no retry (four in all).
    // Timed on the attempts, not on the whole run, whose other work a loaded
    // machine slows.
    expect(attempts[2]?.at).toBeLessThan(config.connectRetry);
    expect(readFileSync(path.join(machine.server, 'calls'), 'utf8')).not.toContain('nixos-rebuild');
  });

  it('with CONNECT_RETRY=0 tries each server once', () => {
    const machine = makeMachine(configWith({ remoteHosts: ['a.test', 'b.test'], timeout: 1, connectRetry: 0 }));
    const run = machine.run({ FAKE_UNREACHABLE: 'a.test b.test' });
    expect(run.status).toBe(1);
    expect(machine.attempts().map((attempt) => attempt.host)).toEqual(['a.test', 'b.test']);
    // What each server said.
    expect(run.stderr).toContain('a.test: kex_exchange_identification: read: Connection reset by peer');
    expect(run.stderr).toContain('b.test: kex_exchange_identification: read: Connection reset by peer');
    expect(run.stdout).not.toContain('trying again');
    expect(pending(machine)).toEqual([QUEUED]);
  });

  it('does not retry a refused login: the next server, then it gives up at once', () => {
    const machine = makeMachine(configWith({ remoteHosts: ['a.test', 'b.test'], timeout: 1, connectRetry: 30 }));
    const run = machine.run({ FAKE_REFUSED: 'a.test b.test' });
    expect(run.status).toBe(1);
    expect(machine.attempts().map((attempt) => attempt.host)).toEqual(['a.test', 'b.test']);
    expect(run.stderr).toContain('a.test: router@a.test: Permission denied (publickey).');
    expect(run.seconds).toBeLessThan(10);
    expect(pending(machine)).toEqual([QUEUED]);
  });

  it('a poll dropped twice (sshd past MaxStartups) succeeds on the third attempt and sends the queued log', () => {
    const machine = makeMachine(configWith({ remoteHosts: ['bento.test'], timeout: 1, connectRetry: 30 }), { upToDate: true });
    const run = machine.run({ FAKE_UNREACHABLE_TIMES: '2' });
    expect(run.stdout).toContain('no update required');
    expect(run.status).toBe(0);
    expect(machine.attempts().map((attempt) => attempt.host)).toEqual(['bento.test', 'bento.test', 'bento.test']);
    // The poll's heartbeat after the log (docs/protocol.md §5a).
    expect(readdirSync(path.join(machine.server, 'logs')).sort()).toEqual([QUEUED, 'heartbeat']);
    expect(pending(machine)).toEqual([]);
  });
});

describe.skipIf(!isRoot)('several servers', () => {
  it('uses the first that answers for every session of the run: poll, download and report', () => {
    const machine = makeMachine(configWith({ remoteHosts: ['a.test', 'b.test', 'c.test'], timeout: 1, connectRetry: 30 }));
    const run = machine.run({ FAKE_UNREACHABLE: 'a.test' });
    expect(run.stderr).toContain('the build failed');
    expect(run.status).toBe(1);
    // a cannot be reached: b, and only b, from then on; c is never asked.
    expect(machine.attempts().map((attempt) => attempt.host)).toEqual(['a.test', 'b.test', 'b.test', 'b.test']);
    expect(run.stdout).not.toContain('trying again');
    expect(readFileSync(path.join(machine.server, 'sftp-args'), 'utf8')).toContain('\nrouter@b.test\n');
    // The queued log and this run's failure log reached the server, and the heartbeat.
    expect(readdirSync(path.join(machine.server, 'logs'))).toHaveLength(3);
    expect(readdirSync(path.join(machine.server, 'logs'))).toContain('heartbeat');
    expect(pending(machine)).toEqual([]);
    // The connection closed at the end is b's.
    expect(readFileSync(path.join(machine.server, 'calls'), 'utf8')).toContain('== ssh\n-o\n');
    expect(readFileSync(path.join(machine.server, 'calls'), 'utf8')).toMatch(/-l\nrouter\nb\.test\n/);
  });

  it('an IPv6 server is given to sftp in brackets', () => {
    const machine = makeMachine(configWith({ remoteHosts: ['a.test', 'fd00::7'], timeout: 1, connectRetry: 0 }), { upToDate: true });
    const run = machine.run({ FAKE_UNREACHABLE: 'a.test' });
    expect(run.status).toBe(0);
    expect(readFileSync(path.join(machine.server, 'sftp-args'), 'utf8')).toContain('\nrouter@[fd00::7]\n');
  });
});
