#include "services/broker/broker_metrics.h"

namespace cohort::broker {
namespace {

template <typename T>
prometheus::Family<T>& Build(prometheus::Registry& r, const std::string& name, const std::string& help);

template <>
prometheus::Family<prometheus::Counter>& Build(prometheus::Registry& r, const std::string& name,
                                               const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}
template <>
prometheus::Family<prometheus::Gauge>& Build(prometheus::Registry& r, const std::string& name,
                                             const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}
template <>
prometheus::Family<prometheus::Histogram>& Build(prometheus::Registry& r, const std::string& name,
                                                 const std::string& help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r);
}

}  // namespace

const prometheus::Histogram::BucketBoundaries& BrokerMetrics::LatencyBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *b;
}

const prometheus::Histogram::BucketBoundaries& BrokerMetrics::RunBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};
  return *b;
}

BrokerMetrics::BrokerMetrics(prometheus::Registry& r, std::size_t queue_label_limit)
    : queue_labels_(queue_label_limit),
      submitted_(Build<prometheus::Counter>(r, "cohort_broker_jobs_submitted_total", "Jobs accepted by Submit.")),
      dispatched_(Build<prometheus::Counter>(r, "cohort_broker_jobs_dispatched_total", "Attempts assigned to executors.")),
      ended_(Build<prometheus::Counter>(r, "cohort_broker_jobs_ended_total", "Jobs that reached a terminal state, by state.")),
      redelivered_(Build<prometheus::Counter>(r, "cohort_broker_jobs_redelivered_total",
                                              "Attempts lost (lease expired, stream dropped, restart) and requeued.")),
      stale_completions_(Build<prometheus::Counter>(r, "cohort_broker_stale_completions_total",
                                                    "Completions rejected because their attempt was no longer current.")
                             .Add({})),
      auth_denied_(Build<prometheus::Counter>(r, "cohort_broker_auth_denied_total",
                                              "Calls refused for their credential, by method and reason.")),
      bulk_operations_(Build<prometheus::Counter>(r, "cohort_broker_bulk_operations_total",
                                                  "Bulk operations started (dry runs excluded), by action.")),
      bulk_jobs_(Build<prometheus::Counter>(r, "cohort_broker_bulk_jobs_total",
                                            "Jobs handled by bulk operations, by action and outcome (changed, skipped).")),
      dispatch_latency_(Build<prometheus::Histogram>(r, "cohort_broker_dispatch_latency_seconds",
                                                     "Time from QUEUED to assigned.")),
      run_duration_(Build<prometheus::Histogram>(r, "cohort_broker_run_duration_seconds",
                                                 "Time from assigned to completed, per attempt.")),
      depth_(Build<prometheus::Gauge>(r, "cohort_broker_queue_depth", "QUEUED jobs.")),
      running_(Build<prometheus::Gauge>(r, "cohort_broker_queue_running", "RUNNING jobs.")),
      oldest_queued_(Build<prometheus::Gauge>(r, "cohort_broker_queue_oldest_queued_timestamp_seconds",
                                              "Unix time the oldest QUEUED job was queued; 0 when none is.")),
      unserved_(Build<prometheus::Gauge>(r, "cohort_broker_unserved_jobs",
                                         "QUEUED jobs whose kind no connected executor of their queue runs.")),
      commit_records_(Build<prometheus::Histogram>(r, "cohort_broker_commit_batch_records",
                                                   "Records per group-committed batch.")
                          .Add({}, prometheus::Histogram::BucketBoundaries{1, 4, 16, 64, 256, 1024, 4096})),
      commit_seconds_(Build<prometheus::Histogram>(r, "cohort_broker_commit_seconds",
                                                   "Time from staging a batch to its durable commit.")
                          .Add({}, LatencyBuckets())),
      rpcs_(Build<prometheus::Counter>(r, "cohort_broker_rpcs_total", "RPCs served, by method and status code.")),
      rpc_seconds_(Build<prometheus::Histogram>(r, "cohort_broker_rpc_seconds", "RPC latency by method.")),
      waiters_(Build<prometheus::Gauge>(r, "cohort_broker_waiters", "Gather/Wait/WaitFor/AsCompleted calls waiting.")
                   .Add({})),
      executors_(Build<prometheus::Gauge>(r, "cohort_broker_executors", "Connected executors.").Add({})),
      loop_lag_(Build<prometheus::Gauge>(r, "cohort_broker_loop_lag_seconds",
                                         "How late the broker loop ran its last lag probe.")
                    .Add({})) {}

void BrokerMetrics::QueueGauges(const std::string& queue, double depth, double running,
                                std::optional<absl::Time> oldest_queued) {
  QueueValues v;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = values_.find(queue); it != values_.end()) v = it->second;
  }
  v.depth = depth;
  v.running = running;
  v.oldest_queued = oldest_queued;
  Export(queue, v);
}

void BrokerMetrics::Unserved(const std::string& queue, double jobs) {
  QueueValues v;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = values_.find(queue); it != values_.end()) v = it->second;
  }
  v.unserved = jobs;
  Export(queue, v);
}

void BrokerMetrics::Export(const std::string& queue, const QueueValues& v) {
  const std::string label = Label(queue);
  absl::MutexLock lock(&mu_);
  values_[queue] = v;
  if (label == common::LabelCap::kOtherLabel) {
    ExportOther();
  } else {
    SetGauges(label, v);
  }
}

void BrokerMetrics::ExportOther() {
  // The "_other" series stand for every queue beyond the cap. O(queues) per change of
  // one of them, bounded by --max-queues.
  QueueValues sum;
  for (const auto& [name, value] : values_) {
    if (!queue_labels_.IsOther(name)) continue;
    sum.depth += value.depth;
    sum.running += value.running;
    sum.unserved += value.unserved;
    if (value.oldest_queued && (!sum.oldest_queued || *value.oldest_queued < *sum.oldest_queued)) {
      sum.oldest_queued = value.oldest_queued;
    }
  }
  SetGauges(std::string(common::LabelCap::kOtherLabel), sum);
}

void BrokerMetrics::SetGauges(const std::string& label, const QueueValues& v) {
  depth_.Add({{"queue", label}}).Set(v.depth);
  running_.Add({{"queue", label}}).Set(v.running);
  oldest_queued_.Add({{"queue", label}})
      .Set(v.oldest_queued.has_value() ? absl::ToDoubleSeconds(*v.oldest_queued - absl::UnixEpoch()) : 0);
  unserved_.Add({{"queue", label}}).Set(v.unserved);
}

void BrokerMetrics::QueueDeleted(const std::string& queue) {
  const std::string label = Label(queue);
  absl::MutexLock lock(&mu_);
  values_.erase(queue);
  if (label == common::LabelCap::kOtherLabel) {
    ExportOther();
    return;
  }
  for (auto* family : {&depth_, &running_, &oldest_queued_, &unserved_}) {
    family->Remove(&family->Add({{"queue", label}}));
  }
}

}  // namespace cohort::broker
