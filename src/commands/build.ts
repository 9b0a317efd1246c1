/**
 * `bento build [dry-build|build|test|switch]`: builds the selected systems
 * here, or builds one of them and applies it (test/switch) as nixos-rebuild
 * would, locally or on TARGET_IP (push mode), then publishes it.
 */
import { UserError } from '../errors.js';
import { releaseFleet, type Fleet, type FleetSystem } from '../fleet/fleet.js';
import { selectSystems } from '../fleet/select.js';
import type { NixBuildOptions } from '../nix/build.js';
import { applySystem as applyBuiltSystem, sshDestination, type ApplyAction } from '../nix/rebuild.js';
import { buildSystems, buildSystemsShowingProgress, formatBuildLine, type ClientFileDigests, type SystemBuildResult } from '../builds/build-systems.js';
import { RenderedFiles } from '../chroot/assemble.js';
import { generateOutput } from '../render/generate.js';
import { deployCommand } from './deploy.js';
import { reportBrokenHosts, reportSkippedHostDirs } from './generate.js';
import { generateRecordOf } from './shared/generate-record-store.js';
import { defineSelectionFlags, selectionOptions, type SelectionFlags } from './shared/flags.js';
import { defineCommand, printLine, runsAsRoot, tell, type CommandIO } from './io.js';
import { tempDirsRemoved } from '../util/temp-dir.js';

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
  const { fleet, outputDir: generatedDir, files, digests } = await generateOutput({ fleetDir: options.fleetDir, jobs: options.jobs, snapshot: true, record: generateRecordOf(io) });
  try {
    await reportSkippedHostDirs(io, fleet);
    // What generate just brought generated/ to hold: the staging copies get that, or nothing.
    const rendered = new RenderedFiles(files, digests);
    return await buildSelected(fleet, action, { dir: generatedDir, clientFiles: (file) => rendered.lookup(file) }, options, io);
  } finally {
    await Promise.all([releaseFleet(fleet), tempDirsRemoved()]);
  }
}

/** generated/, and what each client file in it must hold (build-systems.ts, ClientFileDigests). */
interface Generated {
  dir: string;
  clientFiles: ClientFileDigests;
}

async function buildSelected(fleet: Fleet, action: BuildAction, generated: Generated, options: BuildCommandOptions, io: CommandIO): Promise<number> {
  const selected = selectSystems(fleet.systems, options.names, fleet.brokenHosts);

  let results: SystemBuildResult[];
  if (action === 'test' || action === 'switch') {
    if (options.names.length !== 1 || selected.length !== 1) {
      throw new UserError(`bento build ${action} applies exactly one system: name it with NAME=<name> or --name <name>`);
    }
    results = [await applySystem(selected[0] as FleetSystem, action, generated, options, io)];
  } else {
    const evaluateOnly = action === 'dry-build' || options.nix.evaluateOnly === true;
    printLine(io, `${evaluateOnly ? 'evaluating' : 'building'} ${selected.length} system${selected.length === 1 ? '' : 's'}`);
    results = await buildSystemsShowingProgress(selected, {
      generatedDir: generated.dir,
      clientFiles: generated.clientFiles,
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

async function applySystem(system: FleetSystem, action: ApplyAction, generated: Generated, options: BuildCommandOptions, io: CommandIO): Promise<SystemBuildResult> {
  const where = options.targetIp ? `on ${options.targetIp}` : 'on this machine';
  if (options.targetIp !== undefined) sshDestination(options.targetIp);
  if (!options.yes) {
    const answer = (await io.ask?.(`${action} ${system.name} ${where}: type yes to continue: `)) ?? '';
    if (answer.trim() !== 'yes') throw new UserError('cancelled: nothing was applied', answer.trim() === '' ? 'no answer was read (standard input ended, or the line was empty): type yes, or pass --yes to apply without asking' : undefined);
  }
  const started = process.hrtime.bigint();
  // Built as deploy builds it, with no more rights than the fleet writer (nix/rebuild.ts): what is applied is that store path, nothing evaluated again.
  const [built] = await buildSystems([system], { generatedDir: generated.dir, clientFiles: generated.clientFiles, nix: { ...options.nix, evaluateOnly: false }, jobs: 1 });
  if (!built?.ok || built.storePath === undefined) {
    const failed = { ...(built as SystemBuildResult), ok: false, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
    printLine(io, formatBuildLine(failed));
    if (!options.nix.verbose && failed.log.trim()) printLine(io, failed.log.trimEnd());
    return failed;
  }
  printLine(io, `${action} ${system.name} ${where}: ${built.storePath}`);
  const result = await applyBuiltSystem({
    action,
    systemPath: built.storePath,
    targetHost: options.targetIp,
    sshOptions: io.env?.NIX_SSHOPTS,
    verbose: options.nix.verbose,
    isRoot: runsAsRoot(io),
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const outcome: SystemBuildResult = result.ok
    ? { name: system.name, kind: system.kind, ok: true, storePath: built.storePath, log: result.log, seconds }
    : { name: system.name, kind: system.kind, ok: false, error: result.error, log: result.log, seconds };
  printLine(io, formatBuildLine(outcome));
  if (!outcome.ok) {
    if (!options.nix.verbose && result.log.trim()) printLine(io, result.log.trimEnd());
    return outcome;
  }
  if (options.targetIp) await publishAfterPush(system.name, options, io);
  return outcome;
}

/** After a push, the machine runs the new system: publish it, so its next poll does not undo it. */
async function publishAfterPush(name: string, options: BuildCommandOptions, io: CommandIO): Promise<void> {
  if (!runsAsRoot(io)) {
    await tell(io, `not root: ${name}'s files were not published; run \`bento deploy\` as root`);
    return;
  }
  await deployCommand({ fleetDir: options.fleetDir, names: [name], jobs: 1, nix: { ...options.nix, evaluateOnly: undefined } }, io);
}

export const command = defineCommand<SelectionFlags & { yes?: boolean; targetIp?: string }, BuildCommandOptions>({
  define(command) {
    command.argument('[action]', 'dry-build (or dry-run), build, test or switch', 'build');
    defineSelectionFlags(command)
      .option('-y, --yes', 'test/switch: do not ask for the typed confirmation')
      .option('--target-ip <[user@]host>', 'test/switch: apply on that machine over SSH (also: TARGET_IP; ssh options in NIX_SSHOPTS)');
  },
  options: ({ args, flags }, world) => ({
    fleetDir: world.fleetDir,
    action: args[0] as string,
    ...selectionOptions(flags, world, false),
    yes: Boolean(flags.yes),
    targetIp: flags.targetIp ?? (world.env.TARGET_IP || undefined),
  }),
  run: buildCommand,
});
