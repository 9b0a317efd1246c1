/**
 * What the client does after a switch (templates/client/lib/logs.sh,
 * report; docs/protocol.md §6 step 5): it sends the log, and only a server
 * it truly cannot reach makes it roll back. The machine's system profile is
 * a directory of the test mounted over /nix/var/nix/profiles; nixos-rebuild
 * is a stand-in that switches it (and runs $FAKE_AFTER_SWITCH, which takes
 * servers away: test/fixtures/client-stubs/sftp-flaky reads
 * $FAKE_SERVER/down and $FAKE_SERVER/busy). A full disk is a small tmpfs
 * mounted in the run's namespace that $FAKE_AFTER_SWITCH fills, so the run
 * cannot write its log: the check after the switch must be made all the same.
 */
import { mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/config.js';
import { configWith } from '../helpers/render.js';
import { isRoot, makeStubbedRouter, runClientScript, type ScriptRun } from '../helpers/shell.js';

/** A log an earlier run queued: the server did not take it then. */
const EARLIER = '20240101-0000_00000000000000000000000000000000-old_success.log.gz';

const NIXOS_REBUILD = `#!/bin/sh
# nixos-rebuild for these tests: build links result to $FAKE_NEW_SYSTEM,
# switch points the system profile at it (generation 2), runs its
# switch-to-configuration, then $FAKE_AFTER_SWITCH; switch --rollback points
# the profile back at generation 1 and runs that one's.
{ echo "== nixos-rebuild"; printf '%s\\n' "$@"; } >> "$FAKE_SERVER/calls"
profiles=/nix/var/nix/profiles
case " $* " in
*" --rollback "*)
	ln -sfn system-1-link "$profiles/system"
	"$profiles/system/bin/switch-to-configuration" switch
	;;
*" build "*) ln -sfn "$FAKE_NEW_SYSTEM" result ;;
*" switch "*)
	ln -sfn "$FAKE_NEW_SYSTEM" "$profiles/system-2-link"
	ln -sfn system-2-link "$profiles/system"
	"$FAKE_NEW_SYSTEM/bin/switch-to-configuration" switch
	sh -c "\${FAKE_AFTER_SWITCH:-:}"
	;;
esac
`;

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

interface Machine {
  server: string;
  varBento: string;
  profiles: string;
  /** `tmpfs`: small disks mounted for the run (runClientScript). */
  run(env?: Record<string, string>, tmpfs?: Record<string, string>): ScriptRun;
  pending(): string[];
  serverLogs(): string[];
  calls(): string;
  /** Hosts of the sftp attempts, in order. */
  attempts(): string[];
}

/** The new system stays: no rollback was asked for, the profile still points to it. */
function expectKept(machine: Machine, run: ScriptRun): void {
  expect(run.stderr).not.toContain('rolling back');
  expect(run.status).toBe(0);
  expect(machine.calls()).not.toContain('--rollback');
  expect(readlinkSync(path.join(machine.profiles, 'system'))).toBe('system-2-link');
}

/** The machine went back to the previous system (its switch-to-configuration ran), and said why. */
function expectRolledBack(machine: Machine, run: ScriptRun): void {
  expect(run.stderr).toContain('the server is unreachable after the switch: rolling back');
  expect(run.status).toBe(1);
  expect(machine.calls()).toContain('== old switch-to-configuration\nswitch\n');
  expect(readlinkSync(path.join(machine.profiles, 'system'))).toBe('system-1-link');
}

/** A machine `router` (rendered with `config`) with a new configuration to apply, and `EARLIER` queued. */
function makeMachine(config: Config): Machine {
  const { dir, script, server, varBento, tools } = makeStubbedRouter(config, 'bento-after-switch-', EARLIER, cleanups);

  // Two systems, each with a switch-to-configuration that records its call
  // (it runs with a clean environment: its record's path is written in it).
  const systems = path.join(dir, 'systems-store');
  for (const name of ['old', 'new']) {
    mkdirSync(path.join(systems, name, 'bin'), { recursive: true });
    writeFileSync(
      path.join(systems, name, 'bin', 'switch-to-configuration'),
      `#!/bin/sh\n{ echo "== ${name} switch-to-configuration"; printf '%s\\n' "$@"; } >> '${server}/calls'\n`,
      { mode: 0o755 },
    );
  }
  const profiles = path.join(dir, 'profiles');
  mkdirSync(profiles);
  symlinkSync(path.join(systems, 'old'), path.join(profiles, 'system-1-link'));
  symlinkSync('system-1-link', path.join(profiles, 'system'));

  const rebuild = path.join(dir, 'nixos-rebuild');
  writeFileSync(rebuild, NIXOS_REBUILD, { mode: 0o755 });

  const read = (file: string) => {
    try {
      return readFileSync(path.join(server, file), 'utf8');
    } catch {
      return '';
    }
  };
  return {
    server,
    varBento,
    profiles,
    run(env = {}, tmpfs = {}) {
      return runClientScript(script, varBento, {
        tools: { ...tools, 'nixos-rebuild': rebuild },
        toolEnv: { FAKE_SERVER: server, FAKE_NEW_SYSTEM: path.join(systems, 'new'), ...env },
        binds: { '/nix/var/nix/profiles': profiles },
        tmpfs,
      });
    },
    pending: () => readdirSync(path.join(varBento, '.bento', 'pending')).sort(),
    // The heartbeat each session writes after the logs (docs/protocol.md §5a) is no log.
    serverLogs: () => readdirSync(path.join(server, 'logs')).filter((name) => name !== 'heartbeat').sort(),
    calls: () => read('calls'),
    attempts: () =>
      read('attempts')
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split(' ')[1] as string),
  };
}

