#include "libs/replication/raft_dns_transport.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

// Debian's raft.h (0.15) has no extern "C" block of its own.
extern "C" {
#include <raft.h>
#include <raft/uv.h>
}

#include <array>
#include <cstdio>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/address.h"
#include "libs/common/log.h"
#include "libs/replication/peer_secret.h"
#include "libs/replication/secure_relay.h"
#include "libs/replication/stream_cipher.h"

namespace cohort::replication {
namespace {

const log::Logger kLog("replication");

struct DnsTransport;

// One connect waiting for its host name to resolve.
struct Resolve {
  uv_getaddrinfo_t req;
  DnsTransport* owner;
  raft_uv_connect* connect;
  raft_uv_connect_cb cb;
  raft_id id;
  std::uint16_t port;
};

struct Handshake;

// The implementation state of the outer transport: the wrapped raft_uv_tcp, the
// resolutions in flight and, with a secret, its own listener and handshakes.
struct DnsTransport {
  raft_uv_transport* outer = nullptr;
  raft_uv_transport inner{};
  uv_loop_t* loop = nullptr;
  raft_uv_accept_cb accept_cb = nullptr;
  raft_uv_transport_close_cb close_cb = nullptr;
  absl::flat_hash_set<Resolve*> resolving;
  bool closing = false;
  bool inner_closed = false;

  // With auth.secret only.
  RaftPeerAuth auth;
  RaftPeerAuthCounters* counters = nullptr;
  raft_id self_id = 0;
  std::string self_address;  // as libraft gave it, for the preamble
  std::string bind_ip;       // where the listener binds
  std::uint16_t bind_port = 0;
  uv_tcp_t listener{};
  bool listener_open = false;
  absl::flat_hash_set<Handshake*> handshakes;  // until their handles are closed
  std::uint64_t handshakes_started = 0;
  SecureRelays relays;  // the authenticated streams libraft holds, encrypted

  bool Authenticating() const { return !auth.secret.empty(); }

  void SetError(absl::string_view message) {
    std::snprintf(outer->errmsg, sizeof outer->errmsg, "%.*s", static_cast<int>(message.size()), message.data());
  }

  void CopyInnerError() { std::memcpy(outer->errmsg, inner.errmsg, sizeof outer->errmsg); }

