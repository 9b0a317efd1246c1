/** Nix's error output turned into short messages, on output recorded from Nix 2.8. */
import { describe, expect, it } from 'vitest';
import { explainEvaluationError, NIX_FEATURE_ARGS, nixErrorHeadline, pathFlakeRef, summarizeNixError } from '../../src/nix/nix.js';

/** A failed build, as `nix build` wrote it to stderr (piped: no colours). */
const FAILED_BUILD = `building '/nix/store/lwgjbapmz9n6drsx40gkdaypzlr7wbmy-bad.drv'...
error: builder for '/nix/store/lwgjbapmz9n6drsx40gkdaypzlr7wbmy-bad.drv' failed with exit code 3;
       last 1 log lines:
       > boom
       For full logs, run 'nix log /nix/store/lwgjbapmz9n6drsx40gkdaypzlr7wbmy-bad.drv'.
`;

/** Real Nix 2.8 errors (`nix build`/`nix eval` of a broken flake, piped), blank lines included. */
const SYNTAX_ERROR = `error: syntax error, unexpected end of file, expecting ';'

       at /nix/store/ji4rnc3lryzrxqa04swh6wwh259g0bs9-source/flake.nix:5:2:

            4|   };
            5| }
             |  ^
`;
const UNDEFINED_VARIABLE = `error: undefined variable 'foo'

       at /nix/store/iwfpmh9wmndixcrnvlgqgmgjv47dqgal-source/flake.nix:3:62:

            2|   outputs = { self }: {
            3|     nixosConfigurations.a = { config.system.build.toplevel = foo; };
             |                                                              ^
            4|   };
`;
/** A module error of the NixOS module system (lib.evalModules), with Nix's advice after it. */
const MODULE_ERROR = `error: The option \`b' does not exist. Definition values:
       - In \`<unknown-file>': 1

       Did you mean \`a'?
(use '--show-trace' to show detailed location information)
`;
/** A dependency of the system that fails to build: Nix's first error is the cause, its last the consequence. */
const DEPENDENCY_FAILED = `building '/nix/store/z9r7pv59kl0pi7bggmwsz3wykjpb37rp-broken-service-1.0.drv'...
error: builder for '/nix/store/z9r7pv59kl0pi7bggmwsz3wykjpb37rp-broken-service-1.0.drv' failed with exit code 1;
       last 2 log lines:
       > compiling
       > cc: error: foo.c: No such file
       For full logs, run 'nix log /nix/store/z9r7pv59kl0pi7bggmwsz3wykjpb37rp-broken-service-1.0.drv'.
error: 1 dependencies of derivation '/nix/store/nfinp6pdmffy6cvn78vr2pqkk113rfjn-nixos-system-a-24.05.drv' failed to build
`;

describe('nixErrorHeadline', () => {
  it("is Nix's error line, never the caret under the source, the advice or the consequence", () => {
    expect(nixErrorHeadline(summarizeNixError(SYNTAX_ERROR))).toBe("error: syntax error, unexpected end of file, expecting ';'");
    expect(nixErrorHeadline(summarizeNixError(UNDEFINED_VARIABLE))).toBe("error: undefined variable 'foo'");
    expect(nixErrorHeadline(summarizeNixError(MODULE_ERROR))).toBe("error: The option `b' does not exist. Definition values:");
    expect(nixErrorHeadline(summarizeNixError(DEPENDENCY_FAILED))).toBe(
      "error: builder for '/nix/store/z9r7pv59kl0pi7bggmwsz3wykjpb37rp-broken-service-1.0.drv' failed with exit code 1;",
    );
    expect(nixErrorHeadline("abort: untrusted hook pre-status not executed\n(see 'hg help config.trusted')\nerror: hg failed with exit code 255")).toBe(
      'abort: untrusted hook pre-status not executed',
    );
    expect(nixErrorHeadline('exit status 1')).toBe('exit status 1');
    expect(nixErrorHeadline('')).toBe('');
  });

  it('summarizeNixError keeps the lines that place the error and drops the advice, even indented', () => {
    expect(summarizeNixError(UNDEFINED_VARIABLE).split('\n')).toHaveLength(6);
    expect(summarizeNixError(MODULE_ERROR)).not.toContain('--show-trace');
    expect(summarizeNixError(`error: x\n  (use '--show-trace' to show detailed location information)\n`)).toBe('error: x');
  });
});

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

