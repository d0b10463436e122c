// SecureRelay on a real libuv loop: two relays joined by a TCP connection on 127.0.0.1,
// each with the end a libraft would hold, driven the way libraft drives it (writes,
// reads, closing its end from a read callback, the transport closing every relay).
// Under ASan/LSan (--config=fuzz) these also prove that no path leaks or touches a
// freed relay, handle or write.
#include "libs/replication/secure_relay.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

extern "C" {
#include <raft.h>
}

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "libs/replication/stream_cipher.h"

namespace cohort::replication {
namespace {

const StreamKeys kKeys = DeriveStreamKeys(std::string(32, 's'), std::string(32, 'a'), std::string(32, 'c'), "preamble");

// `size` bytes whose position shows: a byte lost, repeated or reordered changes them.
std::string Pattern(std::size_t size, char salt) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>((i * 131 + i / 251 + salt) & 0xff);
  return out;
}

// One end of a stream as libraft holds it: what it read, whether it ended, its writes.
struct End {
  uv_stream_t* stream = nullptr;
  std::string received;
  bool ended = false;  // EOF or a read error
  std::size_t writes_pending = 0;
  int write_error = 0;  // the first failed write's status
  std::function<void(End&)> on_read;  // after each read
  std::array<char, 64 << 10> buf{};
};

struct EndWrite {
  uv_write_t req{};
  End* end = nullptr;
  std::string bytes;
};

void Write(End& e, std::string bytes) {
  auto* w = new EndWrite;
  w->end = &e;
  w->bytes = std::move(bytes);
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
  ASSERT_EQ(uv_write(&w->req, e.stream, &buf, 1,
                     [](uv_write_t* req, int status) {
                       auto* w = static_cast<EndWrite*>(req->data);
                       --w->end->writes_pending;
                       if (status != 0 && w->end->write_error == 0) w->end->write_error = status;
                       delete w;
                     }),
            0);
  ++e.writes_pending;
}

void StartReading(End& e) {
  e.stream->data = &e;
  ASSERT_EQ(uv_read_start(
                e.stream,
                [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
                  End* e = static_cast<End*>(h->data);
                  *buf = uv_buf_init(e->buf.data(), static_cast<unsigned>(e->buf.size()));
                },
                [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
                  End* e = static_cast<End*>(s->data);
                  if (nread < 0) {
                    e->ended = true;
                    uv_read_stop(s);
                    return;
                  }
                  e->received.append(e->buf.data(), static_cast<std::size_t>(nread));
                  if (e->on_read) e->on_read(*e);
                }),
            0);
}

// As libraft closes a stream it was given: uv_close, then raft_free.
void CloseEnd(End& e) {
  if (e.stream == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(e.stream), [](uv_handle_t* h) { raft_free(h); });
  e.stream = nullptr;
}

class SecureRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // As raft_log.cc does on its loop's thread: a write to a closed peer fails with EPIPE.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    // Bounds how long one turn of the loop can block while RunUntil waits.
    uv_timer_init(&loop_, &tick_);
    uv_timer_start(&tick_, [](uv_timer_t*) {}, 10, 10);
    relays_.on_record_rejected = [this] { ++rejected_; };
    relays_.on_all_closed = [this] { ++all_closed_; };
  }

  void TearDown() override {
    CloseSecureRelays(&relays_);
    for (End* e : {&a_, &b_, &raw_}) CloseEnd(*e);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    while (uv_loop_close(&loop_) == UV_EBUSY) uv_run(&loop_, UV_RUN_ONCE);
  }

  // Runs the loop until `done` (true) or `bound` passed (false).
  bool RunUntil(const std::function<bool()>& done, absl::Duration bound = absl::Seconds(60)) {
    const absl::Time deadline = absl::Now() + bound;
    while (!done()) {
      if (absl::Now() > deadline) return false;
      uv_run(&loop_, UV_RUN_ONCE);
    }
    return true;
  }

  // Runs the loop until `e`'s write queue stops shrinking (the relays stopped taking
  // its bytes) for half a second; returns that queue's size. A loop starved for that
  // long only ends this early, with less taken: a bound checked after it can pass
  // wrongly on a loaded machine, never fail wrongly.
  std::size_t RunUntilStalled(End& e) {
    std::size_t last = uv_stream_get_write_queue_size(e.stream);
    absl::Time since = absl::Now();
    RunUntil([&] {
      const std::size_t now = uv_stream_get_write_queue_size(e.stream);
      if (now != last) {
        last = now;
        since = absl::Now();
      }
      return absl::Now() - since > absl::Milliseconds(500);
    });
    return last;
  }

  // A TCP connection whose accepted end is raw_ (read from now on): `connector` is for a
  // relay, raw_ plays the peer.
  void ConnectToRaw(uv_tcp_t** connector) {
    uv_tcp_t* acceptor = nullptr;
    ASSERT_NO_FATAL_FAILURE(Connect(connector, &acceptor));
    raw_.stream = reinterpret_cast<uv_stream_t*>(acceptor);
    StartReading(raw_);
  }

  // A TCP connection on 127.0.0.1; both handles raft_malloc'ed, as the transport's.
  // Small socket buffers, so that what the kernel holds does not hide the relays'.
  void Connect(uv_tcp_t** connector, uv_tcp_t** acceptor) {
    uv_tcp_t listener;
    uv_tcp_init(&loop_, &listener);
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", 0, &addr);
    ASSERT_EQ(uv_tcp_bind(&listener, reinterpret_cast<const sockaddr*>(&addr), 0), 0);
    int length = sizeof addr;
    uv_tcp_getsockname(&listener, reinterpret_cast<sockaddr*>(&addr), &length);
    *acceptor = nullptr;
    listener.data = acceptor;
    ASSERT_EQ(uv_listen(reinterpret_cast<uv_stream_t*>(&listener), 1,
                        [](uv_stream_t* server, int status) {
                          ASSERT_EQ(status, 0);
                          auto* tcp = static_cast<uv_tcp_t*>(raft_malloc(sizeof(uv_tcp_t)));
                          uv_tcp_init(server->loop, tcp);
                          ASSERT_EQ(uv_accept(server, reinterpret_cast<uv_stream_t*>(tcp)), 0);
                          *static_cast<uv_tcp_t**>(server->data) = tcp;
                        }),
              0);
    *connector = static_cast<uv_tcp_t*>(raft_malloc(sizeof(uv_tcp_t)));
    uv_tcp_init(&loop_, *connector);
    uv_connect_t connect;
    bool connected = false;
    connect.data = &connected;
    ASSERT_EQ(uv_tcp_connect(&connect, *connector, reinterpret_cast<const sockaddr*>(&addr),
                             [](uv_connect_t* c, int status) {
                               ASSERT_EQ(status, 0);
                               *static_cast<bool*>(c->data) = true;
                             }),
              0);
    ASSERT_TRUE(RunUntil([&] { return connected && *acceptor != nullptr; }));
    bool closed = false;
    listener.data = &closed;
    uv_close(reinterpret_cast<uv_handle_t*>(&listener),
             [](uv_handle_t* h) { *static_cast<bool*>(h->data) = true; });
    ASSERT_TRUE(RunUntil([&] { return closed; }));
    for (uv_tcp_t* tcp : {*connector, *acceptor}) {
      int size = 64 << 10;
      uv_send_buffer_size(reinterpret_cast<uv_handle_t*>(tcp), &size);
      size = 64 << 10;
      uv_recv_buffer_size(reinterpret_cast<uv_handle_t*>(tcp), &size);
    }
  }

  // Relays on both sides: a_ is the connector's libraft end, b_ the acceptor's.
  void StartBoth() {
    uv_tcp_t* connector = nullptr;
    uv_tcp_t* acceptor = nullptr;
    ASSERT_NO_FATAL_FAILURE(Connect(&connector, &acceptor));
    a_.stream = StartSecureRelay(&loop_, connector, kKeys.connector_to_acceptor, kKeys.acceptor_to_connector,
                                 "acceptor", &relays_);
    b_.stream = StartSecureRelay(&loop_, acceptor, kKeys.acceptor_to_connector, kKeys.connector_to_acceptor,
                                 "connector", &relays_);
    ASSERT_NE(a_.stream, nullptr);
    ASSERT_NE(b_.stream, nullptr);
    a_.stream->data = &a_;
    b_.stream->data = &b_;
  }

  uv_loop_t loop_{};
  uv_timer_t tick_{};
  SecureRelays relays_;
  int rejected_ = 0;
  int all_closed_ = 0;
  End a_;
  End b_;
  End raw_;  // a peer without a relay, when a test plays one
};

