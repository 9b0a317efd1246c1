/**
 * `bento build [dry-build|build|test|switch]`: builds the selected systems
 * here, or applies one of them (test/switch) with nixos-rebuild, locally or
 * on TARGET_IP (push mode), then publishes it.
 */
import { rmSync } from 'node:fs';
import { UserError } from '../errors.js';
import { releaseFleet, type Fleet, type FleetSystem } from '../fleet/fleet.js';
import { selectSystems } from '../fleet/select.js';
import type { NixBuildOptions } from '../nix/build.js';
import { runNixosRebuild, type ApplyAction } from '../nix/rebuild.js';
import { buildSystems, buildSystemsShowingProgress, formatBuildLine, stageForBuild, type SystemBuildResult } from '../builds/build-systems.js';
import { generateOutput } from '../render/generate.js';
import { makeTempDir } from '../util/temp-dir.js';
import { deployCommand } from './deploy.js';
import { reportBrokenHosts } from './generate.js';
import { printLine, tell, type CommandIO } from './io.js';

export type BuildAction = 'dry-build' | 'build' | ApplyAction;

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

export interface BuildCommandOptions {
  fleetDir: string;
  /** The action word as given (parsed by parseBuildAction). */
  action: string | undefined;
  names: string[];
  jobs: number;
  nix: NixBuildOptions;
  /** Skip the typed confirmation of test/switch. */
  yes: boolean;
  /** Push mode: apply on this machine (`[user@]host`) instead of here. */
  targetIp?: string;
}

export async function buildCommand(options: BuildCommandOptions, io: CommandIO): Promise<number> {
  const action = parseBuildAction(options.action);
  const { fleet, outputDir: generatedDir } = await generateOutput({ fleetDir: options.fleetDir, jobs: options.jobs, snapshot: true });
  try {
    return await buildSelected(fleet, action, generatedDir, options, io);
  } finally {
    await releaseFleet(fleet);
  }
}

async function buildSelected(fleet: Fleet, action: BuildAction, generatedDir: string, options: BuildCommandOptions, io: CommandIO): Promise<number> {
  const selected = selectSystems(fleet.systems, options.names, fleet.brokenHosts);

  let results: SystemBuildResult[];
  if (action === 'test' || action === 'switch') {
    if (options.names.length !== 1 || selected.length !== 1) {
      throw new UserError(`bento build ${action} applies exactly one system: name it with NAME=<name> or --name <name>`);
    }
    results = [await applySystem(selected[0] as FleetSystem, action, generatedDir, options, io)];
  } else {
    const evaluateOnly = action === 'dry-build' || options.nix.evaluateOnly === true;
    printLine(io, `${evaluateOnly ? 'evaluating' : 'building'} ${selected.length} system${selected.length === 1 ? '' : 's'}`);
    results = await buildSystemsShowingProgress(selected, {
      generatedDir,
      nix: { ...options.nix, evaluateOnly },
      jobs: options.jobs,
      print: (line) => printLine(io, line),
      progress: io.progress,
    });
  }
  const failed = results.filter((result) => !result.ok).map((result) => result.name);
  await reportBrokenHosts(io, fleet.brokenHosts);
  await tell(io, `build: ${results.length - failed.length} ok, ${failed.length} failed`);
  const problems = [...fleet.brokenHosts.map((broken) => broken.place), ...failed];
  if (problems.length > 0) throw new UserError(`failed: ${problems.join(', ')}`);
  return 0;
}

async function applySystem(system: FleetSystem, action: ApplyAction, generatedDir: string, options: BuildCommandOptions, io: CommandIO): Promise<SystemBuildResult> {
  const where = options.targetIp ? `on ${options.targetIp}` : 'on this machine';
  if (!options.yes) {
    const answer = (await io.ask?.(`nixos-rebuild ${action} of ${system.name} ${where}: type yes to continue: `)) ?? '';
    if (answer.trim() !== 'yes') throw new UserError('cancelled: nothing was applied');
  }
  const stagingRoot = makeTempDir('apply');
  const started = process.hrtime.bigint();
  try {
    // nixos-rebuild evaluates as root: bento's own evaluation, with no more rights than the fleet writer, goes first (nix/rebuild.ts).
    const [checked] = await buildSystems([system], { generatedDir, nix: { ...options.nix, evaluateOnly: true }, jobs: 1 });
    if (!checked?.ok) {
      const failed = { ...(checked as SystemBuildResult), seconds: Number(process.hrtime.bigint() - started) / 1e9 };
      printLine(io, formatBuildLine(failed));
      if (!options.nix.verbose && failed.log.trim()) printLine(io, failed.log.trimEnd());
      return failed;
    }
    const staging = await stageForBuild(system, generatedDir, stagingRoot);
    printLine(io, `running nixos-rebuild ${action} for ${system.name} ${where}`);
    const result = await runNixosRebuild({
      action,
      kind: system.kind,
      configDir: staging,
      name: system.name,
      targetHost: options.targetIp,
      verbose: options.nix.verbose,
      isRoot: process.getuid?.() === 0,
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const outcome: SystemBuildResult = result.failed
      ? { name: system.name, kind: system.kind, ok: false, error: `nixos-rebuild exited with ${result.exitCode}`, log: result.all, seconds }
      : { name: system.name, kind: system.kind, ok: true, log: result.all, seconds };
    printLine(io, formatBuildLine(outcome));
    if (!outcome.ok) {
      if (!options.nix.verbose && result.all.trim()) printLine(io, result.all.trimEnd());
      return outcome;
    }
    if (options.targetIp) await publishAfterPush(system.name, options, io);
    return outcome;
  } finally {
    rmSync(stagingRoot, { recursive: true, force: true });
  }
}

/** After a push, the machine runs the new system: publish it, so its next poll does not undo it. */
async function publishAfterPush(name: string, options: BuildCommandOptions, io: CommandIO): Promise<void> {
  if (process.getuid?.() !== 0) {
    await tell(io, `not root: ${name}'s files were not published; run \`bento deploy\` as root`);
    return;
  }
  await deployCommand({ fleetDir: options.fleetDir, names: [name], jobs: 1, nix: { ...options.nix, evaluateOnly: undefined } }, io);
}