  void MaybeFinishClose() {
    if (!closing || !inner_closed || !resolving.empty() || !handshakes.empty() || !relays.open.empty() ||
        listener_open || close_cb == nullptr) {
      return;
    }
    raft_uv_transport_close_cb cb = close_cb;
    close_cb = nullptr;
    cb(outer);
  }
};

DnsTransport* Of(raft_uv_transport* t) { return static_cast<DnsTransport*>(t->impl); }

int Init(raft_uv_transport* t, raft_id id, const char* address) {
  DnsTransport* d = Of(t);
  absl::StatusOr<RaftAddress> parsed = ParseRaftAddress(address);
  if (!parsed.ok()) {
    d->SetError(parsed.status().message());
    return RAFT_INVALID;
  }
  d->self_id = id;
  d->self_address = address;
  d->bind_ip = parsed->is_ip ? parsed->host : "0.0.0.0";
  d->bind_port = parsed->port;
  if (!parsed->is_ip) {
    std::string bind = absl::StrCat("0.0.0.0:", parsed->port);
    if (int rv = raft_uv_tcp_set_bind_address(&d->inner, bind.c_str()); rv != 0) {
      d->SetError("cannot set the bind address");
      return rv;
    }
  }
  int rv = d->inner.init(&d->inner, id, address);
  if (rv != 0) d->CopyInnerError();
  return rv;
}

// libraft 0.15 leaves Nagle's algorithm on: an AppendEntries written while the previous
// one is unacknowledged waits for that ACK, which the peer may delay (40 ms on Linux).
// Best effort: a stream that refuses still works, only slower, so a refusal is logged.
void NoDelay(uv_stream_t* stream) {
  if (stream == nullptr || stream->type != UV_TCP) return;
  if (const int rv = uv_tcp_nodelay(reinterpret_cast<uv_tcp_t*>(stream), 1); rv != 0) {
    kLog.Warn("raft connection left with Nagle's algorithm on: commits may wait for delayed ACKs",
              {{"error", uv_strerror(rv)}});
  }
}

void OnAccept(raft_uv_transport* inner, raft_id id, const char* address, uv_stream_t* stream) {
  DnsTransport* d = static_cast<DnsTransport*>(inner->data);
  NoDelay(stream);
  d->accept_cb(d->outer, id, address, stream);
}

// The callers' callbacks of the connects handed to an inner transport, which completes
// each exactly once (RAFT_CANCELED when closing) through OnConnected. One map for every
// transport of the process (a test runs several RaftLogs, each on a thread of its own).
absl::Mutex connecting_mu;
absl::flat_hash_map<raft_uv_connect*, raft_uv_connect_cb>& Connecting() ABSL_EXCLUSIVE_LOCKS_REQUIRED(connecting_mu) {
  static auto* connecting = new absl::flat_hash_map<raft_uv_connect*, raft_uv_connect_cb>();
  return *connecting;
}

void OnConnected(raft_uv_connect* req, uv_stream_t* stream, int status) {
  raft_uv_connect_cb cb;
  {
    absl::MutexLock lock(&connecting_mu);
    auto it = Connecting().find(req);
    cb = it->second;
    Connecting().erase(it);
  }
  if (status == 0) NoDelay(stream);
  cb(req, stream, status);
}

// inner.connect with OnConnected in front of `cb`.
int ConnectInner(DnsTransport* d, raft_uv_connect* req, raft_id id, const char* address, raft_uv_connect_cb cb) {
  {
    absl::MutexLock lock(&connecting_mu);
    Connecting()[req] = cb;
  }
  int rv = d->inner.connect(&d->inner, req, id, address, &OnConnected);
  if (rv != 0) {
    absl::MutexLock lock(&connecting_mu);
    Connecting().erase(req);
  }
  return rv;
}

// ---- Peer authentication (RaftPeerAuth::secret) ----

constexpr std::size_t kNonceBytes = 32;
constexpr std::size_t kMacBytes = 32;
constexpr std::size_t kPreambleBytes = 24;  // libraft's: protocol, server id, address length
constexpr std::uint64_t kRaftTcpProtocol = 1;
// libraft pads the NUL-terminated address to 8 bytes; a DNS name and a port need 264.
constexpr std::size_t kMaxAddressBytes = 512;
constexpr std::size_t kMaxHandshakes = 64;
constexpr absl::string_view kConnectorLabel = "cohort-raft-v2 connector";
constexpr absl::string_view kAcceptorLabel = "cohort-raft-v2 acceptor";

absl::string_view Bytes(const std::uint8_t* data, std::size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

// One stream being authenticated, until it is handed to libraft or closed. Owns its
// TCP handle (raft_malloc'ed: libraft frees the handles it is given) until then, and a
// deadline timer; freed once both of its handles are closed (or only the timer, when
// the stream went to libraft).
struct Handshake {
  enum class Step {
    kConnecting,       // connector: TCP connect in flight
    kAwaitNonce,       // connector: reading nonceA
    kAwaitAcceptor,    // connector: reading the acceptor's MAC
    kSendingPreamble,  // connector: libraft's preamble being written
    kAwaitProof,       // acceptor: reading the connector's MAC and nonceC
    kAwaitPreamble,    // acceptor: reading libraft's preamble
    kAwaitAddress,     // acceptor: reading the address the preamble announced
    kDone,             // acceptor: all read, its reply still being written
  };

  DnsTransport* owner = nullptr;
  std::uint64_t sequence = 0;  // the transport's handshakes_started when it began
  bool connector = false;
  Step step = Step::kConnecting;
  std::string peer;  // for logs: the address connected to, or the accepted one's IP
  uv_tcp_t* tcp = nullptr;
  uv_timer_t timer{};
  uv_connect_t connect{};
  std::array<uv_write_t, 2> writes{};  // each side writes twice
  std::size_t writes_started = 0;
  std::size_t writes_pending = 0;
  int handles_open = 2;
  bool finished = false;     // failed, or handed over
  bool handed_over = false;  // the stream went to libraft
  raft_uv_connect* req = nullptr;  // connector
  raft_uv_connect_cb cb = nullptr;
  std::array<std::uint8_t, kNonceBytes> own_nonce{};
  std::array<std::uint8_t, kNonceBytes> peer_nonce{};
  std::array<std::uint8_t, kMacBytes + kNonceBytes> proof{};  // connector: MAC, nonceC
  Sha256Mac reply{};                                          // acceptor's MAC
  std::string preamble;  // libraft's, as the connector sent it (the acceptor's copy once read)
  std::array<std::uint8_t, kMaxAddressBytes> in{};
  std::size_t want = 0;  // bytes of the current step
  std::size_t got = 0;
  raft_id peer_id = 0;  // acceptor: from the preamble
};

// The logger's rate limit (one line per second from this call site, with the count it
// suppressed) bounds the warnings when a peer with another secret retries.
void CountRefusal(Handshake* h, absl::string_view reason) {
  DnsTransport* d = h->owner;
  if (d->counters != nullptr) ++(h->connector ? d->counters->connect_refused : d->counters->accept_refused);
  kLog.Warn("raft connection refused: the peer did not prove the group's secret (--replica-secret-file)",
            {{"direction", h->connector ? "connect" : "accept"}, {"peer", h->peer}, {"reason", std::string(reason)}});
}

// The last of a handshake's handles is closed: a connector that did not hand its
// stream over completes its connect (RAFT_CANCELED while closing).
void Release(Handshake* h) {
  if (--h->handles_open > 0) return;
  DnsTransport* d = h->owner;
  if (h->connector && !h->handed_over) h->cb(h->req, nullptr, d->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
  d->handshakes.erase(h);
  delete h;
  d->MaybeFinishClose();
}

void OnTimerClosed(uv_handle_t* handle) { Release(static_cast<Handshake*>(handle->data)); }

void OnTcpClosed(uv_handle_t* handle) {
  Handshake* h = static_cast<Handshake*>(handle->data);
  raft_free(handle);
  h->tcp = nullptr;
  Release(h);
}

// Closes the stream (its pending writes complete with UV_ECANCELED first). `reason`
// empty: not a refusal (the transport is closing, the TCP connect failed, or the peer
// went away before it could judge this side's proof).
void Fail(Handshake* h, absl::string_view reason) {
  if (h->finished) return;
  h->finished = true;
  if (!reason.empty() && !h->owner->closing) CountRefusal(h, reason);
  uv_timer_stop(&h->timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&h->timer), &OnTimerClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(h->tcp), &OnTcpClosed);
}

absl::string_view Bytes(const std::array<std::uint8_t, kNonceBytes>& nonce) { return Bytes(nonce.data(), nonce.size()); }

// The stream is authenticated and every write of ours is done: libraft takes it,
// through a SecureRelay that encrypts it. A connector whose relay cannot start completes
// its connect with RAFT_NOCONNECTION (libraft retries).
void HandOver(Handshake* h) {
  DnsTransport* d = h->owner;
  h->finished = true;
  h->handed_over = true;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(h->tcp));
  uv_timer_stop(&h->timer);
  uv_tcp_t* tcp = h->tcp;
  h->tcp = nullptr;
  h->handles_open = 1;  // the timer; the connection is the relay's now
  NoDelay(reinterpret_cast<uv_stream_t*>(tcp));
  const absl::string_view acceptor_nonce = Bytes(h->connector ? h->peer_nonce : h->own_nonce);
  const absl::string_view connector_nonce = Bytes(h->connector ? h->own_nonce : h->peer_nonce);
  const StreamKeys keys = DeriveStreamKeys(d->auth.secret, acceptor_nonce, connector_nonce, h->preamble);
  const StreamKey& send = h->connector ? keys.connector_to_acceptor : keys.acceptor_to_connector;
  const StreamKey& receive = h->connector ? keys.acceptor_to_connector : keys.connector_to_acceptor;
  uv_stream_t* stream = StartSecureRelay(d->loop, tcp, send, receive, h->peer, &d->relays);
  if (stream == nullptr) {
    h->handed_over = false;  // Release completes a connect with RAFT_NOCONNECTION
  } else if (h->connector) {
    h->cb(h->req, stream, 0);
  } else {
    d->accept_cb(d->outer, h->peer_id, h->preamble.c_str() + kPreambleBytes, stream);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&h->timer), &OnTimerClosed);
}

// Whether this side has verified the peer's proof: the peer holds the group's secret,
// so whatever fails after that (it goes away, it stalls) is not a refusal.
bool PeerVerified(const Handshake* h) {
  return h->step == Handshake::Step::kSendingPreamble || h->step == Handshake::Step::kAwaitPreamble ||
         h->step == Handshake::Step::kAwaitAddress || h->step == Handshake::Step::kDone;
}

// A TCP connect still pending at the deadline is a peer that cannot be reached (its
// host down, SYNs dropped), not a refusal, nor is a verified peer that stalls; a stream
// open that long without a handshake is (a peer that does not speak it, e.g. one
// started without a secret).
void OnDeadline(uv_timer_t* timer) {
  Handshake* h = static_cast<Handshake*>(timer->data);
  Fail(h, h->step == Handshake::Step::kConnecting || PeerVerified(h) ? "" : "no handshake within the deadline");
}

void OnWritten(uv_write_t* write, int status) {
  Handshake* h = static_cast<Handshake*>(write->data);
  --h->writes_pending;
  if (h->finished) return;
  if (status != 0) {
    Fail(h, "");  // the peer went away
    return;
  }
  if (h->writes_pending > 0) return;
  if ((h->connector && h->step == Handshake::Step::kSendingPreamble) ||
      (!h->connector && h->step == Handshake::Step::kDone)) {
    HandOver(h);
  }
}

void Write(Handshake* h, const void* data, std::size_t size) {
  uv_write_t* write = &h->writes[h->writes_started++];
  write->data = h;
  uv_buf_t buf = uv_buf_init(static_cast<char*>(const_cast<void*>(data)), static_cast<unsigned>(size));
  if (const int rv = uv_write(write, reinterpret_cast<uv_stream_t*>(h->tcp), &buf, 1, &OnWritten); rv != 0) {
    Fail(h, "");  // the peer went away
    return;
  }
  ++h->writes_pending;
}

void OnAlloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf) {
  Handshake* h = static_cast<Handshake*>(handle->data);
  // Exactly what the current step still needs: nothing beyond the handshake is read.
  *buf = uv_buf_init(reinterpret_cast<char*>(h->in.data()) + h->got, static_cast<unsigned>(h->want - h->got));
}

