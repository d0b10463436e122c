#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

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
class RocksJobStore;
}  // namespace cohort::store

namespace cohort::broker {

class BrokerEngine;
class BrokerMetrics;
class BrokerService;
class DiskGuard;

// Everything cohort-broker's flags set, apart from its addresses. The defaults are the
// flags' defaults.
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
  int metric_label_limit = 100;    // queue names with their own metric label; the rest "_other"

  // OK, or INVALID_ARGUMENT naming the flag and the rule, e.g.
  // "--heartbeat-interval must be positive and shorter than --lease". A job of
  // max_spec_bytes plus kJobOverheadBytes must fit in max_message_bytes and in what an
  // executor accepts (common::kMaxMessageBytes), so that every hop can carry it, and
  // its Submit must fit in one commit (MaxSpecBytesFor the store's batch limit).
  absl::Status Validate() const;

  // What a Job carries beyond its spec, at most: 100 attempts with an Error each
  // (stderr capped at 64 KiB by the executor), progress, the outcome's error.
  static constexpr int kJobOverheadBytes = 8 << 20;
};

// The broker as a part that a binary hosts: its RocksDB store, metrics, engine and gRPC
// service, recovered and ready to serve. cohort-broker hosts it alone; cohort-dev next
// to a scheduler and an executor, on one gRPC server.
//
// Lifetime: the binary registers service() (or calls AddTo) on its grpc::ServerBuilder,
// starts the server, and on shutdown stops the server (which ends the calls in flight)
// before `co_await Stop()`, then destroys the app on the loop's thread before the loop.
// The loop and the registry must outlive the app.
//
// Threading: everything runs on `loop` (gRPC calls are handed to it by the service);
// Open() and the destructor run on the loop's thread while the loop is not running,
// Stop() is a task on the loop.
//
// While it runs, the app sets cohort_broker_loop_lag_seconds once a second: how late a
// 1 s timer on the loop fired.
class BrokerApp {
 public:
  // Validates `options`, opens (or creates) the store in options.data_dir, builds the
  // metrics in `registry` and recovers the engine from the store; runs `loop` until the
  // recovery is done, so call it before the loop runs. Errors: Validate()'s, the
  // store's (e.g. the directory is locked by another broker), and recovery failures as
  // "cannot recover from DIR: <status>".
  static absl::StatusOr<std::unique_ptr<BrokerApp>> Open(runtime::EventLoop& loop,
                                                         prometheus::Registry& registry,
                                                         BrokerAppOptions options);
  ~BrokerApp();
  BrokerApp(const BrokerApp&) = delete;
  BrokerApp& operator=(const BrokerApp&) = delete;

  // The Broker gRPC service, to register on a grpc::ServerBuilder.
  grpc::Service& service();
  // Registers service() on `builder` and applies options.max_message_bytes to it.
  void AddTo(grpc::ServerBuilder& builder);

  // Call before shutting the gRPC server down: the calls that shutdown cancels then
  // cancel no job (a WaitFor in flight leaves its job alone). Any thread.
  void BeginShutdown();
  // After BeginShutdown, before shutting the server down: sends Drain on every
  // executor stream and waits until the executors have closed them, at most
  // kExecutorDrainWait (long enough for the Drain to be written). Loop thread only.
  static constexpr std::chrono::seconds kExecutorDrainWait{1};
  runtime::Task<void> DrainExecutors();

  // Stops dispatching, waits for the commits in flight and stops the loop-lag timer.
  // Call once, after the gRPC server has been shut down. Loop thread only.
  runtime::Task<void> Stop();

  const BrokerAppOptions& options() const { return options_; }
  BrokerEngine& engine() { return *engine_; }

 private:
  BrokerApp(runtime::EventLoop& loop, BrokerAppOptions options);
  runtime::Task<void> MeasureLoopLag();

  runtime::EventLoop& loop_;
  const BrokerAppOptions options_;
  std::unique_ptr<common::JobIdGenerator> ids_;
  std::unique_ptr<store::RocksJobStore> store_;
  std::unique_ptr<BrokerMetrics> metrics_;
  std::unique_ptr<DiskGuard> disk_guard_;  // outlives the engine, which asks it
  std::unique_ptr<BrokerEngine> engine_;
  std::unique_ptr<BrokerService> service_;
  runtime::Event stopping_;
  runtime::TaskHandle<void> loop_lag_;
};

}  // namespace cohort::broker
