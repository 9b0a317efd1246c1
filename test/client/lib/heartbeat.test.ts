/**
 * templates/client/lib/heartbeat.sh, with logs.sh for a header's first
 * lines (shell tier: sourced, no root): the heartbeat's text
 * (docs/protocol.md §5a), read back with the server's parser, on a
 * machine whose /run/current-system and /run/booted-system are links of
 * the test (CURRENT_SYSTEM, BOOTED_SYSTEM);
 * the batch lines that send it, and where the poll's and the report's
 * batches put them; the comparison of kernel, initrd and modules it shares
 * with the REBOOT flag.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseHeartbeat } from '../../../src/protocol/heartbeat.js';
import { runSourced, shellQuote, tempDir } from '../../helpers/sourced.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

const DIGEST = 'ab'.repeat(32);
const APPLIED = `${DIGEST} 2026-12-06T20:00:00.000Z`;
const OLD = '0f8vsf8l1ipxn3afgc8w9k4fg0y6wq1z-nixos-system-web-1-24.05';
const NEW = '1a8vsf8l1ipxn3afgc8w9k4fg0y6wq1z-nixos-system-web-1-24.05';
const FIRST_LINE = /^bento heartbeat of web-1 on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/;

interface Machine {
  dir: string;
  state: string;
  store: string;
  /** Shell assignments pointing the library at this machine. */
  prelude: string;
}

/**
 * A machine: .bento/ (with `state` when given), a store of systems whose
 * kernel, initrd and kernel-modules link to parts of the store, and the
 * links `current` and `booted` to systems of it (absent when undefined).
 */
function machine(options: { state?: string; current?: string; booted?: string; systems?: Record<string, { kernel: string; initrd: string; modules: string }> }): Machine {
  const dir = tempDir('bento-heartbeat-', cleanups);
  const state = path.join(dir, 'state');
  mkdirSync(path.join(state, 'pending'), { recursive: true });
  if (options.state !== undefined) writeFileSync(path.join(state, 'state'), options.state);
  const store = path.join(dir, 'store');
  const systems = options.systems ?? { [OLD]: { kernel: 'k1', initrd: 'i1', modules: 'm1' }, [NEW]: { kernel: 'k1', initrd: 'i1', modules: 'm1' } };
  for (const [name, parts] of Object.entries(systems)) {
    mkdirSync(path.join(store, name), { recursive: true });
    for (const [link, target] of [['kernel', parts.kernel], ['initrd', parts.initrd], ['kernel-modules', parts.modules]] as const) {
      if (!existsSync(path.join(store, target))) writeFileSync(path.join(store, target), target);
      symlinkSync(path.join(store, target), path.join(store, name, link));
    }
  }
  const run = path.join(dir, 'run');
  mkdirSync(run);
  if (options.current) symlinkSync(path.join(store, options.current), path.join(run, 'current-system'));
  if (options.booted) symlinkSync(path.join(store, options.booted), path.join(run, 'booted-system'));
  const prelude = [
    `STATE_DIR=${shellQuote(state)}`,
    `CURRENT_SYSTEM=${shellQuote(path.join(run, 'current-system'))}`,
    `BOOTED_SYSTEM=${shellQuote(path.join(run, 'booted-system'))}`,
    'BENTO_NAME=web-1',
    'BENTO_LOG_PROTOCOL=2',
  ].join('; ');
  return { dir, state, store, prelude };
}

/** write_heartbeat on `m`: its status and the file it wrote. */
function heartbeatOf(m: Machine): { status: number | null; text: string; stderr: string } {
  const run = runSourced(['core', 'logs', 'heartbeat'], `${m.prelude}; write_heartbeat`);
  const file = path.join(m.state, 'heartbeat');
  return { status: run.status, text: existsSync(file) ? readFileSync(file, 'utf8') : '', stderr: run.stderr };
}