void Expect(Handshake* h, Handshake::Step step, std::size_t bytes) {
  h->step = step;
  h->want = bytes;
  h->got = 0;
}

void Received(Handshake* h);

// Whether this side has sent its proof and waits for the peer to judge it: a stream the
// peer closes then was refused by it (it holds another secret). Only a connector waits
// so: an acceptor sends its proof once it has verified the connector's, after which the
// connector closing is a peer that went away (killed, a proxy cut it), as is any close
// before a proof was sent.
bool ProofSent(const Handshake* h) { return h->step == Handshake::Step::kAwaitAcceptor; }

void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
  Handshake* h = static_cast<Handshake*>(stream->data);
  if (h->finished || nread == 0) return;
  if (nread < 0) {
    Fail(h, !ProofSent(h)        ? ""
            : nread == UV_EOF ? "closed by the peer after this side's proof: the peer holds another secret"
                              : uv_strerror(static_cast<int>(nread)));
    return;
  }
  h->got += static_cast<std::size_t>(nread);
  if (h->got == h->want) Received(h);
}

void StartReading(Handshake* h) {
  if (const int rv = uv_read_start(reinterpret_cast<uv_stream_t*>(h->tcp), &OnAlloc, &OnRead); rv != 0) {
    Fail(h, "");
  }
}

