#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/impl/service_type.h"
#include "grpcpp/server_builder.h"
#include "libs/common/message_limits.h"
#include "libs/runtime/runtime.h"
#include "prometheus/registry.h"

namespace cohort::common {
class JobIdGenerator;
}  // namespace cohort::common

namespace cohort::store {
class JobStore;
}  // namespace cohort::store

namespace cohort::broker {

class BrokerEngine;
class BrokerMetrics;
class BrokerService;
class DiskGuard;

// Everything cohort-broker's flags set, apart from its addresses. Each tunable is
// declared here once, with its default: broker_flags.cc reads the flags' defaults from
// a default-constructed BrokerAppOptions, and the flag's help is its doc.
// BrokerApp::Validate says what is allowed.
struct BrokerAppOptions {
  std::string data_dir = "cohort-data/broker";  // RocksDB directory, created if missing
  absl::Duration lease = absl::Seconds(30);     // an attempt's lease, renewed by heartbeats
  absl::Duration heartbeat_interval = absl::Seconds(5);  // asked of executors
  int max_submit_batch = 10'000;     // jobs per Submit (and releases per ReleaseJobs)
  int max_payload_bytes = 1 << 20;   // largest job payload
  int max_spec_bytes = 2 << 20;      // largest serialized JobSpec, payload included
  int max_wait_ids = 10'000;         // ids per Gather, Wait or AsCompleted
  int starvation_every = 16;         // every Nth dispatch takes a queue's oldest job (0: strict)
  int max_message_bytes = common::kMaxMessageBytes;  // largest gRPC message, received or sent
  absl::Duration result_ttl = absl::Hours(24 * 7);     // how long an ended job is kept
  absl::Duration event_retention = absl::Hours(24);    // how long events are kept for Watch
  // Below this many free bytes on the data dir, new work is refused (DiskGuard); 0: off.
  std::int64_t min_free_disk = std::int64_t{64} << 20;
  int bulk_operations_kept = 100;  // bulk operation records kept (the oldest finished go)
  int max_queues = 1'000;          // queues the broker holds at most (CreateQueue, Submit)
  int max_kinds = 1'000;           // distinct job kinds held at most (Submit)
  int metric_label_limit = 100;    // queue names with their own metric label; the rest "_other"

  // What a Job carries beyond its spec, at most: 100 attempts with an Error each
  // (stderr capped at 64 KiB by the executor), progress, the outcome's error.
  static constexpr int kJobOverheadBytes = 8 << 20;
  // The most --max-kinds may be.
  static constexpr int kMostKinds = 1'000'000;
};

// The broker as a part that a binary hosts: its RocksDB store, metrics, engine and gRPC
// service. cohort-broker hosts it alone; cohort-dev next to a scheduler and an
// executor, on one gRPC server. Its lifecycle is every app's (SchedulerApp's and
// ExecutorApp's too): Validate → Create → Run(stop).
//
//   absl::StatusOr<std::unique_ptr<BrokerApp>> app = BrokerApp::Create(loop, registry, options);
//   if (!app.ok()) ...;                     // e.g. the store is locked by another broker
//   (*app)->AddTo(builder);                 // before the server starts
//   ... start the server ...
//   runtime::Event stop;                    // set it to stop (e.g. on SIGTERM)
//   runtime::RunUntilComplete(loop, (*app)->Run(stop, [&] { rpc::StopServer(*server); }));
//
// Lifetime: `loop` and `registry` outlive the app; the app is created, used and
// destroyed on the loop's thread, after Run() has returned (or before it started).
// One Run() per app.
//
// Threading: everything runs on `loop` (gRPC calls are handed to it by the service).
//
// Time: the engine and everything it owns (TTLs, retry backoff, run_at, retention,
// bulk records, event times, the disk guard's cache) read the loop's clock
// (runtime::Clock: Now() monotonic, SystemNow() wall), so a loop on a ManualClock
// moves them all together.
//
// Logs (libs/common/log.h, component "broker"): stopping and stopped with the data
// dir; from the engine, each failed job, retry, deletion, bulk operation and queue
// change at info; the retention sweep at debug; refused writes at warning.
//
// While it runs, the app sets cohort_broker_loop_lag_seconds once a second: how late a
// 1 s timer on the loop fired.
class BrokerApp {
 public:
  // OK, or INVALID_ARGUMENT naming the flag and the rule, e.g.
  // "--heartbeat-interval must be positive and shorter than --lease". A job of
  // max_spec_bytes plus kJobOverheadBytes must fit in max_message_bytes and in what an
  // executor accepts (common::kMaxMessageBytes), so that every hop can carry it, and
  // its Submit must fit in one commit (MaxSpecBytesFor the store's batch limit).
  static absl::Status Validate(const BrokerAppOptions& options);

