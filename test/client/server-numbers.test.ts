/**
 * Numbers the client reads from what the server published are checked
 * before it computes with them (issue 19, C8): here the health gate's
 * etc/bento/health.conf of the new system (the prebuilt narinfos'
 * FileSize is checked end to end, test/e2e/22-prebuilt-tampering.bats).
 * A bad one is reported in the log, never a shell error ("Illegal number")
 * that ends the run with no log; here that means the system it cannot
 * check is rolled back, and the rollback log says why.
 */
import { mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { configWith } from '../helpers/render.js';
import { isRoot, makeStubbedRouter, runClientScript } from '../helpers/shell.js';

const EARLIER = '20240101-0000_00000000000000000000000000000000-old_success.log.gz';

/**
 * nixos-rebuild: build links result to $FAKE_NEW_SYSTEM; switch points the
 * profile at it (generation 2) and runs its switch-to-configuration. A
 * rollback is the client's own (nix-env on the profile, then the old
 * system's switch-to-configuration).
 */
const NIXOS_REBUILD = `#!/bin/sh
profiles=/nix/var/nix/profiles
case " $* " in
*" build "*) ln -sfn "$FAKE_NEW_SYSTEM" result ;;
*" switch "*)
	ln -sfn "$FAKE_NEW_SYSTEM" "$profiles/system-2-link"
	ln -sfn system-2-link "$profiles/system"
	"$FAKE_NEW_SYSTEM/bin/switch-to-configuration" switch
	;;
esac
`;

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

/** One update of a machine whose new system's health.conf is `healthConf`. */
function updateWith(healthConf: string) {
  const { dir, script, server, varBento, tools } = makeStubbedRouter(configWith({ remoteHosts: ['bento.test'], timeout: 1, connectRetry: 0 }), 'bento-numbers-', EARLIER, cleanups);
  const systems = path.join(dir, 'systems-store');
  for (const name of ['old', 'new']) {
    mkdirSync(path.join(systems, name, 'bin'), { recursive: true });
    writeFileSync(path.join(systems, name, 'bin', 'switch-to-configuration'), '#!/bin/sh\n', { mode: 0o755 });
  }
  mkdirSync(path.join(systems, 'new', 'etc', 'bento'), { recursive: true });
  writeFileSync(path.join(systems, 'new', 'etc', 'bento', 'health.conf'), healthConf);
  const profiles = path.join(dir, 'profiles');
  mkdirSync(profiles);
  symlinkSync(path.join(systems, 'old'), path.join(profiles, 'system-1-link'));
  symlinkSync('system-1-link', path.join(profiles, 'system'));
  const rebuild = path.join(dir, 'nixos-rebuild');
  writeFileSync(rebuild, NIXOS_REBUILD, { mode: 0o755 });
  const run = runClientScript(script, varBento, {
    tools: { ...tools, 'nixos-rebuild': rebuild },
    toolEnv: { FAKE_SERVER: server, FAKE_NEW_SYSTEM: path.join(systems, 'new') },
    binds: { '/nix/var/nix/profiles': profiles },
  });
  // The logs of this run: not the earlier one, nor the heartbeat (docs/protocol.md §5a), no log.
  const logs = readdirSync(path.join(server, 'logs')).filter((name) => name !== EARLIER && name !== 'heartbeat');
  const logText = (name: string) => gunzipSync(readFileSync(path.join(server, 'logs', name))).toString('utf8');
  return { run, logs, logText, profile: () => readlinkSync(path.join(profiles, 'system')) };
}

describe.skipIf(!isRoot)("the health gate's numbers (etc/bento/health.conf of the new system)", () => {
  it('plain numbers are used as they are', () => {
    const { run, logs, profile } = updateWith('timeout=5\ngrace=0\n');
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(profile()).toBe('system-2-link');
    expect(logs).toEqual([expect.stringMatching(/_new_success\.log\.gz$/)]);
  });

  it.each([
    ['a leading zero (octal to the shell)', 'timeout=5\ngrace=08\n', 'grace'],
    ['20 digits (past 64 bits)', 'timeout=5\ngrace=12345678901234567890\n', 'grace'],
    ['negative', 'timeout=-5\ngrace=0\n', 'timeout'],
    ['empty', 'timeout=\ngrace=0\n', 'timeout'],
    ['given twice', 'timeout=5\ngrace=0\ngrace=1\n', 'grace'],
  ])('%s: the system is rolled back, and the log says which number is bad', (_what, healthConf, key) => {
    const { run, logs, logText, profile } = updateWith(healthConf);
    expect(run.stderr).not.toContain('Illegal number');
    expect(run.stderr).toContain(`the new system is not healthy (etc/bento/health.conf: ${key}=`);
    expect(run.status).toBe(1);
    expect(profile()).toBe('system-1-link');
    // Named after the system it runs (one outside /nix/store here: "unknown").
    expect(logs).toEqual([expect.stringMatching(/_rollback\.log\.gz$/)]);
    expect(logText(logs[0] as string)).toContain(`etc/bento/health.conf: ${key}=`);
  });
});
