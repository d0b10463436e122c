#include "services/scheduler/broker_follower.h"

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/client_context.h"
#include "libs/common/job_states.h"
#include "libs/common/log.h"
#include "libs/common/proto_time.h"
#include "libs/common/wire_time.h"
#include "libs/rpc/status.h"
#include "libs/rpc/unary_client.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/gather.h"
#include "libs/runtime/task_group.h"

namespace cohort::scheduler {
namespace {

using namespace std::chrono_literals;
using cohort::v1::Broker;

const log::Logger kLog("scheduler");

constexpr auto kRpcTimeout = 30s;
constexpr int kListPageSize = 1000;
constexpr std::size_t kParallelLookups = 32;
constexpr common::Backoff::Options kResyncBackoff{.initial = absl::Milliseconds(100), .max = absl::Seconds(5)};
// A follow that lasted this long was healthy: the next loss retries from the first step.
constexpr auto kHealthyFollow = 10s;

void SetDeadline(grpc::ClientContext& ctx) { ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout); }

}  // namespace

BrokerFollower::BrokerFollower(runtime::EventLoop& loop, Broker::Stub& broker, ReleaseTracker& tracker,
                               SchedulerMetrics& metrics, EndedFn on_ended, SyncedFn on_synced)
    : loop_(loop),
      broker_(broker),
      tracker_(tracker),
      metrics_(metrics),
      on_ended_(std::move(on_ended)),
      on_synced_(std::move(on_synced)),
      backoff_(kResyncBackoff) {
  MarkSynced(Now());
}

void BrokerFollower::Stop() {
  stopping_ = true;
  if (stream_ != nullptr) stream_->Cancel();
  wake_.Set();
}

runtime::Task<void> BrokerFollower::Run() {
  while (!stopping_) {
    absl::Status status = co_await Sync();
    const bool was_following = synced_;
    synced_ = false;
    if (stopping_) break;
    if (was_following && loop_.Now() - following_since_ >= kHealthyFollow) backoff_.Reset();
    const absl::Duration retry_in = backoff_.Next();
    LogLost(was_following, status, retry_in);
    wake_.Clear();
    co_await wake_.WaitUntil(common::AddSaturated(loop_.Now(), retry_in));
  }
}

runtime::Task<absl::Status> BrokerFollower::Sync() {
  tracker_.Reset();
  metrics_.resyncs().Increment();
  int64_t sequence = 0;
  const absl::Time listed_at = Now();
  absl::Status listed = co_await List(sequence);
  if (!listed.ok()) co_return listed;
  absl::Status resolved = co_await ResolveUnknownParents();
  if (!resolved.ok()) co_return resolved;
  applied_sequence_ = sequence;
  MarkSynced(listed_at);
  UpdateGauges();
  if (stopping_) co_return absl::CancelledError("stopping");

  cohort::v1::WatchRequest request;
  request.set_after_sequence(sequence);
  WatchStream stream(loop_, request);
  broker_.async()->Watch(stream.context(), &stream.request(), &stream);
  stream_ = &stream;
  stream.Start();
  synced_ = true;
  following_since_ = loop_.Now();
  LogFollowing();
  on_synced_();
  watching_ = true;
  probe_wake_.Clear();
  runtime::TaskGroup probes;
  probes.Spawn(ProbeWhileWatching());
  absl::Status result;
  while (true) {
    std::optional<cohort::v1::WatchResponse> batch = co_await stream.Read();
    if (!batch.has_value()) break;
    for (const cohort::v1::JobEvent& event : batch->events()) {
      if (tracker_.OnEvent(event)) on_ended_(event.job());
      applied_sequence_ = std::max(applied_sequence_, event.sequence());
    }
    if (!batch->events().empty()) MarkSynced(common::FromProto(batch->events().rbegin()->time()));
    result = co_await ResolveUnknownParents();
    UpdateGauges();
    if (!result.ok()) {
      stream.Cancel();
      break;
    }
  }
  stream_ = nullptr;
  watching_ = false;
  probe_wake_.Set();
  co_await probes.Join();
  grpc::Status status = co_await stream.Finish();
  if (!result.ok()) co_return result;
  co_return status.ok() ? absl::UnavailableError("Watch ended") : rpc::FromGrpc(status);
}