TEST_F(SecureRelayTest, BothDirectionsArriveExactlyAndLibraftClosingItsEndEndsTheOther) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  const std::string to_b = Pattern(3 << 20, 1);
  const std::string to_a = Pattern(3 << 20, 2);
  StartReading(a_);
  StartReading(b_);
  Write(a_, to_b);
  Write(b_, to_a);
  ASSERT_TRUE(RunUntil([&] { return a_.received.size() >= to_a.size() && b_.received.size() >= to_b.size(); }));
  EXPECT_TRUE(a_.received == to_a);
  EXPECT_TRUE(b_.received == to_b);
  EXPECT_EQ(a_.write_error, 0);

  CloseEnd(a_);
  ASSERT_TRUE(RunUntil([&] { return b_.ended && all_closed_ == 1; }));
  EXPECT_TRUE(relays_.open.empty());
  EXPECT_EQ(rejected_, 0);
}

// libraft always reads what it accepted, but a peer may outpace it: the relays stop
// taking bytes once about 1 MiB waits on each side, and take the rest once it reads.
TEST_F(SecureRelayTest, ALibraftThatDoesNotReadBoundsWhatTheRelaysTakeAndReadingResumesTheStream) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  const std::string sent = Pattern(64 << 20, 3);
  Write(a_, sent);
  const std::size_t taken = sent.size() - RunUntilStalled(a_);
  // Two socketpairs and a TCP connection (small buffers) plus each relay's ~1 MiB.
  EXPECT_LT(taken, std::size_t{8} << 20) << "the relays buffered without bound";
  StartReading(b_);
  ASSERT_TRUE(RunUntil([&] { return b_.received.size() >= sent.size(); }));
  EXPECT_TRUE(b_.received == sent);
  EXPECT_EQ(a_.writes_pending, 0u);
}

