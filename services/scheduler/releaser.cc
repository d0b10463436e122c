#include "services/scheduler/releaser.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "grpcpp/client_context.h"
#include "libs/common/backoff.h"
#include "libs/common/wire_time.h"
#include "libs/rpc/unary_client.h"
#include "libs/runtime/event_loop.h"

namespace cohort::scheduler {
namespace {

using namespace std::chrono_literals;

constexpr auto kRpcTimeout = 30s;

std::string ReasonName(cohort::v1::TransitionReason reason) {
  switch (reason) {
    case cohort::v1::TRANSITION_REASON_RUN_AT: return "run_at";
    case cohort::v1::TRANSITION_REASON_BACKOFF: return "backoff";
    case cohort::v1::TRANSITION_REASON_DEPENDENCIES: return "dependencies";
    case cohort::v1::TRANSITION_REASON_DEPENDENCY_FAILED: return "dependency_failed";
    default: return "other";
  }
}

}  // namespace

Releaser::Releaser(cohort::v1::Broker::Stub& broker, SchedulerMetrics& metrics, std::size_t max_batch)
    : broker_(broker), metrics_(metrics), max_batch_(max_batch), batch_(max_batch) {}

void Releaser::Push(Release release) {
  queue_.push_back(std::move(release));
  wake_.Set();
}

void Releaser::Stop() {
  stopping_ = true;
  wake_.Set();
}

runtime::Task<void> Releaser::Run() {
  common::Backoff backoff({.initial = absl::Milliseconds(50), .max = absl::Seconds(5)});
  while (!stopping_) {
    if (queue_.empty()) {
      wake_.Clear();
      co_await wake_.Wait();
      continue;
    }
    const std::size_t n = std::min(queue_.size(), batch_);
    grpc::Status status = co_await Send(n);
    if (status.ok()) {
      backoff.Reset();
      batch_ = std::min(max_batch_, batch_ * 2);
      continue;
    }
    // The broker refuses a batch as a whole (a job it deleted, a batch over its
    // --max-submit-batch): halve the batch until the refused release is alone, and
    // drop only that one.
    if (status.error_code() == grpc::StatusCode::NOT_FOUND ||
        status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      if (n == 1) {
        queue_.pop_front();
      } else {
        batch_ = n / 2;
      }
      continue;
    }
    wake_.Clear();
    co_await wake_.WaitUntil(common::AddSaturated(runtime::EventLoop::Current()->Now(), backoff.Next()));
  }
}

runtime::Task<grpc::Status> Releaser::Send(std::size_t n) {
  cohort::v1::ReleaseJobsRequest request;
  for (std::size_t i = 0; i < n; ++i) *request.add_releases() = queue_[i];
  cohort::v1::ReleaseJobsResponse response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  grpc::Status status =
      co_await rpc::Call(broker_.async(), &cohort::v1::Broker::Stub::async::ReleaseJobs, &ctx,
                         request, &response);
  if (!status.ok()) co_return status;
  for (std::size_t i = 0; i < n; ++i) {
    metrics_.Released(ReasonName(queue_.front().reason()));
    queue_.pop_front();
  }
  co_return status;
}

}  // namespace cohort::scheduler
