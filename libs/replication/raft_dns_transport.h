#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

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

// How a RaftDnsTransport authenticates the streams it connects and accepts.
struct RaftPeerAuth {
  // The group's shared secret (ReadPeerSecretFile); empty: no authentication.
  std::string secret;
  // A stream whose handshake has not completed by then is closed.
  absl::Duration handshake_timeout = absl::Seconds(5);
};

// Streams refused by their authentication handshake, by side: a wrong proof, the
// deadline (once connected, before this side verified the peer's proof), the acceptor
// closing the stream once it had the connector's proof, too many handshakes in flight.
// A peer that cannot be reached, goes away before it has judged a proof (killed, its
// connection cut), or goes away or stalls once this side verified its proof, is not
// counted. Written on the transport's loop only; cumulative from RaftDnsTransportInit.
//
// Also the streams closed, once authenticated, on a record that did not verify (the
// bytes were altered on the way, or injected).
struct RaftPeerAuthCounters {
  std::uint64_t accept_refused = 0;    // streams this member accepted
  std::uint64_t connect_refused = 0;   // streams this member opened
  std::uint64_t records_rejected = 0;  // either way, after the handshake
};

// Initialises `t` as a raft_uv_transport for libraft that also takes host names and sets
// TCP_NODELAY on every stream it connects or accepts (libraft 0.15 leaves Nagle's
// algorithm on, which holds an AppendEntries back behind the peer's delayed ACK).
// With a host name as its own address the transport listens on 0.0.0.0:PORT (a pod's
// own name need not resolve while it starts); a host name to connect to is resolved
// (IPv4, uv_getaddrinfo on the transport's loop) at every connect, so a peer that came
// back with a new IP is found. A name that does not resolve fails that connect with
// RAFT_NOCONNECTION, and libraft retries later.
//
// Without `auth.secret` the streams are libraft's raft_uv_tcp's. With it, the
// transport listens and connects itself and runs a mutual challenge-response on every
// stream before libraft sees a byte of it (docs/replication.md, "Peer authentication"):
//   acceptor -> connector  nonceA (32 random bytes)
//   connector -> acceptor  HMAC-SHA256(secret, "cohort-raft-v2 connector" nonceA nonceC), nonceC
//   acceptor -> connector  HMAC-SHA256(secret, "cohort-raft-v2 acceptor" nonceC nonceA)
// then the connector sends libraft's own preamble (protocol, id, address), which the
// acceptor reads (an address of at most 512 bytes) before handing the stream to libraft.
// The connector sends nothing of libraft's before it has verified the acceptor; each
// side reads exactly the bytes of the step it is in. auth.handshake_timeout bounds the
// whole of it, TCP connect included. A stream that fails (a wrong MAC, EOF, the
// deadline) is closed, and counted in `counters` as described there;
// a failed connect completes with RAFT_NOCONNECTION (libraft retries). At most 64
// handshakes run at a time: a new stream beyond takes the slot of the oldest accepted one
// still waiting for its proof (closed, counted), or is closed at once when there is none.
// After the handshake the stream is encrypted and integrity-protected (stream_cipher.h:
// AES-256-GCM records under keys derived from the secret, both nonces and the preamble):
// libraft reads and writes one end of a socketpair and a SecureRelay (secure_relay.h)
// carries its bytes sealed over the connection. A record that does not verify closes the
// stream (counted in records_rejected); libraft reconnects.
//
// Closing the transport cancels pending resolutions and handshakes (their connects
// fail with RAFT_CANCELED) and waits for those already running. Like raft_uv_tcp_init:
// a raft error code, 0 on success; release with RaftDnsTransportClose after the
// transport's close callback (or when raft_uv_init failed). `counters`, if not null,
// must outlive the transport.
int RaftDnsTransportInit(raft_uv_transport* t, uv_loop_s* loop, RaftPeerAuth auth = {},
                         RaftPeerAuthCounters* counters = nullptr);

// Frees what RaftDnsTransportInit allocated.
void RaftDnsTransportClose(raft_uv_transport* t);

}  // namespace cohort::replication