/** The server's logs/ replaced by a file: every upload there fails, the server still answers. */
function refuseUploads(machine: Machine): () => void {
  const logs = path.join(machine.server, 'logs');
  rmSync(logs, { recursive: true });
  writeFileSync(logs, '');
  return () => {
    rmSync(logs);
    mkdirSync(logs);
  };
}

describe.skipIf(!isRoot)('a rollback after losing the server', () => {
  it("replaces only this run's log: the logs earlier runs queued stay queued, and are sent later", () => {
    const machine = makeMachine(configWith({ remoteHosts: ['bento.test'], timeout: 1, connectRetry: 0 }));
    // The poll reads last_change_date but the server does not take EARLIER;
    // then the switch loses the server.
    const accept = refuseUploads(machine);
    const run = machine.run({ FAKE_AFTER_SWITCH: `echo bento.test > "$FAKE_SERVER/down"` });
    expect(run.stderr).toContain('did not take the logs of earlier runs');
    expectRolledBack(machine, run);
    // The rollback's log took the place of this run's success log; EARLIER is still there.
    const pending = machine.pending();
    expect(pending).toHaveLength(2);
    expect(pending).toContain(EARLIER);
    expect(pending.find((name) => name !== EARLIER)).toMatch(/^\d{8}-\d{4}_[^_]+_rollback\.log\.gz$/);

    // The server back: the next poll delivers both.
    accept();
    rmSync(path.join(machine.server, 'down'));
    const next = machine.run();
    expect(next.stdout).toContain('no update required');
    expect(next.status).toBe(0);
    expect(machine.pending()).toEqual([]);
    expect(machine.serverLogs()).toEqual(pending);
  });
});

