/**
 * chroot/plan-publication.ts: what deploy must do for each system, decided
 * before anything is built (build, announce only, nothing, or fail alone),
 * as root on a test server with real accounts.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assembleSystem, HashCache } from '../../src/chroot/assemble.js';
import { readAccounts } from '../../src/chroot/accounts.js';
import { planPublication } from '../../src/chroot/plan-publication.js';
import { activateVersion, stageVersion } from '../../src/chroot/publish.js';
import type { FleetSystem } from '../../src/fleet/fleet.js';
import { clientFilesOf } from '../../src/render/render-fleet.js';
import { useTestServer } from '../helpers/server.js';
import { isRoot } from '../helpers/shell.js';

const suite = useTestServer();
const work = mkdtempSync(path.join(os.tmpdir(), 'bento-plan-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const NOW = new Date('2026-11-26T10:00:00.000Z');

/** A non-flake system whose host directory holds a configuration.nix and a file named as one of bento's; its generated files. */
function system(name: string, generatedDir: string): FleetSystem {
  const hostDir = path.join(work, 'hosts', name);
  mkdirSync(hostDir, { recursive: true });
  writeFileSync(path.join(hostDir, 'configuration.nix'), '{ }\n');
  writeFileSync(path.join(hostDir, 'update.sh'), 'the host\'s own\n');
  for (const { generated } of clientFilesOf(name)) {
    mkdirSync(path.dirname(path.join(generatedDir, generated)), { recursive: true });
    writeFileSync(path.join(generatedDir, generated), `${generated}\n`, { mode: 0o755 });
  }
  return { name, kind: 'non-flake', hostDir, hostDirName: name, filesDir: hostDir } as FleetSystem;
}

describe.skipIf(!isRoot)('planPublication', () => {
  it('builds what is not published, leaves what is, announces what was not announced, and fails a system alone', async () => {
    const { chrootDir } = suite.server;
    const generatedDir = path.join(work, 'generated');
    const [fresh, same, unannounced, damaged, nobody] = ['fresh', 'same', 'unann', 'damaged', 'nobody'].map(suite.n) as [string, string, string, string, string];
    suite.server.addUsers([fresh, same, unannounced, damaged]);
    const systems = [fresh, same, unannounced, damaged, nobody].map((name) => system(name, generatedDir));

    // Published as it is now: same whole, unannounced without its last_change_date, damaged with a file changed.
    const first = await planPublication(systems, chrootDir, generatedDir);
    for (const name of [same, unannounced, damaged]) {
      const assembly = assembleSystem(systems.find((each) => each.name === name)!, generatedDir, new HashCache());
      activateVersion(chrootDir, assembly, stageVersion(chrootDir, assembly, { sftpGroupId: first.sftpGroupId, now: NOW }), NOW);
    }
    rmSync(path.join(chrootDir, unannounced, 'last_change_date'));
    writeFileSync(path.join(chrootDir, damaged, 'config', 'configuration.nix'), 'tampered\n');

    const plan = await planPublication(systems, chrootDir, generatedDir);
    expect(plan.toBuild.map((each) => each.name)).toEqual([fresh, damaged]);
    expect(plan.toAnnounce.map((each) => each.name)).toEqual([unannounced]);
    expect(plan.unchanged).toEqual([same]);
    expect(plan.failed).toEqual([{ name: nobody, reason: expect.stringContaining(`no Unix user ${nobody} on this server`) }]);
    expect([...plan.assemblies.keys()]).toEqual([fresh, same, unannounced, damaged]);
    expect(plan.messages).toContainEqual({ warning: true, text: `hosts/${fresh}/update.sh is replaced by bento's own update.sh in ${fresh}'s configuration; rename it` });
    expect(plan.messages).toContainEqual({ warning: false, text: `${damaged}: its published files do not match their manifest (configuration.nix differs from the manifest): publishing it again` });
    // Its chroot directories were prepared on the way.
    expect(statSync(path.join(chrootDir, fresh, 'logs')).isDirectory()).toBe(true);
  });

  it("accepts bento's account made as a system account by an earlier bento (not at the uid of uids.txt), with one warning that says how to move it", async () => {
    const { chrootDir } = suite.server;
    const generatedDir = path.join(work, 'generated-uids');
    const [old, placed] = ['old', 'placed'].map(suite.n) as [string, string];
    suite.server.addUsers([old, placed]);
    const systems = [old, placed].map((name) => system(name, generatedDir));
    const { users } = await readAccounts([old, placed], 'sftp_users');
    const [oldUid, placedUid] = [old, placed].map((name) => users.get(name)?.uid ?? -1) as [number, number];
    const plan = await planPublication(systems, chrootDir, generatedDir, new Map([[old, 70000], [placed, placedUid]]));
    expect(plan.failed).toEqual([]);
    expect(plan.toBuild.map((each) => each.name)).toEqual([old, placed]);
    const warnings = plan.messages.filter((message) => message.warning && message.text.includes('uids.txt'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.text).toContain(`an SFTP account is not at the uid the fleet's uids.txt gives it: ${old} (uid ${oldUid}, not 70000); deploy still publishes for it`);
    expect(warnings[0]?.text).toContain(`usermod -u 70000 ${old}`);
    // Without uids (no fleet record), no warning.
    expect((await planPublication(systems, chrootDir, generatedDir)).messages.filter((message) => message.text.includes('uids.txt'))).toEqual([]);
  });
});
