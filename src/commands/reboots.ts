/**
 * `bento reboots`: hands out reboot slots, at most REBOOT_MAX at once
 * (docs/reboots.md, docs/protocol.md §12). It reads the machines'
 * heartbeats, ends the slots of machines that rebooted and reported back
 * (or expired), and grants the free ones to the machines waiting longest,
 * through a reboot-slot file in each one's chroot: the machine reads it at
 * its next poll. The server never connects to a machine. Run by a timer
 * (services.bento-server.reboots, setup-debian.sh) and at the end of
 * `bento deploy`; takes the deploy lock.
 *
 * Exit status 0.
 */
import { lockChrootDir } from '../chroot/chroot-dir.js';
import { loadConfig, type Config } from '../config/config.js';
import { UserError } from '../errors.js';
import { runRebootSlots, type SlotEvent } from '../rollout/reboot-slots.js';
import { sanitize } from '../util/sanitize.js';
import { defineCommand, nowOf, printLine, runsAsRoot, tell, warnUser, type CommandIO } from './io.js';

export interface RebootsCommandOptions {
  fleetDir: string;
}

export async function rebootsCommand(options: RebootsCommandOptions, io: CommandIO): Promise<number> {
  const { config, warnings } = await loadConfig(options.fleetDir);
  for (const warning of warnings) await warnUser(io, warning);
  if (!runsAsRoot(io)) throw new UserError('bento reboots must run as root: it writes into CHROOT_DIR', 'run it again with sudo');
  await handOutSlots(config, io);
  return 0;
}

/** Under the deploy lock of CHROOT_DIR: ends and grants slots (rollout/reboot-slots.ts), and says so. Deploy runs it too. */
export async function handOutSlots(config: Config, io: CommandIO): Promise<void> {
  const unlock = await lockChrootDir(config.chrootDir);
  try {
    const { events, record } = await runRebootSlots(config, nowOf(io).getTime());
    await reportSlots(io, events, record, config.rebootMax);
  } finally {
    await unlock();
  }
}

/** One line per slot that ended or was granted, and a summary. */
export async function reportSlots(io: CommandIO, events: readonly SlotEvent[], record: { slots: object; waiting: object }, max: number): Promise<void> {
  for (const event of events) printLine(io, `  ${sanitize(event.name)}: slot ${event.kind} (${event.why})`);
  if (max === 0) {
    await tell(io, 'reboots: REBOOT_MAX is not set: machines reboot without a slot');
    return;
  }
  await tell(io, `reboots: ${Object.keys(record.slots).length} of ${max} slot${max === 1 ? '' : 's'} held, ${Object.keys(record.waiting).length} machine${Object.keys(record.waiting).length === 1 ? '' : 's'} waiting`);
}

export const command = defineCommand<Record<string, never>, RebootsCommandOptions>({
  define(command) {
    command.addHelpText(
      'after',
      `
With REBOOT_MAX in config.sh, at most that many machines reboot into a new
kernel at once. Run it from a timer (services.bento-server.reboots on NixOS,
setup-debian.sh's bento-reboots.timer, or cron:
  */5 * * * * root bento --dir /path/to/fleet reboots);
bento deploy runs it too. See docs/reboots.md.`,
    );
  },
  options: (_input, world) => ({ fleetDir: world.fleetDir }),
  run: rebootsCommand,
});
