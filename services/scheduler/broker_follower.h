#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "libs/common/backoff.h"
#include "libs/rpc/read_client.h"
#include "libs/runtime/event.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/task.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "services/scheduler/release_tracker.h"
#include "services/scheduler/scheduler_metrics.h"

namespace cohort::scheduler {

// How often a quiet Watch is checked against the broker's last sequence: the
// resolution of cohort_scheduler_broker_synced_timestamp_seconds while nothing happens.
inline constexpr std::chrono::seconds kSyncProbeInterval{5};

// Keeps a ReleaseTracker in step with the broker: lists every PENDING job, then Watches
// the event log from the listing's sequence, so nothing that happens in between is
// missed; looks up parents whose state the listing did not show. When the stream
// breaks (broker restart, network) it starts over with a fresh listing after a backoff:
// the broker is the source of truth and releases are fenced, so a resync is always safe.
//
// It exports how current it is as cohort_scheduler_broker_synced_timestamp_seconds: the
// Unix time as of which every event of the broker's log had been applied (a listing's
// start, the time of the last event of a Watch batch, or, while Watch is quiet, the
// moment of a probe that found nothing unapplied: every kSyncProbeInterval it asks the
// broker for its log's last sequence). It starts at construction and stands still
// while the broker cannot be reached, so time() minus it grows. Loop-only; wall time
// comes from the loop's clock.
//
// Logs at info when it follows the broker (again, with how long it was lost), and at
// warn when the broker is lost or unreachable, with the attempt count and the backoff
// before the next one (one line per attempt at most, the backoff growing to 5 s).
class BrokerFollower {
 public:
  // Called for every job that reaches a terminal state or is deleted (for schedules'
  // overlap policy).
  using EndedFn = std::function<void(const cohort::v1::Job&)>;
  // Called after each listing, before Watch starts.
  using SyncedFn = std::function<void()>;

  BrokerFollower(runtime::EventLoop& loop, cohort::v1::Broker::Stub& broker, ReleaseTracker& tracker,
                 SchedulerMetrics& metrics, EndedFn on_ended, SyncedFn on_synced);

  // Follows until Stop().
  runtime::Task<void> Run();
  void Stop();

  // True once a listing has been applied and Watch is running.
  bool synced() const { return synced_; }

 private:
  using WatchStream = rpc::ClientReadStream<cohort::v1::WatchRequest, cohort::v1::WatchResponse>;

  runtime::Task<absl::Status> Sync();
  runtime::Task<absl::Status> List(int64_t& sequence);
  runtime::Task<absl::Status> ResolveUnknownParents();
  runtime::Task<absl::Status> LookUp(std::string id);
  // Probes every kSyncProbeInterval until watching_ is cleared (and probe_wake_ set).
  runtime::Task<void> ProbeWhileWatching();
  void MarkSynced(absl::Time as_of);
  // The operator's view: following (again), or lost / unreachable and retrying.
  void LogFollowing();
  void LogLost(bool was_following, const absl::Status& status, absl::Duration retry_in);
  absl::Time Now() const { return loop_.clock().SystemNow(); }
  void UpdateGauges();

  runtime::EventLoop& loop_;
  cohort::v1::Broker::Stub& broker_;
  ReleaseTracker& tracker_;
  SchedulerMetrics& metrics_;
  EndedFn on_ended_;
  SyncedFn on_synced_;
  WatchStream* stream_ = nullptr;
  runtime::Event wake_;
  bool stopping_ = false;
  bool synced_ = false;
  // The sequence of the last event applied (or of the listing).
  int64_t applied_sequence_ = 0;
  absl::Time synced_at_;
  bool watching_ = false;
  runtime::Event probe_wake_;
  // Since when the broker could not be followed (for "reconnected ... after").
  std::optional<absl::Time> unreachable_since_;
  // Between attempts to follow; starts over after a follow that lasted kHealthyFollow.
  common::Backoff backoff_;
  runtime::TimePoint following_since_;
  // Attempts that failed since the broker was last followed (for the logs).
  std::int64_t failed_attempts_ = 0;
};

}  // namespace cohort::scheduler