describe('write_heartbeat', () => {
  it('writes the lines of docs/protocol.md §5a, the server parses them, and leaves no temporary', () => {
    const m = machine({ state: `${APPLIED}\n`, current: NEW, booted: OLD });
    const { status, text, stderr } = heartbeatOf(m);
    expect([status, stderr]).toEqual([0, '']);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(FIRST_LINE);
    expect(lines.slice(1)).toEqual(['protocol: 2', `configuration: ${APPLIED}`, `running: ${NEW}`, `booted: ${OLD}`, 'reboot-pending: no', '', '']);
    expect(parseHeartbeat(text)).toEqual({ protocol: 2, configuration: DIGEST, running: NEW, booted: OLD, rebootPending: false });
    expect(readdirSync(m.state).sort()).toEqual(['heartbeat', 'pending', 'state']);
    expect(Buffer.byteLength(text)).toBeLessThan(1024);
  });

  it('reboot-pending: yes when the booted kernel, initrd or kernel modules are not the running system\'s', () => {
    for (const changed of ['kernel', 'initrd', 'modules'] as const) {
      const parts = { kernel: 'k1', initrd: 'i1', modules: 'm1' };
      const m = machine({ state: APPLIED, current: NEW, booted: OLD, systems: { [OLD]: parts, [NEW]: { ...parts, [changed]: `${changed}-2` } } });
      const { text } = heartbeatOf(m);
      expect(text, changed).toContain('\nreboot-pending: yes\n\n');
      expect(parseHeartbeat(text).rebootPending, changed).toBe(true);
    }
  });

  it('with a reboot window: names it, and says a pending reboot waits while it is closed', () => {
    const parts = { kernel: 'k1', initrd: 'i1', modules: 'm1' };
    const window = "BENTO_REBOOT_WINDOW='Mon..Fri 02:00-05:00'; BENTO_REBOOT_DAYS=12345; BENTO_REBOOT_FROM=120; BENTO_REBOOT_TO=300";
    const beat = (now: string, pending: boolean) => {
      const m = machine({ state: APPLIED, current: NEW, booted: OLD, systems: { [OLD]: parts, [NEW]: pending ? { ...parts, kernel: 'k2' } : parts } });
      runSourced(['core', 'logs', 'heartbeat'], `${m.prelude}; ${window}; date() { case $1 in -u) command date "$@" ;; *) echo '${now}' ;; esac; }; write_heartbeat`);
      return readFileSync(path.join(m.state, 'heartbeat'), 'utf8');
    };
    const closed = beat('6 03 00', true);
    expect(closed.split('\n').slice(2)).toEqual([`configuration: ${APPLIED}`, `running: ${NEW}`, 'reboot-window: Mon..Fri 02:00-05:00', `booted: ${OLD}`, 'reboot-pending: yes', 'reboot-waiting: window', '', '']);
    expect(parseHeartbeat(closed)).toMatchObject({ rebootPending: true, rebootWindow: 'Mon..Fri 02:00-05:00', rebootWaiting: 'window' });
    const open = parseHeartbeat(beat('5 03 00', true));
    expect(open).toMatchObject({ rebootPending: true, rebootWindow: 'Mon..Fri 02:00-05:00' });
    expect(open.rebootWaiting).toBeUndefined();
    expect(parseHeartbeat(beat('6 03 00', false)).rebootWaiting).toBeUndefined();
  });

  it('REBOOT_MAX: waits for a slot only when the machine reboots by itself and holds none unused; names the slot it rebooted with once booted anew', () => {
    const parts = { kernel: 'k1', initrd: 'i1', modules: 'm1' };
    const token = '0123456789abcdef0123456789abcdef';
    const beat = (options: { flag?: boolean; slot?: boolean; used?: string }) => {
      const m = machine({ state: APPLIED, current: NEW, booted: OLD, systems: { [OLD]: parts, [NEW]: { ...parts, kernel: 'k2' } } });
      const bentoDir = path.join(m.dir, 'var-bento');
      mkdirSync(bentoDir);
      if (options.flag) writeFileSync(path.join(bentoDir, 'REBOOT'), '');
      if (options.slot) writeFileSync(path.join(m.state, 'reboot-slot'), `token: ${token}\n`);
      if (options.used !== undefined) writeFileSync(path.join(m.state, 'reboot-used'), `${token} ${options.used === 'booted' ? realpathSync(path.join(m.store, OLD)) : options.used}\n`);
      runSourced(['core', 'logs', 'heartbeat'], `${m.prelude}; BENTO_DIR=${shellQuote(bentoDir)}; REBOOT_TIMER=${shellQuote(path.join(m.dir, 'no-timer'))}; BENTO_REBOOT_SLOTS=1; write_heartbeat`);
      return { text: readFileSync(path.join(m.state, 'heartbeat'), 'utf8'), store: m.store };
    };
    expect(parseHeartbeat(beat({ flag: true }).text).rebootWaiting).toBe('slot');
    expect(parseHeartbeat(beat({}).text).rebootWaiting).toBeUndefined();
    expect(parseHeartbeat(beat({ flag: true, slot: true }).text).rebootWaiting).toBeUndefined();
    expect(parseHeartbeat(beat({ flag: true, used: '/nix/store/elsewhere' }).text).rebootedWith).toBe(token);
    const same = beat({ flag: true, used: 'booted' });
    expect(same.text).not.toContain('rebooted-with');
  });

  it('without /run/booted-system (a container): neither booted nor reboot-pending', () => {
    const { text } = heartbeatOf(machine({ state: APPLIED, current: NEW }));
    expect(text.split('\n').slice(1)).toEqual(['protocol: 2', `configuration: ${APPLIED}`, `running: ${NEW}`, '', '']);
    expect(parseHeartbeat(text)).toEqual({ protocol: 2, configuration: DIGEST, running: NEW });
  });

  it('before its first attempt (no state) and without /run/current-system: the keys it cannot tell are left out', () => {
    const { text } = heartbeatOf(machine({ booted: OLD }));
    expect(text.split('\n').slice(1)).toEqual(['protocol: 2', `booted: ${OLD}`, '', '']);
    const empty = machine({ state: '' });
    expect(heartbeatOf(empty).text.split('\n').slice(1)).toEqual(['protocol: 2', '', '']);
  });

  it('takes the first line of the state alone: nothing it holds can end the header or add a key', () => {
    const { text } = heartbeatOf(machine({ state: `${APPLIED}\n\nreboot-pending: yes\n`, current: NEW, booted: NEW }));
    expect(parseHeartbeat(text)).toEqual({ protocol: 2, configuration: DIGEST, running: NEW, booted: NEW, rebootPending: false });
  });

  it('fails when it cannot be written (the disk full), leaving the previous heartbeat and no temporary', () => {
    const m = machine({ state: APPLIED, current: NEW });
    writeFileSync(path.join(m.state, 'heartbeat'), 'the previous one\n');
    // Every write of the temporary fails as on a full disk (ENOSPC).
    symlinkSync('/dev/full', path.join(m.state, 'heartbeat.tmp'));
    const { status, text } = heartbeatOf(m);
    expect(status).toBe(1);
    expect(text).toBe('the previous one\n');
    expect(readdirSync(m.state).sort()).toEqual(['heartbeat', 'pending', 'state']);
  });
});