describe('Nix refusing a file', () => {
  /** `nix build` of a flake reading a root-only file, and nix-build of a configuration.nix doing so, as Nix 2.8 wrote it. */
  const PURE = `error: access to absolute path '/var/lib/bento/signing-key' is forbidden in pure eval mode (use '--impure' to override)
(use '--show-trace' to show detailed location information)
`;
  const RESTRICTED = `error: access to absolute path '/var/lib/bento/signing-key' is forbidden in restricted mode
(use '--show-trace' to show detailed location information)
`;
  const UNREADABLE = `error (ignored): error: end of string reached
error: opening directory '/var/lib/bento': Permission denied
(use '--show-trace' to show detailed location information)
`;

  it('summarizeNixError leaves out the advice bento cannot follow (--show-trace, --impure) and the errors Nix ignored', () => {
    expect(summarizeNixError(PURE)).toBe("error: access to absolute path '/var/lib/bento/signing-key' is forbidden in pure eval mode");
    expect(summarizeNixError(UNREADABLE)).toBe("error: opening directory '/var/lib/bento': Permission denied");
  });

  it("keeps hg's reason, printed just before Nix's error, and says why hg refused", () => {
    const output = [
      "not trusting file /tmp/bento-build-1/h/repo/.hg/hgrc from untrusted user root, group root",
      'abort: untrusted hook pre-status not executed',
      "(see 'hg help config.trusted')",
      'error: hg failed with exit code 255',
      "(use '--show-trace' to show detailed location information)",
    ].join('\n');
    expect(summarizeNixError(output)).toBe("abort: untrusted hook pre-status not executed\n(see 'hg help config.trusted')\nerror: hg failed with exit code 255");
    expect(explainEvaluationError(summarizeNixError(output), 'configuration', 'nobody').split('\n')[0]).toBe(
      'abort: untrusted hook pre-status not executed (bento evaluates fleet code as the user nobody: Mercurial does not run the hooks or extensions of a repository that user does not own)',
    );
  });

  it('explainEvaluationError says why, on the line that names the file', () => {
    expect(explainEvaluationError(summarizeNixError(RESTRICTED), 'configuration')).toBe(
      "error: access to absolute path '/var/lib/bento/signing-key' is forbidden in restricted mode (bento evaluates a configuration.nix in restricted mode: it may read its host directory and the NIX_PATH entries, nothing else of this server; files several machines share reach each through a link in its host directory, like utils (README, \"Files several machines share\"))",
    );
    expect(explainEvaluationError(summarizeNixError(PURE), 'flake')).toBe(
      "error: access to absolute path '/var/lib/bento/signing-key' is forbidden in pure eval mode (a flake is evaluated in pure mode: it may read its own files and its inputs, nothing else of this server; files several machines share reach each through a link in its host directory, like utils (README, \"Files several machines share\"))",
    );
    expect(explainEvaluationError(summarizeNixError(UNREADABLE), 'flake', 'nobody')).toBe(
      "error: opening directory '/var/lib/bento': Permission denied (bento evaluates fleet code as the user nobody: it may read only what every user of this server may read)",
    );
    // Not evaluated as another user: a permission error is the user's own, left as Nix says it.
    expect(explainEvaluationError(summarizeNixError(UNREADABLE), 'flake')).toBe("error: opening directory '/var/lib/bento': Permission denied");
    expect(explainEvaluationError('error: builder failed', 'flake', 'nobody')).toBe('error: builder failed');
  });
});