std::uint64_t Get64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void Put64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A complete read of the current step.
void Received(Handshake* h) {
  const std::string& secret = h->owner->auth.secret;
  switch (h->step) {
    case Handshake::Step::kAwaitNonce: {
      std::memcpy(h->peer_nonce.data(), h->in.data(), kNonceBytes);
      RandomBytes(h->own_nonce.data(), h->own_nonce.size());
      const Sha256Mac mac = HmacSha256(secret, {kConnectorLabel, Bytes(h->peer_nonce.data(), kNonceBytes),
                                                Bytes(h->own_nonce.data(), kNonceBytes)});
      std::memcpy(h->proof.data(), mac.data(), kMacBytes);
      std::memcpy(h->proof.data() + kMacBytes, h->own_nonce.data(), kNonceBytes);
      Expect(h, Handshake::Step::kAwaitAcceptor, kMacBytes);
      Write(h, h->proof.data(), h->proof.size());
      return;
    }
    case Handshake::Step::kAwaitAcceptor: {
      const Sha256Mac expected = HmacSha256(secret, {kAcceptorLabel, Bytes(h->own_nonce.data(), kNonceBytes),
                                                     Bytes(h->peer_nonce.data(), kNonceBytes)});
      if (!MacEquals(expected, h->in.data())) {
        Fail(h, "wrong proof of the secret");
        return;
      }
      uv_read_stop(reinterpret_cast<uv_stream_t*>(h->tcp));
      DnsTransport* d = h->owner;
      // libraft's handshake (uv_tcp_connect.c): protocol, id, the padded address length,
      // the NUL-terminated address padded to 8 bytes, integers little-endian.
      const std::size_t padded = (d->self_address.size() + 1 + 7) / 8 * 8;
      h->preamble.clear();
      Put64(h->preamble, kRaftTcpProtocol);
      Put64(h->preamble, d->self_id);
      Put64(h->preamble, padded);
      h->preamble.append(d->self_address);
      h->preamble.resize(kPreambleBytes + padded, '\0');
      h->step = Handshake::Step::kSendingPreamble;
      Write(h, h->preamble.data(), h->preamble.size());
      return;
    }
    case Handshake::Step::kAwaitProof: {
      std::memcpy(h->peer_nonce.data(), h->in.data() + kMacBytes, kNonceBytes);
      const Sha256Mac expected = HmacSha256(secret, {kConnectorLabel, Bytes(h->own_nonce.data(), kNonceBytes),
                                                     Bytes(h->peer_nonce.data(), kNonceBytes)});
      if (!MacEquals(expected, h->in.data())) {
        Fail(h, "wrong proof of the secret");
        return;
      }
      h->reply = HmacSha256(secret, {kAcceptorLabel, Bytes(h->peer_nonce.data(), kNonceBytes),
                                     Bytes(h->own_nonce.data(), kNonceBytes)});
      Expect(h, Handshake::Step::kAwaitPreamble, kPreambleBytes);
      Write(h, h->reply.data(), h->reply.size());
      return;
    }
    case Handshake::Step::kAwaitPreamble: {
      const std::uint64_t protocol = Get64(h->in.data());
      const std::uint64_t id = Get64(h->in.data() + 8);
      const std::uint64_t length = Get64(h->in.data() + 16);
      if (protocol != kRaftTcpProtocol || id == 0 || length == 0 || length > kMaxAddressBytes) {
        Fail(h, "malformed raft preamble");
        return;
      }
      h->peer_id = id;
      h->preamble.assign(reinterpret_cast<const char*>(h->in.data()), kPreambleBytes);
      Expect(h, Handshake::Step::kAwaitAddress, static_cast<std::size_t>(length));
      return;
    }
    case Handshake::Step::kAwaitAddress: {
      if (std::memchr(h->in.data(), '\0', h->want) == nullptr) {
        Fail(h, "malformed raft preamble");
        return;
      }
      uv_read_stop(reinterpret_cast<uv_stream_t*>(h->tcp));
      h->preamble.append(reinterpret_cast<const char*>(h->in.data()), h->want);
      h->step = Handshake::Step::kDone;
      if (h->writes_pending == 0) HandOver(h);
      return;
    }
    case Handshake::Step::kConnecting:
    case Handshake::Step::kSendingPreamble:
    case Handshake::Step::kDone:
      return;  // nothing is read in these steps
  }
}