describe('batch_heartbeat', () => {
  it('puts the heartbeat under a temporary name of logs/ and renames it to logs/heartbeat, both failures ignored (the - prefix)', () => {
    const m = machine({ state: APPLIED, current: NEW });
    const run = runSourced(['core', 'logs', 'heartbeat'], `${m.prelude}; batch_heartbeat; echo "pid $$"`);
    const pid = /pid (\d+)/.exec(run.stdout)?.[1];
    expect(run.stdout).toBe(`-put ${m.state}/heartbeat logs/.heartbeat.tmp-${pid}\n-rename logs/.heartbeat.tmp-${pid} logs/heartbeat\npid ${pid}\n`);
    expect(parseHeartbeat(readFileSync(path.join(m.state, 'heartbeat'), 'utf8')).running).toBe(NEW);
  });

  it('prints nothing when the heartbeat cannot be written on this machine', () => {
    const m = machine({ state: APPLIED, current: NEW });
    symlinkSync('/dev/full', path.join(m.state, 'heartbeat.tmp'));
    const run = runSourced(['core', 'logs', 'heartbeat'], `${m.prelude}; batch_heartbeat; echo "[$?]"`);
    expect(run.stdout).toBe('[0]\n');
  });
});

/** Sources of the sessions' tests; sftp itself is a function recording what it was sent. */
const SESSION_SOURCES = ['core', 'connect', 'logs', 'heartbeat', 'fetch'];

