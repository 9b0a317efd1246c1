/**
 * One alert run: for each hook, the transitions since what it was last
 * sent, delivered as one JSON document; what was sent is recorded only once
 * it arrived, so a failed hook gets the same transitions again next run
 * (merged with any new ones) and nothing is lost silently. A hook's first
 * run records the fleet and sends nothing: a new alert setup does not flood.
 */
import path from 'node:path';
import { UserError } from '../errors.js';
import { holdFileLock } from '../exec.js';
import { deliver, describeHook, type Hook } from './deliver.js';
import { readSentState, writeSentState, type SentState } from './sent-state.js';
import { alertPayload, transitionsBetween, type FleetView, type Transition } from './transitions.js';

export interface HookOutcome {
  hook: string;
  /** `first-run`: recorded, nothing sent; `quiet`: nothing to send. */
  result: 'first-run' | 'quiet' | 'delivered' | 'failed';
  transitions: Transition[];
  error?: string;
}

export async function notifyHooks(options: { stateFile: string; hooks: readonly Hook[]; now: FleetView }): Promise<HookOutcome[]> {
  const state = readSentState(options.stateFile);
  // Written back only when it changed: a timer run with nothing new touches no disk.
  const asRead = JSON.stringify(state);
  const outcomes: HookOutcome[] = [];
  for (const hook of options.hooks) {
    const sent = state.hooks[hook.kind];
    if (sent === undefined) {
      state.hooks[hook.kind] = options.now;
      outcomes.push({ hook: describeHook(hook), result: 'first-run', transitions: [] });
      continue;
    }
    const transitions = transitionsBetween(sent, options.now);
    if (transitions.length === 0) {
      // The same conditions: keep the newer whys and times.
      state.hooks[hook.kind] = options.now;
      outcomes.push({ hook: describeHook(hook), result: 'quiet', transitions });
      continue;
    }
    try {
      await deliver(hook, JSON.stringify(alertPayload(transitions)));
      state.hooks[hook.kind] = options.now;
      outcomes.push({ hook: describeHook(hook), result: 'delivered', transitions });
    } catch (error) {
      outcomes.push({ hook: describeHook(hook), result: 'failed', transitions, error: (error as Error).message });
    }
  }
  // A hook no longer configured forgets what it sent: set up again, it starts afresh.
  for (const kind of Object.keys(state.hooks) as Hook['kind'][]) {
    if (!options.hooks.some((hook) => hook.kind === kind)) delete state.hooks[kind];
  }
  if (JSON.stringify(state) !== asRead) recordSent(options.stateFile, state, outcomes);
  return outcomes;
}

/**
 * Writes what each hook was sent. A file that cannot be written (a full
 * disk) is the server's to fix, said with what it means: the hooks that got
 * this run's alerts get them again at the next run.
 */
function recordSent(stateFile: string, state: SentState, outcomes: readonly HookOutcome[]): void {
  try {
    writeSentState(stateFile, state);
  } catch (error) {
    const delivered = outcomes.filter((outcome) => outcome.result === 'delivered').map((outcome) => outcome.hook);
    throw new UserError(
      `cannot record the alerts sent in ${stateFile}: ${(error as Error).message}`,
      delivered.length > 0 ? `${delivered.join(' and ')} got this run's alerts, and will get them again at the next run` : 'nothing was sent; the next run looks at the fleet again',
    );
  }
}

/** Where the server keeps what each hook was sent: beside rollout.json, out of every chroot (a dot name the CHROOT_DIR walker skips). */
export function alertStateFile(chrootDir: string): string {
  return path.join(chrootDir, '.bento-alerts.json');
}

/**
 * notifyHooks under a lock, so that `bento notify` on its timer and a live
 * `bento status` never send the same transition twice; undefined when
 * another run holds it (it sends what is due).
 */
export async function notifyExclusively(options: { chrootDir: string; hooks: readonly Hook[]; now: FleetView }): Promise<HookOutcome[] | undefined> {
  const stateFile = alertStateFile(options.chrootDir);
  const lock = await holdFileLock(`${stateFile}.lock`, 'the lock of the alerts sent');
  if (!lock) return undefined;
  try {
    return await notifyHooks({ stateFile, hooks: options.hooks, now: options.now });
  } finally {
    await lock.release();
  }
}
