#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct raft_uv_transport;
struct uv_loop_s;

namespace cohort::replication {

// A RaftLog member's address, "HOST:PORT" as common::ParseHostPort takes it with a port
// in [1, 65535], HOST an IPv4 literal or an RFC 1123 host name (no IPv6: libraft 0.15's
// TCP transport is IPv4 only).
struct RaftAddress {
  std::string host;
  std::uint16_t port = 0;
  bool is_ip = false;  // host is an IPv4 literal
};

// INVALID_ARGUMENT (with a bounded message) unless `address` is HOST:PORT as above.
absl::StatusOr<RaftAddress> ParseRaftAddress(absl::string_view address);

// Initialises `t` as a raft_uv_transport over libraft's raft_uv_tcp that also takes
// host names and sets TCP_NODELAY on every stream it connects or accepts (libraft 0.15
// leaves Nagle's algorithm on, which holds an AppendEntries back behind the peer's
// delayed ACK). IPv4 literals are otherwise as with raft_uv_tcp. With a host name as its
// own address the transport listens on 0.0.0.0:PORT (a pod's own name need not resolve
// while it starts); a host name to connect to is resolved (IPv4, uv_getaddrinfo on the
// transport's loop) at every connect, so a peer that came back with a new IP is found.
// A name that does not resolve fails that connect with RAFT_NOCONNECTION, and libraft
// retries later. Closing the transport cancels pending resolutions (their connects
// fail with RAFT_CANCELED) and waits for those already running. Like raft_uv_tcp_init:
// a raft error code, 0 on success; release with RaftDnsTransportClose after the
// transport's close callback (or when raft_uv_init failed).
int RaftDnsTransportInit(raft_uv_transport* t, uv_loop_s* loop);

// Frees what RaftDnsTransportInit allocated.
void RaftDnsTransportClose(raft_uv_transport* t);

}  // namespace cohort::replication