// A TCP handle for a handshake (raft_malloc'ed: libraft frees the ones it is given);
// nullptr when out of memory.
uv_tcp_t* NewTcp(uv_loop_t* loop) {
  auto* tcp = static_cast<uv_tcp_t*>(raft_malloc(sizeof(uv_tcp_t)));
  if (tcp != nullptr) uv_tcp_init(loop, tcp);
  return tcp;
}

void CloseTcp(uv_tcp_t* tcp) {
  uv_close(reinterpret_cast<uv_handle_t*>(tcp), [](uv_handle_t* handle) { raft_free(handle); });
}

// A new handshake over `tcp` (from NewTcp) with its deadline running; nullptr when out
// of memory (`tcp` is closed then).
Handshake* NewHandshake(DnsTransport* d, bool connector, uv_tcp_t* tcp) {
  auto* h = new (std::nothrow) Handshake;
  if (h == nullptr) {
    CloseTcp(tcp);
    return nullptr;
  }
  h->owner = d;
  h->sequence = d->handshakes_started++;
  h->connector = connector;
  h->tcp = tcp;
  tcp->data = h;
  uv_timer_init(d->loop, &h->timer);
  h->timer.data = h;
  uv_timer_start(&h->timer, &OnDeadline, static_cast<std::uint64_t>(absl::ToInt64Milliseconds(d->auth.handshake_timeout)),
                 0);
  d->handshakes.insert(h);
  return h;
}

