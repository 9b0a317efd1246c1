/**
 * Staged rollouts on the server side (issue 12): bento deploy with
 * ROLLOUT_WAVES and bento rollout, against real Nix and real chroots. The
 * machines' reports are log files put into their logs/ as a machine would
 * (the end-to-end suite 17-rollout.bats runs the real client cycle).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { bento, CLI } from '../helpers/cli.js';
import { flakeText, makeFleet, type TestFleet } from '../helpers/fleet.js';
import { NIX_ENV, snapshotTree, useTestServer } from '../helpers/server.js';
import { isRoot } from '../helpers/shell.js';

const suite = useTestServer();
const { n } = suite;

/** canary in wave 1, three others in wave 2 ("*"), each a flake of its own; `extra` more config.sh lines. */
function newFleet(extra = ''): TestFleet {
  const names = ['canary', 'a', 'b', 'c'];
  const hosts = Object.fromEntries(names.map((name) => [name, { flake: [n(name)] }]));
  const fleet = makeFleet({ config: `CHROOT_DIR=${suite.server.chrootDir}\nREMOTE_IP=127.0.0.1\nROLLOUT_WAVES="${n('canary')} *"\n${extra}`, hosts });
  suite.later(fleet.cleanup);
  suite.server.addUsers(names.map(n));
  // The chroots outlive a test (the names are the file's): no test sees an earlier one's logs.
  for (const name of names) rmSync(path.join(chrootOf(n(name)), 'logs'), { recursive: true, force: true });
  return fleet;
}

function run(fleet: TestFleet, args: string[], env: Record<string, string> = {}) {
  return bento(args, { env: { BENTO_DIR: fleet.root, ...NIX_ENV, ...env } });
}

/** A new configuration for every system. */
function change(fleet: TestFleet, text: string): void {
  for (const name of ['canary', 'a', 'b', 'c']) writeFileSync(path.join(fleet.root, 'hosts', name, `${n(name)}.nix`), `${text}\n`);
}

function states(): Record<string, string> {
  const text = readFileSync(path.join(suite.server.chrootDir, 'states.txt'), 'utf8');
  return Object.fromEntries(text.trim().split('\n').map((line) => line.split('=') as [string, string]));
}

function rolloutState(): { status: string; current: number; systems: Record<string, { target: string; version: string; publishedAt?: string }> } {
  return JSON.parse(readFileSync(path.join(suite.server.chrootDir, 'rollout.json'), 'utf8'));
}

/** A log as the machine uploads it, received `secondsFromNow` from now by the suite.server. */
function report(name: string, storeBasename: string, result: string, secondsFromNow = 1): void {
  const file = path.join(suite.server.chrootDir, name, 'logs', `20240601-1200_${storeBasename}_${result}.log.gz`);
  // A whole gzip file: status (and so the advance) ignores what is not one.
  writeFileSync(file, gzipSync(`bento update of ${name}: ${result}\n`));
  const time = Date.now() / 1000 + secondsFromNow;
  utimesSync(file, time, time);
}

const chrootOf = (name: string) => path.join(suite.server.chrootDir, name);
const configOf = (name: string) => readlinkSync(path.join(chrootOf(name), 'config'));