describe.skipIf(!isRoot)('after a switch, the servers of REMOTE_IP', () => {
  it('the run\'s server lost but another one answers: the log goes there, nothing is rolled back', () => {
    const machine = makeMachine(configWith({ remoteHosts: ['a.test', 'b.test'], timeout: 1, connectRetry: 0 }));
    const run = machine.run({ FAKE_AFTER_SWITCH: `echo a.test > "$FAKE_SERVER/down"` });
    expectKept(machine, run);
    // The poll and the download on a; after the switch a (upload, then the question), then b, which takes the log.
    expect(machine.attempts()).toEqual(['a.test', 'a.test', 'a.test', 'a.test', 'b.test']);
    expect(machine.serverLogs()).toEqual([EARLIER, expect.stringMatching(/^\d{8}-\d{4}_new_success\.log\.gz$/)]);
    expect(machine.pending()).toEqual([]);
  });

  it('every server lost: each is tried, then the machine rolls back', () => {
    const machine = makeMachine(configWith({ remoteHosts: ['a.test', 'b.test'], timeout: 1, connectRetry: 0 }));
    const run = machine.run({ FAKE_AFTER_SWITCH: `echo a.test b.test > "$FAKE_SERVER/down"` });
    expect(run.stderr).toContain('a.test: ssh: connect to host a.test port 22: Connection refused');
    expect(run.stderr).toContain('b.test: ssh: connect to host b.test port 22: Connection refused');
    expect(machine.attempts().slice(2, 6)).toEqual(['a.test', 'a.test', 'b.test', 'b.test']);
    expectRolledBack(machine, run);
    // The poll had sent EARLIER; the rollback's log waits.
    expect(machine.serverLogs()).toEqual([EARLIER]);
    expect(machine.pending()).toEqual([expect.stringMatching(/_rollback\.log\.gz$/)]);
  });

  it('a server whose sshd drops every connection (at its MaxStartups) is not lost: asked again, no rollback, the log waits', () => {
    const machine = makeMachine(configWith({ remoteHosts: ['bento.test'], timeout: 2, connectRetry: 0 }));
    const run = machine.run({ FAKE_AFTER_SWITCH: `echo bento.test > "$FAKE_SERVER/busy"` });
    expect(run.stdout).toMatch(/no bento server answers after the switch; asking again in [0-9]+\.[0-9]{3} s/);
    expect(run.stderr).toContain('takes connections but drops them before the login');
    expect(run.stderr).toContain('bento.test: kex_exchange_identification: read: Connection reset by peer');
    expectKept(machine, run);
    expect(machine.pending()).toEqual([expect.stringMatching(/_new_success\.log\.gz$/)]);
    expect(machine.serverLogs()).toEqual([EARLIER]);
  });

  it('a server that drops connections for a moment takes the log once it lets the machine in', () => {
    const machine = makeMachine(configWith({ remoteHosts: ['bento.test'], timeout: 5, connectRetry: 0 }));
    const busy = path.join(machine.server, 'busy');
    // sshd busy for about a second after the switch.
    const run = machine.run({ FAKE_AFTER_SWITCH: `echo bento.test > '${busy}'; (sleep 1; rm -f '${busy}') > /dev/null 2>&1 &` });
    expect(run.stdout).toContain('asking again in');
    expect(run.status).toBe(0);
    expect(machine.calls()).not.toContain('--rollback');
    expect(machine.pending()).toEqual([]);
    expect(machine.serverLogs()).toEqual([EARLIER, expect.stringMatching(/_new_success\.log\.gz$/)]);
  });
});

/** The pending logs on a disk of their own, tiny, that the switch fills: this run's log cannot be written, nothing is queued. */
const PENDING_DISK = { '/var/bento/.bento/pending': '64k' };
const FILL_PENDING = 'head -c 1M /dev/zero > /var/bento/.bento/pending/filler 2> /dev/null';
/** The whole of /var/bento on a small disk, that the switch fills (its own writes, another program's). */
const VAR_BENTO_DISK = { '/var/bento': '1m' };
const FILL_VAR_BENTO = 'head -c 4M /dev/zero > /var/bento/.bento/filler 2> /dev/null';

