/**
 * `bento build test|switch`: applies a system that bento has built, with
 * the steps nixos-rebuild takes once it holds the system's store path
 * (nixpkgs, pkgs/os-specific/linux/nixos-rebuild/nixos-rebuild.sh): copy
 * the closure to the target (`nix-copy-closure --to`), make it the system
 * profile's new generation (switch only: `nix-env -p
 * /nix/var/nix/profiles/system --set`), then run its
 * `bin/switch-to-configuration ACTION` in a transient unit (`systemd-run
 * … --wait`, which survives a lost terminal or SSH connection; directly,
 * with a clean environment, where systemd-run does not work) — on the
 * target over SSH, or here (through sudo when bento is not root).
 *
 * Why not nixos-rebuild itself: it evaluates the configuration again, as
 * root — its fetchers then run hg and git with root's rights, its builds
 * get the root daemon's netrc — and for test and switch it first builds the
 * configuration's own `config.system.build.nixos-rebuild` and re-executes
 * it, as root, on this server, --target-host or not. bento builds the
 * system as its unprivileged evaluator (unprivileged.ts) instead, so that
 * nothing of the fleet runs with root's rights here, except the activation
 * of a system applied to this server, which is what switching it means.
 */
import { MissingToolError, UserError } from '../errors.js';
import { run, type RunResult } from '../exec.js';
import { shQuote } from '../util/quote.js';

export type ApplyAction = 'test' | 'switch';

/** The profile nixos-rebuild switches (its default, without --profile-name). */
export const SYSTEM_PROFILE = '/nix/var/nix/profiles/system';

/** nixos-rebuild's transient unit for switch-to-configuration, as it starts it. */
const SYSTEMD_RUN = [
  'systemd-run',
  '-E',
  'LOCALE_ARCHIVE',
  '-E',
  'NIXOS_INSTALL_BOOTLOADER=',
  '--collect',
  '--no-ask-password',
  '--pipe',
  '--quiet',
  '--same-dir',
  '--service-type=exec',
  '--unit=nixos-rebuild-switch-to-configuration',
  '--wait',
];

export interface ApplyOptions {
  action: ApplyAction;
  /** The system's store path, built by bento. */
  systemPath: string;
  /** `[user@]host` to apply on (root@ when no user is given); undefined: this machine. */
  targetHost?: string;
  /** ssh options for the target (NIX_SSHOPTS, split at spaces as nixos-rebuild splits it). */
  sshOptions?: string;
  /** Whether this process is root (else sudo is used for a local apply). */
  isRoot: boolean;
  /** Stream the commands' output (VERBOSE). */
  verbose?: boolean;
}

/** The SSH destination: the given one, root@ when it names no user; never an ssh option. */
export function sshDestination(targetHost: string): string {
  if (targetHost === '' || targetHost.startsWith('-') || /[\s\0-\x1f]/.test(targetHost)) {
    throw new UserError(`target ${JSON.stringify(targetHost)} is not a [user@]host: it may not be empty, start with "-" or hold spaces or control characters`);
  }
  return targetHost.includes('@') ? targetHost : `root@${targetHost}`;
}

/**
 * `command` where the system is applied: over SSH on the target (each word
 * quoted, since ssh hands the remote shell one line), else here, through
 * sudo when bento is not root.
 */
export function onTarget(command: readonly string[], options: Pick<ApplyOptions, 'targetHost' | 'sshOptions' | 'isRoot'>): [string, string[]] {
  if (options.targetHost !== undefined) {
    const sshOptions = (options.sshOptions ?? '').split(/\s+/).filter((word) => word !== '');
    return ['ssh', [...sshOptions, sshDestination(options.targetHost), ...command.map(shQuote)]];
  }
  return options.isRoot ? [command[0] as string, command.slice(1)] : ['sudo', [...command]];
}

export interface ApplyStep {
  /** What the step runs, for a failure's message. */
  name: string;
  command: [string, string[]];
}

/** The steps before the activation: the copy to the target, the profile's new generation (switch). */
export function preparationSteps(options: ApplyOptions): ApplyStep[] {
  const steps: ApplyStep[] = [];
  if (options.targetHost !== undefined) steps.push({ name: 'nix-copy-closure', command: ['nix-copy-closure', ['--to', sshDestination(options.targetHost), options.systemPath]] });
  if (options.action === 'switch') steps.push({ name: 'nix-env --set', command: onTarget(['nix-env', '-p', SYSTEM_PROFILE, '--set', options.systemPath], options) });
  return steps;
}

/** switch-to-configuration ACTION, in nixos-rebuild's transient unit or, without a working systemd-run, directly with a clean environment. */
export function activationCommand(options: ApplyOptions, withSystemdRun: boolean): [string, string[]] {
  const wrapper = withSystemdRun ? SYSTEMD_RUN : ['env', '-i', `LOCALE_ARCHIVE=${process.env.LOCALE_ARCHIVE ?? ''}`, 'NIXOS_INSTALL_BOOTLOADER='];
  return onTarget([...wrapper, `${options.systemPath}/bin/switch-to-configuration`, options.action], options);
}

/** The probe nixos-rebuild makes: whether systemd-run works where the system is applied. */
export function systemdRunProbe(options: ApplyOptions): [string, string[]] {
  return onTarget([...SYSTEMD_RUN, 'true'], options);
}

export interface ApplyResult {
  ok: boolean;
  /** What failed, for the summary line: the step and its exit status. */
  error?: string;
  /** The output of every command run. */
  log: string;
}

/** Applies a built system; a failed step stops there and is returned, not thrown. */
export async function applySystem(options: ApplyOptions): Promise<ApplyResult> {
  const logs: string[] = [];
  const step = async ([file, args]: [string, string[]]): Promise<RunResult> => {
    const result = await run(file, args, { allowFailure: true, stream: options.verbose });
    if (result.all) logs.push(result.all);
    return result;
  };
  for (const { name, command } of preparationSteps(options)) {
    const result = await step(command);
    if (result.failed) return { ok: false, error: `${name} exited with ${result.exitCode}`, log: logs.join('') };
  }
  // Not installed here counts as not working, as for nixos-rebuild (whose probe then fails like any other command).
  const probe = await step(systemdRunProbe(options)).catch((error: unknown) => {
    if (error instanceof MissingToolError) return { failed: true };
    throw error;
  });
  const result = await step(activationCommand(options, !probe.failed));
  if (result.failed) return { ok: false, error: `switch-to-configuration ${options.action} exited with ${result.exitCode}`, log: logs.join('') };
  return { ok: true, log: logs.join('') };
}
