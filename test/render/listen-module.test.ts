/**
 * Who may trigger an update through the listen-update socket: by default the
 * servers of REMOTE_IP only, their addresses filtered by systemd
 * (IPAddressAllow=, which takes no host names) and their names resolved by
 * each connection's instance. utils/bento.nix with a rendered
 * bento-units.nix, evaluated with the real module system.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { listenAllowedPeers, renderClientFiles } from '../../src/render/render-fleet.js';
import { evalNixos } from '../helpers/nixos.js';
import { configWith } from '../helpers/render.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bento-listen-module-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A machine's configuration directory for a fleet whose REMOTE_IP lists `remoteHosts`; returns the modules of a machine with `settings`. */
function machine(remoteHosts: string[], settings = '{ }'): string[] {
  const root = path.join(dir, Math.random().toString(36).slice(2));
  mkdirSync(path.join(root, 'utils'), { recursive: true });
  copyFileSync(path.join(PACKAGE_ROOT, 'utils', 'bento.nix'), path.join(root, 'utils', 'bento.nix'));
  for (const file of renderClientFiles(configWith({ remoteHosts })).filter((file) => file.path.endsWith('.nix'))) {
    writeFileSync(path.join(root, path.basename(file.path)), file.content);
  }
  writeFileSync(path.join(root, 'machine.nix'), settings);
  return [path.join(root, 'utils', 'bento.nix'), path.join(root, 'machine.nix')];
}

interface Listen {
  socket: Record<string, unknown>;
  environment: Record<string, string>;
}

function listen(modules: string[]): Listen {
  return {
    socket: evalNixos<Record<string, unknown>>(modules, 'config.systemd.sockets.listen-update.socketConfig'),
    environment: evalNixos<Record<string, string>>(modules, 'environments."listen-update@"'),
  };
}

describe('the servers of REMOTE_IP', () => {
  it('split into addresses and host names', () => {
    expect(listenAllowedPeers(['bento.example.org', '192.0.2.1', '2001:db8::1', 'mirror.lan.'])).toEqual({
      addresses: ['192.0.2.1', '2001:db8::1'],
      hosts: ['bento.example.org', 'mirror.lan.'],
    });
  });
});

describe('services.bento.listen: who may trigger an update', () => {
  it('by default, addresses only: systemd lets only them reach the socket, and the instance checks them again', () => {
    const modules = machine(['192.0.2.1', '2001:db8::1']);
    expect(evalNixos(modules, 'config.services.bento.listen')).toMatchObject({ allowedAddresses: ['192.0.2.1', '2001:db8::1'], allowedHosts: [] });
    const { socket, environment } = listen(modules);
    expect(socket).toEqual({ Accept: true, TriggerLimitIntervalSec: 0, MaxConnectionsPerSource: 8, IPAddressDeny: 'any', IPAddressAllow: ['192.0.2.1', '2001:db8::1'] });
    expect(environment).toMatchObject({ BENTO_LISTEN_ADDRESSES: '192.0.2.1 2001:db8::1', BENTO_LISTEN_HOSTS: '' });
  });

  it('by default, with a host name: systemd cannot filter by name, so every address reaches the socket and the instance resolves the name (getent, on its PATH)', () => {
    const modules = machine(['bento.example.org', '192.0.2.1']);
    expect(evalNixos(modules, 'config.services.bento.listen')).toMatchObject({ allowedAddresses: ['192.0.2.1'], allowedHosts: ['bento.example.org'] });
    const { socket, environment } = listen(modules);
    expect(socket).toEqual({ Accept: true, TriggerLimitIntervalSec: 0, MaxConnectionsPerSource: 8 });
    expect(environment).toMatchObject({ BENTO_LISTEN_ADDRESSES: '192.0.2.1', BENTO_LISTEN_HOSTS: 'bento.example.org' });
    expect(environment.PATH?.split(':')[0]).toBe('/pkgs/getent/bin');
  });

  it('systemd\'s words become prefixes for the instance; [ "any" ] lets everyone; nothing allowed lets no one', () => {
    const words = listen(machine(['192.0.2.1'], '{ services.bento.listen.allowedAddresses = [ "localhost" "10.0.0.0/8" ]; }'));
    expect(words.socket).toMatchObject({ IPAddressDeny: 'any', IPAddressAllow: ['localhost', '10.0.0.0/8'] });
    expect(words.environment.BENTO_LISTEN_ADDRESSES).toBe('127.0.0.0/8 ::1/128 10.0.0.0/8');

    const anyone = listen(machine(['bento.example.org'], '{ services.bento.listen = { allowedAddresses = [ "any" ]; allowedHosts = [ ]; }; }'));
    expect(anyone.socket).toEqual({ Accept: true, TriggerLimitIntervalSec: 0, MaxConnectionsPerSource: 8 });
    expect(anyone.environment.BENTO_LISTEN_ADDRESSES).toBe('0.0.0.0/0 ::/0');

    const noOne = listen(machine(['bento.example.org'], '{ services.bento.listen.allowedHosts = [ ]; }'));
    expect(noOne.socket).toEqual({ Accept: true, TriggerLimitIntervalSec: 0, MaxConnectionsPerSource: 8, IPAddressDeny: 'any' });
  });

  it('refuses a host name among the addresses, and anything but a host name among the hosts, naming the option', () => {
    expect(() => listen(machine(['192.0.2.1'], '{ services.bento.listen.allowedAddresses = [ "bento.example.org" ]; }'))).toThrow(/services\.bento\.listen\.allowedAddresses/);
    expect(() => listen(machine(['192.0.2.1'], '{ services.bento.listen.allowedHosts = [ "a b" ]; }'))).toThrow(/services\.bento\.listen\.allowedHosts/);
  });
});
