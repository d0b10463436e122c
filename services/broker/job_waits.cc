#include "services/broker/job_waits.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libs/common/job_states.h"
#include "libs/common/quote.h"

namespace cohort::broker {
namespace {

using cohort::v1::Job;
using cohort::v1::JobOutcome;

// "job X FAILED: code: message", for a wait that ends with a job's failure. The code
// and message come from a worker: only a bounded prefix of each is quoted.
absl::Status JobFailure(const JobOutcome& job) {
  constexpr std::size_t kMaxErrorMessage = 512;
  absl::string_view message = job.error().message();
  return absl::AbortedError(absl::StrCat(
      "job ", job.job_id(), " ", absl::StripPrefix(cohort::v1::JobState_Name(job.state()), "JOB_STATE_"), ": ",
      absl::string_view(job.error().code()).substr(0, common::kQuotePrefixBytes), ": ",
      message.substr(0, kMaxErrorMessage), message.size() > kMaxErrorMessage ? "…" : ""));
}

// asyncio.wait's return_when over the jobs seen ended so far, as
// runtime::internal::WaitSatisfied is over tasks: a CANCELLED job is not an exception.
bool WaitSatisfied(const JobSetWaiter& waiter, runtime::ReturnWhen when) {
  if (waiter.all_ended()) return true;
  switch (when) {
    case runtime::ReturnWhen::kFirstCompleted:
      return !waiter.ended().empty();
    case runtime::ReturnWhen::kFirstException:
      return std::any_of(waiter.ended().begin(), waiter.ended().end(),
                         [](const JobOutcome& j) { return j.state() == cohort::v1::JOB_STATE_FAILED; });
    case runtime::ReturnWhen::kAllCompleted:
      return false;
  }
  return false;
}

std::optional<runtime::TimePoint> Earlier(std::optional<runtime::TimePoint> a, std::optional<runtime::TimePoint> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

}  // namespace

runtime::Task<absl::StatusOr<std::vector<JobOutcome>>> JobWaits::Gather(std::vector<std::string> ids,
                                                                        bool return_exceptions,
                                                                        std::optional<runtime::TimePoint> deadline) {
  JobSetWaiter waiter(engine_, metrics_);
  if (absl::Status s = co_await waiter.Watch(ids); !s.ok()) co_return s;
  std::size_t seen = 0;
  while (true) {
    if (!return_exceptions) {
      for (; seen < waiter.ended().size(); ++seen) {
        if (common::EndedWithError(waiter.ended()[seen].state())) co_return JobFailure(waiter.ended()[seen]);
      }
    }
    if (waiter.all_ended()) break;
    const bool more = co_await waiter.WaitForMore(waiter.ended().size(), deadline);
    if (!more) {
      co_return absl::DeadlineExceededError(absl::StrCat("timeout: ", waiter.ended().size(), " of ", waiter.size(),
                                                         " jobs ended (nothing was cancelled)"));
    }
  }
  std::vector<JobOutcome> outcomes;
  outcomes.reserve(ids.size());
  for (const std::string& id : ids) outcomes.push_back(*waiter.outcome(id));
  co_return outcomes;
}

runtime::Task<absl::StatusOr<JobWaits::WaitResult>> JobWaits::Wait(std::vector<std::string> ids,
                                                                   runtime::ReturnWhen when,
                                                                   std::optional<runtime::TimePoint> deadline) {
  JobSetWaiter waiter(engine_, metrics_);
  if (absl::Status s = co_await waiter.Watch(ids); !s.ok()) co_return s;
  while (!WaitSatisfied(waiter, when)) {
    const bool more = co_await waiter.WaitForMore(waiter.ended().size(), deadline);
    if (!more) break;  // a timeout is not an error: report what is done
  }
  WaitResult result;
  result.done = waiter.ended();
  for (const std::string& id : waiter.ids()) {
    if (!waiter.has_ended(id)) result.pending.push_back(id);
  }
  co_return result;
}

runtime::Task<absl::StatusOr<std::string>> JobWaits::WaitFor(WaitForRequest request) {
  JobSetWaiter waiter(engine_, metrics_);
  std::vector<std::string> one(1, request.job_id);  // (no initializer_list in a coroutine: GCC 12)
  if (absl::Status s = co_await waiter.Watch(std::move(one)); !s.ok()) co_return s;
  bool ended = true;
  bool cancelled = false;
  try {
    ended = co_await waiter.WaitForMore(0, Earlier(request.timeout, request.call_deadline));
  } catch (const runtime::CancelledError&) {
    cancelled = true;  // the client left, the call's deadline passed, or the server stops
  }
  if (cancelled) {
    const bool deadline_passed =
        request.call_deadline && runtime::EventLoop::Current()->Now() + kDeadlineSlack >= *request.call_deadline;
    const bool stopping = request.server_stopping && request.server_stopping();
    if (stopping || !(deadline_passed || request.cancel_on_disconnect)) throw runtime::CancelledError();
  }
  if (!ended || cancelled) {
    absl::StatusOr<Job> job = co_await engine_.ReadJob(request.job_id);
    const bool shielded = request.shield || (job.ok() && job->spec().shield());
    if (!shielded) {
      absl::StatusOr<cohort::v1::CancelJobResponse> r = co_await engine_.CancelJob(request.job_id);
      r.status().IgnoreError();  // best effort: the job may have ended meanwhile
    }
    if (cancelled) throw runtime::CancelledError();  // nobody is left to answer
    co_return absl::DeadlineExceededError(absl::StrCat("job ", common::QuoteBounded(request.job_id),
                                                       " did not end in time; ",
                                                       shielded ? "it is shielded and keeps running"
                                                                : "it was cancelled"));
  }
  const JobOutcome& job = waiter.ended().front();
  if (common::EndedWithError(job.state())) co_return JobFailure(job);
  co_return job.result();
}

runtime::Task<absl::Status> AsCompletedJobs::Start(std::vector<std::string> ids,
                                                   std::optional<runtime::TimePoint> deadline) {
  deadline_ = deadline;
  co_return co_await waiter_.Watch(std::move(ids));
}

runtime::Task<absl::StatusOr<std::optional<JobOutcome>>> AsCompletedJobs::Next() {
  if (returned_ == waiter_.size()) co_return std::optional<JobOutcome>();
  if (returned_ == waiter_.ended().size()) {
    const bool more = co_await waiter_.WaitForMore(returned_, deadline_);
    if (!more) {
      co_return absl::DeadlineExceededError(
          absl::StrCat("timeout: ", returned_, " of ", waiter_.size(), " jobs ended"));
    }
  }
  co_return std::optional<JobOutcome>(waiter_.ended()[returned_++]);
}

}  // namespace cohort::broker
