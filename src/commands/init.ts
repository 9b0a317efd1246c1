/**
 * `bento init`: a new fleet here (or in --dir), and what to do next.
 */
import { initFleet } from '../render/init-fleet.js';
import { defineCommand, tell, type CommandIO } from './io.js';

export interface InitCommandOptions {
  fleetDir: string;
}

export async function initCommand(options: InitCommandOptions, io: CommandIO): Promise<number> {
  const files = await initFleet({ fleetDir: options.fleetDir });
  await tell(io, `created a bento fleet in ${options.fleetDir}:`);
  for (const file of files) await tell(io, `  ${file}`);
  await tell(io, 'next: edit config.sh, put each machine under hosts/ and its root key in keys/<name>.pub, then run `bento generate`');
  return 0;
}

export const command = defineCommand<Record<string, never>, InitCommandOptions>({
  define() {},
  options: (_parsed, world) => ({ fleetDir: world.fleetDir }),
  run: initCommand,
});
