/**
 * What an alert says: the transitions between what was last sent and what
 * the fleet shows now. A machine matters to alerts when its state needs a
 * person (failing, silent, rolled back, extra logs, drifted) or stops needing one
 * (recovery); moves between quiet states (up to date → rebuild pending)
 * send nothing. The fleet-wide condition is a halted rollout.
 *
 * Pure: the caller reads the fleet, keeps what was sent, and delivers.
 */

/**
 * The states that call for a person: those that make `bento status` exit 2
 * (failing, rolled back, extra logs), silent, and drift (shown beside the state).
 */
export const ALERTING = ['failing', 'silent', 'rollbacked', 'extra-logs', 'drift'] as const;
export type AlertingState = (typeof ALERTING)[number];

/** One machine as alerts see it. */
export interface MachineView {
  /** The state `bento status` shows (its id, e.g. `up-to-date`, `failing`). */
  state: string;
  /** Someone changed the running system by hand (a heartbeat names another store path than the latest log). */
  drift?: boolean;
  /** Why it is in that state, one line (a log name, a silence, …). */
  why: string;
  /** When it entered that state, as far as the server knows (ISO 8601). */
  since: string;
}

/** What alerts compare, run after run, and what is kept as "last sent". */
export interface FleetView {
  machines: Record<string, MachineView>;
  /** The staged rollout: `halted` with its reason, or anything else (`none`, `running`, `done`). */
  rollout: { status: string; why: string; since: string };
}

export interface Transition {
  /** null for the fleet (the rollout). */
  system: string | null;
  from: string;
  to: string;
  when: string;
  why: string;
  /** True when it stops needing a person. */
  recovered: boolean;
}

/** The alerting condition a machine is in, or null when it needs nobody. */
export function alertingState(view: MachineView | undefined): AlertingState | null {
  if (view === undefined) return null;
  if ((ALERTING as readonly string[]).includes(view.state)) return view.state as AlertingState;
  return view.drift ? 'drift' : null;
}

/** A machine's state as a transition names it: drift, when that is what alerts. */
function shownState(view: MachineView | undefined): string {
  if (view === undefined) return 'absent';
  return alertingState(view) ?? view.state;
}

/**
 * The transitions from `sent` to `now`, machines by name then the rollout.
 * A machine that appears or leaves counts as coming from or going to a
 * quiet state: a new failing machine alerts, a removed failing one recovers.
 */
export function transitionsBetween(sent: FleetView, now: FleetView): Transition[] {
  const transitions: Transition[] = [];
  const names = [...new Set([...Object.keys(sent.machines), ...Object.keys(now.machines)])].sort();
  for (const name of names) {
    const before = sent.machines[name];
    const after = now.machines[name];
    const was = alertingState(before);
    const is = alertingState(after);
    if (was === is) continue;
    transitions.push({
      system: name,
      from: shownState(before),
      to: shownState(after),
      when: after?.since ?? before?.since ?? '',
      why: after?.why ?? 'no longer in the fleet',
      recovered: is === null,
    });
  }
  const wasHalted = sent.rollout.status === 'halted';
  const isHalted = now.rollout.status === 'halted';
  if (wasHalted !== isHalted) {
    transitions.push({ system: null, from: sent.rollout.status, to: now.rollout.status, when: now.rollout.since, why: now.rollout.why, recovered: !isHalted });
  }
  return transitions;
}

/** One line for a plain chat webhook: `bento: nas failing; router recovered (up-to-date)`. */
export function summaryText(transitions: readonly Transition[]): string {
  const parts = transitions.map((transition) => {
    const subject = transition.system ?? 'rollout';
    return transition.recovered ? `${subject} recovered (${transition.to})` : `${subject} ${transition.to}`;
  });
  return `bento: ${parts.join('; ')}`;
}

/** The JSON a hook receives: each transition and the summary. */
export function alertPayload(transitions: readonly Transition[]): { text: string; transitions: readonly Transition[] } {
  return { text: summaryText(transitions), transitions };
}