void OnTcpConnected(uv_connect_t* connect, int status) {
  Handshake* h = static_cast<Handshake*>(connect->data);
  if (h->finished) return;
  if (status != 0) {
    h->owner->SetError(absl::StrCat("connecting to ", h->peer, ": ", uv_strerror(status)));
    Fail(h, "");  // not a refusal: nothing listens there (yet)
    return;
  }
  Expect(h, Handshake::Step::kAwaitNonce, kNonceBytes);
  StartReading(h);
}

// Connects to `ip`:`port` and authenticates the stream before `cb` receives it. Always
// completes through `cb` (RAFT_NOCONNECTION on failure); RAFT_NOMEM if nothing started.
int ConnectAuthenticated(DnsTransport* d, raft_uv_connect* req, const std::string& ip, std::uint16_t port,
                         raft_uv_connect_cb cb) {
  sockaddr_in addr{};
  if (uv_ip4_addr(ip.c_str(), port, &addr) != 0) {
    d->SetError("not an IPv4 address");
    return RAFT_NOCONNECTION;
  }
  uv_tcp_t* tcp = NewTcp(d->loop);
  Handshake* h = tcp == nullptr ? nullptr : NewHandshake(d, /*connector=*/true, tcp);
  if (h == nullptr) {
    d->SetError("out of memory");
    return RAFT_NOMEM;
  }
  h->req = req;
  h->cb = cb;
  h->peer = absl::StrCat(ip, ":", port);
  h->connect.data = h;
  if (const int rv = uv_tcp_connect(&h->connect, h->tcp, reinterpret_cast<const sockaddr*>(&addr), &OnTcpConnected);
      rv != 0) {
    d->SetError(absl::StrCat("uv_tcp_connect: ", uv_strerror(rv)));
    Fail(h, "");
  }
  return 0;
}

// At most kMaxHandshakes run at a time. When every slot is taken, the oldest accepted
// stream still waiting for its proof gives its slot to the new one: a real peer proves
// the secret within a round trip, so only a flood of connections within that time keeps
// it out, where refusing the new stream would let anyone keep every peer out with
// kMaxHandshakes silent connections per deadline. Streams being closed still hold
// memory: beyond twice the cap, a new stream is refused. Whether `d` takes one more.
bool MakeRoomForHandshake(DnsTransport* d) {
  if (d->handshakes.size() >= 2 * kMaxHandshakes) return false;
  std::size_t running = 0;
  Handshake* oldest = nullptr;
  for (Handshake* h : d->handshakes) {
    if (h->finished) continue;
    ++running;
    if (!h->connector && h->step == Handshake::Step::kAwaitProof &&
        (oldest == nullptr || h->sequence < oldest->sequence)) {
      oldest = h;
    }
  }
  if (running < kMaxHandshakes) return true;
  if (oldest == nullptr) return false;
  Fail(oldest, "too many handshakes in flight: the oldest unproven stream gave way to a new one");
  return true;
}

