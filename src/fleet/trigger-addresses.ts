/**
 * Where `bento trigger` finds a machine's listen-update socket.
 *
 * The fleet records no machine addresses: the machines pull, the server
 * never needs to reach them. The system name is what identifies a machine
 * everywhere else (its SFTP user, its flake attribute, usually its
 * networking.hostName), so by default it is also its DNS name: on a LAN
 * with local DNS, a VPN with name resolution (Tailscale's MagicDNS, a
 * WireGuard mesh with a zone), or systemd-resolved's LLMNR, that works
 * without any configuration. TRIGGER_DOMAIN appends a domain, for when the
 * names live in a zone the server does not search. TRIGGER_ADDRESSES names
 * the address of the machines that are elsewhere (`name=host[:port]`); the
 * port is LISTEN_PORT unless given there (a machine may set its own
 * services.bento.listen.port). A wrong address costs nothing but a fast
 * "unreachable": the machine then polls on its timer as usual.
 */
import type { Config } from '../config/schema.js';
import { splitHostPort } from '../util/host-port.js';

export interface TriggerTarget {
  name: string;
  host: string;
  port: number;
  /** `host:port` as people write it ([v6]:port). */
  address: string;
  /** Where the address comes from, for messages. */
  source: 'TRIGGER_ADDRESSES' | 'TRIGGER_DOMAIN' | 'system name';
}

export function triggerTarget(name: string, config: Pick<Config, 'triggerAddresses' | 'triggerDomain' | 'listenPort'>): TriggerTarget {
  const override = Object.hasOwn(config.triggerAddresses, name) ? config.triggerAddresses[name] : undefined;
  // config.ts validated every override.
  const parts = override !== undefined ? splitHostPort(override) : undefined;
  const host = parts?.host ?? (config.triggerDomain ? `${name}.${config.triggerDomain}` : name);
  const port = parts?.port ?? config.listenPort;
  const source = parts ? 'TRIGGER_ADDRESSES' : config.triggerDomain ? 'TRIGGER_DOMAIN' : 'system name';
  return { name, host, port, address: `${host.includes(':') ? `[${host}]` : host}:${port}`, source };
}
