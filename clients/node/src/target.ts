// The gRPC target for what a user wrote as a server address, as the C++ clients'
// ChannelTarget (libs/auth/channel_credentials.h) and the Python SDK read it:
//  - one HOST:PORT (or anything without a comma, e.g. unix:/path): itself;
//  - a comma-separated list of IP HOST:PORTs, all IPv4 or all IPv6, port 1..65535, no
//    repeats, at most 16: the replicas of a broker group, of which only the leader
//    listens. The result is gRPC's address-list target (ipv4:A,B,C): one channel whose
//    pick_first policy connects to the address that accepts (the leader) and, when that
//    connection breaks, tries the list again, so it follows a new leader.
import * as net from 'node:net';
import { ConfigError } from './config';

export const MAX_ADDRESSES = 16;

function quote(text: string): string {
  return JSON.stringify(text.length <= 64 ? text : `${text.slice(0, 64)}...`);
}

function parseIpPort(part: string): { family: 4 | 6; printed: string } {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(part) ?? /^([^:[\]]+):(\d+)$/.exec(part);
  const port = match === null ? NaN : Number(match[2]);
  if (match === null || !(port >= 1 && port <= 65535)) {
    throw new ConfigError(`server address ${quote(part)} is invalid: want IP:PORT with a port in 1..65535`);
  }
  const host = match[1]!;
  const family = net.isIP(host);
  if (family === 0) {
    throw new ConfigError(`a list of server addresses takes IP addresses only (${quote(part)} is not one); ` +
      'give a single name instead, e.g. a Service that selects the leader');
  }
  if (family === 4 && part.startsWith('[')) throw new ConfigError(`server address ${quote(part)} is invalid`);
  return { family: family as 4 | 6, printed: family === 4 ? `${host}:${port}` : `[${host}]:${port}` };
}

/** The gRPC target for `server` (see above); ConfigError for a malformed list. */
export function channelTarget(server: string): string {
  if (!server.includes(',')) return server;
  const parts = server.split(',');
  if (parts.length > MAX_ADDRESSES) {
    throw new ConfigError(`the server list has ${parts.length} addresses: at most ${MAX_ADDRESSES}`);
  }
  const families = new Set<number>();
  const addresses: string[] = [];
  for (const part of parts) {
    const { family, printed } = parseIpPort(part.trim());
    if (addresses.includes(printed)) throw new ConfigError(`the server list names ${printed} twice`);
    families.add(family);
    addresses.push(printed);
  }
  if (families.size !== 1) throw new ConfigError('a list of server addresses is all IPv4 or all IPv6');
  return `${families.has(4) ? 'ipv4' : 'ipv6'}:${addresses.join(',')}`;
}
