/** Where `bento trigger` finds a machine (src/fleet/trigger-addresses.ts): pure, no network. */
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config/config.js';
import { triggerTarget } from '../../src/fleet/trigger-addresses.js';

describe('triggerTarget', () => {
  const config = { ...DEFAULTS };
  it('is the system name on LISTEN_PORT by default', () => {
    expect(triggerTarget('laptop', config)).toEqual({ name: 'laptop', host: 'laptop', port: 51337, address: 'laptop:51337', source: 'system name' });
  });
  it('appends TRIGGER_DOMAIN', () => {
    expect(triggerTarget('laptop', { ...config, triggerDomain: 'vpn.example.org' })).toMatchObject({ host: 'laptop.vpn.example.org', port: 51337, source: 'TRIGGER_DOMAIN' });
  });
  it('takes TRIGGER_ADDRESSES first, with its port or LISTEN_PORT', () => {
    const addresses = { laptop: '192.0.2.4', nas: '[fd00::2]:8080', router: 'gw.lan:9000' };
    const with_ = { ...config, triggerDomain: 'vpn', listenPort: 4000, triggerAddresses: addresses };
    expect(triggerTarget('laptop', with_)).toMatchObject({ host: '192.0.2.4', port: 4000, address: '192.0.2.4:4000', source: 'TRIGGER_ADDRESSES' });
    expect(triggerTarget('nas', with_)).toMatchObject({ host: 'fd00::2', port: 8080, address: '[fd00::2]:8080' });
    expect(triggerTarget('router', with_)).toMatchObject({ host: 'gw.lan', port: 9000 });
    expect(triggerTarget('other', with_)).toMatchObject({ host: 'other.vpn', port: 4000 });
    // A name that is a property of every object is not an override.
    expect(triggerTarget('constructor', with_)).toMatchObject({ host: 'constructor.vpn' });
  });
});
