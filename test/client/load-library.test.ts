/**
 * What a machine receives (docs/protocol.md §4): a short update.sh of its
 * own, which runs the shared library only when its SHA-256 is the one the
 * script was generated with (templates/client/load-library.sh), and a
 * self-contained bootstrap.sh. Shell tier: the generated update.sh run by
 * /bin/sh in a temporary directory, no root (its tools stop before it
 * touches /var/bento).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_LIBRARY_DIR, CLIENT_LIBRARY_SOURCES, clientLibraryDigest, clientLibrarySource, renderClientLibrary } from '../../src/render/client-library.js';
import { renderSystemFiles } from '../../src/render/render-fleet.js';
import { configWith, withClientLibrary, writeRendered } from '../helpers/render.js';
import { shellcheck } from '../helpers/shell.js';
import { tempDir } from '../helpers/sourced.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

const REPO = path.join(import.meta.dirname, '..', '..');
const digestOf = (text: string) => createHash('sha256').update(text).digest('hex');

/** A machine directory with router's update.sh and the library beside it; `bin` holds sh and what load_library and check_tools use, no sftp. */
function machine(): { dir: string; script: string; library: string; run(args?: string[], cwd?: string, script?: string): ReturnType<typeof spawnSync> } {
  const dir = tempDir('bento-loader-', cleanups);
  writeRendered(dir, withClientLibrary(renderSystemFiles(configWith(), { name: 'router', kind: 'non-flake' })));
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  for (const tool of ['sh', 'sha256sum', 'cat']) symlinkSync(spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim(), path.join(bin, tool));
  const script = path.join(dir, 'systems', 'router', 'update.sh');
  return {
    dir,
    script,
    library: path.join(dir, 'systems', 'router', 'bento-client.sh'),
    run(args = [], cwd = dir, file = script) {
      return spawnSync('/bin/sh', [file, ...args], { cwd, encoding: 'utf8', env: { PATH: bin } });
    },
  };
}

describe('update.sh and its library', () => {
  it('runs the library beside it when it is the one it was generated with', () => {
    const m = machine();
    const run = m.run();
    // The library's main ran: its check of the tools, which stops first without sftp.
    expect(run.stderr).toContain('bento: missing: sftp ssh flock gzip nixos-rebuild; nothing was changed.');
    expect(run.status).toBe(1);
  });

  it('finds the library beside it when run by a relative name', () => {
    const m = machine();
    const run = m.run([], path.dirname(m.script), 'update.sh');
    expect(run.stderr).toContain('bento: missing: sftp');
  });

  it('refuses a library of another version, or a truncated one: a clear message, exit 1, nothing run', () => {
    const m = machine();
    const expected = `bento: no bento-client.sh with SHA-256 ${clientLibraryDigest()} beside ${m.script} nor in /var/bento/.bento/client/ (the library this update.sh was generated with); nothing was changed. Run this machine's bootstrap.sh again to install both.\n`;
    const library = readFileSync(m.library, 'utf8');
    for (const other of [library.slice(0, library.length / 2), library.replace('BENTO_LOG_PROTOCOL=', 'BENTO_LOG_PROTOCOL=9'), 'main() { echo ran; }\n']) {
      writeFileSync(m.library, other);
      const run = m.run();
      expect(run.stdout).toBe('');
      expect(run.stderr).toBe(expected);
      expect(run.status).toBe(1);
    }
  });

  it('refuses to run without a library', () => {
    const m = machine();
    writeFileSync(m.library, '');
    const run = m.run();
    expect(run.stderr).toContain('bento: no bento-client.sh with SHA-256');
    expect(run.status).toBe(1);
  });

  it('hands its settings and arguments to the library it runs', () => {
    const m = machine();
    const fake = 'main() { echo "$BENTO_MODE $BENTO_NAME $BENTO_REMOTE_PORT: $*"; }\n';
    writeFileSync(m.library, fake);
    const text = readFileSync(m.script, 'utf8').replace(/^BENTO_LIBRARY_SHA256=.*$/m, `BENTO_LIBRARY_SHA256=${digestOf(fake)}`);
    writeFileSync(m.script, text);
    const run = m.run(['a', 'b c']);
    expect(run.stdout).toBe('update router 22: a b c\n');
    expect(run.status).toBe(0);
  });
});

describe('what a machine receives', () => {
  const files = renderSystemFiles(configWith(), { name: 'router', kind: 'non-flake' });
  const update = files.find((file) => file.path.endsWith('/update.sh'))?.content ?? '';
  const bootstrap = files.find((file) => file.path.endsWith('/bootstrap.sh'))?.content ?? '';

  it('an update.sh under 150 lines, naming the digest of the library generated beside it', () => {
    expect(update.split('\n').length).toBeLessThan(150);
    expect(update).toContain(`\nBENTO_LIBRARY_SHA256=${digestOf(renderClientLibrary())}\n`);
    for (const name of readdirSync(path.join(REPO, 'generated', 'systems'))) {
      const generated = readFileSync(path.join(REPO, 'generated', 'systems', name, 'update.sh'), 'utf8');
      expect(generated.split('\n').length, name).toBeLessThan(150);
      expect(generated, name).toContain(`\nBENTO_LIBRARY_SHA256=${digestOf(readFileSync(path.join(REPO, 'generated', 'client', 'bento-client.sh'), 'utf8'))}\n`);
    }
  });

  it('a bootstrap.sh that runs alone: its settings, then the whole library, and no loader', () => {
    expect(bootstrap).toContain(`\n${renderClientLibrary()}\nmain "$@"\n`);
    expect(bootstrap).not.toContain('load_library');
    expect(bootstrap).toContain('\nBENTO_MODE=bootstrap\nBENTO_NAME=router\n');
  });
});

describe('the library sources', () => {
  it('are exactly the files of templates/client/lib, each a concern of its own', () => {
    expect(readdirSync(CLIENT_LIBRARY_DIR).sort()).toEqual(CLIENT_LIBRARY_SOURCES.map((name) => `${name}.sh`).sort());
  });

  it('each pass shellcheck on its own, as does the loader', () => {
    const files = [...CLIENT_LIBRARY_SOURCES.map((name) => clientLibrarySource(name)), path.join(REPO, 'templates', 'client', 'load-library.sh')];
    for (const file of files) {
      const result = shellcheck([file]);
      expect(result.stdout + result.stderr, file).toBe('');
      expect(result.status, file).toBe(0);
    }
  });

  it('hold no template syntax and define functions only, besides the run\'s fixed state: sourcing one runs nothing', () => {
    for (const name of CLIENT_LIBRARY_SOURCES) {
      const text = readFileSync(clientLibrarySource(name), 'utf8');
      expect(text, name).not.toContain('{{');
      // Top-level lines: comments, blanks, function definitions and their bodies, plain assignments and set/umask/export.
      const topLevel = text.split('\n').filter((line) => /^[^\s#}]/.test(line) && !/^[a-z_]+\(\) \{$/.test(line));
      for (const line of topLevel) expect(line, name).toMatch(/^(set -u|umask 022|export LC_ALL=C|[A-Z_]+=.*)$/);
    }
  });
});
