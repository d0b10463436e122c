#include "services/broker/broker_app.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/ids.h"
#include "libs/common/log.h"
#include "libs/store/rocks_job_store.h"
#include "services/broker/batch_budget.h"
#include "services/broker/broker_engine.h"
#include "services/broker/broker_metrics.h"
#include "services/broker/broker_service.h"
#include "services/broker/disk_guard.h"

namespace cohort::broker {
namespace {

const log::Logger kLog("broker");

}  // namespace

absl::Status BrokerApp::Validate(const BrokerAppOptions& o) {
  if (o.data_dir.empty()) return absl::InvalidArgumentError("--data-dir must not be empty");
  if (o.lease <= absl::ZeroDuration()) return absl::InvalidArgumentError("--lease must be positive");
  if (o.heartbeat_interval <= absl::ZeroDuration() || o.heartbeat_interval >= o.lease) {
    return absl::InvalidArgumentError("--heartbeat-interval must be positive and shorter than --lease");
  }
  const std::pair<const char*, int> positive[] = {{"--max-submit-batch", o.max_submit_batch},
                                                  {"--max-payload-bytes", o.max_payload_bytes},
                                                  {"--max-wait-ids", o.max_wait_ids},
                                                  {"--bulk-operations-kept", o.bulk_operations_kept},
                                                  {"--max-message-bytes", o.max_message_bytes}};
  for (const auto& [name, value] : positive) {
    if (value <= 0) return absl::InvalidArgumentError(absl::StrCat(name, " must be positive"));
  }
  if (o.max_spec_bytes <= 0 || o.max_spec_bytes < o.max_payload_bytes) {
    return absl::InvalidArgumentError("--max-spec-bytes must be positive and at least --max-payload-bytes");
  }
  const std::int64_t job_bytes = std::int64_t{o.max_spec_bytes} + BrokerAppOptions::kJobOverheadBytes;
  if (job_bytes > o.max_message_bytes || job_bytes > common::kMaxMessageBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-spec-bytes=", o.max_spec_bytes, " leaves no room in a message for a job and its attempts (",
        BrokerAppOptions::kJobOverheadBytes, " bytes): it must be at most --max-message-bytes minus that (",
        std::min(o.max_message_bytes, common::kMaxMessageBytes) - BrokerAppOptions::kJobOverheadBytes, ")"));
  }
  if (const std::size_t most = MaxSpecBytesFor(store::BatchLimits{}.max_bytes);
      static_cast<std::size_t>(o.max_spec_bytes) > most) {
    return absl::InvalidArgumentError(absl::StrCat("--max-spec-bytes=", o.max_spec_bytes,
                                                   " is over what one commit of the store holds for a job: at most ",
                                                   most));
  }
  if (o.starvation_every < 0) return absl::InvalidArgumentError("--starvation-every must not be negative");
  if (o.max_queues <= 0) return absl::InvalidArgumentError("--max-queues must be positive");
  if (o.max_kinds <= 0 || o.max_kinds > BrokerAppOptions::kMostKinds) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-kinds=", o.max_kinds, " is out of range: use 1 to ", BrokerAppOptions::kMostKinds));
  }
  if (o.metric_label_limit < 0) return absl::InvalidArgumentError("--metric-label-limit must not be negative");
  if (o.min_free_disk < 0) return absl::InvalidArgumentError("--min-free-disk must not be negative (0 disables it)");
  if (o.result_ttl < absl::ZeroDuration()) return absl::InvalidArgumentError("--result-ttl must not be negative");
  if (o.event_retention < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--event-retention must not be negative");
  }
  return absl::OkStatus();
}

BrokerApp::BrokerApp(runtime::EventLoop& loop, BrokerAppOptions options)
    : loop_(loop),
      options_(std::move(options)),
      ids_(std::make_unique<common::JobIdGenerator>(common::JobIdGenerator().node(), [floor = &id_floor_ms_] {
        return std::max(absl::Now(), absl::FromUnixMillis(floor->load(std::memory_order_relaxed)));
      })) {}

BrokerApp::~BrokerApp() = default;

absl::StatusOr<std::unique_ptr<BrokerApp>> BrokerApp::Create(runtime::EventLoop& loop,
                                                             prometheus::Registry& registry,
                                                             BrokerAppOptions options) {
  if (absl::Status valid = Validate(options); !valid.ok()) return valid;
  absl::StatusOr<std::unique_ptr<store::RocksJobStore>> store = store::RocksJobStore::Open({.path = options.data_dir});
  if (!store.ok()) return store.status();
  return Create(loop, registry, std::move(options), std::move(*store));
}

