/** Nix's error output turned into short messages, on output recorded from Nix 2.8. */
import { describe, expect, it } from 'vitest';
import { NIX_FEATURE_ARGS, pathFlakeRef, summarizeNixError } from '../../src/nix/nix.js';

/** A failed build, as `nix build` wrote it to stderr (piped: no colours). */
const FAILED_BUILD = `building '/nix/store/lwgjbapmz9n6drsx40gkdaypzlr7wbmy-bad.drv'...
error: builder for '/nix/store/lwgjbapmz9n6drsx40gkdaypzlr7wbmy-bad.drv' failed with exit code 3;
       last 1 log lines:
       > boom
       For full logs, run 'nix log /nix/store/lwgjbapmz9n6drsx40gkdaypzlr7wbmy-bad.drv'.
`;

describe('summarizeNixError', () => {
  it('keeps the lines from the first error on, without the progress before it', () => {
    expect(summarizeNixError(FAILED_BUILD)).toBe(
      `error: builder for '/nix/store/lwgjbapmz9n6drsx40gkdaypzlr7wbmy-bad.drv' failed with exit code 3;
       last 1 log lines:
       > boom
       For full logs, run 'nix log /nix/store/lwgjbapmz9n6drsx40gkdaypzlr7wbmy-bad.drv'.`,
    );
  });

  it('removes the colours Nix prints on a terminal', () => {
    expect(summarizeNixError('\x1b[31;1merror:\x1b[0m my error\n')).toBe('error: my error');
  });

  it('keeps the last lines when there is no error line, and at most 15 lines', () => {
    const noise = Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n');
    expect(summarizeNixError(noise)).toBe(Array.from({ length: 10 }, (_, i) => `line ${i + 20}`).join('\n'));
    const long = `error: first\n${Array.from({ length: 30 }, (_, i) => `  at ${i}`).join('\n')}`;
    expect(summarizeNixError(long).split('\n')).toHaveLength(15);
    expect(summarizeNixError('')).toBe('');
  });
});

describe('pathFlakeRef and the feature flags', () => {
  it('name a directory as a path: flake (no git filtering) and enable flakes per call', () => {
    expect(pathFlakeRef('/srv/fleet/hosts/a')).toBe('path:/srv/fleet/hosts/a');
    expect(pathFlakeRef('/srv/fleet/hosts/a', 'nixosConfigurations')).toBe('path:/srv/fleet/hosts/a#nixosConfigurations');
    expect(NIX_FEATURE_ARGS).toEqual(['--extra-experimental-features', 'nix-command flakes']);
  });
});
