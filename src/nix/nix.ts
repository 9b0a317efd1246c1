/**
 * Every call to nix goes through here. Flakes and the new CLI are enabled per
 * call (users may not have them in nix.conf), and failures are turned into
 * short messages that keep Nix's own last error lines.
 */
import { run, type RunOptions, type RunResult } from '../exec.js';

export const NIX_FEATURE_ARGS = ['--extra-experimental-features', 'nix-command flakes'] as const;

export async function runNix(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return run('nix', [...NIX_FEATURE_ARGS, ...args], options);
}

/** `name = value` lines of `nix show-config`. */
export function parseShowConfig(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const line of text.split('\n')) {
    const at = line.indexOf(' = ');
    if (at > 0) settings.set(line.slice(0, at), line.slice(at + 3));
  }
  return settings;
}

let shownSettings: Promise<Map<string, string>> | undefined;

/**
 * Nix's settings as this process's Nix resolves them (nix.conf, the user's
 * nix.conf, NIX_CONFIG, NIX_PATH): `nix show-config`, asked once per bento
 * process.
 */
export function nixSettings(): Promise<Map<string, string>> {
  shownSettings ??= runNix(['show-config']).then((result) => parseShowConfig(result.stdout));
  return shownSettings;
}

/** Nix's advice to rerun with --show-trace, on a line of its own. */
const SHOW_TRACE_ADVICE = /^\s*\(use '--show-trace' to show detailed location information\)\s*$/;

/** Nix's output without its terminal escapes (colours, bold): what the patterns read in it expect. */
export function withoutEscapes(output: string): string {
  return output.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
}

/**
 * Removes ANSI colours and keeps the lines of Nix's output that explain an
 * error. Nix's advice to rerun with --show-trace or --impure cannot be
 * followed through bento: it is left out.
 */
export function summarizeNixError(output: string): string {
  const plain = withoutEscapes(output).replace(/ \(use '--impure' to override\)/g, '');
  // "error (ignored): …" lines are Nix's own afterthoughts (a daemon connection cut by the real error), never the cause.
  const lines = plain.split('\n').filter((line) => line.trim() !== '' && !SHOW_TRACE_ADVICE.test(line) && !line.startsWith('error (ignored)'));
  const errorAt = lines.findIndex((line) => line.startsWith('error'));
  // A tool Nix ran says why just before Nix's own line (hg's "abort: …" before "error: hg failed"): kept.
  let start = errorAt;
  while (start > 0 && /^(abort: |\(see 'hg help)/.test(lines[start - 1] as string)) start--;
  const relevant = errorAt >= 0 ? lines.slice(start) : lines.slice(-10);
  return relevant.slice(0, 15).join('\n');
}

/**
 * The one line of a summarized Nix error (summarizeNixError) that says what
 * failed, for a build line or a list of failures: Nix's first `error:` line,
 * or the reason a tool Nix ran gave just before it (hg's `abort: …`). The
 * lines after it only place it (`at …/flake.nix:3:62:`, the source with a
 * caret under the column), continue it, or are Nix's consequences of it
 * (`error: 1 dependencies of derivation … failed to build`). The last line
 * when none starts so.
 */
export function nixErrorHeadline(summary: string): string {
  const lines = summary.split('\n').map((line) => line.trimEnd()).filter((line) => line.trim() !== '');
  return lines.find((line) => /^(error\b|abort: )/.test(line)) ?? lines.at(-1) ?? '';
}

/** A `path:` flake reference: the directory as it is, without git filtering. */
export function pathFlakeRef(directory: string, attribute?: string): string {
  return `path:${directory}${attribute ? `#${attribute}` : ''}`;
}

/** How a machine uses files it shares with others (a `../common` import reaches neither the build nor the machine). */
const SHARED_FILES_HINT = 'files several machines share reach each through a link in its host directory, like utils (README, "Files several machines share")';

/** Why Nix refuses a file, by how bento evaluates: said after Nix's own line, which names the file. */
const REFUSALS = {
  configuration: {
    line: /is forbidden in restricted mode$/,
    why: `bento evaluates a configuration.nix in restricted mode: it may read its host directory and the NIX_PATH entries, nothing else of this server; ${SHARED_FILES_HINT}`,
  },
  flake: { line: /is forbidden in pure eval mode$/, why: `a flake is evaluated in pure mode: it may read its own files and its inputs, nothing else of this server; ${SHARED_FILES_HINT}` },
};

/**
 * Nix's summarized error, with bento's reason added to the line where Nix
 * refused a file: restricted mode (a configuration.nix), pure mode (a
 * flake), or, with `asUser`, a file the unprivileged evaluator may not read
 * (or a repository hook Mercurial would not run for it).
 */
export function explainEvaluationError(summary: string, kind: keyof typeof REFUSALS, asUser?: string): string {
  const refusal = REFUSALS[kind];
  return summary
    .split('\n')
    .map((line) => {
      if (refusal.line.test(line)) return `${line} (${refusal.why})`;
      if (asUser && line.startsWith('error:') && line.endsWith(': Permission denied')) {
        return `${line} (bento evaluates fleet code as the user ${asUser}: it may read only what every user of this server may read)`;
      }
      // Mercurial, run by the fetchers as that user, refuses what the repository's own .hg/hgrc (root's copy) asks it to run.
      if (asUser && /^abort: untrusted (hook|extension)/.test(line.trim())) {
        return `${line} (bento evaluates fleet code as the user ${asUser}: Mercurial does not run the hooks or extensions of a repository that user does not own)`;
      }
      return line;
    })
    .join('\n');
}
