/**
 * Updating a flake's lock file with Nix 2.8, and reading flake.lock to tell
 * what an update changed.
 *
 * Nix 2.8 has no `nix flake update <input>` (that came in 2.19): all inputs
 * are updated by `nix flake update`, one by `nix flake lock --update-input`.
 * The flake is always named by a `path:` reference to its directory: Nix
 * then sees the directory as it is, whether the fleet is a git repository or
 * not (a bare directory inside a git repository would be read as
 * `git+file`, which ignores untracked files and stages flake.lock with
 * `git add --intent-to-add`). It is also what `bento build` evaluates: a copy
 * of the host directory.
 */
import { explainEvaluationError, pathFlakeRef, summarizeNixError } from './nix.js';
import { otherEvaluator, runFleetNix } from './unprivileged.js';

export type FlakeLockUpdate = { ok: true; command: string; stderr: string } | { ok: false; command: string; error: string };

/** The Nix arguments that update every input of the flake in `flakeDir`, or only `input`. */
export function flakeUpdateArgs(flakeDir: string, input?: string): string[] {
  return input === undefined ? ['flake', 'update', pathFlakeRef(flakeDir)] : ['flake', 'lock', '--update-input', input, pathFlakeRef(flakeDir)];
}

/**
 * Runs the update, with the evaluator's rights (unprivileged.ts: the inputs
 * are fetched as it, so a lock never records a file only root may read); a
 * failure comes back with Nix's own explanation, never thrown.
 */
export async function updateFlakeLock(flakeDir: string, input?: string): Promise<FlakeLockUpdate> {
  const result = await runFleetNix(flakeUpdateArgs(flakeDir, input), { allowFailure: true });
  if (result.failed) {
    const summary = explainEvaluationError(summarizeNixError(result.stderr), 'flake', otherEvaluator());
    return { ok: false, command: result.command, error: summary || `exited with ${result.exitCode}` };
  }
  return { ok: true, command: result.command, stderr: result.stderr };
}

/**
 * The lock of a flake with no inputs, as Nix 2.8 writes it, and as it reads
 * a missing flake.lock: a file the evaluator may rewrite is made with it,
 * which Nix then rewrites in place (it opens it with O_TRUNC, needing no
 * right on the directory).
 */
export const NO_INPUTS_LOCK = '{\n  "nodes": {\n    "root": {}\n  },\n  "root": "root",\n  "version": 7\n}\n';

/** The `locked` attributes of one input node (rev, narHash, lastModified, …). */
export type LockedInput = Record<string, unknown>;

/** A flake.lock node: its inputs (a node's key, or a `follows` path as a list), what it is locked to, the reference it was locked from, and whether it is a flake (`false` only when not). */
interface LockNode {
  inputs?: Record<string, unknown>;
  locked?: unknown;
  original?: unknown;
  flake?: unknown;
}

/** A flake.lock's nodes and the key of its root node (`root` unless it names another). */
interface LockGraph {
  nodes: Record<string, LockNode | undefined>;
  rootKey: string;
}

/**
 * The graph of the lock file `text`, read one way for every question asked
 * of it below. Throws an Error when it is not JSON or has no "nodes"; a
 * root that is not a string is taken as `root` (Nix refuses such a lock).
 */
function readLockGraph(text: string): LockGraph {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`flake.lock is not valid JSON: ${(error as Error).message}`);
  }
  const lock = parsed as { nodes?: unknown; root?: unknown } | null;
  if (typeof lock !== 'object' || lock === null || typeof lock.nodes !== 'object' || lock.nodes === null) throw new Error('flake.lock has no "nodes"');
  return { nodes: lock.nodes as LockGraph['nodes'], rootKey: typeof lock.root === 'string' ? lock.root : 'root' };
}

/** readLockGraph, or undefined when `text` is not a lock file. */
function lockGraphOrUndefined(text: string): LockGraph | undefined {
  try {
    return readLockGraph(text);
  } catch {
    return undefined;
  }
}

/**
 * `record`'s own entry `key`: a name the lock does not hold is not found
 * on Object.prototype (an input named toString or constructor).
 */
function own<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** The node `key`, when the lock has one of that name. */
function nodeOf(graph: LockGraph, key: string): LockNode | undefined {
  return own(graph.nodes, key);
}

/** The inputs of the node `key`, when it has any. */
function inputsOf(graph: LockGraph, key: string): Record<string, unknown> | undefined {
  const inputs = nodeOf(graph, key)?.inputs;
  return typeof inputs === 'object' && inputs !== null ? inputs : undefined;
}

