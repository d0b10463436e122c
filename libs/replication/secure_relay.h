#pragma once

#include <functional>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "libs/replication/stream_cipher.h"

struct uv_loop_s;
struct uv_stream_s;
struct uv_tcp_s;

namespace cohort::replication {

class SecureRelay;

// The relays of one transport (raft_dns_transport.cc), on its loop only.
struct SecureRelays {
  absl::flat_hash_set<SecureRelay*> open;     // until their handles are closed
  std::function<void()> on_record_rejected;  // a stream closed on a record that did not verify
  std::function<void()> on_all_closed;       // called when `open` becomes empty
};

// Carries one authenticated raft stream encrypted (stream_cipher.h): libraft gets one
// end of a socketpair as its stream and writes and reads plaintext there; the relay
// seals what it reads from that end into records on `tcp` and writes what it opens from
// `tcp` to that end. Either side ending (libraft closing its end, the peer closing the
// connection, an I/O error, a record that does not verify) closes both, so libraft sees
// its stream end. Each direction holds at most about 1 MiB waiting to be written before
// the relay stops reading the other side, so neither a slow peer nor a slow reader makes
// it buffer without bound.
//
// Takes `tcp` over (connected; allocated with raft_malloc and freed with raft_free, as
// libraft's own handles). Returns libraft's end (a uv_pipe_t from raft_malloc: libraft
// frees the streams it is given), or nullptr when no socketpair could be made (`tcp` is
// closed then). `peer` names the other side in logs.
uv_stream_s* StartSecureRelay(uv_loop_s* loop, uv_tcp_s* tcp, const StreamKey& send, const StreamKey& receive,
                              std::string peer, SecureRelays* relays);

// Closes every relay of `relays`; on_all_closed follows once their handles are closed.
void CloseSecureRelays(SecureRelays* relays);

}  // namespace cohort::replication