describe.skipIf(!isRoot)('after a switch whose log could not be written (the disk full), the check is made all the same', () => {
  it('nothing to send and every server lost: each is asked, then the machine rolls back, and says that no rollback log could be written', () => {
    const machine = makeMachine(configWith({ remoteHosts: ['a.test', 'b.test'], timeout: 1, connectRetry: 0 }));
    const run = machine.run({ FAKE_AFTER_SWITCH: `${FILL_PENDING}; echo a.test b.test > "$FAKE_SERVER/down"` }, PENDING_DISK);
    expect(run.stderr).toMatch(/could not write the log \/var\/bento\/\.bento\/pending\/\d{8}-\d{4}_new_success\.log\.gz/);
    // What each server said to the question (no upload was tried: nothing to upload).
    expect(run.stderr).toContain('a.test: ssh: connect to host a.test port 22: Connection refused');
    expect(run.stderr).toContain('b.test: ssh: connect to host b.test port 22: Connection refused');
    expect(run.stderr).toContain('rolled back, but no log of the rollback could be written');
    // The poll and the download on a; after the switch one question to a, one to b.
    expect(machine.attempts().slice(0, 4)).toEqual(['a.test', 'a.test', 'a.test', 'b.test']);
    expectRolledBack(machine, run);
    // The poll had sent EARLIER (the full disk still held it); nothing since.
    expect(machine.serverLogs()).toEqual([EARLIER]);
  });

  it('nothing to send and the run\'s server lost, but another answers: no rollback', () => {
    const machine = makeMachine(configWith({ remoteHosts: ['a.test', 'b.test'], timeout: 1, connectRetry: 0 }));
    const run = machine.run({ FAKE_AFTER_SWITCH: `${FILL_PENDING}; echo a.test > "$FAKE_SERVER/down"` }, PENDING_DISK);
    expect(run.stderr).toContain('could not write the log');
    expect(run.stdout).toContain('b.test answers: the new system reaches it (no log to send');
    expect(machine.attempts()).toEqual(['a.test', 'a.test', 'a.test', 'b.test']);
    expectKept(machine, run);
  });

  it('nothing to send and a server whose sshd drops every connection: there, so no rollback', () => {
    const machine = makeMachine(configWith({ remoteHosts: ['bento.test'], timeout: 2, connectRetry: 0 }));
    const run = machine.run({ FAKE_AFTER_SWITCH: `${FILL_PENDING}; echo bento.test > "$FAKE_SERVER/busy"` }, PENDING_DISK);
    expect(run.stdout).toContain('no bento server answers after the switch; asking again in');
    expect(run.stderr).toContain('takes connections but drops them before the login');
    expect(run.stderr).toContain('there was no log to send');
    expect(run.stderr).toContain('bento.test: kex_exchange_identification: read: Connection reset by peer');
    expectKept(machine, run);
  });

  it('/var/bento full: a server that answers is found (no file of the run is needed for it), no rollback', () => {
    const machine = makeMachine(configWith({ remoteHosts: ['a.test', 'b.test'], timeout: 1, connectRetry: 0 }));
    const run = machine.run({ FAKE_AFTER_SWITCH: `${FILL_VAR_BENTO}; echo a.test > "$FAKE_SERVER/down"` }, VAR_BENTO_DISK);
    expect(run.stderr).toContain('could not write the log');
    expect(run.stdout).toContain('b.test answers: the new system reaches it');
    expect(machine.attempts()).toEqual(['a.test', 'a.test', 'a.test', 'b.test']);
    expectKept(machine, run);
  });

  it('/var/bento full and the server busy: what sshd said is known all the same (no file needed), so no rollback', () => {
    const machine = makeMachine(configWith({ remoteHosts: ['bento.test'], timeout: 2, connectRetry: 0 }));
    const run = machine.run({ FAKE_AFTER_SWITCH: `${FILL_VAR_BENTO}; echo bento.test > "$FAKE_SERVER/busy"` }, VAR_BENTO_DISK);
    expect(run.stderr).toContain('takes connections but drops them before the login');
    expect(run.stderr).toContain('bento.test: kex_exchange_identification: read: Connection reset by peer');
    expectKept(machine, run);
  });

  it('/var/bento full and every server lost: the machine rolls back, says why, and that no rollback log could be written', () => {
    const machine = makeMachine(configWith({ remoteHosts: ['a.test', 'b.test'], timeout: 1, connectRetry: 0 }));
    const run = machine.run({ FAKE_AFTER_SWITCH: `${FILL_VAR_BENTO}; echo a.test b.test > "$FAKE_SERVER/down"` }, VAR_BENTO_DISK);
    expect(run.stderr).toContain('a.test: ssh: connect to host a.test port 22: Connection refused');
    expect(run.stderr).toContain('b.test: ssh: connect to host b.test port 22: Connection refused');
    expect(run.stderr).toContain('rolled back, but no log of the rollback could be written');
    expect(machine.attempts().slice(0, 4)).toEqual(['a.test', 'a.test', 'a.test', 'b.test']);
    expectRolledBack(machine, run);
  });
});
