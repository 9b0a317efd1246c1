// node bench/lib/render-setup.mjs OUT CHROOT_DIR N [PREFIX]: writes OUT/setup-debian.sh,
// the generated server setup of a fleet of N systems (PREFIX00000…, each with a key),
// rendered from dist/ as bento generate renders it.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const [out, chrootDir, count, prefix = 'm'] = process.argv.slice(2);
const dist = path.join(import.meta.dirname, '..', '..', 'dist');
const { renderFleet } = await import(path.join(dist, 'render', 'render-fleet.js'));
const { DEFAULTS } = await import(path.join(dist, 'config', 'schema.js'));
const config = { ...DEFAULTS, chrootDir, remoteIp: 'bento.example.org', remoteHosts: ['bento.example.org'] };
const systems = Array.from({ length: Number(count) }, (_, i) => {
  const name = `${prefix}${String(i).padStart(5, '0')}`;
  return { name, kind: 'flake', key: { line: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${String(i).padStart(38, '0')} ${name}` } };
});
const file = renderFleet({ config, systems }).find((each) => each.path === 'server/setup-debian.sh');
mkdirSync(out, { recursive: true });
writeFileSync(path.join(out, 'setup-debian.sh'), file.content, { mode: 0o755 });
