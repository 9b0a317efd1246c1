/**
 * nixos-rebuild, for `bento build test|switch`: applies a configuration on
 * this machine (through sudo when not root) or, with a target, on another
 * machine over SSH (push mode), as nixos-rebuild's --target-host does.
 *
 * nixos-rebuild evaluates as the user running it (root): a configuration.nix
 * is evaluated in restricted mode as deploy does (restricted-eval.ts:
 * nixos-rebuild hands -I and --option to every nix-build it runs); a flake
 * is evaluated first by bento's unprivileged evaluator (the caller's gate),
 * then by nixos-rebuild in pure mode.
 */
import path from 'node:path';
import { run, type RunResult } from '../exec.js';
import { restrictedEvalArgs, restrictedEvaluation, type RestrictedEvaluation } from './restricted-eval.js';

export type ApplyAction = 'test' | 'switch';

export interface NixosRebuildOptions {
  action: ApplyAction;
  /** `flake`: `<dir>#<name>`; `non-flake`: nixos-config=<dir>/configuration.nix. */
  kind: 'flake' | 'non-flake';
  /** The staged configuration directory. */
  configDir: string;
  name: string;
  /** `[user@]host` to apply on (root@ when no user is given); undefined: this machine. */
  targetHost?: string;
  /** Stream nixos-rebuild's output (VERBOSE). */
  verbose?: boolean;
  /** Whether this process is root (else sudo is used for a local apply). */
  isRoot: boolean;
}

/** The command line: file and arguments; a configuration.nix is evaluated in restricted mode (`evaluation`). */
export function nixosRebuildCommand(options: NixosRebuildOptions, evaluation: RestrictedEvaluation = { searchPath: [], features: [] }): [string, string[]] {
  const args =
    options.kind === 'flake'
      ? [options.action, '--flake', `${options.configDir}#${options.name}`]
      : [options.action, '--no-flake', ...restrictedEvalArgs(path.join(options.configDir, 'configuration.nix'), options.configDir, evaluation)];
  if (options.targetHost) args.push('--target-host', options.targetHost.includes('@') ? options.targetHost : `root@${options.targetHost}`);
  return options.isRoot || options.targetHost ? ['nixos-rebuild', args] : ['sudo', ['nixos-rebuild', ...args]];
}

/** Runs nixos-rebuild; a failure is returned (exit status and output), not thrown. */
export async function runNixosRebuild(options: NixosRebuildOptions): Promise<RunResult> {
  const [file, args] = nixosRebuildCommand(options, options.kind === 'non-flake' ? await restrictedEvaluation() : undefined);
  return run(file, args, { allowFailure: true, stream: options.verbose });
}
