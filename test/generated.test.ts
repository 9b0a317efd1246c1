/**
 * generated/ is the example fleet's rendered output, committed so anyone can
 * read it: it must be exactly what `bento generate` produces now, every shell
 * file in it must pass shellcheck, and every Nix file must parse.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadFleet } from '../src/fleet/fleet.js';
import { renderGeneratedFiles } from '../src/render/generate.js';
import { diffOutput, listFiles } from '../src/render/write-output.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { shellcheck } from './helpers/shell.js';

const GENERATED = path.join(PACKAGE_ROOT, 'generated');
const EXAMPLE = path.join(PACKAGE_ROOT, 'example');

describe('generated/', () => {
  it('matches a fresh render of the example fleet (run `npm run generate:example` after changing templates)', async () => {
    const fleet = await loadFleet(EXAMPLE);
    expect(fleet.brokenHosts).toEqual([]);
    expect(fleet.systems.map((s) => `${s.name}:${s.kind}`)).toEqual(['kikimora:flake', 'my-laptop:flake', 'nas:flake', 'router:non-flake']);
    expect(await diffOutput(GENERATED, renderGeneratedFiles(fleet), { includeExtra: true })).toEqual([]);
  });

  it("keeps example/utils/bento.nix a copy of the shipped client module (a link out of the fleet would be refused, as bento init copies it)", () => {
    expect(readFileSync(path.join(EXAMPLE, 'utils', 'bento.nix'), 'utf8')).toBe(readFileSync(path.join(PACKAGE_ROOT, 'utils', 'bento.nix'), 'utf8'));
  });

  it('holds only shellcheck-clean shell scripts', async () => {
    const scripts = (await listFiles(GENERATED)).filter((file) => file.endsWith('.sh')).map((file) => path.join(GENERATED, file));
    expect(scripts.length).toBe(11);
    const result = shellcheck(scripts);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('holds, like utils/ and example/, only Nix files that parse', async () => {
    const nixFiles = [
      ...(await listFiles(GENERATED)).map((file) => path.join(GENERATED, file)),
      ...(await listFiles(path.join(PACKAGE_ROOT, 'utils'))).map((file) => path.join(PACKAGE_ROOT, 'utils', file)),
      ...(await listFiles(EXAMPLE)).map((file) => path.join(EXAMPLE, file)),
    ].filter((file) => file.endsWith('.nix'));
    expect(nixFiles.length).toBeGreaterThan(8);
    for (const file of nixFiles) {
      expect(() => execFileSync('nix-instantiate', ['--parse', file], { stdio: 'pipe' }), file).not.toThrow();
    }
  });
});
