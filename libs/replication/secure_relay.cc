#include "libs/replication/secure_relay.h"

#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

// Debian's raft.h (0.15) has no extern "C" block of its own.
extern "C" {
#include <raft.h>
}

#include <array>
#include <cerrno>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "libs/common/log.h"

namespace cohort::replication {
namespace {

const log::Logger kRelayLog("replication");

// Bytes waiting to be written on one side beyond which the relay stops reading the
// other, and below which it reads again.
constexpr std::size_t kHighWater = 1 << 20;
constexpr std::size_t kLowWater = 256 << 10;
constexpr std::size_t kReadChunk = 64 << 10;

}  // namespace

class SecureRelay {
 public:
  SecureRelay(uv_tcp_t* tcp, const StreamKey& send, const StreamKey& receive, std::string peer, SecureRelays* relays)
      : tcp_(tcp), sealer_(send), opener_(receive), peer_(std::move(peer)), relays_(relays) {
    network_.stream = reinterpret_cast<uv_stream_t*>(tcp_);
    raft_.stream = reinterpret_cast<uv_stream_t*>(&local_);
  }

  // Opens the relay's end of the socketpair on `fd` and starts reading both sides.
  // False when libuv refuses `fd` (still the caller's to close): the relay then closes
  // itself and `tcp`.
  bool Start(uv_loop_t* loop, int fd) {
    uv_pipe_init(loop, &local_, 0);
    local_.data = this;
    tcp_->data = this;
    relays_->open.insert(this);
    if (uv_pipe_open(&local_, fd) != 0) {
      Close();
      return false;
    }
    Read(network_, true);
    Read(raft_, true);
    return true;
  }

  void Close() {
    if (closing_) return;
    closing_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(tcp_), &OnClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&local_), &OnClosed);
  }

 private:
  // One side of the relay: the peer's connection (network_) or the relay's end of the
  // socketpair, facing libraft (raft_); the buffer its reads land in.
  struct Side {
    uv_stream_t* stream = nullptr;
    std::array<char, kReadChunk> buf{};
    bool reading = false;
  };
  // One write in flight; owns its bytes until libuv is done with them.
  struct Write {
    uv_write_t req{};
    std::string bytes;
    SecureRelay* relay = nullptr;
    Side* to = nullptr;
  };

  Side& SideOf(const uv_handle_t* handle) {
    return handle == reinterpret_cast<const uv_handle_t*>(network_.stream) ? network_ : raft_;
  }
  Side& Other(const Side& side) { return &side == &network_ ? raft_ : network_; }

  static void OnClosed(uv_handle_t* handle) {
    SecureRelay* r = static_cast<SecureRelay*>(handle->data);
    if (handle == reinterpret_cast<uv_handle_t*>(r->tcp_)) raft_free(handle);
    if (--r->handles_open_ > 0) return;
    SecureRelays* relays = r->relays_;
    relays->open.erase(r);
    delete r;
    if (relays->open.empty() && relays->on_all_closed) relays->on_all_closed();
  }

  void Read(Side& side, bool on) {
    if (closing_ || on == side.reading) return;
    side.reading = on;
    const int rv = on ? uv_read_start(side.stream, &Alloc, &OnRead) : uv_read_stop(side.stream);
    if (rv != 0) Close();
  }

  static void Alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf) {
    Side& side = static_cast<SecureRelay*>(handle->data)->SideOf(handle);
    *buf = uv_buf_init(side.buf.data(), static_cast<unsigned>(side.buf.size()));
  }

  // Records from the peer are opened and written to libraft's end; plaintext from
  // libraft is sealed and written to the peer. Either side ending ends the relay.
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
    SecureRelay* r = static_cast<SecureRelay*>(stream->data);
    if (r->closing_ || nread == 0) return;
    if (nread < 0) {
      r->Close();  // the peer closed the connection or it broke, or libraft closed its end
      return;
    }
    Side& from = r->SideOf(reinterpret_cast<uv_handle_t*>(stream));
    const absl::string_view bytes(from.buf.data(), static_cast<std::size_t>(nread));
    if (&from == &r->raft_) {
      std::string sealed;
      sealed.reserve(bytes.size() + kRecordHeaderBytes + kRecordTagBytes);
      r->sealer_.Seal(bytes, sealed);
      r->Send(std::move(sealed), r->network_);
      return;
    }
    r->sealed_in_.append(bytes.data(), bytes.size());
    std::string plain;
    if (absl::Status s = r->opener_.Open(r->sealed_in_, plain); !s.ok()) {
      if (r->relays_->on_record_rejected) r->relays_->on_record_rejected();
      kRelayLog.Warn("raft connection closed: a record from the peer did not verify (altered on the way, or not "
                     "sealed with the group's secret)",
                     {{"peer", r->peer_}, {"error", std::string(s.message())}});
      r->Close();
      return;
    }
    if (!plain.empty()) r->Send(std::move(plain), r->raft_);
  }

  void Send(std::string bytes, Side& to) {
    auto* w = new (std::nothrow) Write;
    if (w == nullptr) {
      Close();
      return;
    }
    w->bytes = std::move(bytes);
    w->relay = this;
    w->to = &to;
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
    if (uv_write(&w->req, to.stream, &buf, 1, &OnWritten) != 0) {
      delete w;
      Close();
      return;
    }
    // Too much waiting on this side: stop reading the side that feeds it.
    if (uv_stream_get_write_queue_size(to.stream) > kHighWater) Read(Other(to), false);
  }

  static void OnWritten(uv_write_t* req, int status) {
    Write* w = static_cast<Write*>(req->data);
    SecureRelay* r = w->relay;
    Side& to = *w->to;
    delete w;
    if (r->closing_) return;
    if (status != 0) {
      r->Close();
      return;
    }
    if (uv_stream_get_write_queue_size(to.stream) < kLowWater) r->Read(r->Other(to), true);
  }

  uv_tcp_t* tcp_;
  uv_pipe_t local_{};
  Side network_;
  Side raft_;
  RecordSealer sealer_;
  RecordOpener opener_;
  std::string peer_;
  SecureRelays* relays_;
  std::string sealed_in_;  // bytes from the peer not yet opened (a partial record)
  int handles_open_ = 2;
  bool closing_ = false;
};

