#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "libs/replication/replicated_log.h"
#include "protos/cohort/v1/replicas.grpc.pb.h"
#include "services/broker/replica_join_auth.h"
#include "services/broker/replica_metrics.h"

namespace cohort::broker {

// cohort.v1.ReplicaPeers on a replica's health port: Join adds the caller to the group
// when this replica leads (replication::RaftLog::AddMember: a spare until it has caught
// up, then a voter). One Join at a time per replica (FAILED_PRECONDITION otherwise); each
// runs on a gRPC thread, blocking it until the change is committed or refused. Logs the
// outcome (component "broker") and counts cohort_broker_replica_join_requests_total{code}.
//
// With the group's secret (--replica-secret-file), a call must first prove it
// (replica_join_auth.h): a call without a proof is refused UNAUTHENTICATED with a
// challenge (the protocol's first step: neither logged nor counted); one with a wrong,
// unknown, used or expired proof is refused UNAUTHENTICATED before anything else is
// looked at, logged at warning (rate-limited) and counted under that code. Without a
// secret every call is taken, proof or not.
//
// Lifetime: the callbacks and `metrics` outlive the service and every call in flight
// (shut the server down first).
class ReplicaPeersService final : public cohort::v1::ReplicaPeers::Service {
 public:
  // `leading`: whether this replica leads now. `add`: adds a member (blocking); its
  // status is the reply. `secret`: the group's (empty: none). `now`: the clock that
  // times challenges out.
  ReplicaPeersService(std::function<bool()> leading, std::function<absl::Status(const replication::Member&)> add,
                      ReplicaMetrics& metrics, std::string secret = "",
                      std::function<absl::Time()> now = [] { return absl::Now(); });

  grpc::Status Join(grpc::ServerContext* ctx, const cohort::v1::JoinRequest* req,
                    cohort::v1::JoinResponse* resp) override;

 private:
  absl::Status Answer(const cohort::v1::JoinRequest& req);

  const std::string secret_;
  JoinChallenges challenges_;
  const std::function<bool()> leading_;
  const std::function<absl::Status(const replication::Member&)> add_;
  ReplicaMetrics& metrics_;
  std::atomic<bool> busy_{false};
};

// A replica started with join_through asking to be added, on a thread of its own, until
// `is_voter`: a joining one with an empty log; one removed from the group that returns
// with its old log (a scale-down, then up, with its volume kept); one of the starting
// group, which may have been removed and be back with an empty volume (Replica::Open):
// it calls ReplicaPeers.Join at every replica of `join_through` in turn (each address
// a name that may resolve to several replicas: resolved at every round, each replica
// then asked on a channel of its own) until one, the leader, answers OK, or `is_voter`
// says it is a voter already (e.g. an operator ran `cohortctl replicas add`). A replica that does not lead answers UNAVAILABLE and the
// next is asked after kRetryMin, backing off to kRetryMax while no leader answers;
// any other refusal (a change in progress, a catch-up that timed out) is asked again
// after kRetryMax: every Join is idempotent. Sets cohort_broker_replica_joining while it
// asks; logs the first attempt, each change of outcome, and the end ("joined the group
// as a voter", with how long it took) at info, repeated refusals other than
// UNAVAILABLE at warning.
//
// With the group's secret, each ask is two calls to the same replica: one for a
// challenge, one with the proof answering it (replica_join_auth.h).
//
// Stop (or destruction) cancels the call in flight and joins the thread.
class ReplicaJoiner {
 public:
  static constexpr std::chrono::milliseconds kRetryMin{100};
  static constexpr std::chrono::milliseconds kRetryMax{1000};
  // How long one Join may take: the leader answers once the new member caught up
  // (libraft's catch-up rounds) and its configuration committed.
  static constexpr std::chrono::seconds kCallDeadline{30};

  ReplicaJoiner(replication::Member self, std::string join_through, std::function<bool()> is_voter,
                ReplicaMetrics& metrics, std::string secret = "");
  ~ReplicaJoiner();
  ReplicaJoiner(const ReplicaJoiner&) = delete;
  ReplicaJoiner& operator=(const ReplicaJoiner&) = delete;

  void Stop();

 private:
  void Run();
  // One Join at `stub` (with the challenge-response when there is a secret); CANCELLED
  // once stopped.
  grpc::Status Ask(cohort::v1::ReplicaPeers::Stub& stub, const cohort::v1::JoinRequest& request);
  // One Join call, answering `challenge` unless it is empty; a challenge the refusal
  // carried goes to `*issued` (when not null). CANCELLED once stopped.
  grpc::Status Call(cohort::v1::ReplicaPeers::Stub& stub, const cohort::v1::JoinRequest& request,
                    const std::string& challenge, std::string* issued);
  // Waits `period` unless stopped meanwhile: false once stopped.
  bool Wait(std::chrono::milliseconds period);

  const replication::Member self_;
  const std::string join_through_;
  const std::function<bool()> is_voter_;
  ReplicaMetrics& metrics_;
  const std::string secret_;

  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;                     // guarded by mu_
  grpc::ClientContext* call_ = nullptr;   // guarded by mu_: the Join in flight
  std::thread thread_;
};

}  // namespace cohort::broker
