/**
 * How templates/client/lib/fetch.sh installs a configuration with its
 * client (shell tier: sourced, in temporary directories, no root): the
 * library the downloaded update.sh names is kept under its digest before
 * that update.sh replaces the installed one, so the script in place always
 * finds its own library, even when the run ends between the renames;
 * a download whose library is not the one its update.sh names is refused.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runSourced, shellQuote, tempDir } from '../../helpers/sourced.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

const digestOf = (text: string) => createHash('sha256').update(text).digest('hex');
const OLD_LIBRARY = 'main() { echo old; }\n';
const NEW_LIBRARY = 'main() { echo new; }\n';
const script = (library: string) => `#!/bin/sh\nBENTO_NAME=router\nBENTO_LIBRARY_SHA256=${digestOf(library)}\n`;

interface Machine {
  bento: string;
  state: string;
  incoming: string;
  /** Runs install_config, `before` first (stubs); its status and install.out. */
  install(before?: string): { status: number | null; said: string; stderr: string };
  kept(): string[];
}

/**
 * A machine whose /var/bento holds a configuration installed with the old
 * library (kept under its digest, and beside update.sh), and whose
 * .bento/incoming holds the verified download of `download`.
 */
function machine(download: Record<string, string>): Machine {
  const dir = tempDir('bento-install-', cleanups);
  const bento = path.join(dir, 'var-bento');
  const state = path.join(bento, '.bento');
  const incoming = path.join(state, 'incoming');
  mkdirSync(path.join(state, 'client'), { recursive: true });
  mkdirSync(incoming);
  writeFileSync(path.join(bento, 'configuration.nix'), '# old\n');
  writeFileSync(path.join(bento, 'update.sh'), script(OLD_LIBRARY));
  writeFileSync(path.join(bento, 'bento-client.sh'), OLD_LIBRARY);
  writeFileSync(path.join(state, 'client', `${digestOf(OLD_LIBRARY)}.sh`), OLD_LIBRARY);
  for (const [name, content] of Object.entries(download)) writeFileSync(path.join(incoming, name), content);
  return {
    bento,
    state,
    incoming,
    install(before = '') {
      const run = runSourced(
        ['core', 'server-values', 'fetch'],
        `BENTO_DIR=${shellQuote(bento)}; STATE_DIR=${shellQuote(state)}; BENTO_FLAKE=0\n${before}\ninstall_config; status=$?; exit $status`,
      );
      const said = existsSync(path.join(state, 'install.out')) ? readFileSync(path.join(state, 'install.out'), 'utf8') : '';
      return { status: run.status, said, stderr: run.stderr };
    },
    kept: () => readdirSync(path.join(state, 'client')).sort(),
  };
}

const read = (file: string) => readFileSync(file, 'utf8');

describe('install_config with the client library', () => {
  it('installs update.sh and its library, keeps the new library under its digest and forgets the old one', () => {
    const m = machine({ 'configuration.nix': '# new\n', 'update.sh': script(NEW_LIBRARY), 'bento-client.sh': NEW_LIBRARY });
    const { status, said } = m.install();
    expect(said).toBe('');
    expect(status).toBe(0);
    expect(read(path.join(m.bento, 'update.sh'))).toBe(script(NEW_LIBRARY));
    expect(read(path.join(m.bento, 'bento-client.sh'))).toBe(NEW_LIBRARY);
    expect(read(path.join(m.bento, 'configuration.nix'))).toBe('# new\n');
    expect(m.kept()).toEqual([`${digestOf(NEW_LIBRARY)}.sh`]);
    expect(read(path.join(m.state, 'client', `${digestOf(NEW_LIBRARY)}.sh`))).toBe(NEW_LIBRARY);
  });

  it('when the run ends between the renames (library moved in, update.sh not yet), the installed update.sh still has its own library kept', () => {
    const m = machine({ 'configuration.nix': '# new\n', 'update.sh': script(NEW_LIBRARY), 'bento-client.sh': NEW_LIBRARY });
    // The run is killed as it is about to rename the new update.sh into place.
    const { status } = m.install('mv() { case "$*" in *incoming/update.sh*) exit 9 ;; esac; command mv "$@"; }');
    expect(status).toBe(9);
    // The old script and the new library side by side in /var/bento ...
    expect(read(path.join(m.bento, 'update.sh'))).toBe(script(OLD_LIBRARY));
    expect(read(path.join(m.bento, 'bento-client.sh'))).toBe(NEW_LIBRARY);
    // ... but the old script's library is still kept under its digest, and the new one already is.
    expect(m.kept()).toEqual([`${digestOf(NEW_LIBRARY)}.sh`, `${digestOf(OLD_LIBRARY)}.sh`].sort());
    expect(read(path.join(m.state, 'client', `${digestOf(OLD_LIBRARY)}.sh`))).toBe(OLD_LIBRARY);
  });

  it('refuses a download whose library is not the one its update.sh names, and changes nothing', () => {
    const m = machine({ 'configuration.nix': '# new\n', 'update.sh': script(NEW_LIBRARY), 'bento-client.sh': OLD_LIBRARY });
    const { status, said } = m.install();
    expect(status).toBe(1);
    expect(said).toBe(`the downloaded bento-client.sh (SHA-256 ${digestOf(OLD_LIBRARY)}) is not the library the downloaded update.sh runs (${digestOf(NEW_LIBRARY)})\n`);
    expect(read(path.join(m.bento, 'update.sh'))).toBe(script(OLD_LIBRARY));
    expect(read(path.join(m.bento, 'configuration.nix'))).toBe('# old\n');
    expect(m.kept()).toEqual([`${digestOf(OLD_LIBRARY)}.sh`]);
  });

  it('refuses a download whose update.sh names a library it does not hold', () => {
    const m = machine({ 'configuration.nix': '# new\n', 'update.sh': script(NEW_LIBRARY) });
    const { status } = m.install();
    expect(status).toBe(1);
    expect(read(path.join(m.bento, 'update.sh'))).toBe(script(OLD_LIBRARY));
    expect(m.kept()).toEqual([`${digestOf(OLD_LIBRARY)}.sh`]);
  });

  it('keeps a kept library that lost its content (a power cut) no longer: it is linked again', () => {
    const m = machine({ 'configuration.nix': '# new\n', 'update.sh': script(NEW_LIBRARY), 'bento-client.sh': NEW_LIBRARY });
    writeFileSync(path.join(m.state, 'client', `${digestOf(NEW_LIBRARY)}.sh`), '');
    expect(m.install().status).toBe(0);
    expect(read(path.join(m.state, 'client', `${digestOf(NEW_LIBRARY)}.sh`))).toBe(NEW_LIBRARY);
  });

  it('an update.sh that names no library (a bento older than the library) is installed, and the kept libraries go', () => {
    const m = machine({ 'configuration.nix': '# new\n', 'update.sh': '#!/bin/sh\nBENTO_NAME=router\nmain() { :; }\n' });
    expect(m.install().status).toBe(0);
    expect(m.kept()).toEqual([]);
  });

  it('a download without update.sh leaves the installed one, and its kept library', () => {
    const m = machine({ 'configuration.nix': '# new\n' });
    expect(m.install().status).toBe(0);
    expect(read(path.join(m.bento, 'update.sh'))).toBe(script(OLD_LIBRARY));
    expect(m.kept()).toEqual([`${digestOf(OLD_LIBRARY)}.sh`]);
  });
});
