/**
 * `bento build [dry-build|build|test|switch]`: builds the selected systems
 * here, or applies one of them (test/switch) with nixos-rebuild, locally or
 * on TARGET_IP (push mode).
 */
import { rmSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generate } from '../commands/generate.js';
import { run } from '../exec.js';
import { UserError } from '../errors.js';
import type { FleetSystem } from '../fleet/fleet.js';
import { selectSystems } from '../fleet/select.js';
import type { NixBuildOptions } from '../nix/build.js';
import { buildSystemsShowingProgress, formatBuildLine, stageForBuild, type SystemBuildResult } from './build-systems.js';
import type { Progress } from '../progress.js';

export type BuildAction = 'dry-build' | 'build' | 'test' | 'switch';

const REFUSED: Record<string, string> = {
  edit: 'bento build edit is not supported: edit the files under hosts/ instead',
  'build-vm': 'bento build build-vm is not supported: run nixos-rebuild build-vm in the host directory',
  'build-vm-with-bootloader': 'bento build build-vm-with-bootloader is not supported: run nixos-rebuild build-vm-with-bootloader in the host directory',
};

/** The action word of `bento build`; `dry-run` is the reference text's name for dry-build. */
export function parseBuildAction(word: string | undefined): BuildAction {
  const action = word ?? 'build';
  if (action === 'dry-run' || action === 'dry-build') return 'dry-build';
  if (action === 'build' || action === 'test' || action === 'switch') return action;
  const refused = REFUSED[action];
  if (refused) throw new UserError(refused);
  throw new UserError(`unknown build action ${JSON.stringify(action)}: use dry-build (or dry-run), build, test or switch`);
}

export interface RunBuildOptions {
  fleetDir: string;
  action: BuildAction;
  names: string[];
  jobs: number;
  nix: NixBuildOptions;
  /** Skip the typed confirmation of test/switch. */
  yes: boolean;
  /** Asks the user and returns the answer (test/switch without --yes). */
  ask: (question: string) => Promise<string>;
  /** Push mode: apply on this machine (`[user@]host`) instead of here. */
  targetIp?: string;
  print: (line: string) => void;
  /** Live progress of the builds (a status line on a terminal). */
  progress?: Pick<Progress, 'start' | 'advance' | 'stop'>;
  /** After a successful push, publish the system's files (bento deploy for it). */
  publish?: (name: string) => Promise<void>;
}

export interface RunBuildResult {
  results: SystemBuildResult[];
  failed: string[];
}

export async function runBuild(options: RunBuildOptions): Promise<RunBuildResult> {
  const { fleet, outputDir: generatedDir } = await generate({ fleetDir: options.fleetDir, jobs: options.jobs });
  const selected = selectSystems(fleet.systems, options.names, fleet.brokenHosts.map((broken) => broken.place));

  if (options.action === 'test' || options.action === 'switch') {
    if (options.names.length !== 1 || selected.length !== 1) {
      throw new UserError(`bento build ${options.action} applies exactly one system: name it with NAME=<name> or --name <name>`);
    }
    return applySystem(selected[0] as FleetSystem, generatedDir, options);
  }

  const evaluateOnly = options.action === 'dry-build' || options.nix.evaluateOnly === true;
  options.print(`${evaluateOnly ? 'evaluating' : 'building'} ${selected.length} system${selected.length === 1 ? '' : 's'}`);
  const results = await buildSystemsShowingProgress(selected, {
    generatedDir,
    nix: { ...options.nix, evaluateOnly },
    jobs: options.jobs,
    print: options.print,
    progress: options.progress,
  });
  const failed = results.filter((result) => !result.ok);
  return { results, failed: failed.map((failure) => failure.name) };
}

async function applySystem(system: FleetSystem, generatedDir: string, options: RunBuildOptions): Promise<RunBuildResult> {
  const where = options.targetIp ? `on ${options.targetIp}` : 'on this machine';
  if (!options.yes) {
    const answer = await options.ask(`nixos-rebuild ${options.action} of ${system.name} ${where}: type yes to continue: `);
    if (answer.trim() !== 'yes') throw new UserError('cancelled: nothing was applied');
  }
  const stagingRoot = mkdtempSync(path.join(os.tmpdir(), 'bento-apply-'));
  const started = process.hrtime.bigint();
  try {
    const staging = stageForBuild(system, generatedDir, stagingRoot);
    const args =
      system.kind === 'flake'
        ? [options.action, '--flake', `${staging}#${system.name}`]
        : [options.action, '--no-flake', '-I', `nixos-config=${path.join(staging, 'configuration.nix')}`];
    if (options.targetIp) args.push('--target-host', options.targetIp.includes('@') ? options.targetIp : `root@${options.targetIp}`);
    const asRoot = process.getuid?.() === 0 || options.targetIp;
    const [file, fileArgs] = asRoot ? ['nixos-rebuild', args] : ['sudo', ['nixos-rebuild', ...args]];
    options.print(`running nixos-rebuild ${options.action} for ${system.name} ${where}`);
    const result = await run(file as string, fileArgs as string[], { allowFailure: true, stream: options.nix.verbose });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const outcome: SystemBuildResult = result.failed
      ? { name: system.name, kind: system.kind, ok: false, error: `nixos-rebuild exited with ${result.exitCode}`, log: result.all, seconds }
      : { name: system.name, kind: system.kind, ok: true, log: result.all, seconds };
    options.print(formatBuildLine(outcome));
    if (!outcome.ok) {
      if (!options.nix.verbose && result.all.trim()) options.print(result.all.trimEnd());
      return { results: [outcome], failed: [system.name] };
    }
    if (options.targetIp && options.publish) await options.publish(system.name);
    return { results: [outcome], failed: [] };
  } finally {
    rmSync(stagingRoot, { recursive: true, force: true });
  }
}
