/**
 * The text after the command list in `bento --help`: the environment
 * variables and the config.sh keys (from the schema). cli.ts loads it when
 * it builds the program: it reaches the stages only through commands/.
 */
import { configKeysHelp } from '../../config/describe-keys.js';

const ENVIRONMENT = `Environment:
  BENTO_DIR     the fleet directory, to run bento from anywhere
  NAME          deploy, build, diff, prune, trigger: only these systems ("a b" or "a,b")
  VERBOSE       deploy, build: show Nix's output as it builds
  TARGET_IP     build test|switch: apply on that machine ([user@]host)
  NIX_SSHOPTS   ssh options for TARGET_IP, e.g. -p2222
  NIX_PATH      nixpkgs for systems without flakes (as nixos-rebuild uses it)
  BENTO_DEBUG   1: print every external command before running it
  NO_COLOR      no colours in the output`;

export function rootHelpAfter(): string {
  return `
${ENVIRONMENT}

config.sh keys (KEY=VALUE; parsed, never executed; docs/config.md):
${configKeysHelp()}

Start with \`bento init\` in an empty directory, then \`bento generate\`.`;
}
