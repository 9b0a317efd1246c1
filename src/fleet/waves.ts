/**
 * Rollout waves (ROLLOUT_WAVES): which wave each system belongs to. A
 * system belongs to the first wave with a member that names it or a glob
 * that matches it; a system that no wave matches is an error, named when the
 * fleet is loaded, so that no machine is silently left out of every rollout.
 */

/** A shell glob (`*`, `?`, `[...]`, `[!...]`) as a whole-name regular expression. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i] as string;
    if (char === '*') source += '.*';
    else if (char === '?') source += '.';
    else if (char === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end === -1) {
        source += '\\[';
        continue;
      }
      const body = glob.slice(i + 1, end);
      source += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
      i = end;
    } else source += char.replace(/[.+^${}()|\\\]-]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** The index of the wave each system belongs to; throws the names of the systems no wave matches. */
export function assignWaves(names: readonly string[], waves: readonly (readonly string[])[]): Map<string, number> {
  const matchers = waves.map((wave) => wave.map(globToRegExp));
  const assigned = new Map<string, number>();
  const lost: string[] = [];
  for (const name of names) {
    const index = matchers.findIndex((wave) => wave.some((matcher) => matcher.test(name)));
    if (index === -1) lost.push(name);
    else assigned.set(name, index);
  }
  if (lost.length > 0) {
    throw new Error(`ROLLOUT_WAVES puts ${lost.length === 1 ? 'the system' : 'the systems'} ${lost.join(', ')} in no wave: add them to a wave, or end ROLLOUT_WAVES with a wave "*" for the rest`);
  }
  return assigned;
}
