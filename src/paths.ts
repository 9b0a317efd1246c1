/**
 * Where bento's own files are: the package root holds templates/, utils/ and
 * nix/modules/.
 * This file is src/paths.ts when run from source (tests) and dist/paths.js
 * when built, or a chunk of dist/ in the bundle (src/main.ts); all are one
 * level below the root.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const TEMPLATES_DIR = path.join(PACKAGE_ROOT, 'templates');
export const UTILS_DIR = path.join(PACKAGE_ROOT, 'utils');
/** bento's generic NixOS modules (the flake's nixosModules), copied into generated/. */
export const NIX_MODULES_DIR = path.join(PACKAGE_ROOT, 'nix', 'modules');
