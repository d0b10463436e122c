#pragma once

#include <cstddef>
#include <deque>

#include "libs/runtime/event.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/task.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "services/scheduler/scheduler_metrics.h"

namespace cohort::scheduler {

// Sends the ReleaseTracker's decisions to the broker with ReleaseJobs, in batches of at
// most `max_batch`, in the order they were made. Transient failures are retried with
// backoff; a batch the broker refuses as a whole (NOT_FOUND, INVALID_ARGUMENT) is halved
// until the refused release is alone, and only that one is dropped. Releases
// are fenced by attempt at the broker, so a duplicate after a restart changes nothing.
// Holds at most one release per PENDING job the tracker knows. Loop-only.
class Releaser {
 public:
  using Release = cohort::v1::ReleaseJobsRequest::Release;

  Releaser(cohort::v1::Broker::Stub& broker, SchedulerMetrics& metrics, std::size_t max_batch);

  void Push(Release release);
  // Runs until Stop(); releases still queued then are dropped (a restart re-derives
  // them from the broker).
  runtime::Task<void> Run();
  void Stop();

 private:
  runtime::Task<grpc::Status> Send(std::size_t n);

  cohort::v1::Broker::Stub& broker_;
  SchedulerMetrics& metrics_;
  const std::size_t max_batch_;
  // The batch size now: max_batch_, or less after a refusal (doubles back on success).
  std::size_t batch_;
  std::deque<Release> queue_;
  runtime::Event wake_;
  bool stopping_ = false;
};

}  // namespace cohort::scheduler