void OnConnection(uv_stream_t* listener, int status) {
  DnsTransport* d = static_cast<DnsTransport*>(listener->data);
  if (status != 0 || d->closing) return;
  uv_tcp_t* tcp = NewTcp(d->loop);
  if (tcp == nullptr) return;
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(tcp)) != 0) {
    CloseTcp(tcp);
    return;
  }
  if (!MakeRoomForHandshake(d)) {
    if (d->counters != nullptr) ++d->counters->accept_refused;
    CloseTcp(tcp);
    return;
  }
  Handshake* h = NewHandshake(d, /*connector=*/false, tcp);
  if (h == nullptr) return;
  sockaddr_storage peer{};
  int length = sizeof peer;
  char ip[INET_ADDRSTRLEN] = "?";
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&peer), &length) == 0 && peer.ss_family == AF_INET) {
    uv_ip4_name(reinterpret_cast<const sockaddr_in*>(&peer), ip, sizeof ip);
  }
  h->peer = ip;
  RandomBytes(h->own_nonce.data(), h->own_nonce.size());
  Expect(h, Handshake::Step::kAwaitProof, kMacBytes + kNonceBytes);
  Write(h, h->own_nonce.data(), h->own_nonce.size());
  if (!h->finished) StartReading(h);
}

int ListenAuthenticated(DnsTransport* d) {
  sockaddr_in addr{};
  int rv = uv_ip4_addr(d->bind_ip.c_str(), d->bind_port, &addr);
  if (rv == 0) rv = uv_tcp_init(d->loop, &d->listener);
  if (rv != 0) {
    d->SetError(absl::StrCat("raft listener: ", uv_strerror(rv)));
    return RAFT_IOERR;
  }
  d->listener.data = d;
  d->listener_open = true;
  rv = uv_tcp_bind(&d->listener, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rv == 0) rv = uv_listen(reinterpret_cast<uv_stream_t*>(&d->listener), SOMAXCONN, &OnConnection);
  if (rv != 0) {
    d->SetError(absl::StrCat("listening on ", d->bind_ip, ":", d->bind_port, ": ", uv_strerror(rv)));
    return RAFT_IOERR;  // the listener is closed with the transport
  }
  return 0;
}

int Listen(raft_uv_transport* t, raft_uv_accept_cb cb) {
  DnsTransport* d = Of(t);
  d->accept_cb = cb;
  if (d->Authenticating()) return ListenAuthenticated(d);
  int rv = d->inner.listen(&d->inner, &OnAccept);
  if (rv != 0) d->CopyInnerError();
  return rv;
}

void OnResolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  Resolve* r = static_cast<Resolve*>(req->data);
  DnsTransport* d = r->owner;
  d->resolving.erase(r);
  raft_uv_connect* connect = r->connect;
  raft_uv_connect_cb cb = r->cb;
  raft_id id = r->id;
  std::uint16_t port = r->port;
  delete r;
  char ip[INET_ADDRSTRLEN] = {};
  bool found = status == 0 && res != nullptr && res->ai_family == AF_INET &&
               inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, ip, sizeof ip) != nullptr;
  if (res != nullptr) uv_freeaddrinfo(res);
  if (d->closing) {
    cb(connect, nullptr, RAFT_CANCELED);
    d->MaybeFinishClose();
    return;
  }
  if (!found) {
    d->SetError(absl::StrCat("resolving a peer's host name: ", status != 0 ? uv_strerror(status) : "no IPv4 address"));
    cb(connect, nullptr, RAFT_NOCONNECTION);
    return;
  }
  if (d->Authenticating()) {
    if (ConnectAuthenticated(d, connect, ip, port, cb) != 0) cb(connect, nullptr, RAFT_NOCONNECTION);
    return;
  }
  std::string literal = absl::StrCat(ip, ":", port);
  int rv = ConnectInner(d, connect, id, literal.c_str(), cb);
  if (rv != 0) {
    d->CopyInnerError();
    cb(connect, nullptr, RAFT_NOCONNECTION);
  }
}

