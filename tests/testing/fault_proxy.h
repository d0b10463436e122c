#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace cohort::testing {

// A TCP proxy on 127.0.0.1 that a test puts between two services to inject network
// faults. It listens on a free port (address()) and forwards each connection to
// `target` ("127.0.0.1:PORT"), byte for byte, in both directions.
//
// Faults, each applied by the proxy's I/O thread before the call returns (so the test
// knows the fault is in place when it acts next):
//   Cut()        closes every open connection now, with a reset (RST) on both sides;
//                new connections are forwarded as usual.
//   Partition()  Cut(), and every new connection is reset as soon as it is accepted,
//                until Heal(): the peer is unreachable.
//   Stall()      forwards nothing and accepts nothing until Heal(); every socket stays
//                open and what is sent waits in the kernel's buffers (a blackhole that
//                TCP survives, like SIGSTOP of a peer or a partition shorter than any
//                TCP timeout).
//   Drop()       reads and discards every byte in both directions until Heal(): the
//                streams stay open but lose data (a peer sees garbage or silence).
//   SetDelay(d)  forwards each chunk `d` after it was read (order kept): a slow link.
//   Blackhole()  freezes every connection open now for good (nothing forwarded, the
//                sockets left open: the half-open flows a dead node or a NAT that
//                forgot them leaves behind), while new connections are forwarded as
//                usual; Heal() does not revive them.
// Heal() returns to forwarding (a stalled connection then delivers what waited).
//
// Record() keeps, from then on, the bytes clients send (every connection, in the order
// read; the first 16 MiB), for a test to check what travels on the wire: Recorded().
//
// Thread-safe. The destructor stops the I/O thread and closes every socket.
class FaultProxy {
 public:
  // Binds 127.0.0.1:0 and starts forwarding to `target`. Errors from socket calls as
  // their errno status; INVALID_ARGUMENT for a target that is not "HOST:PORT".
  static absl::StatusOr<std::unique_ptr<FaultProxy>> Start(const std::string& target);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  // "127.0.0.1:PORT", the port actually bound.
  const std::string& address() const { return address_; }

  void Cut();
  void Partition();
  void Stall();
  void Drop();
  void Blackhole();
  void Heal();
  void SetDelay(absl::Duration delay);
  void Record();
  std::string Recorded() const;

  // Connections open now (accepted from a client and connected to the target).
  int open_connections() const;
  // Connections accepted since Start (reset ones included).
  int64_t accepted() const;

 private:
  enum class Mode { kForward, kStall, kDrop, kPartition };
  // What the I/O thread should be doing; it applies a new one at its next turn.
  struct Command {
    Mode mode = Mode::kForward;
    absl::Duration delay;
    bool cut = false;        // reset every open connection once (cleared when applied)
    bool blackhole = false;  // freeze every open connection for good (cleared when applied)
  };
  struct Connection;

  FaultProxy(int listen_fd, int wake_fd, std::string address, uint32_t target_ip, uint16_t target_port);
  // Changes the command with `change`, wakes the I/O thread and waits until it has
  // applied the change.
  template <typename Change>
  void Apply(Change change);
  // Body of thread_.
  void Run();

  const int listen_fd_;
  const int wake_fd_;  // eventfd: a new command or the stop request
  const std::string address_;
  const uint32_t target_ip_;  // network byte order
  const uint16_t target_port_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  Command command_ ABSL_GUARDED_BY(mu_);
  uint64_t requested_ ABSL_GUARDED_BY(mu_) = 0;  // generation of command_
  uint64_t applied_ ABSL_GUARDED_BY(mu_) = 0;    // last generation the I/O thread applied
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t accepted_ ABSL_GUARDED_BY(mu_) = 0;
  bool recording_ ABSL_GUARDED_BY(mu_) = false;
  std::string recorded_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cohort::testing
