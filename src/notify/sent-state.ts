/**
 * What each hook was last sent, kept on the server so that restarts and
 * repeated runs send nothing twice: one FleetView per hook kind, in a
 * root-only JSON file written atomically and flushed (util/atomic-write.ts).
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';
import { writeFileAtomicallySync } from '../util/atomic-write.js';
import type { HookKind } from './deliver.js';
import type { FleetView } from './transitions.js';

export interface SentState {
  version: 1;
  hooks: Partial<Record<HookKind, FleetView>>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isText(value: unknown): value is string {
  return typeof value === 'string';
}

/** A FleetView as this module writes it; anything else is refused. */
function isFleetView(value: unknown): value is FleetView {
  if (!isRecord(value) || !isRecord(value.machines) || !isRecord(value.rollout)) return false;
  const { rollout } = value;
  if (!isText(rollout.status) || !isText(rollout.why) || !isText(rollout.since)) return false;
  return Object.values(value.machines).every(
    (machine) => isRecord(machine) && isText(machine.state) && isText(machine.why) && isText(machine.since) && (machine.drift === undefined || typeof machine.drift === 'boolean'),
  );
}

/**
 * The file's content; an empty state when it does not exist. One that is
 * damaged or cannot be read is the server's to mend, not a bug: a
 * UserError naming it (it was an internal error, with a stack trace).
 */
export function readSentState(file: string): SentState {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, hooks: {} };
    throw new UserError(`${file} cannot be read: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UserError(`${file}: not JSON; remove it to start again (the next run then records the fleet and sends nothing)`);
  }
  if (!isRecord(parsed) || parsed.version !== 1 || !isRecord(parsed.hooks)) throw new UserError(`${file}: not a bento alert state (version 1); remove it to start again`);
  const hooks: SentState['hooks'] = {};
  for (const kind of ['command', 'url'] as const) {
    const view = parsed.hooks[kind];
    if (view === undefined) continue;
    if (!isFleetView(view)) throw new UserError(`${file}: the state of ${kind} is damaged; remove the file to start again`);
    hooks[kind] = view;
  }
  return { version: 1, hooks };
}

export function writeSentState(file: string, state: SentState): void {
  writeFileAtomicallySync(file, `${JSON.stringify(state, null, 2)}\n`, 0o600);
}
