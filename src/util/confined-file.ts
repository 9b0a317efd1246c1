/**
 * Whether root may show what a file it opened holds to whoever chose the
 * path. bento reads the fleet's files as root (config.sh, keys, uids.txt,
 * utils/bento.nix, a host's REBOOT_WINDOW), and its messages quote what it
 * cannot parse ("config.sh:1: not a KEY=VALUE assignment: …"): a fleet
 * writer who put a symbolic link to /etc/shadow in config.sh's place would
 * read its first line in root's error. So a file reached by path is read
 * only when it lies inside `boundary` (the fleet directory: links inside it
 * are followed, as in hosts/) or anyone on the server may read it anyway
 * (a link to /etc/bento/config.sh, mode 0644, still works).
 *
 * What is checked is the file opened (its fstat), found again at its real
 * path: a link switched between the open and the check leads to another
 * inode and is refused. Hard links to a file of someone else's are out of
 * an unprivileged writer's reach where fs.protected_hardlinks is 1 (every
 * distribution's default).
 */
import { realpathSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';

/**
 * Why the file at `file`, opened as `opened`, may not be read for its
 * writer (undefined when it may): where it really is, outside `boundary`
 * (a real path; none: every file must be readable by everyone) and not
 * readable by everyone.
 */
export function confinementProblem(file: string, opened: Stats, boundary: string | undefined): string | undefined {
  let real: string;
  let found: Stats;
  try {
    real = realpathSync(file);
    found = statSync(real);
  } catch (error) {
    return `it cannot be found again (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
  }
  if (found.dev !== opened.dev || found.ino !== opened.ino) return 'it changed while bento opened it (a link switched?)';
  if (boundary !== undefined && isInside(real, boundary)) return undefined;
  if (readableByEveryone(real, opened)) return undefined;
  return boundary === undefined ? `it is ${real}, which not everyone may read` : `it is ${real}, outside the fleet directory, which not everyone may read`;
}

function isInside(real: string, boundary: string): boolean {
  return real === boundary || real.startsWith(boundary.endsWith('/') ? boundary : `${boundary}/`);
}

/** Whether everyone may read `real` (`stats`): its read bit for others, and the search bit of every directory above it. */
function readableByEveryone(real: string, stats: Stats): boolean {
  if ((stats.mode & 0o004) === 0) return false;
  for (let dir = path.dirname(real); ; dir = path.dirname(dir)) {
    try {
      if ((statSync(dir).mode & 0o001) === 0) return false;
    } catch {
      return false;
    }
    if (dir === path.dirname(dir)) return true;
  }
}

/**
 * The refusal of the file at `place` that confinementProblem gave `why`
 * for, saying what bento reads from it (`purpose`); its caller throws it
 * as the user's to mend.
 */
export function notToBeShownMessage(place: string, purpose: string, why: string | undefined): string {
  return `${place} is not read: ${why ?? 'it leads where not everyone may read'}. bento reads ${purpose} from it as root and quotes it in its messages: keep the file in the fleet directory, or make it readable by everyone`;
}