/** The input `name` of the node `key`: a node's key, a `follows` path (a list), or undefined when it has none of that name. */
function inputOf(graph: LockGraph, key: string, name: string): unknown {
  const inputs = inputsOf(graph, key);
  return inputs ? own(inputs, name) : undefined;
}

/** Whether the node `key` is locked (its `locked` attributes are an object). */
function isLockedNode(graph: LockGraph, key: string): boolean {
  const locked = nodeOf(graph, key)?.locked;
  return typeof locked === 'object' && locked !== null;
}

/**
 * Every locked input of a flake.lock, by input path (`nixpkgs`,
 * `home-manager/nixpkgs`), transitive inputs included. Inputs that follow
 * another one (`follows`) are left out: they are listed where they point.
 * Throws an Error when the text is not a lock file.
 */
export function parseFlakeLock(text: string): Map<string, LockedInput> {
  const graph = readLockGraph(text);
  const inputs = new Map<string, LockedInput>();
  const walk = (key: string, prefix: string, onPath: Set<string>) => {
    for (const [inputName, target] of Object.entries(inputsOf(graph, key) ?? {})) {
      if (typeof target !== 'string' || onPath.has(target)) continue;
      const inputPath = prefix === '' ? inputName : `${prefix}/${inputName}`;
      if (isLockedNode(graph, target)) inputs.set(inputPath, nodeOf(graph, target)?.locked as LockedInput);
      walk(target, inputPath, new Set([...onPath, target]));
    }
  };
  walk(graph.rootKey, '', new Set([graph.rootKey]));
  return inputs;
}

/**
 * The inputs of a flake as the lock `graph` records them, by input path:
 * what each is locked to, or the input it follows (a path from the flake's
 * own root). The flake is the node `key`; in a wrapper flake's lock, whose
 * `follows` paths start at the wrapper's root, the wrapper's input `prefix`
 * is taken off them (a follows path outside the flake is marked so: it
 * differs from any the flake's own lock holds).
 */
function inputsAsLocked(graph: LockGraph, key: string, prefix?: string): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (nodeKey: string, at: string, onPath: Set<string>) => {
    for (const [inputName, target] of Object.entries(inputsOf(graph, nodeKey) ?? {})) {
      const inputPath = at === '' ? inputName : `${at}/${inputName}`;
      if (Array.isArray(target)) {
        const inFlake = prefix === undefined || target[0] === prefix;
        found.set(inputPath, `${inFlake ? 'follows' : 'follows outside the flake'} ${JSON.stringify(prefix === undefined ? target : target.slice(1))}`);
      } else if (typeof target === 'string' && !onPath.has(target)) {
        found.set(inputPath, asLocked(graph, target));
        walk(target, inputPath, new Set([...onPath, target]));
      } else found.set(inputPath, `unexpected ${JSON.stringify(target)}`);
    }
  };
  walk(key, '', new Set([key]));
  return found;
}

/**
 * The node `key` as the comparison of locks sees it: what it is locked to,
 * the reference it was locked from (`original`) and whether it is a flake.
 * Nix reuses a node of the flake's lock only when its `original` is the
 * input's reference in flake.nix, and copies all three; a node it locks
 * anew has flake.nix's reference as `original`. The locked attributes alone
 * do not tell: a git input's url edited from `?ref=main` to none (HEAD, which
 * is main) is locked anew to the very same attributes, and follows HEAD on
 * every evaluation from then on.
 */
function asLocked(graph: LockGraph, key: string): string {
  if (!isLockedNode(graph, key)) return 'not locked';
  const node = nodeOf(graph, key) as LockNode;
  const original = typeof node.original === 'object' && node.original !== null ? canonical(node.original as LockedInput) : 'none';
  return `locked ${canonical(node.locked as LockedInput)} from ${original}${node.flake === false ? ' (not a flake)' : ''}`;
}

/**
 * Whether a flake's own flake.lock (`lockText`; undefined: it has none)
 * pins its inputs as Nix locked them for an evaluation: the flake was the
 * input `input` of a wrapper flake, whose lock Nix wrote (`wrapperLockText`).
 * Nix 2.8 reuses a node of the flake's lock only while it still matches
 * flake.nix (computeLocks: the node's `original` is the input's reference,
 * its follows as flake.nix says); an input the file does not have, one
 * whose url was edited since, a follows changed, or a flake with inputs and
 * no lock, are locked anew in memory on every evaluation (bento evaluates
 * the fleet's flakes without writing their locks), and what Nix finds then
 * may change with nothing in the flake changing. Each input path must be
 * locked to the same attributes from the same reference (asLocked), or
 * follow the same input, in both. A flake with no inputs needs no lock.
 */
