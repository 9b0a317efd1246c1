/**
 * The test tiers: every vitest file, grouped by what it needs to run, each
 * tier a vitest project (vitest.config.ts) and an npm script. The e2e suites
 * (test/e2e/*.bats) are a fifth tier of their own, run by test/e2e/run.sh.
 *
 * - pure: no root and no Nix; may run sh, shellcheck, gzip and the like.
 * - shell: the client's shell sources, sourced with stubs: no root, no Nix.
 * - process: the built CLI (dist/main.js) or real Nix; no root.
 * - root: users, groups, chroots, mount namespaces, sshd. These files skip
 *   themselves when not root, and the no-skips reporter fails such a run.
 *
 * A file is listed in exactly one tier, by its path from the repository's
 * root; test/tiers.test.ts fails on a test file no tier lists, so a new file
 * is placed here when it is written.
 */
export const TIERS = {
  pure: [
    'test/builds/build-systems.test.ts',
    'test/chroot/accounts.test.ts',
    'test/chroot/log-name.test.ts',
    'test/chroot/rollout-state.test.ts',
    'test/chroot/states-file.test.ts',
    'test/commands/status.test.ts',
    'test/config/config.test.ts',
    'test/exec.test.ts',
    'test/fleet/host-tree.test.ts',
    'test/fleet/keys.test.ts',
    'test/fleet/names.test.ts',
    'test/fleet/select.test.ts',
    'test/fleet/trigger-addresses.test.ts',
    'test/lint-layers.test.ts',
    'test/nix/binary-cache.test.ts',
    'test/nix/build.test.ts',
    'test/nix/diff-closures.test.ts',
    'test/nix/flake-lock.test.ts',
    'test/nix/rebuild.test.ts',
    'test/nix/restricted-eval.test.ts',
    'test/nix/unprivileged.test.ts',
    'test/progress.test.ts',
    'test/render/render-fleet.test.ts',
    'test/render/setup-debian.test.ts',
    'test/render/template-engine.test.ts',
    'test/render/write-output.test.ts',
    'test/status/diff-plan.test.ts',
    'test/status/elapsed.test.ts',
    'test/status/prune-logs.test.ts',
    'test/status/read-chroot-hostile.test.ts',
    'test/status/read-chroot.test.ts',
    'test/status/render-json.test.ts',
    'test/status/render-prometheus.test.ts',
    'test/status/render-table.test.ts',
    'test/status/rollout-decision.test.ts',
    'test/status/states.test.ts',
    'test/status/untrusted-logs.test.ts',
    'test/status/watch.test.ts',
    'test/tiers.test.ts',
    'test/util/atomic-write.test.ts',
    'test/util/concurrency.test.ts',
    'test/util/gzip-stored.test.ts',
    'test/util/hash.test.ts',
    'test/util/http-status-line.test.ts',
    'test/util/sanitize.test.ts',
    'test/util/text.test.ts',
  ],
  shell: [],
  process: [
    'test/cli.test.ts',
    'test/commands/build.test.ts',
    'test/commands/completion.test.ts',
    'test/commands/diff.test.ts',
    'test/commands/flake-update.test.ts',
    'test/commands/trigger.test.ts',
    'test/fleet/fleet.test.ts',
    'test/fleet/waves.test.ts',
    'test/generated.test.ts',
    'test/nix/nix.test.ts',
    'test/nix/signing-key.test.ts',
    'test/nixpkgs-lib.test.ts',
    'test/render/client-module.test.ts',
    'test/render/listen-module.test.ts',
    'test/render/server-prune-timer.test.ts',
    'test/render/sshd-heredoc.test.ts',
    'test/util/quote.test.ts',
  ],
  root: [
    'test/chroot/binary-cache.test.ts',
    'test/chroot/chroot-dir.test.ts',
    'test/chroot/retire.test.ts',
    'test/client/after-switch.test.ts',
    'test/client/check-tools.test.ts',
    'test/client/connect-retry.test.ts',
    'test/client/durability.test.ts',
    'test/client/log-size.test.ts',
    'test/client/server-numbers.test.ts',
    'test/commands/deploy-durable.test.ts',
    'test/commands/deploy-evaluation.test.ts',
    'test/commands/deploy-hostile.test.ts',
    'test/commands/deploy-prebuilt.test.ts',
    'test/commands/deploy.test.ts',
    'test/commands/prune.test.ts',
    'test/commands/rollout.test.ts',
    'test/protocol/log-header.test.ts',
    'test/render/render-fleet-hostile.test.ts',
    'test/render/server-module.test.ts',
    'test/render/server-units.test.ts',
    'test/render/sshd-sizing.test.ts',
    'test/status/log-cache.test.ts',
    'test/status/prune-logs-script.test.ts',
    'test/util/temp-dir.test.ts',
  ],
} as const satisfies Record<string, readonly string[]>;

export type Tier = keyof typeof TIERS;
