"""The gRPC target for what a user wrote as a server address, as the C++ clients'
ChannelTarget (libs/auth/channel_credentials.h) reads it:

- one HOST:PORT (`127.0.0.1:7070`, `[::1]:7070`, `broker.cohort:7070`, or anything
  without a comma such as `unix:/path`): itself;
- a comma-separated list of IP HOST:PORTs, all IPv4 or all IPv6, port 1..65535, no
  repeats, at most 16 (`127.0.0.1:7001,127.0.0.1:7002`): the replicas of a broker
  group, of which only the leader listens. The result is gRPC's address-list target
  (`ipv4:127.0.0.1:7001,127.0.0.1:7002`): one channel whose pick_first policy connects
  to the first address that accepts (the leader) and, when that connection breaks,
  tries the list again, so the channel follows a new leader.
"""

from __future__ import annotations

import ipaddress

MAX_ADDRESSES = 16


def _quote(text: str) -> str:
    return repr(text if len(text) <= 64 else text[:64] + "...")


def _parse_ip_port(part: str) -> tuple[str, str]:
    """(kind "ipv4"/"ipv6", printed HOST:PORT) of one list entry; ValueError otherwise."""
    if part.startswith("["):
        host, sep, port = part[1:].partition("]:")
    else:
        host, sep, port = part.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"server address {_quote(part)} is invalid: want IP:PORT with a port in 1..65535")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"a list of server addresses takes IP addresses only ({_quote(part)} is not one); "
                          "give a single name instead, e.g. a Service that selects the leader") from None
    if ip.version == 4 and part.startswith("["):
        raise ValueError(f"server address {_quote(part)} is invalid")
    printed = f"{ip}:{int(port)}" if ip.version == 4 else f"[{ip}]:{int(port)}"
    return ("ipv4" if ip.version == 4 else "ipv6"), printed


def channel_target(server: str) -> str:
    """The gRPC target for `server` (see the module docstring). ValueError for a
    malformed list (open_channel turns it into a ConfigError)."""
    if "," not in server:
        return server
    parts = server.split(",")
    if len(parts) > MAX_ADDRESSES:
        raise ValueError(f"the server list has {len(parts)} addresses: at most {MAX_ADDRESSES}")
    kinds = set()
    addresses: list[str] = []
    for part in parts:
        kind, printed = _parse_ip_port(part.strip())
        if printed in addresses:
            raise ValueError(f"the server list names {printed} twice")
        kinds.add(kind)
        addresses.append(printed)
    if len(kinds) != 1:
        raise ValueError("a list of server addresses is all IPv4 or all IPv6")
    return f"{kinds.pop()}:{','.join(addresses)}"