absl::StatusOr<std::unique_ptr<BrokerApp>> BrokerApp::Create(runtime::EventLoop& loop,
                                                             prometheus::Registry& registry,
                                                             BrokerAppOptions options,
                                                             std::unique_ptr<store::JobStore> store) {
  if (absl::Status valid = Validate(options); !valid.ok()) return valid;
  std::unique_ptr<BrokerApp> app(new BrokerApp(loop, std::move(options)));
  const BrokerAppOptions& o = app->options_;
  app->store_ = std::move(store);
  app->metrics_ = std::make_unique<BrokerMetrics>(registry, static_cast<std::size_t>(o.metric_label_limit));

  BrokerOptions engine_options;
  engine_options.lease = absl::ToChronoNanoseconds(o.lease);
  engine_options.heartbeat_interval = absl::ToChronoNanoseconds(o.heartbeat_interval);
  engine_options.max_submit_batch = static_cast<std::size_t>(o.max_submit_batch);
  engine_options.spec_limits.max_payload_bytes = static_cast<std::size_t>(o.max_payload_bytes);
  engine_options.spec_limits.max_spec_bytes = static_cast<std::size_t>(o.max_spec_bytes);
  engine_options.starvation_every = o.starvation_every;
  engine_options.result_ttl = absl::ToChronoNanoseconds(o.result_ttl);
  engine_options.event_retention = absl::ToChronoNanoseconds(o.event_retention);
  engine_options.bulk.kept = static_cast<std::size_t>(o.bulk_operations_kept);
  engine_options.max_queues = static_cast<std::size_t>(o.max_queues);
  engine_options.max_kinds = static_cast<std::size_t>(o.max_kinds);
  common::JobIdGenerator* ids = app->ids_.get();
  app->engine_ = std::make_unique<BrokerEngine>(loop, *app->store_, *app->metrics_, engine_options,
                                                [ids] { return ids->Next(); });
  app->disk_guard_ =
      std::make_unique<DiskGuard>(loop.clock(), o.data_dir, static_cast<std::uint64_t>(o.min_free_disk),
                                  [store = app->store_.get()] { return store->stats().bytes; }, registry);
  app->engine_->SetWriteAdmission([guard = app->disk_guard_.get()] { return guard->AdmitWrite(); });
  absl::Status started = runtime::RunUntilComplete(loop, app->engine_->Start());
  if (!started.ok()) {
    return absl::Status(started.code(), absl::StrCat("cannot recover from ", o.data_dir, ": ", started.ToString()));
  }
  if (const std::string last = app->engine_->LastJobId(); !last.empty()) {
    absl::StatusOr<common::JobIdParts> parts = common::ParseJobId(last);
    if (!parts.ok()) return parts.status();
    app->id_floor_ms_.store(absl::ToUnixMillis(parts->created) + 1, std::memory_order_relaxed);
  }
  app->service_ = std::make_unique<BrokerService>(
      loop, *app->engine_, *app->metrics_, WaitLimits{static_cast<std::size_t>(o.max_wait_ids)});
  return app;
}

grpc::Service& BrokerApp::service() { return *service_; }

void BrokerApp::AddTo(grpc::ServerBuilder& builder) {
  builder.RegisterService(service_.get());
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_message_bytes);
}

runtime::Task<void> BrokerApp::Run(runtime::Event& stop, StopServer stop_server) {
  co_await MeasureLoopLag(stop);
  kLog.Info("broker stopping", {{"data_dir", options_.data_dir}});
  service_->BeginShutdown();  // the calls that the server's shutdown cancels cancel no job
  co_await service_->DrainExecutors(kExecutorDrainWait);  // executors are told before their streams are cut
  co_await runtime::ToThread(std::move(stop_server));
  co_await engine_->Stop();
  kLog.Info("broker stopped", {{"data_dir", options_.data_dir}});
}

runtime::Task<void> BrokerApp::MeasureLoopLag(runtime::Event& stop) {
  constexpr auto kPeriod = std::chrono::seconds(1);
  while (true) {
    const runtime::TimePoint due = loop_.Now() + kPeriod;
    if (co_await stop.WaitUntil(due)) co_return;
    metrics_->loop_lag().Set(std::chrono::duration<double>(loop_.Now() - due).count());
    disk_guard_->Refresh();  // the free-space gauge moves without writes too
  }
}

}  // namespace cohort::broker
