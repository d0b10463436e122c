#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "protos/cohort/v1/broker.pb.h"
#include "protos/cohort/v1/executor.pb.h"
#include "services/broker/ready_queue.h"

namespace cohort::broker {

// What the broker sends to one connected executor. Send() never blocks: the broker
// sends at most one Assign per credit, and the credits are bounded by the executor's
// capacity, so a channel's buffer is bounded too.
class ExecutorChannel {
 public:
  virtual ~ExecutorChannel() = default;
  virtual void Send(cohort::v1::BrokerMessage message) = 0;
  // Ends the stream with `status` after the messages sent before it; the engine sends
  // nothing on it afterwards and has dropped its session.
  virtual void End(absl::Status status) = 0;
};

// One connected Connect stream.
struct ExecutorSession {
  std::uint64_t token = 0;
  cohort::v1::ExecutorMessage::Hello hello;
  KindSet kinds;  // hello.kinds; empty: every kind
  ExecutorChannel* channel = nullptr;
  std::int32_t credits = 0;
  // Job ids leased through this stream: running on the executor or waiting in its
  // prefetch buffer (the broker cannot tell them apart, executor.proto).
  absl::flat_hash_set<std::string> running;
  absl::Time connect_time;
  absl::Time last_heartbeat;
  std::string principal;  // who the stream's credential speaks for ("" without authorization)

  // A CreditGrant (or Complete.credit) of `credits`: unused credit stays within
  // 0..capacity + hello.prefetch minus held attempts (never negative: a reconnect may
  // bind more attempts than that).
  void Grant(std::int64_t credits);
};

// Who serves one queue: the connected executors that take jobs from it, and the
// kinds they run together.
struct QueueServing {
  std::int32_t executors = 0;
  bool every_kind = false;  // one of them declared no kinds
  KindSet kinds;            // the kinds they declared (when not every_kind)
  bool Serves(const std::string& kind) const { return every_kind || kinds.contains(kind); }
};

// The executors connected now: one session per executor id (a newer stream replaces
// an older one), each with its credits and the attempts bound to it. Leases are not
// kept here: they belong to the executor id and outlive a session (the engine keeps
// them on the job). Loop thread only.
class ExecutorSessions {
 public:
  // INVALID_ARGUMENT unless the executor id is 1-128 bytes, the capacity within
  // 1..max_capacity, the prefetch within 0..max_capacity (Attach then lowers it so that
  // capacity + prefetch stays within max_capacity), hello.running lists at most
  // MaxHeld(max_capacity) attempts (each may cost a Cancel), every queue name is
  // valid, and hello.kinds lists at most common::kMaxExecutorKinds kinds, each a
  // valid JobSpec.kind.
  static absl::Status CheckHello(const cohort::v1::ExecutorMessage::Hello& hello, std::int32_t max_capacity);
  // The most attempts one executor may hold (running plus prefetched), and so list in
  // Hello.running or a Heartbeat, or complete in one CompleteBatch: the capacity
  // limit bounds them together (Attach lowers a prefetch that would exceed it).
  static constexpr std::int32_t MaxHeld(std::int32_t max_capacity) { return max_capacity; }

  // Adds a session for `hello`; the executor id must have none (Remove it first).
  ExecutorSession& Add(const cohort::v1::ExecutorMessage::Hello& hello, ExecutorChannel* channel, absl::Time now);
  // Removes the session; nullopt if there is none by that token.
  std::optional<ExecutorSession> Remove(std::uint64_t token);

  ExecutorSession* Find(std::uint64_t token);
  // The current session of an executor id, or null.
  ExecutorSession* FindExecutor(const std::string& executor_id);
  std::map<std::uint64_t, ExecutorSession>& all() { return sessions_; }
  std::size_t size() const { return sessions_.size(); }

  // ListExecutors' answer, by executor id.
  cohort::v1::ListExecutorsResponse List() const;

  // Who serves `queue` now. Computed in O(sessions + their kinds) once per queue after
  // a session comes or goes, then cached, so that asking per commit costs a lookup.
  const QueueServing& ServingOf(const std::string& queue) const;

  // A Cancel for one attempt.
  static cohort::v1::BrokerMessage CancelMessage(const std::string& job_id, std::int32_t attempt, std::string reason);

 private:
  std::map<std::uint64_t, ExecutorSession> sessions_;  // by token: connection order
  absl::flat_hash_map<std::string, std::uint64_t> by_executor_;
  std::uint64_t next_token_ = 1;
  mutable absl::flat_hash_map<std::string, QueueServing> serving_;  // cleared by Add and Remove
};

}  // namespace cohort::broker