// The transport's Close with writes queued every way: every relay and handle is freed
// once, on_all_closed follows, and libraft's pending writes fail rather than hang.
TEST_F(SecureRelayTest, ClosingEveryRelayWithWritesPendingEitherWayFreesEverything) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  Write(a_, Pattern(16 << 20, 4));
  Write(b_, Pattern(16 << 20, 5));
  RunUntilStalled(a_);
  CloseSecureRelays(&relays_);
  CloseSecureRelays(&relays_);  // again, while they close: nothing more happens
  ASSERT_TRUE(RunUntil([&] { return all_closed_ == 1; }));
  EXPECT_TRUE(relays_.open.empty());
  StartReading(a_);
  ASSERT_TRUE(RunUntil([&] { return a_.ended && a_.writes_pending == 0 && b_.writes_pending == 0; }));
  EXPECT_NE(a_.write_error, 0);
  EXPECT_NE(b_.write_error, 0);
}

// libraft closes a stream from inside its read callback (a message it cannot decode)
// while the relay still has bytes queued for it: the relay closes the connection and
// the peer's relay follows.
TEST_F(SecureRelayTest, LibraftClosingItsEndInsideAReadWhileTheRelayWritesToItClosesTheStream) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  Write(b_, Pattern(16 << 20, 6));
  a_.on_read = [](End& e) {
    if (e.received.size() >= (1 << 20)) CloseEnd(e);
  };
  StartReading(a_);
  ASSERT_TRUE(RunUntil([&] { return all_closed_ == 1 && b_.writes_pending == 0; }));
  EXPECT_NE(b_.write_error, 0);
  EXPECT_EQ(rejected_, 0);
}

// Bytes on an authenticated connection that are not records sealed for it: what
// verified before reaches libraft, nothing after; the stream closes, counted once.
TEST_F(SecureRelayTest, ARecordThatDoesNotVerifyClosesTheStreamCountedOnceAndNothingOfItReachesLibraft) {
  uv_tcp_t* connector = nullptr;
  ASSERT_NO_FATAL_FAILURE(ConnectToRaw(&connector));
  a_.stream = StartSecureRelay(&loop_, connector, kKeys.connector_to_acceptor, kKeys.acceptor_to_connector,
                               "acceptor", &relays_);
  ASSERT_NE(a_.stream, nullptr);
  StartReading(a_);

  RecordSealer sealer(kKeys.acceptor_to_connector);
  std::string sealed;
  sealer.Seal("verified", sealed);
  Write(raw_, sealed);
  ASSERT_TRUE(RunUntil([&] { return a_.received == "verified"; }));
  sealed.clear();
  sealer.Seal("altered on the way", sealed);
  sealed[kRecordHeaderBytes + 2] ^= 1;
  Write(raw_, sealed);
  ASSERT_TRUE(RunUntil([&] { return a_.ended && raw_.ended && all_closed_ == 1; }));
  EXPECT_EQ(a_.received, "verified");
  EXPECT_EQ(rejected_, 1);
}

// No socketpair (out of descriptors): no stream for libraft, the connection closed and
// freed, no relay left behind.
TEST_F(SecureRelayTest, WithoutASocketpairTheConnectionIsClosedAndNothingIsLeft) {
  uv_tcp_t* connector = nullptr;
  ASSERT_NO_FATAL_FAILURE(ConnectToRaw(&connector));
  const int lowest_free = dup(0);
  ASSERT_GE(lowest_free, 0);
  close(lowest_free);
  rlimit before{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &before), 0);
  rlimit only_one = before;
  only_one.rlim_cur = static_cast<rlim_t>(lowest_free + 1);  // one descriptor more, not two
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &only_one), 0);
  uv_stream_t* stream = StartSecureRelay(&loop_, connector, kKeys.connector_to_acceptor,
                                         kKeys.acceptor_to_connector, "acceptor", &relays_);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &before), 0);
  EXPECT_EQ(stream, nullptr);
  EXPECT_TRUE(relays_.open.empty());
  ASSERT_TRUE(RunUntil([&] { return raw_.ended; }));
}

}  // namespace
}  // namespace cohort::replication
