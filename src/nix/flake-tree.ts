/**
 * A flake as the machine builds it. The client turns /var/bento into a git
 * work tree with everything added (`git init`, `git add -A`) because a flake
 * in a git repository sees only what git tracks; the server does the same to
 * its staging copy, so that .gitignore files (bento's own and nested ones)
 * leave out the same files on both sides, and builds it as `git+file:`.
 */
import { run } from '../exec.js';

/**
 * Neither the server's own git configuration nor the system one: a global
 * excludes file of root's would hide files here that the machine sees.
 */
const NEUTRAL_GIT = { GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };

/**
 * `git init` and `git add -A` in `dir`, as the client does in /var/bento.
 * The repository is readable by everyone whatever the umask (`--shared`):
 * an unprivileged user evaluates it (unprivileged.ts).
 */
export async function addEverythingToGit(dir: string): Promise<void> {
  await run('git', ['init', '-q', '--shared=0644'], { cwd: dir, env: NEUTRAL_GIT });
  await run('git', ['add', '-A'], { cwd: dir, env: NEUTRAL_GIT });
}

/** The flake in the git work tree `dir` (what git tracks of it), as Nix names it. */
export function gitFlakeRef(dir: string, attribute?: string): string {
  return `git+file://${dir}${attribute ? `#${attribute}` : ''}`;
}
