/**
 * Durability as the kernel sees it: the fsync and rename calls of a traced
 * run (`strace -f -y`), and the rule what is renamed into place was flushed
 * before the rename, its directory after (src/util/durable.ts; the client's
 * record_file). Tests check real runs with it, not the code.
 */
import { lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';

/** The system calls a durability check reads, for `strace -e trace=…`. */
export const DURABILITY_CALLS = 'trace=fsync,fdatasync,rename,renameat,renameat2,execve';

export type TracedCall = { kind: 'fsync'; pid: number; path: string } | { kind: 'rename'; pid: number; from: string; to: string } | { kind: 'execve'; pid: number };

/** A path argument of a *at call: absolute as it is, else below its directory descriptor (`AT_FDCWD</dir>`, `3</dir>`). */
function resolveAt(dirfd: string | undefined, file: string): string {
  if (file.startsWith('/') || dirfd === undefined) return file;
  const dir = /<(.*)>$/.exec(dirfd)?.[1];
  return dir === undefined ? file : path.join(dir, file);
}

/** The successful fsync, rename and execve calls of an `strace -f -y` log, in order (unfinished/resumed pairs joined). */
export function parseStraceLog(text: string): TracedCall[] {
  const calls: TracedCall[] = [];
  const pending = new Map<number, string>();
  for (const raw of text.split('\n')) {
    const match = /^(?:\[pid\s+(\d+)\]\s+|(\d+)\s+)?(.*)$/.exec(raw);
    if (!match) continue;
    const pid = Number(match[1] ?? match[2] ?? 0);
    let line = match[3] ?? '';
    if (line.endsWith('<unfinished ...>')) {
      // strace writes a space before the marker: `fsync(18</f> <unfinished ...>`.
      pending.set(pid, line.slice(0, -'<unfinished ...>'.length).trimEnd());
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(line);
    if (resumed) {
      line = (pending.get(pid) ?? '') + (resumed[1] ?? '');
      pending.delete(pid);
    }
    if (!/= 0$/.test(line.trim())) continue;
    const fsync = /^f(?:data)?sync\(\d+<(.*)>\)/.exec(line);
    if (fsync) calls.push({ kind: 'fsync', pid, path: fsync[1] ?? '' });
    const rename = /^rename\("([^"]*)", "([^"]*)"/.exec(line);
    if (rename) calls.push({ kind: 'rename', pid, from: rename[1] ?? '', to: rename[2] ?? '' });
    const renameAt = /^renameat2?\(([^,]+), "([^"]*)", ([^,]+), "([^"]*)"/.exec(line);
    if (renameAt) calls.push({ kind: 'rename', pid, from: resolveAt(renameAt[1], renameAt[2] ?? ''), to: resolveAt(renameAt[3], renameAt[4] ?? '') });
    if (/^execve\(/.test(line)) calls.push({ kind: 'execve', pid });
  }
  return calls;
}

/** Every regular file below `dir`, relative to it. */
function filesBelow(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(prefix, entry.name);
    if (entry.isDirectory()) return filesBelow(path.join(dir, entry.name), relative);
    return entry.isFile() ? [relative] : [];
  });
}

export interface DurabilityCheck {
  /** Renames into these directories (or below them) are checked. */
  roots: string[];
  /** Renames into these are not (scratch files). */
  ignore?: (to: string) => boolean;
  /** Where a traced path is now on this host (the run may have seen another mount namespace); default: the same path. */
  onHost?: (traced: string) => string;
  /** Only the calls of the traced program itself, not of the programs it starts (Nix's own renames are Nix's business). */
  ownCallsOnly?: boolean;
}

/**
 * What breaks the rule among the renames into `roots`: a file or tree
 * renamed without being flushed first (each of its files and directories),
 * or the directory that gained the name not flushed after. Also returns
 * the names renamed into place, so a test can show each writer was seen.
 */
export function durabilityProblems(calls: TracedCall[], check: DurabilityCheck): { problems: string[]; renamed: string[] } {
  let seen = calls;
  if (check.ownCallsOnly) {
    // The first execve is strace starting the program; the others, the tools it runs.
    const execs = calls.filter((call) => call.kind === 'execve');
    const children = new Set(execs.slice(1).map((call) => call.pid).filter((pid) => pid !== execs[0]?.pid));
    seen = calls.filter((call) => !children.has(call.pid));
  }
  const onHost = check.onHost ?? ((traced: string) => traced);
  const problems: string[] = [];
  const renamed: string[] = [];
  seen.forEach((call, index) => {
    if (call.kind !== 'rename' || !check.roots.some((root) => call.to.startsWith(`${root}/`)) || check.ignore?.(call.to)) return;
    renamed.push(call.to);
    const flushed = (calls: TracedCall[]) => new Set(calls.flatMap((other) => (other.kind === 'fsync' ? [other.path] : [])));
    const before = flushed(seen.slice(0, index));
    const after = flushed(seen.slice(index + 1));
    const now = lstatSync(onHost(call.to), { throwIfNoEntry: false });
    if (now?.isFile() && !before.has(call.from)) problems.push(`${call.to}: ${call.from} was not flushed before the rename`);
    if (now?.isDirectory()) {
      if (!before.has(call.from)) problems.push(`${call.to}: the directory ${call.from} was not flushed before the rename`);
      for (const file of filesBelow(onHost(call.to))) {
        if (!before.has(path.join(call.from, file))) problems.push(`${call.to}: ${file} was not flushed before the rename`);
      }
    }
    if (!after.has(path.dirname(call.to))) problems.push(`${call.to}: ${path.dirname(call.to)} was not flushed after the rename`);
  });
  return { problems, renamed };
}
