/**
 * The built CLI's templates (src/render/template-engine.ts): `npm run build`
 * compiles templates/ ahead of time, and what dist/ renders with them is
 * what the sources render, with only Handlebars' runtime loaded.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { renderFleet } from '../../src/render/render-fleet.js';
import { configWith } from '../helpers/render.js';

const DIST_RENDER = path.join(PACKAGE_ROOT, 'dist', 'render');

const config = configWith({ rebuildArgs: ['--fallback', "it's"], notifyUrl: 'https://example.org/hook', rebootMax: 2 });
const input = { config, systems: [{ name: 'router', kind: 'non-flake' as const }, { name: 'nas', kind: 'flake' as const, prebuilt: true }], signingKey: { publicKey: 'bento-1:abc=' } };

/** Renders `input` with dist/ in a node process of its own: the files, whether the engine was precompiled, and the Handlebars modules it loaded. */
function renderWithDist(): { files: { path: string; content: string; mode: number }[]; precompiled: boolean; loaded: string[] } {
  const script = `
    import { createRequire } from 'node:module';
    const { renderFleet } = await import(${JSON.stringify(path.join(DIST_RENDER, 'render-fleet.js'))});
    const { createTemplateEngine } = await import(${JSON.stringify(path.join(DIST_RENDER, 'template-engine.js'))});
    const input = JSON.parse(process.argv[1]);
    const files = renderFleet(input).map(({ path, content, mode }) => ({ path, content, mode }));
    const precompiled = createTemplateEngine().precompiled;
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((file) => file.includes('/handlebars/'));
    process.stdout.write(JSON.stringify({ files, precompiled, loaded }));
  `;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(input)], { encoding: 'utf8', maxBuffer: 64 << 20 }));
}

describe('the built templates', () => {
  it('are built beside the engine', () => {
    expect(existsSync(path.join(DIST_RENDER, 'templates.precompiled.cjs'))).toBe(true);
  });

  it('render what the sources render, precompiled, without loading the parser or compiler', () => {
    const built = renderWithDist();
    expect(built.precompiled).toBe(true);
    expect(built.files).toEqual(renderFleet(input).map(({ path, content, mode }) => ({ path, content, mode })));
    expect(built.loaded.some((file) => file.includes('handlebars/runtime'))).toBe(true);
    expect(built.loaded.filter((file) => /\/compiler\/|handlebars\/dist\/cjs\/handlebars\.js$/.test(file))).toEqual([]);
  });
});