  // Validate(), then opens (or creates) the store in options.data_dir, builds the
  // metrics in `registry` and recovers the engine from the store (bulk operations left
  // RUNNING resume once the loop runs). Blocking: runs `loop` until the recovery is
  // done, so call it before the loop runs. Errors: Validate()'s, the store's (e.g. the
  // directory is locked by another broker), and recovery failures as
  // "cannot recover from DIR: <status>".
  static absl::StatusOr<std::unique_ptr<BrokerApp>> Create(runtime::EventLoop& loop, prometheus::Registry& registry,
                                                           BrokerAppOptions options);
  // The same over a store of the caller's (a replica's, see replica.h) instead of a
  // RocksDB store opened in options.data_dir (which the disk guard still watches).
  static absl::StatusOr<std::unique_ptr<BrokerApp>> Create(runtime::EventLoop& loop, prometheus::Registry& registry,
                                                           BrokerAppOptions options,
                                                           std::unique_ptr<store::JobStore> store);
  ~BrokerApp();
  BrokerApp(const BrokerApp&) = delete;
  BrokerApp& operator=(const BrokerApp&) = delete;

  // The Broker gRPC service, to register on a grpc::ServerBuilder (AddTo does it).
  grpc::Service& service();
  // Registers service() on `builder` and applies options.max_message_bytes to it.
  void AddTo(grpc::ServerBuilder& builder);

  // Shuts the host's gRPC server down and returns once every call in flight has ended
  // (rpc::StopServer). Blocking: Run calls it on another thread, because the handlers
  // it waits for run on this app's loop.
  using StopServer = absl::AnyInvocable<void()>;
  // Serves until `stop` is set, then shuts down gracefully, in this order:
  //  1. calls cancelled from now on count as cancelled by the shutdown: they cancel no
  //     job (a WaitFor in flight leaves its job alone);
  //  2. every executor stream is sent Drain, and no Assign follows; Run waits until the
  //     executors have closed their streams, at most kExecutorDrainWait (long enough
  //     for the Drain to be written);
  //  3. `stop_server` (calls still in flight end CANCELLED: what was acknowledged is
  //     durable, clients retry);
  //  4. bulk operations pause (their records stay RUNNING for the next start),
  //     dispatch stops and the commits in flight are flushed.
  // Returns once every task the app started has ended. Call once, on the loop; not
  // cancellable (setting `stop` is what ends it).
  static constexpr std::chrono::seconds kExecutorDrainWait{1};
  runtime::Task<void> Run(runtime::Event& stop, StopServer stop_server);

  const BrokerAppOptions& options() const { return options_; }
  BrokerEngine& engine() { return *engine_; }

 private:
  BrokerApp(runtime::EventLoop& loop, BrokerAppOptions options);
  // Sets cohort_broker_loop_lag_seconds (and refreshes the disk guard) once a second
  // until `stop` is set.
  runtime::Task<void> MeasureLoopLag(runtime::Event& stop);

  runtime::EventLoop& loop_;
  const BrokerAppOptions options_;
  // Job ids never go below the largest recovered id (ids are k-sortable and bulk
  // operations walk them in order), even when this host's clock is behind the one
  // that made it (another replica, or this host before its clock stepped back): the
  // generator's clock is floored at that id's millisecond plus one. Unix ms.
  std::atomic<std::int64_t> id_floor_ms_{0};
  std::unique_ptr<common::JobIdGenerator> ids_;
  std::unique_ptr<store::JobStore> store_;
  std::unique_ptr<BrokerMetrics> metrics_;
  std::unique_ptr<DiskGuard> disk_guard_;  // outlives the engine, which asks it
  std::unique_ptr<BrokerEngine> engine_;
  std::unique_ptr<BrokerService> service_;
};

}  // namespace cohort::broker
