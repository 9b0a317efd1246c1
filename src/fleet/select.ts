/**
 * NAME selection: which systems a command works on. Names come from the NAME
 * environment variable and from the command line (cli.ts reads both); none
 * means every system.
 */
import { UserError, UserErrors } from '../errors.js';
import type { BrokenHost, FleetSystem } from './fleet.js';

/**
 * The selected systems, in fleet order. An unknown name is an error that
 * lists the known ones; an empty fleet is an error too, which says why each
 * host directory that failed did.
 */
export function selectSystems(systems: readonly FleetSystem[], names: readonly string[], brokenHosts: readonly BrokenHost[] = []): FleetSystem[] {
  if (systems.length === 0 && brokenHosts.length > 0) {
    throw new UserErrors([...brokenHosts.map((broken) => `${broken.place}: ${broken.message}`), 'no system is left to work on: every host directory failed (above)']);
  }
  if (systems.length === 0) throw new UserError('the fleet has no systems: add one directory per machine (or flake) under hosts/');
  const brokenPlaces = brokenHosts.map((broken) => broken.place);
  if (names.length === 0) return [...systems];
  const known = new Set(systems.map((system) => system.name));
  const unknown = [...new Set(names)].filter((name) => !known.has(name));
  if (unknown.length > 0) {
    const list = systems.map((system) => system.name);
    const shown = list.length > 20 ? `${list.slice(0, 20).join(', ')}, … (${list.length} in all)` : list.join(', ');
    const broken = brokenPlaces.length > 0 ? `; ${brokenPlaces.join(', ')} failed to evaluate, so the systems it defines are not known` : '';
    throw new UserError(`unknown system${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => JSON.stringify(n)).join(', ')} (known: ${shown})${broken}`);
  }
  const wanted = new Set(names);
  return systems.filter((system) => wanted.has(system.name));
}