describe.skipIf(!isRoot)('deploy with ROLLOUT_WAVES, and bento rollout', () => {
  it('publishes the canary only; advance waits, then publishes the rest once the canary succeeded, then is done', () => {
    const fleet = newFleet();
    expect(run(fleet, ['deploy', '--all']).status).toBe(0);
    const before = Object.fromEntries(['a', 'b', 'c'].map((name) => [name, snapshotTree(chrootOf(n(name)))]));
    const statesBefore = states();

    change(fleet, '# version 2');
    const deploy = run(fleet, ['deploy']);
    expect(deploy.status, deploy.stderr).toBe(0);
    expect(deploy.stderr).toContain('deploy: 1 published, 0 unchanged, 0 failed, 3 waiting for a later wave');
    expect(deploy.stdout).toContain(`rollout started: wave 1 (${n('canary')}) published to ${n('canary')}`);
    // The others' chroots and states.txt lines are untouched (their new version is staged beside, unseen).
    for (const name of ['a', 'b', 'c']) {
      const now = snapshotTree(chrootOf(n(name)));
      for (const [entry, stat] of Object.entries(before[name]!)) if (entry !== '.') expect(now[entry], `${name}/${entry}`).toBe(stat);
      expect(states()[n(name)]).toBe(statesBefore[n(name)]);
    }
    const target = rolloutState().systems[n('canary')]!.target;
    expect(states()[n('canary')]).toBe(target);

    // Deploying again, nothing changed: the rollout goes on as it was (the canaries are not skipped).
    const again = run(fleet, ['deploy']);
    expect(again.stdout).toContain(`${n('a')}: waits for wave 2 of the rollout in progress`);
    expect(rolloutState().current).toBe(0);

    const waiting = run(fleet, ['rollout', 'advance']);
    expect(waiting.status).toBe(0);
    expect(waiting.stderr).toContain(`wave 1 (${n('canary')}): waiting for ${n('canary')}`);

    // A success log for another store path does not count; one for the target does.
    report(n('canary'), statesBefore[n('canary')]!, 'success');
    expect(run(fleet, ['rollout', 'advance']).stderr).toContain('waiting for');
    report(n('canary'), target, 'success', 2);
    const advanced = run(fleet, ['rollout', 'advance']);
    expect(advanced.status, advanced.stderr).toBe(0);
    expect(advanced.stderr).toContain(`wave 2 (*) published: ${[n('a'), n('b'), n('c')].sort().join(', ')}`);
    for (const name of ['a', 'b', 'c']) {
      expect(configOf(n(name))).toBe(rolloutState().systems[n(name)]!.version);
      expect(states()[n(name)]).toBe(rolloutState().systems[n(name)]!.target);
    }

    // status: JSON and the table.
    const status = run(fleet, ['rollout', 'status', '--json']);
    expect(status.status).toBe(0);
    const json = JSON.parse(status.stdout) as { currentWave: number; systems: { name: string; report: string }[] };
    expect(json.currentWave).toBe(2);
    expect(json.systems.find((system) => system.name === n('canary'))?.report).toBe('succeeded');
    expect(json.systems.find((system) => system.name === n('a'))?.report).toBe('waiting');

    for (const name of ['a', 'b', 'c']) report(n(name), rolloutState().systems[n(name)]!.target, 'success', 3);
    const done = run(fleet, ['rollout', 'advance']);
    expect(done.stderr).toContain('rollout done: every wave succeeded');
    expect(rolloutState().status).toBe('done');
    expect(run(fleet, ['rollout', 'advance']).status).toBe(0);
  });

  it('halts on a failure of the canary, naming it; status shows the halt and exits 2; abort --revert gives the canary its old configuration back', () => {
    const fleet = newFleet();
    expect(run(fleet, ['deploy', '--all']).status).toBe(0);
    // Every machine took its first configuration (status shows them known, not new).
    for (const name of ['a', 'b', 'c']) report(n(name), states()[n(name)]!, 'success', 0);
    const oldCanary = configOf(n('canary'));
    const oldTarget = states()[n('canary')]!;
    change(fleet, '# version 3');
    expect(run(fleet, ['deploy']).status).toBe(0);
    const othersBefore = Object.fromEntries(['a', 'b', 'c'].map((name) => [name, configOf(n(name))]));
    // The build failed on the canary: its log names what it still runs.
    report(n('canary'), oldTarget, 'failure');
    const halted = run(fleet, ['rollout', 'advance']);
    expect(halted.status).toBe(1);
    expect(halted.stderr).toContain(`rollout halted at wave 1 (${n('canary')}): ${n('canary')} reported a failure or a rollback for the new configuration`);
    for (const name of ['a', 'b', 'c']) expect(configOf(n(name))).toBe(othersBefore[name]);
    // Halted stays halted, and says so again (a timer's unit shows it failed).
    expect(run(fleet, ['rollout', 'advance']).status).toBe(1);

    const status = run(fleet, ['status', '--once']);
    expect(status.status).toBe(2);
    expect(status.stdout).toContain(`rollout HALTED at wave 1 of 2 (${n('canary')}): ${n('canary')} reported a failure`);
    expect(status.stdout).toMatch(new RegExp(`${n('a')} .*rollout pending`));
    const json = JSON.parse(run(fleet, ['status', '--json']).stdout) as { name: string; rollout: { halted: boolean } }[];
    const reason = 'reported a failure or a rollback for the new configuration';
    expect(json.find((entry) => entry.name === n('a'))?.rollout).toEqual({ wave: 2, published: false, halted: true, atFault: false, haltReason: reason });
    expect(json.find((entry) => entry.name === n('canary'))?.rollout).toEqual({ wave: 1, published: true, halted: true, atFault: true, haltReason: reason });

    const abort = run(fleet, ['rollout', 'abort', '--revert']);
    expect(abort.status, abort.stderr).toBe(0);
    expect(configOf(n('canary'))).toBe(oldCanary);
    expect(states()[n('canary')]).toBe(oldTarget);
    // last_change_date announces the old manifest again, so the machine downloads it.
    const stamp = readFileSync(path.join(chrootOf(n('canary')), 'last_change_date'), 'utf8').split(' ')[0];
    const manifest = spawnSync('sha256sum', [path.join(chrootOf(n('canary')), 'config', '.bento-manifest')], { encoding: 'utf8' }).stdout.split(' ')[0];
    expect(stamp).toBe(manifest);
    for (const name of ['a', 'b', 'c']) expect(configOf(n(name))).toBe(othersBefore[name]);
    expect(rolloutState().status).toBe('aborted');
  });

  it('a canary that cannot be built on the server halts the rollout at once; the later waves see nothing', () => {
    const fleet = newFleet();
    expect(run(fleet, ['deploy', '--all']).status).toBe(0);
    change(fleet, '# version 11');
    writeFileSync(path.join(fleet.root, 'hosts', 'canary', 'flake.nix'), flakeText([n('canary')]).replace('mkdir -p $out', 'echo the canary breaks >&2; exit 1; mkdir -p $out'));
    const before = Object.fromEntries(['canary', 'a', 'b', 'c'].map((name) => [name, snapshotTree(chrootOf(n(name)))]));
    const deploy = run(fleet, ['deploy']);
    expect(deploy.status).toBe(1);
    expect(deploy.stdout).toContain(`rollout halted at once: ${n('canary')} could not be built or published on the server`);
    expect(deploy.stderr).toContain(`${n('canary')}: build failed`);
    expect(rolloutState().status).toBe('halted');
    for (const name of ['canary', 'a', 'b', 'c']) {
      const now = snapshotTree(chrootOf(n(name)));
      for (const entry of ['config', 'last_change_date']) expect(now[entry], `${name}/${entry}`).toBe(before[name]![entry]);
    }
    const advance = run(fleet, ['rollout', 'advance']);
    expect(advance.status).toBe(1);
    expect(advance.stderr).toContain(`rollout halted at wave 1 (${n('canary')}): ${n('canary')} could not be built or published on the server`);
  });

  it('halts when the wave does not report within ROLLOUT_WAIT; resume goes on with the next wave', () => {
    const fleet = newFleet('ROLLOUT_WAIT=1\n');
    expect(run(fleet, ['deploy', '--all']).status).toBe(0);
    change(fleet, '# version 4');
    expect(run(fleet, ['deploy']).status).toBe(0);
    spawnSync('sleep', ['1.5']);
    const halted = run(fleet, ['rollout', 'advance']);
    expect(halted.status).toBe(1);
    expect(halted.stderr).toContain(`${n('canary')} did not report success within ROLLOUT_WAIT (1s) of their publication`);
    const resumed = run(fleet, ['rollout', 'resume']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain('wave 2 (*) published');
    for (const name of ['a', 'b', 'c']) expect(configOf(n(name))).toBe(rolloutState().systems[n(name)]!.version);
  });

  it('an advance killed half-way is completed by the next one: no system published twice or skipped', () => {
    const fleet = newFleet();
    expect(run(fleet, ['deploy', '--all']).status).toBe(0);
    change(fleet, '# version 5');
    expect(run(fleet, ['deploy']).status).toBe(0);
    report(n('canary'), rolloutState().systems[n('canary')]!.target, 'success');
    // What a kill leaves: wave 2 recorded, only `a` published.
    const state = JSON.parse(readFileSync(path.join(suite.server.chrootDir, 'rollout.json'), 'utf8'));
    state.current = 1;
    const recorded = new Date(Date.now() - 60_000).toISOString();
    for (const name of ['a', 'b', 'c']) state.systems[n(name)].publishedAt = recorded;
    writeFileSync(path.join(suite.server.chrootDir, 'rollout.json'), JSON.stringify(state));
    const a = state.systems[n('a')];
    const swap = spawnSync('sh', ['-c', 'ln -sfn "$1" "$2.new" && mv -T "$2.new" "$2"', 'sh', a.version, path.join(chrootOf(n('a')), 'config')]);
    expect(swap.status).toBe(0);
    writeFileSync(path.join(chrootOf(n('a')), 'last_change_date'), `${a.digest} ${new Date().toISOString()}\n`);
    const aStamp = snapshotTree(chrootOf(n('a')))['last_change_date'];

    // The next advance publishes what the killed one did not, and `a` only once.
    const advanced = run(fleet, ['rollout', 'advance']);
    expect(advanced.status, advanced.stderr).toBe(0);
    expect(advanced.stderr).toContain(`wave 2 (*) published (an earlier advance or deploy stopped before it): ${[n('b'), n('c')].sort().join(', ')}`);
    expect(advanced.stderr).toContain(`waiting for`);
    expect(snapshotTree(chrootOf(n('a')))['last_change_date']).toBe(aStamp);
    // Their time to report starts when they were really published.
    const after = rolloutState();
    for (const name of ['b', 'c']) expect(Date.parse(after.systems[n(name)]!.publishedAt!)).toBeGreaterThan(Date.parse(recorded));
    expect(after.systems[n('a')]!.publishedAt).toBe(recorded);
    for (const name of ['b', 'c']) expect(configOf(n(name))).toBe(state.systems[n(name)].version);
  });

  it('advances killed at any moment, and advances racing a deploy, leave a whole state file and every system published once', async () => {
    const fleet = newFleet();
    expect(run(fleet, ['deploy', '--all']).status).toBe(0);
    change(fleet, '# version 6');
    expect(run(fleet, ['deploy']).status).toBe(0);
    report(n('canary'), rolloutState().systems[n('canary')]!.target, 'success');
    const env = { ...process.env, BENTO_DIR: fleet.root, ...NIX_ENV };
    for (const delay of [5, 20, 40, 80]) {
      const child = spawn(process.execPath, [CLI, 'rollout', 'advance'], { env, stdio: 'ignore' });
      await new Promise((resolve) => setTimeout(resolve, delay));
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      // The state file is always whole.
      expect(() => rolloutState()).not.toThrow();
    }
    // Two advances and a deploy at once: the lock lets one publish at a time.
    const racers = [['rollout', 'advance'], ['rollout', 'advance'], ['deploy']].map(
      (args) =>
        new Promise<number | null>((resolve) => {
          const child = spawn(process.execPath, [CLI, ...args], { env, stdio: 'ignore' });
          child.once('exit', resolve);
        }),
    );
    await Promise.all(racers);
    expect(run(fleet, ['rollout', 'advance']).status).toBe(0);
    const state = rolloutState();
    expect(state.current).toBe(1);
    for (const name of ['a', 'b', 'c']) {
      expect(configOf(n(name))).toBe(state.systems[n(name)]!.version);
      const stamp = readFileSync(path.join(chrootOf(n(name)), 'last_change_date'), 'utf8');
      expect(stamp.split(' ')[0]).toBe((state.systems[n(name)] as unknown as { digest: string }).digest);
      expect(readFileSync(path.join(chrootOf(n(name)), 'config', '.bento-manifest'), 'utf8').length).toBeGreaterThan(0);
    }
    expect(existsSync(path.join(suite.server.chrootDir, `.rollout.json.tmp-${process.pid}`))).toBe(false);
  }, 60_000);

  it('a new deploy with a changed configuration starts a new rollout from the first wave; --all ends it', () => {
    const fleet = newFleet();
    expect(run(fleet, ['deploy', '--all']).status).toBe(0);
    change(fleet, '# version 7');
    expect(run(fleet, ['deploy']).status).toBe(0);
    const first = rolloutState();
    change(fleet, '# version 8');
    const redeploy = run(fleet, ['deploy']);
    expect(redeploy.stderr).toContain('deploy: 1 published, 0 unchanged, 0 failed, 3 waiting for a later wave');
    const second = rolloutState();
    expect(second.current).toBe(0);
    expect(second.systems[n('a')]!.version).not.toBe(first.systems[n('a')]!.version);
    const all = run(fleet, ['deploy', '--all']);
    expect(all.status).toBe(0);
    expect(all.stdout).toContain('the rollout in progress ends: --all publishes every changed system');
    expect(all.stderr).toContain('deploy: 3 published');
    expect(existsSync(path.join(suite.server.chrootDir, 'rollout.json'))).toBe(false);
  });

  it('a deploy of some systems only keeps the rest of the rollout in progress: nothing staged is forgotten, the canary is still awaited', () => {
    const fleet = newFleet();
    expect(run(fleet, ['deploy', '--all']).status).toBe(0);
    change(fleet, '# version 9');
    expect(run(fleet, ['deploy']).status).toBe(0);
    const first = rolloutState();
    const published = { a: configOf(n('a')), b: configOf(n('b')), c: configOf(n('c')) };

    writeFileSync(path.join(fleet.root, 'hosts', 'a', `${n('a')}.nix`), '# version 10\n');
    const partial = run(fleet, ['deploy', '--name', n('a')]);
    expect(partial.status, partial.stderr).toBe(0);
    expect(partial.stdout).toContain(`${n('b')}: kept from the rollout in progress (waits for wave 2 (*))`);
    expect(partial.stdout).toContain(`${n('canary')}: kept from the rollout in progress (published, its report awaited)`);
    const second = rolloutState();
    // The canary's wave is still the one watched, with its publication time; b and c keep their staged versions.
    expect(second.current).toBe(0);
    expect(Object.keys(second.systems).sort()).toEqual([n('a'), n('b'), n('c'), n('canary')].sort());
    expect(second.systems[n('canary')]!.publishedAt).toBe(first.systems[n('canary')]!.publishedAt);
    for (const name of ['b', 'c']) expect(second.systems[n(name)]!.version).toBe(first.systems[n(name)]!.version);
    expect(second.systems[n('a')]!.version).not.toBe(first.systems[n('a')]!.version);
    // Nobody after the canary sees anything yet.
    for (const name of ['a', 'b', 'c'] as const) expect(configOf(n(name))).toBe(published[name]);

    report(n('canary'), second.systems[n('canary')]!.target, 'success');
    const advanced = run(fleet, ['rollout', 'advance']);
    expect(advanced.status, advanced.stderr).toBe(0);
    for (const name of ['a', 'b', 'c']) expect(configOf(n(name))).toBe(second.systems[n(name)]!.version);
  });
});

describe.skipIf(!isRoot)('what an abort holds, and what passes a wave (issue 19)', () => {
  it('a wave the canary has not passed holds the later waves, even when only they change', () => {
    const fleet = newFleet();
    expect(run(fleet, ['deploy', '--all']).status).toBe(0);
    change(fleet, '# version 12');
    expect(run(fleet, ['deploy']).status).toBe(0);
    const first = rolloutState();
    const published = { a: configOf(n('a')), b: configOf(n('b')), c: configOf(n('c')) };
    // Only `a` changes again; the canary has not reported on its new configuration.
    writeFileSync(path.join(fleet.root, 'hosts', 'a', `${n('a')}.nix`), '# version 13\n');
    const deploy = run(fleet, ['deploy']);
    expect(deploy.status, deploy.stderr).toBe(0);
    expect(deploy.stdout).toContain(`${n('canary')}: kept from the rollout in progress (published, its report awaited)`);
    expect(deploy.stdout).toContain(`rollout started: wave 1 (${n('canary')}) published to ${n('canary')}`);
    const second = rolloutState();
    expect(second.current).toBe(0);
    expect(second.systems[n('canary')]!.publishedAt).toBe(first.systems[n('canary')]!.publishedAt);
    for (const name of ['a', 'b', 'c'] as const) expect(configOf(n(name))).toBe(published[name]);
    // Its success for exactly that configuration opens wave 2.
    report(n('canary'), second.systems[n('canary')]!.target, 'success');
    const advanced = run(fleet, ['rollout', 'advance']);
    expect(advanced.stderr).toContain(`wave 2 (*) published: ${[n('a'), n('b'), n('c')].sort().join(', ')}`);
    expect(configOf(n('a'))).toBe(second.systems[n('a')]!.version);
  });

  it('an abort holds the waiting systems until their own configuration changes; the others of a new rollout go on without them', () => {
    const fleet = newFleet();
    expect(run(fleet, ['deploy', '--all']).status).toBe(0);
    change(fleet, '# version 14');
    expect(run(fleet, ['deploy']).status).toBe(0);
    const published = { a: configOf(n('a')), b: configOf(n('b')), c: configOf(n('c')) };
    const abort = run(fleet, ['rollout', 'abort']);
    expect(abort.status, abort.stderr).toBe(0);

    const again = run(fleet, ['deploy']);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toContain('deploy: 0 published, 1 unchanged, 0 failed, 3 held back by an aborted rollout');
    expect(again.stdout).not.toContain('rollout started');
    for (const name of ['a', 'b', 'c'] as const) expect(configOf(n(name))).toBe(published[name]);
    const status = run(fleet, ['rollout', 'status', '--json']);
    const held = (JSON.parse(status.stdout) as { held: { name: string; why: string }[] }).held;
    expect(held.map((hold) => [hold.name, hold.why])).toEqual([n('a'), n('b'), n('c')].sort().map((name) => [name, 'aborted']));

    // The canary passes its wave; then `a` alone gets a new configuration: it is released, b and c stay held.
    report(n('canary'), rolloutState().systems[n('canary')]!.target, 'success');
    writeFileSync(path.join(fleet.root, 'hosts', 'a', `${n('a')}.nix`), '# version 15\n');
    const released = run(fleet, ['deploy']);
    expect(released.status, released.stderr).toBe(0);
    expect(released.stdout).toContain(`${n('b')}: held back by the rollout aborted`);
    expect(released.stdout).toContain(`rollout started: wave 2 (*) published to ${n('a')}`);
    expect(configOf(n('a'))).toBe(rolloutState().systems[n('a')]!.version);
    for (const name of ['b', 'c'] as const) expect(configOf(n(name))).toBe(published[name]);
    expect(Object.keys(rolloutState().systems)).toEqual([n('a')]);
    // The holds outlive that rollout's end.
    report(n('a'), rolloutState().systems[n('a')]!.target, 'success', 2);
    expect(run(fleet, ['rollout', 'advance']).stderr).toContain('rollout done');
    expect(run(fleet, ['deploy']).stderr).toContain('2 held back by an aborted rollout');
    // --all publishes everything and ends the rollout, its holds with it.
    const all = run(fleet, ['deploy', '--all']);
    expect(all.stderr).toContain('deploy: 2 published');
    expect(existsSync(path.join(suite.server.chrootDir, 'rollout.json'))).toBe(false);
  });

  it('an abort can still be reverted once: the current wave gets its previous configuration back and is held there', () => {
    const fleet = newFleet();
    expect(run(fleet, ['deploy', '--all']).status).toBe(0);
    const oldCanary = configOf(n('canary'));
    change(fleet, '# version 17');
    expect(run(fleet, ['deploy']).status).toBe(0);
    expect(run(fleet, ['rollout', 'abort']).status).toBe(0);
    const revert = run(fleet, ['rollout', 'abort', '--revert']);
    expect(revert.status, revert.stderr).toBe(0);
    expect(revert.stderr).toContain(`wave 1 (${n('canary')}) reverted to the previous configuration`);
    expect(configOf(n('canary'))).toBe(oldCanary);
    const status = run(fleet, ['rollout', 'status']);
    expect(status.stdout).toContain('held back by an abort until a new configuration is deployed for them');
    expect(status.stdout).toMatch(new RegExp(`${n('canary')} +since .*, reverted to its previous configuration`));
    const again = run(fleet, ['rollout', 'abort', '--revert']);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('the rollout is aborted and its current wave reverted: nothing to abort');
    // Nothing new: the canary stays reverted, the others held.
    const deploy = run(fleet, ['deploy']);
    expect(deploy.stderr).toContain('deploy: 0 published, 0 unchanged, 0 failed, 4 held back by an aborted rollout');
    expect(configOf(n('canary'))).toBe(oldCanary);
  });

  it('a rollout.json whose previous version is a path: abort --revert and deploy refuse it, naming the field; nothing is reverted or published', () => {
    const fleet = newFleet();
    expect(run(fleet, ['deploy', '--all']).status).toBe(0);
    change(fleet, '# version 16');
    expect(run(fleet, ['deploy']).status).toBe(0);
    const file = path.join(suite.server.chrootDir, 'rollout.json');
    const state = JSON.parse(readFileSync(file, 'utf8'));
    state.systems[n('canary')].previous.version = '../../../../etc';
    writeFileSync(file, JSON.stringify(state));
    const canary = configOf(n('canary'));
    const stamp = snapshotTree(chrootOf(n('canary')))['last_change_date'];

    const message = `${file} is damaged: systems.${n('canary')}.previous.version is not a version directory name`;
    for (const args of [['rollout', 'abort', '--revert'], ['deploy'], ['rollout', 'advance']]) {
      const refused = run(fleet, args);
      expect(refused.status, args.join(' ')).toBe(1);
      expect(refused.stderr).toContain(message);
      expect(refused.stderr).toContain('remove it to forget that rollout');
      expect(refused.stderr).not.toContain('deploy again');
    }
    expect(configOf(n('canary'))).toBe(canary);
    expect(snapshotTree(chrootOf(n('canary')))['last_change_date']).toBe(stamp);
    expect(readFileSync(file, 'utf8')).toBe(JSON.stringify(state));
  });
});

describe.skipIf(!isRoot)('the systems of one flake in a rollout (issue 21)', () => {
  /** One flake holding a canary (wave 1) and a system of wave 2. */
  function pairFleet(): TestFleet {
    const fleet = makeFleet({ config: `CHROOT_DIR=${suite.server.chrootDir}\nREMOTE_IP=127.0.0.1\nROLLOUT_WAVES="${n('pcan')} *"\n`, hosts: { pair: { flake: [n('pcan'), n('pwav')] } } });
    suite.later(fleet.cleanup);
    suite.server.addUsers([n('pcan'), n('pwav')]);
    for (const name of ['pcan', 'pwav']) rmSync(path.join(chrootOf(n(name)), 'logs'), { recursive: true, force: true });
    // No rollout of the tests before (the one before left a damaged rollout.json on purpose).
    rmSync(path.join(suite.server.chrootDir, 'rollout.json'), { force: true });
    return fleet;
  }
  const edit = (fleet: TestFleet, name: string, text: string) => writeFileSync(path.join(fleet.root, 'hosts', 'pair', `${n(name)}.nix`), `${text}\n`);

  it('a system whose built system did not change is neither published nor staged: the rollout holds only the changed ones', () => {
    const fleet = pairFleet();
    const all = run(fleet, ['deploy', '--all']);
    expect(all.status, all.stderr).toBe(0);
    const wave2 = snapshotTree(chrootOf(n('pwav')));

    // The canary's own file: the canary is the rollout; its flake-mate of wave 2 is not staged.
    edit(fleet, 'pcan', '# canary 2');
    const canaryOnly = run(fleet, ['deploy']);
    expect(canaryOnly.status, canaryOnly.stderr).toBe(0);
    expect(canaryOnly.stderr).toContain('deploy: 1 published, 1 unchanged, 0 failed');
    expect(canaryOnly.stdout).toContain(`${n('pwav')}: no changes: its system is still`);
    expect(canaryOnly.stdout).not.toContain('staged');
    expect(Object.keys(rolloutState().systems)).toEqual([n('pcan')]);
    expect(snapshotTree(chrootOf(n('pwav')))).toEqual(wave2);
    report(n('pcan'), rolloutState().systems[n('pcan')]!.target, 'success');
    expect(run(fleet, ['rollout', 'advance']).status).toBe(0);
    expect(rolloutState().status).toBe('done');

    // Wave 2's own file only: its wave is the rollout's first; the canary is not published again.
    const canary = snapshotTree(chrootOf(n('pcan')));
    edit(fleet, 'pwav', '# wave 2, 2');
    const waveOnly = run(fleet, ['deploy']);
    expect(waveOnly.status, waveOnly.stderr).toBe(0);
    expect(waveOnly.stderr).toContain('deploy: 1 published, 1 unchanged, 0 failed');
    expect(waveOnly.stdout).toContain(`rollout started: wave 2 (*) published to ${n('pwav')}`);
    expect(Object.keys(rolloutState().systems)).toEqual([n('pwav')]);
    expect(snapshotTree(chrootOf(n('pcan')))).toEqual(canary);
  });

  it('a staged system whose files go back to files deploy remembers building its published system leaves the rollout in progress', () => {
    const fleet = pairFleet();
    expect(run(fleet, ['deploy', '--all']).status).toBe(0);
    const published = configOf(n('pwav'));
    // The canary's change: pwav is built, found the same, and remembered so.
    edit(fleet, 'pcan', '# canary 4');
    expect(run(fleet, ['deploy']).stdout).toContain(`${n('pwav')}: no changes: its system is still`);
    // pwav's own change waits for its wave.
    edit(fleet, 'pwav', '# wave 2, 4');
    const staged = run(fleet, ['deploy']);
    expect(staged.stderr).toContain('1 waiting for a later wave');
    expect(Object.keys(rolloutState().systems)).toContain(n('pwav'));
    // Taken back: its files are the remembered ones; not built, and not left waiting with the change.
    rmSync(path.join(fleet.root, 'hosts', 'pair', `${n('pwav')}.nix`));
    const back = run(fleet, ['deploy']);
    expect(back.status, back.stderr).toBe(0);
    expect(back.stdout).not.toContain('building');
    expect(back.stdout).toContain(`${n('pwav')}: no longer waits in the rollout in progress: its system is the one published`);
    expect(Object.keys(rolloutState().systems)).not.toContain(n('pwav'));
    report(n('pcan'), rolloutState().systems[n('pcan')]!.target, 'success');
    expect(run(fleet, ['rollout', 'advance']).status).toBe(0);
    expect(configOf(n('pwav'))).toBe(published);
  });

  it('a staged system whose configuration goes back to the published one leaves the rollout in progress', () => {
    const fleet = pairFleet();
    const all = run(fleet, ['deploy', '--all']);
    expect(all.status, all.stderr).toBe(0);
    const published = configOf(n('pwav'));
    edit(fleet, 'pcan', '# canary 3');
    edit(fleet, 'pwav', '# wave 2, 3');
    expect(run(fleet, ['deploy']).stderr).toContain('deploy: 1 published, 0 unchanged, 0 failed, 1 waiting for a later wave');
    // pwav's change is taken back before its wave: nothing new for either.
    rmSync(path.join(fleet.root, 'hosts', 'pair', `${n('pwav')}.nix`));
    const back = run(fleet, ['deploy']);
    expect(back.status, back.stderr).toBe(0);
    expect(back.stderr).toContain('deploy: 0 published, 2 unchanged, 0 failed');
    expect(back.stdout).toContain(`${n('pwav')}: no longer waits in the rollout in progress: its system is the one published`);
    expect(Object.keys(rolloutState().systems)).toEqual([n('pcan')]);
    report(n('pcan'), rolloutState().systems[n('pcan')]!.target, 'success');
    expect(run(fleet, ['rollout', 'advance']).status).toBe(0);
    expect(configOf(n('pwav'))).toBe(published);
  });
});
