/**
 * `bento notify`: sends the fleet's alerts once — each machine that became
 * failing or rolled back (silent and drifted once heartbeats land), a
 * rollout that halted, and each recovery — to NOTIFY_COMMAND and NOTIFY_URL
 * (notify/). Run from a server timer (services.bento-server.notify).
 *
 * Exit status: 0 when everything due was delivered, whatever state the
 * fleet is in (alerting on the fleet is the hooks' job, not the unit's);
 * 1 when a hook failed (what it missed is sent again next run).
 */
import { loadConfig } from '../config/config.js';
import { UserError } from '../errors.js';
import { hooksOf } from '../notify/deliver.js';
import { fleetViewOf } from '../notify/fleet-view.js';
import { notifyExclusively, type HookOutcome } from '../notify/notify.js';
import { readFleetReport } from '../status/report.js';
import { defineCommand, nowOf, printLine, runsAsRoot, tell, type CommandIO } from './io.js';

export interface NotifyOptions {
  fleetDir: string;
}

/** One line per hook for the unit's journal: what it was sent. */
export function describeOutcome(outcome: HookOutcome): string {
  const count = `${outcome.transitions.length} transition${outcome.transitions.length === 1 ? '' : 's'}`;
  switch (outcome.result) {
    case 'first-run':
      return `${outcome.hook}: first run, the fleet as it is now recorded, nothing sent`;
    case 'quiet':
      return `${outcome.hook}: nothing new`;
    case 'delivered':
      return `${outcome.hook}: ${count} sent`;
    case 'failed':
      return `${outcome.hook}: ${count} not delivered (${outcome.error ?? 'failed'}); sent again at the next run`;
  }
}

export async function notifyCommand(options: NotifyOptions, io: CommandIO): Promise<number> {
  const { config, warnings } = await loadConfig(options.fleetDir, { askSystemd: false });
  for (const warning of warnings) await tell(io, `warning: ${warning}`);
  const hooks = hooksOf(config);
  if (hooks.length === 0) {
    await tell(io, 'notify: nothing to do: config.sh sets neither NOTIFY_COMMAND nor NOTIFY_URL (docs/alerts.md)');
    return 0;
  }
  if (!runsAsRoot(io)) {
    throw new UserError('bento notify must run as root: it records what it sent in CHROOT_DIR/.bento-alerts.json, which is root\'s', 'run it as root (services.bento-server.notify does)');
  }
  const now = nowOf(io);
  let report;
  try {
    report = await readFleetReport(config.chrootDir, { logSizeLimit: config.logSizeLimit, silence: { nowMs: now.getTime(), silentAfterMs: config.silentAfter * 1000 } });
  } catch (error) {
    throw new UserError(`cannot read CHROOT_DIR ${config.chrootDir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const outcomes = await notifyExclusively({ chrootDir: config.chrootDir, hooks, now: fleetViewOf(report, now.getTime()) });
  if (outcomes === undefined) {
    await tell(io, 'notify: another bento notify or status is sending the alerts now; it sends what is due');
    return 0;
  }
  let failed = false;
  for (const outcome of outcomes) {
    if (outcome.result === 'failed') {
      failed = true;
      await tell(io, `notify: ${describeOutcome(outcome)}`);
    } else {
      printLine(io, describeOutcome(outcome));
    }
  }
  return failed ? 1 : 0;
}

export const command = defineCommand<Record<string, never>, NotifyOptions>({
  define(command) {
    command.addHelpText(
      'after',
      `
Sends each alert once: what each hook was sent is kept in CHROOT_DIR/.bento-alerts.json
(root only); its first run records the fleet and sends nothing. Run it from a timer
(services.bento-server.notify on NixOS, or cron:
  */5 * * * * root bento --dir /path/to/fleet notify)`,
    );
  },
  options: (_parsed, world) => ({ fleetDir: world.fleetDir }),
  run: notifyCommand,
});
