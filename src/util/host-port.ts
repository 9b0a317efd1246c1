/**
 * Host names and `host[:port]` addresses as config.sh writes them. Under
 * every stage: config/ checks them when it loads config.sh, fleet/ splits
 * them again to reach a machine (trigger-addresses.ts).
 */

/** A DNS host name (RFC 1123 labels), optionally ending in a dot. */
export const HOST_NAME = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/;

/** The characters of an IPv6 address (with an embedded IPv4 part); the form is for the resolver to judge. */
const IPV6 = /^[0-9A-Fa-f:.]+$/;

/** A host name or an IP address (IPv6 unbracketed). */
export function isHost(raw: string): boolean {
  return HOST_NAME.test(raw) || (raw.includes(':') && IPV6.test(raw));
}

/** `host`, `host:port`, `[v6]` or `[v6]:port` → its parts; undefined when it is none of those. */
export function splitHostPort(address: string): { host: string; port: number | null } | undefined {
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::([0-9]{1,5}))?$/.exec(address);
  if (bracketed) return { host: bracketed[1] as string, port: bracketed[2] === undefined ? null : Number(bracketed[2]) };
  const plain = /^([^:[\]]+)(?::([0-9]{1,5}))?$/.exec(address);
  if (plain && HOST_NAME.test(plain[1] as string)) return { host: plain[1] as string, port: plain[2] === undefined ? null : Number(plain[2]) };
  return undefined;
}