uv_stream_t* StartSecureRelay(uv_loop_t* loop, uv_tcp_t* tcp, const StreamKey& send, const StreamKey& receive,
                              std::string peer, SecureRelays* relays) {
  int fds[2];
  auto* relay = new (std::nothrow) SecureRelay(tcp, send, receive, std::move(peer), relays);
  if (relay == nullptr || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    kRelayLog.Warn("raft connection dropped: its encryption could not start",
                   {{"error", relay == nullptr ? "out of memory" : std::strerror(errno)}});
    delete relay;
    uv_close(reinterpret_cast<uv_handle_t*>(tcp), [](uv_handle_t* handle) { raft_free(handle); });
    return nullptr;
  }
  // From here the relay owns `tcp`.
  if (!relay->Start(loop, fds[1])) {
    kRelayLog.Warn("raft connection dropped: its encryption could not start");
    close(fds[0]);
    close(fds[1]);
    return nullptr;
  }
  auto* raft_end = static_cast<uv_pipe_t*>(raft_malloc(sizeof(uv_pipe_t)));
  if (raft_end == nullptr) {
    close(fds[0]);
    relay->Close();
    return nullptr;
  }
  uv_pipe_init(loop, raft_end, 0);
  if (uv_pipe_open(raft_end, fds[0]) != 0) {
    kRelayLog.Warn("raft connection dropped: its encryption could not start");
    close(fds[0]);
    uv_close(reinterpret_cast<uv_handle_t*>(raft_end), [](uv_handle_t* handle) { raft_free(handle); });
    relay->Close();
    return nullptr;
  }
  return reinterpret_cast<uv_stream_t*>(raft_end);
}

void CloseSecureRelays(SecureRelays* relays) {
  const std::vector<SecureRelay*> open(relays->open.begin(), relays->open.end());
  for (SecureRelay* r : open) r->Close();
}

}  // namespace cohort::replication
