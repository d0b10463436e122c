#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace cohort::testing {

// What a Kubernetes Service whose readiness passes only on the serving leader does for
// a replicated broker, on 127.0.0.1: it listens on a free port (address()) and forwards
// each connection, byte for byte, to the first of `targets` that accepts it (only the
// leader listens on its client port). When either side closes, both are closed, so a
// client sees its connection end when the leader dies and redials through it.
//
// For clients that take one address (cohort-executor, until its --broker takes a list).
// Thread-safe; the destructor closes every socket and joins its threads.
class LeaderForwarder {
 public:
  static absl::StatusOr<std::unique_ptr<LeaderForwarder>> Start(std::vector<std::string> targets);
  ~LeaderForwarder();
  LeaderForwarder(const LeaderForwarder&) = delete;
  LeaderForwarder& operator=(const LeaderForwarder&) = delete;

  const std::string& address() const { return address_; }

 private:
  LeaderForwarder(int listen_fd, int stop_fd, std::string address, std::vector<std::string> targets);
  void Accept();
  void Forward(int client);
  // A connected socket to the first target that accepts, or -1.
  int ConnectToAny() const;

  const int listen_fd_;
  const int stop_fd_;  // eventfd: nonzero stops every thread
  const std::string address_;
  const std::vector<std::string> targets_;
  std::thread acceptor_;
  absl::Mutex mu_;
  std::vector<std::thread> forwarders_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cohort::testing
