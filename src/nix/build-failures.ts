/**
 * Which failed build made each toplevel fail, read from what one
 * `nix build --keep-going` of many toplevels printed, without building
 * anything again.
 *
 * A fleet's systems share most of their closure: a dependency that fails to
 * build fails every system that needs it. Building each failed system again
 * alone, to get its own message, would build that dependency once per
 * system, one after the other on its lock: a fleet's worth of a failure
 * that may take minutes. Nix prints each dependency whose builder failed
 * (`error: builder for '<drv>' failed …`, with its last log lines), but
 * not, in 2.8, which toplevels each one failed (`N dependencies of
 * derivation … failed to build` is printed for one only), nor a toplevel's
 * own failure but in the one error it ends with. The store knows: the
 * derivations that need a failed one are its referrers' closure (a `.drv`
 * file references the derivations it is built from). So each toplevel that
 * did not build gets the messages of the failed builds it needs (a
 * builder's, a fixed output's hash, a timeout, a platform: BUILD_FAILED),
 * and one for which none is found (Nix killed, a substitution or a remote
 * build that failed) is left to the caller to build again alone.
 */
import { run } from '../exec.js';
import { mapLimit } from '../util/concurrency.js';
import { withoutEscapes } from './nix.js';

/**
 * Nix 2.8's lines for a derivation that failed to build, each naming it:
 * its builder failed ("error: builder for '/nix/store/…drv' failed with
 * exit code N;"), its fixed output has another hash ("error: hash mismatch
 * in fixed-output derivation '…drv':"), its build timed out ("error:
 * building of '…drv!out' from .drv file timed out after N seconds", "… of
 * silence": the output names after '!'), or no machine has its platform
 * ("error: a 'aarch64-linux' with features {} is required to build
 * '…drv', but I am …", which ends the whole build). Each is as final as a
 * builder's failure: a system that needs it built again alone would fail
 * the same way, a timeout only after as long again, one system after the
 * other on the dependency's lock.
 */
const BUILD_FAILED = [
  /^error: builder for '(\/nix\/store\/[^'/]+\.drv)' failed\b/,
  /^error: hash mismatch in fixed-output derivation '(\/nix\/store\/[^'/]+\.drv)':/,
  /^error: building of '(\/nix\/store\/[^'/!]+\.drv)(?:![^']*)?' from \.drv file timed out after \d+ seconds\b/,
  /^error: a '[^']*' with features \{[^}]*\} is required to build '(\/nix\/store\/[^'/]+\.drv)', but I am a /,
];

/** Lines of one failure kept: the headline and the builder's last log lines Nix prints (10 by default). */
const MOST_LINES = 15;

/**
 * Each derivation that failed to build (BUILD_FAILED), as `log` (Nix's output, colours
 * and all) says, with Nix's message for it: its `error:` line and the
 * indented lines under it. A derivation named twice (two builds side by
 * side both tried it) keeps its first message.
 */
export function failedBuilds(log: string): Map<string, string> {
  const failed = new Map<string, string>();
  const lines = withoutEscapes(log).split('\n');
  lines.forEach((line, index) => {
    const match = BUILD_FAILED.map((pattern) => pattern.exec(line)).find((found) => found !== null);
    if (!match || failed.has(match[1] as string)) return;
    const message = [line];
    for (let next = index + 1; next < lines.length && /^\s+\S/.test(lines[next] as string) && message.length < MOST_LINES; next++) message.push(lines[next] as string);
    failed.set(match[1] as string, message.join('\n'));
  });
  return failed;
}

/**
 * For each of `toplevels` (derivation paths) that did not build, the
 * messages of the failed builds of `log` (failedBuilds) it needs: its
 * own, or its dependencies' (one `nix-store --query --referrers-closure`
 * per failed build, up to `jobs` at a time). A toplevel none of them
 * explains is not in the map.
 */
export async function attributeFailures(toplevels: readonly string[], log: string, jobs: number): Promise<Map<string, string>> {
  const failed = failedBuilds(log);
  const causes = new Map<string, string[]>();
  const wanted = new Set(toplevels);
  const add = (toplevel: string, drv: string) => {
    const list = causes.get(toplevel) ?? [];
    list.push(failed.get(drv) as string);
    causes.set(toplevel, list);
  };
  for (const drv of failed.keys()) if (wanted.has(drv)) add(drv, drv);
  // A toplevel that failed may be another's dependency too (a host that carries a guest's system): asked about as well.
  const dependencies = [...failed.keys()];
  const referrers = await mapLimit(dependencies, jobs, async (drv) => {
    const result = await run('nix-store', ['--query', '--referrers-closure', drv], { allowFailure: true });
    return result.failed ? [] : result.stdout.split('\n');
  });
  dependencies.forEach((drv, index) => {
    for (const referrer of referrers[index] as string[]) if (wanted.has(referrer) && referrer !== drv) add(referrer, drv);
  });
  return new Map([...causes].map(([toplevel, messages]) => [toplevel, messages.join('\n')]));
}
