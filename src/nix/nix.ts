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

/**
 * Removes ANSI colours and keeps the lines of Nix's output that explain an
 * error. Nix's advice to rerun with --show-trace or --impure cannot be
 * followed through bento: it is left out.
 */
export function summarizeNixError(output: string): string {
  const plain = output.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/ \(use '--impure' to override\)/g, '');
  // "error (ignored): …" lines are Nix's own afterthoughts (a daemon connection cut by the real error), never the cause.
  const lines = plain.split('\n').filter((line) => line.trim() !== '' && !line.startsWith("(use '--show-trace'") && !line.startsWith('error (ignored)'));
  const errorAt = lines.findIndex((line) => line.startsWith('error'));
  const relevant = errorAt >= 0 ? lines.slice(errorAt) : lines.slice(-10);
  return relevant.slice(0, 15).join('\n');
}

/** A `path:` flake reference: the directory as it is, without git filtering. */
export function pathFlakeRef(directory: string, attribute?: string): string {
  return `path:${directory}${attribute ? `#${attribute}` : ''}`;
}

/** Why Nix refuses a file, by how bento evaluates: said after Nix's own line, which names the file. */
const REFUSALS = {
  configuration: {
    line: /is forbidden in restricted mode$/,
    why: 'bento evaluates a configuration.nix in restricted mode: it may read its host directory and the NIX_PATH entries, nothing else of this server',
  },
  flake: { line: /is forbidden in pure eval mode$/, why: 'a flake is evaluated in pure mode: it may read its own files and its inputs, nothing else of this server' },
};

/**
 * Nix's summarized error, with bento's reason added to the line where Nix
 * refused a file: restricted mode (a configuration.nix), pure mode (a
 * flake), or, with `asUser`, a file the unprivileged evaluator may not read.
 */
export function explainEvaluationError(summary: string, kind: keyof typeof REFUSALS, asUser?: string): string {
  const refusal = REFUSALS[kind];
  return summary
    .split('\n')
    .map((line) => {
      if (refusal.line.test(line)) return `${line} (${refusal.why})`;
      if (asUser && line.startsWith('error:') && line.endsWith(': Permission denied')) {
        return `${line} (bento evaluates flakes as the user ${asUser}: a flake may read only what every user of this server may read)`;
      }
      return line;
    })
    .join('\n');
}