runtime::Task<absl::Status> BrokerFollower::List(int64_t& sequence) {
  cohort::v1::ListJobsRequest request;
  request.add_states(cohort::v1::JOB_STATE_PENDING);
  request.set_page_size(kListPageSize);
  bool first = true;
  while (true) {
    cohort::v1::ListJobsResponse response;
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    grpc::Status status = co_await rpc::Call(broker_.async(), &Broker::Stub::async::ListJobs, &ctx, request, &response);
    if (!status.ok()) co_return rpc::FromGrpc(status);
    if (first) sequence = response.sequence();
    first = false;
    for (const cohort::v1::Job& job : response.jobs()) tracker_.Observe(job);
    if (response.next_page_token().empty()) co_return absl::OkStatus();
    request.set_page_token(response.next_page_token());
  }
}

runtime::Task<absl::Status> BrokerFollower::ResolveUnknownParents() {
  std::vector<std::string> unknown = tracker_.TakeUnknownParents();
  for (std::size_t begin = 0; begin < unknown.size(); begin += kParallelLookups) {
    std::vector<runtime::Task<absl::Status>> lookups;
    for (std::size_t i = begin; i < std::min(unknown.size(), begin + kParallelLookups); ++i) {
      lookups.push_back(LookUp(unknown[i]));
    }
    std::vector<absl::Status> results = co_await runtime::Gather(std::move(lookups));
    for (const absl::Status& s : results) {
      if (!s.ok()) co_return s;
    }
  }
  co_return absl::OkStatus();
}

runtime::Task<absl::Status> BrokerFollower::LookUp(std::string id) {
  cohort::v1::GetJobRequest request;
  request.set_job_id(id);
  cohort::v1::GetJobResponse response;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status status = co_await rpc::Call(broker_.async(), &Broker::Stub::async::GetJob, &ctx, request, &response);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
    tracker_.ParentGone(id);
    co_return absl::OkStatus();
  }
  if (!status.ok()) co_return rpc::FromGrpc(status);
  tracker_.Observe(response.job());
  if (common::IsTerminal(response.job().state())) on_ended_(response.job());
  co_return absl::OkStatus();
}

runtime::Task<void> BrokerFollower::ProbeWhileWatching() {
  while (watching_) {
    co_await probe_wake_.WaitUntil(loop_.Now() + kSyncProbeInterval);
    if (!watching_) break;
    const absl::Time sent = Now();
    cohort::v1::ListJobsRequest request;
    request.set_page_size(1);  // only the log's last sequence is wanted
    cohort::v1::ListJobsResponse response;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kSyncProbeInterval);
    grpc::Status status = co_await rpc::Call(broker_.async(), &Broker::Stub::async::ListJobs, &ctx, request, &response);
    // Events up to response.sequence() may still be on their way: caught up only if
    // none is missing.
    if (status.ok() && applied_sequence_ >= response.sequence()) MarkSynced(sent);
  }
}

void BrokerFollower::LogFollowing() {
  if (!unreachable_since_.has_value()) {
    kLog.Info("following the broker",
              {{"pending_jobs", tracker_.pending_jobs()}, {"after_sequence", applied_sequence_}});
  } else {
    kLog.Info("reconnected to the broker", {{"pending_jobs", tracker_.pending_jobs()},
                                            {"after_sequence", applied_sequence_},
                                            {"failed_attempts", failed_attempts_},
                                            {"after", Now() - *unreachable_since_}});
  }
  unreachable_since_.reset();
  failed_attempts_ = 0;
}

void BrokerFollower::LogLost(bool was_following, const absl::Status& status, absl::Duration retry_in) {
  if (!unreachable_since_.has_value()) unreachable_since_ = Now();
  ++failed_attempts_;
  const std::string error(status.message());  // the log bounds its length
  if (was_following) {
    kLog.Warn("lost the broker's event log, resyncing",
              {{"code", absl::StatusCodeToString(status.code())}, {"error", error}, {"retry_in", retry_in}});
  } else {
    kLog.Warn("broker unreachable, retrying", {{"code", absl::StatusCodeToString(status.code())},
                                               {"error", error},
                                               {"attempt", failed_attempts_},
                                               {"retry_in", retry_in}});
  }
}

void BrokerFollower::MarkSynced(absl::Time as_of) {
  synced_at_ = std::max(synced_at_, as_of);
  metrics_.broker_synced().Set(absl::ToDoubleSeconds(synced_at_ - absl::UnixEpoch()));
}

void BrokerFollower::UpdateGauges() {
  metrics_.pending_jobs().Set(static_cast<double>(tracker_.pending_jobs()));
  metrics_.pending_timers().Set(static_cast<double>(tracker_.pending_timers()));
}

}  // namespace cohort::scheduler