export function lockPinsEvaluation(lockText: string | undefined, wrapperLockText: string, input: string): boolean {
  const wrapper = lockGraphOrUndefined(wrapperLockText);
  const flakeKey = wrapper ? inputOf(wrapper, wrapper.rootKey, input) : undefined;
  if (!wrapper || typeof flakeKey !== 'string') return false;
  const evaluated = inputsAsLocked(wrapper, flakeKey, input);
  if (lockText === undefined) return evaluated.size === 0;
  const own = lockGraphOrUndefined(lockText);
  if (!own) return false;
  const pinned = inputsAsLocked(own, own.rootKey);
  if (pinned.size !== evaluated.size) return false;
  for (const [inputPath, as] of evaluated) if (pinned.get(inputPath) !== as) return false;
  return true;
}

/** The names of the root's own inputs, follows included. */
export function rootInputNames(text: string): string[] {
  const graph = lockGraphOrUndefined(text);
  return graph ? Object.keys(inputsOf(graph, graph.rootKey) ?? {}).sort() : [];
}

/** Whether the lock file has the input path `input` (`a` or `a/b`), follows included. */
export function lockHasInput(text: string, input: string): boolean {
  const graph = lockGraphOrUndefined(text);
  if (!graph) return false;
  let key: unknown = graph.rootKey;
  for (const part of input.split('/')) {
    if (typeof key !== 'string') return true; // a follows: the input exists, where it points does not matter here
    const next = inputOf(graph, key, part);
    if (next === undefined) return false;
    key = next;
  }
  return true;
}

export type LockChange =
  | { kind: 'added'; input: string; to: LockedInput }
  | { kind: 'removed'; input: string; from: LockedInput }
  | { kind: 'changed'; input: string; from: LockedInput; to: LockedInput };

/** What differs between two sets of locked inputs, sorted by input path. */
export function compareLocks(before: ReadonlyMap<string, LockedInput>, after: ReadonlyMap<string, LockedInput>): LockChange[] {
  const changes: LockChange[] = [];
  const names = [...new Set([...before.keys(), ...after.keys()])].sort();
  for (const input of names) {
    const from = before.get(input);
    const to = after.get(input);
    if (from && to) {
      if (canonical(from) !== canonical(to)) changes.push({ kind: 'changed', input, from, to });
    } else if (to) changes.push({ kind: 'added', input, to });
    else if (from) changes.push({ kind: 'removed', input, from });
  }
  return changes;
}

/**
 * A short name for a locked version: the first 7 characters of the git
 * revision when there is one, else of the narHash in hexadecimal (the SRI
 * base64 form would print `/` and `+`), so both look alike.
 */
export function shortLocked(locked: LockedInput): string {
  if (typeof locked.rev === 'string') return locked.rev.slice(0, 7);
  if (typeof locked.narHash === 'string') return shortNarHash(locked.narHash);
  if (typeof locked.lastModified === 'number') return formatDate(locked.lastModified);
  return '?';
}

/** `nixpkgs 1a2b3c4 → 5d6e7f8`, `dep (new) 1a2b3c4`, `dep removed`. */
export function describeLockChange(change: LockChange): string {
  switch (change.kind) {
    case 'added':
      return `${change.input} (new) ${shortLocked(change.to)}`;
    case 'removed':
      return `${change.input} removed`;
    case 'changed': {
      const from = shortLocked(change.from);
      const to = shortLocked(change.to);
      if (from !== to) return `${change.input} ${from} → ${to}`;
      // Same revision or content, relocked anyway: say what moved.
      const moved = [...new Set([...Object.keys(change.from), ...Object.keys(change.to)])]
        .filter((key) => JSON.stringify(change.from[key]) !== JSON.stringify(change.to[key]))
        .sort();
      return `${change.input} ${from} (same content; ${moved.join(', ')} changed)`;
    }
  }
}

/** `sha256-<base64>` → its first 7 hexadecimal digits; another form is cut as it is. */
export function shortNarHash(narHash: string): string {
  const sri = /^sha256-([A-Za-z0-9+/]{43}=)$/.exec(narHash);
  return sri ? Buffer.from(sri[1] as string, 'base64').toString('hex').slice(0, 7) : narHash.slice(0, 7);
}

function canonical(value: LockedInput): string {
  return JSON.stringify(Object.keys(value).sort().map((key) => [key, value[key]]));
}

function formatDate(seconds: number): string {
  return new Date(seconds * 1000).toISOString().slice(0, 10);
}
