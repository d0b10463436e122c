#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "grpcpp/channel.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "protos/cohort/v1/scheduler.grpc.pb.h"

namespace cohort::console {

// Makes a channel to a service, carrying no token of its own.
using ChannelFactory = std::function<std::shared_ptr<grpc::Channel>()>;

// The broker and scheduler stubs for one caller's credential.
struct CallerStub {
  std::shared_ptr<grpc::Channel> broker_channel;
  std::unique_ptr<cohort::v1::Broker::Stub> broker;
  std::shared_ptr<grpc::Channel> scheduler_channel;
  std::unique_ptr<cohort::v1::Scheduler::Stub> scheduler;  // null without a scheduler
};

// One channel per caller credential. A Cohort server binds a connection to the first
// credential it admits and refuses calls with another on it (libs/auth Authorizer,
// connection_bound), so the console, which forwards each browser's token, must not
// send two tokens over one connection. Keyed by the token's SHA-256 (no token is kept);
// at most `capacity` callers, the least recently used dropped first: a call in flight
// holds its CallerStub, so dropping never cuts it. Loop thread only.
class CallerStubs {
 public:
  static constexpr std::size_t kDefaultCapacity = 64;

  // `scheduler` may be null: no schedules.
  CallerStubs(ChannelFactory broker, ChannelFactory scheduler, std::size_t capacity = kDefaultCapacity)
      : broker_(std::move(broker)), scheduler_(std::move(scheduler)), capacity_(capacity) {}

  // The stubs for `token` ("" for a caller without one), made on first use.
  std::shared_ptr<CallerStub> For(const std::string& token);

  bool has_scheduler() const { return scheduler_ != nullptr; }
  std::size_t size() const { return by_key_.size(); }

 private:
  using Order = std::list<std::pair<std::string, std::shared_ptr<CallerStub>>>;  // most recent first

  ChannelFactory broker_;
  ChannelFactory scheduler_;
  const std::size_t capacity_;
  Order order_;
  absl::flat_hash_map<std::string, Order::iterator> by_key_;
};

}  // namespace cohort::console
