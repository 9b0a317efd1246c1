/**
 * nixos-rebuild, for `bento build test|switch`: applies a configuration on
 * this machine (through sudo when not root) or, with a target, on another
 * machine over SSH (push mode), as nixos-rebuild's --target-host does.
 */
import { run, type RunResult } from '../exec.js';

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

/** The command line: file and arguments. */
export function nixosRebuildCommand(options: NixosRebuildOptions): [string, string[]] {
  const args =
    options.kind === 'flake'
      ? [options.action, '--flake', `${options.configDir}#${options.name}`]
      : [options.action, '--no-flake', '-I', `nixos-config=${options.configDir}/configuration.nix`];
  if (options.targetHost) args.push('--target-host', options.targetHost.includes('@') ? options.targetHost : `root@${options.targetHost}`);
  return options.isRoot || options.targetHost ? ['nixos-rebuild', args] : ['sudo', ['nixos-rebuild', ...args]];
}

/** Runs nixos-rebuild; a failure is returned (exit status and output), not thrown. */
export async function runNixosRebuild(options: NixosRebuildOptions): Promise<RunResult> {
  const [file, args] = nixosRebuildCommand(options);
  return run(file, args, { allowFailure: true, stream: options.verbose });
}