describe('the batches that send it', () => {
  const LOG = '20260101-0000_a_success.log.gz';

  /** The lines of a batch, with the pid of the run made a fixed word. */
  function lines(batch: string, pid: string): string[] {
    return batch.trim().split('\n').map((line) => line.replaceAll(`.tmp-${pid}`, '.tmp-PID'));
  }

  it('the poll: last_change_date, then the queued logs, then the heartbeat', () => {
    const m = machine({ state: APPLIED, current: NEW });
    writeFileSync(path.join(m.state, 'pending', LOG), 'x');
    const batch = path.join(m.dir, 'sent');
    const stub = `sftp_session() { cp "$1" ${shellQuote(batch)}; printf '%s\\n' ${shellQuote(APPLIED)} > "$STATE_DIR/remote-state"; }`;
    const run = runSourced(SESSION_SOURCES, `${m.prelude}; ${stub}; poll_server; echo "[$?] pid $$"`);
    const pid = /pid (\d+)/.exec(run.stdout)?.[1] ?? '';
    expect(run.stdout).toBe(`[0] pid ${pid}\n`);
    expect(lines(readFileSync(batch, 'utf8'), pid)).toEqual([
      `get last_change_date ${m.state}/remote-state`,
      `put ${m.state}/pending/${LOG} logs/.${LOG}.tmp-PID`,
      `rename logs/.${LOG}.tmp-PID logs/${LOG}`,
      `-put ${m.state}/heartbeat logs/.heartbeat.tmp-PID`,
      '-rename logs/.heartbeat.tmp-PID logs/heartbeat',
    ]);
  });

  it('the poll with nothing queued: the heartbeat after last_change_date; none when it cannot be written', () => {
    const m = machine({ state: APPLIED, current: NEW });
    const batch = path.join(m.dir, 'sent');
    const stub = `sftp_session() { cp "$1" ${shellQuote(batch)}; printf '%s\\n' ${shellQuote(APPLIED)} > "$STATE_DIR/remote-state"; }`;
    let run = runSourced(SESSION_SOURCES, `${m.prelude}; ${stub}; poll_server; echo "[$?] pid $$"`);
    let pid = /pid (\d+)/.exec(run.stdout)?.[1] ?? '';
    expect(lines(readFileSync(batch, 'utf8'), pid)).toEqual([
      `get last_change_date ${m.state}/remote-state`,
      `-put ${m.state}/heartbeat logs/.heartbeat.tmp-PID`,
      '-rename logs/.heartbeat.tmp-PID logs/heartbeat',
    ]);
    symlinkSync('/dev/full', path.join(m.state, 'heartbeat.tmp'));
    run = runSourced(SESSION_SOURCES, `${m.prelude}; ${stub}; poll_server; echo "[$?] pid $$"`);
    pid = /pid (\d+)/.exec(run.stdout)?.[1] ?? '';
    expect(run.stdout).toBe(`[0] pid ${pid}\n`);
    expect(lines(readFileSync(batch, 'utf8'), pid)).toEqual([`get last_change_date ${m.state}/remote-state`]);
  });

  it('the report: the queued logs, then the heartbeat as the machine is then (after the switch); nothing asked with no log queued', () => {
    const m = machine({ state: APPLIED, current: NEW, booted: OLD });
    writeFileSync(path.join(m.state, 'pending', LOG), 'x');
    const batch = path.join(m.dir, 'sent');
    // The heartbeat is read when the batch is sent, as sftp reads it.
    const stub = `sftp_batch() { cat > ${shellQuote(batch)}; cat "$STATE_DIR/heartbeat" >> ${shellQuote(batch)}; }`;
    const run = runSourced(SESSION_SOURCES, `${m.prelude}; ${stub}; upload_logs; echo "[$?] pid $$"; ls "$STATE_DIR/pending"`);
    const pid = /pid (\d+)/.exec(run.stdout)?.[1] ?? '';
    expect(run.stdout).toBe(`[0] pid ${pid}\n`);
    const sent = readFileSync(batch, 'utf8');
    const [commands, heartbeat] = [sent.slice(0, sent.indexOf('bento heartbeat')), sent.slice(sent.indexOf('bento heartbeat'))];
    expect(lines(commands, pid)).toEqual([
      `put ${m.state}/pending/${LOG} logs/.${LOG}.tmp-PID`,
      `rename logs/.${LOG}.tmp-PID logs/${LOG}`,
      `-put ${m.state}/heartbeat logs/.heartbeat.tmp-PID`,
      '-rename logs/.heartbeat.tmp-PID logs/heartbeat',
    ]);
    expect(parseHeartbeat(heartbeat)).toEqual({ protocol: 2, configuration: DIGEST, running: NEW, booted: OLD, rebootPending: false });

    const nothing = runSourced(SESSION_SOURCES, `${m.prelude}; sftp_batch() { echo asked; }; upload_logs; echo "[$?]"`);
    expect(nothing.stdout).toBe('[0]\n');
  });

  it('the report when the heartbeat cannot be written: the logs alone, sent all the same', () => {
    const m = machine({ state: APPLIED, current: NEW });
    writeFileSync(path.join(m.state, 'pending', LOG), 'x');
    symlinkSync('/dev/full', path.join(m.state, 'heartbeat.tmp'));
    const batch = path.join(m.dir, 'sent');
    const run = runSourced(SESSION_SOURCES, `${m.prelude}; sftp_batch() { cat > ${shellQuote(batch)}; }; upload_logs; echo "[$?] pid $$"; ls "$STATE_DIR/pending"`);
    const pid = /pid (\d+)/.exec(run.stdout)?.[1] ?? '';
    expect(run.stdout).toBe(`[0] pid ${pid}\n`);
    expect(lines(readFileSync(batch, 'utf8'), pid)).toEqual([`put ${m.state}/pending/${LOG} logs/.${LOG}.tmp-PID`, `rename logs/.${LOG}.tmp-PID logs/${LOG}`]);
  });
});