int Connect(raft_uv_transport* t, raft_uv_connect* req, raft_id id, const char* address, raft_uv_connect_cb cb) {
  DnsTransport* d = Of(t);
  absl::StatusOr<RaftAddress> parsed = ParseRaftAddress(address);
  if (!parsed.ok()) {
    d->SetError(parsed.status().message());
    return RAFT_NOCONNECTION;
  }
  if (parsed->is_ip && d->Authenticating()) return ConnectAuthenticated(d, req, parsed->host, parsed->port, cb);
  if (parsed->is_ip) {
    int rv = ConnectInner(d, req, id, address, cb);
    if (rv != 0) d->CopyInnerError();
    return rv;
  }
  auto* r = new (std::nothrow) Resolve{{}, d, req, cb, id, parsed->port};
  if (r == nullptr) {
    d->SetError("out of memory");
    return RAFT_NOMEM;
  }
  r->req.data = r;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  int rv = uv_getaddrinfo(d->loop, &r->req, &OnResolved, parsed->host.c_str(), nullptr, &hints);
  if (rv != 0) {
    delete r;
    d->SetError(absl::StrCat("uv_getaddrinfo: ", uv_strerror(rv)));
    return RAFT_NOCONNECTION;
  }
  d->resolving.insert(r);
  return 0;
}

void OnInnerClosed(raft_uv_transport* inner) {
  DnsTransport* d = static_cast<DnsTransport*>(inner->data);
  d->inner_closed = true;
  d->MaybeFinishClose();
}

void Close(raft_uv_transport* t, raft_uv_transport_close_cb cb) {
  DnsTransport* d = Of(t);
  d->closing = true;
  d->close_cb = cb;
  // A resolution already running on libuv's thread pool cannot be cancelled; its
  // callback completes the connect with RAFT_CANCELED.
  for (Resolve* r : d->resolving) uv_cancel(reinterpret_cast<uv_req_t*>(&r->req));
  // Each handshake completes once its handles are closed (a connect with RAFT_CANCELED).
  const std::vector<Handshake*> handshakes(d->handshakes.begin(), d->handshakes.end());
  for (Handshake* h : handshakes) Fail(h, "");
  CloseSecureRelays(&d->relays);
  if (d->listener_open) {
    uv_close(reinterpret_cast<uv_handle_t*>(&d->listener), [](uv_handle_t* handle) {
      DnsTransport* d = static_cast<DnsTransport*>(handle->data);
      d->listener_open = false;
      d->MaybeFinishClose();
    });
  }
  d->inner.close(&d->inner, &OnInnerClosed);
}

}  // namespace

absl::StatusOr<RaftAddress> ParseRaftAddress(absl::string_view address) {
  absl::StatusOr<common::HostPort> parsed =
      common::ParseHostPort("raft address", address, common::PortZero::kRejected);
  if (!parsed.ok()) return parsed.status();
  if (parsed->kind == common::HostPort::Kind::kIPv6) {
    return absl::InvalidArgumentError(
        absl::StrCat("raft address ", parsed->ToString(), " is invalid: libraft's transport is IPv4 only"));
  }
  return RaftAddress{std::move(parsed->host), parsed->port, parsed->kind == common::HostPort::Kind::kIPv4};
}

int RaftDnsTransportInit(raft_uv_transport* t, uv_loop_s* loop, RaftPeerAuth auth, RaftPeerAuthCounters* counters) {
  void* data = t->data;
  std::memset(t, 0, sizeof *t);
  t->data = data;
  auto* d = new (std::nothrow) DnsTransport;
  if (d == nullptr) return RAFT_NOMEM;
  d->outer = t;
  d->loop = loop;
  d->auth = std::move(auth);
  d->counters = counters;
  d->relays.on_record_rejected = [d] {
    if (d->counters != nullptr) ++d->counters->records_rejected;
  };
  d->relays.on_all_closed = [d] { d->MaybeFinishClose(); };
  if (int rv = raft_uv_tcp_init(&d->inner, loop); rv != 0) {
    std::memcpy(t->errmsg, d->inner.errmsg, sizeof t->errmsg);
    delete d;
    return rv;
  }
  d->inner.data = d;
  t->impl = d;
  t->init = &Init;
  t->listen = &Listen;
  t->connect = &Connect;
  t->close = &Close;
  return 0;
}

void RaftDnsTransportClose(raft_uv_transport* t) {
  DnsTransport* d = Of(t);
  raft_uv_tcp_close(&d->inner);
  delete d;
}

}  // namespace cohort::replication
