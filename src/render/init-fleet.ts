/**
 * A new fleet directory, for `bento init`: a commented config.sh, one example
 * flake host using the client module, utils/bento.nix and keys/. Never
 * overwrites anything: an existing fleet is refused.
 */
import { realpathSync } from 'node:fs';
import { copyFile, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { initEntries } from '../config/describe-keys.js';
import { DEFAULTS } from '../config/schema.js';
import { UserError } from '../errors.js';
import { readFleetFile } from '../fleet/fleet-file.js';
import { UTILS_DIR } from '../paths.js';
import { createTemplateEngine } from './template-engine.js';

export interface InitFleetOptions {
  fleetDir: string;
}

/** Files `init` writes, relative to the fleet directory (for its report). */
export const INIT_FILES = ['config.sh', 'hosts/example/flake.nix', 'hosts/example/configuration.nix', 'hosts/example/utils', 'utils/bento.nix', 'keys/README.md'];

const FLEET_MARKERS = ['config.sh', 'hosts', 'keys', 'utils', 'generated'];

/**
 * A warning when the fleet's utils/bento.nix is one that `bento init` wrote
 * before the client module became generic: it reads bento-units.nix as the
 * units and their defaults, where bento-units.nix now only sets the
 * module's options, so its machines would no longer evaluate.
 */
export function olderClientEntryWarning(fleetDir: string): string | undefined {
  let text: string;
  try {
    // Read by every generate and deploy, as root, from the fleet writers'
    // utils/: never waiting on a FIFO in its place, never reading without end.
    text = readFleetFile(path.join(fleetDir, 'utils', 'bento.nix'), 'utils/bento.nix', 'the client module of the machines', realpathSync(fleetDir));
  } catch {
    // Missing, or not a file bento reads: nothing to warn of.
    return undefined;
  }
  if (!text.includes('generated.units')) return undefined;
  return `utils/bento.nix is from an older bento, which read the units from bento-units.nix: copy ${path.join(UTILS_DIR, 'bento.nix')} over it (it imports bento-module.nix and bento-units.nix), or its machines will not evaluate`;
}

/** Writes the new fleet; returns the files it wrote (INIT_FILES). */
export async function initFleet(options: InitFleetOptions): Promise<string[]> {
  const { fleetDir } = options;
  const existing = await readdir(fleetDir).catch(() => [] as string[]);
  const clashes = FLEET_MARKERS.filter((marker) => existing.includes(marker));
  if (clashes.length > 0) {
    throw new UserError(
      `${fleetDir} already holds a fleet (${clashes.join(', ')} exist); init never overwrites one`,
      'run `bento init` in an empty directory, or keep working with this fleet',
    );
  }
  const templates = createTemplateEngine();
  const context = { chrootDir: '/home/chroot', remoteIp: 'bento.example.org', ...DEFAULTS };
  const write = async (relative: string, content: string) => {
    const target = path.join(fleetDir, relative);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, content, { flag: 'wx' });
  };
  await write('config.sh', templates.render('init/config.sh', { keys: initEntries() }));
  await write('hosts/example/flake.nix', templates.render('init/flake.nix', context));
  await write('hosts/example/configuration.nix', templates.render('init/configuration.nix', context));
  await write('keys/README.md', templates.render('init/keys-readme.md', context));
  await mkdir(path.join(fleetDir, 'utils'), { recursive: true });
  await copyFile(path.join(UTILS_DIR, 'bento.nix'), path.join(fleetDir, 'utils', 'bento.nix'));
  await symlink('../../utils', path.join(fleetDir, 'hosts', 'example', 'utils'));
  return INIT_FILES;
}