describe('boot_part_differing, shared by the heartbeat and the REBOOT flag', () => {
  const parts = { kernel: 'k1', initrd: 'i1', modules: 'm1' };

  it('names the first of kernel, initrd and kernel-modules that differs, and fails when none does', () => {
    const m = machine({
      systems: { a: parts, same: parts, kernel: { ...parts, kernel: 'k2' }, initrd: { ...parts, initrd: 'i2' }, modules: { ...parts, modules: 'm2' } },
    });
    const script = ['same', 'kernel', 'initrd', 'modules'].map((other) => `part=$(boot_part_differing ${shellQuote(path.join(m.store, 'a'))} ${shellQuote(path.join(m.store, other))}); printf '[%s %s]\\n' "$part" "$?"`).join('\n');
    expect(runSourced(['core'], script).stdout).toBe('[ 1]\n[kernel 0]\n[initrd 0]\n[kernel-modules 0]\n');
  });

  it('reboot_if_needed compares the booted system with the new profile through it', () => {
    const m = machine({ booted: 'a', systems: { a: parts, same: parts, next: { ...parts, initrd: 'i2' } } });
    mkdirSync(path.join(m.dir, 'var-bento'));
    writeFileSync(path.join(m.dir, 'var-bento', 'REBOOT'), '');
    const reboot = (profile: string) =>
      runSourced(['core', 'switch'], `${m.prelude}; BENTO_DIR=${shellQuote(path.join(m.dir, 'var-bento'))}; PROFILE=${shellQuote(path.join(m.store, profile))}; SWITCHED=1; systemctl() { echo "systemctl $*"; }; reboot_if_needed`).stdout;
    expect(reboot('next')).toBe('bento: the initrd changed: rebooting\nsystemctl kexec\n');
    expect(reboot('same')).toBe('bento: kernel, initrd and modules are unchanged: no reboot needed\n');
  });
});
