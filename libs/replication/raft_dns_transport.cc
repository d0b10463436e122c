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

#include <cstdio>
#include <cstring>
#include <new>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/address.h"
#include "libs/common/log.h"

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

// The implementation state of the outer transport: the wrapped raft_uv_tcp and the
// resolutions in flight.
struct DnsTransport {
  raft_uv_transport* outer = nullptr;
  raft_uv_transport inner{};
  uv_loop_t* loop = nullptr;
  raft_uv_accept_cb accept_cb = nullptr;
  raft_uv_transport_close_cb close_cb = nullptr;
  absl::flat_hash_set<Resolve*> resolving;
  bool closing = false;
  bool inner_closed = false;

  void SetError(absl::string_view message) {
    std::snprintf(outer->errmsg, sizeof outer->errmsg, "%.*s", static_cast<int>(message.size()), message.data());
  }

  void CopyInnerError() { std::memcpy(outer->errmsg, inner.errmsg, sizeof outer->errmsg); }

  void MaybeFinishClose() {
    if (!closing || !inner_closed || !resolving.empty() || close_cb == nullptr) return;
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

int Listen(raft_uv_transport* t, raft_uv_accept_cb cb) {
  DnsTransport* d = Of(t);
  d->accept_cb = cb;
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

int RaftDnsTransportInit(raft_uv_transport* t, uv_loop_s* loop) {
  void* data = t->data;
  std::memset(t, 0, sizeof *t);
  t->data = data;
  auto* d = new (std::nothrow) DnsTransport;
  if (d == nullptr) return RAFT_NOMEM;
  d->outer = t;
  d->loop = loop;
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
