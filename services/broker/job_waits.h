#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/runtime/runtime.h"
#include "protos/cohort/v1/broker.pb.h"
#include "services/broker/broker_engine.h"
#include "services/broker/broker_metrics.h"
#include "services/broker/job_set_waiter.h"

namespace cohort::broker {

// asyncio's waits over jobs (gather, wait, wait_for, as_completed), as the broker's
// Gather, Wait, WaitFor and AsCompleted RPCs answer them. The service validates the
// request (id count, timeout range, return_when) and turns the answer into a reply;
// the semantics live here, on the engine, reachable by a manual-clock test.
//
// Each wait is event-driven through a JobSetWaiter (resumed by the commit that makes a
// job's end durable; no polling, no thread), counts itself in cohort_broker_waiters
// while it runs, and ends at `deadline` (on the loop's clock; nullopt: never).
// Cancelling a wait raises runtime::CancelledError at its suspension point and
// leaves every job alone, except WaitFor as described there. Unknown ids are
// NOT_FOUND and nothing is waited for. Loop thread only; `engine` and `metrics` must
// outlive the object.
class JobWaits {
 public:
  JobWaits(BrokerEngine& engine, BrokerMetrics& metrics) : engine_(engine), metrics_(metrics) {}

  // asyncio.gather: one outcome per id, in the order of `ids` (repeats included),
  // once every job has ended. Without `return_exceptions`, ABORTED ("job X FAILED:
  // code: message") at the first job to end FAILED or CANCELLED, the others left
  // running; with it, every failure is returned in its slot. At `deadline`,
  // DEADLINE_EXCEEDED ("timeout: N of M jobs ended"); nothing is cancelled.
  runtime::Task<absl::StatusOr<std::vector<cohort::v1::JobOutcome>>> Gather(
      std::vector<std::string> ids, bool return_exceptions, std::optional<runtime::TimePoint> deadline);

  // asyncio.wait's answer: the jobs that ended, in the order they did (those already
  // ended first, in request order), and the others' distinct ids in request order.
  struct WaitResult {
    std::vector<cohort::v1::JobOutcome> done;
    std::vector<std::string> pending;
  };
  // asyncio.wait: returns once `when` holds (FIRST_EXCEPTION: a job ended FAILED; a
  // CANCELLED one does not count), every job has ended, or `deadline` passes. A
  // timeout is not an error, and nothing is ever cancelled.
  runtime::Task<absl::StatusOr<WaitResult>> Wait(std::vector<std::string> ids, runtime::ReturnWhen when,
                                                 std::optional<runtime::TimePoint> deadline);

  // What a WaitFor call asks, and what the service knows of its call.
  struct WaitForRequest {
    std::string job_id = {};
    std::optional<runtime::TimePoint> timeout = std::nullopt;        // the request's timeout, on the loop's clock
    std::optional<runtime::TimePoint> call_deadline = std::nullopt;  // the RPC's own deadline, on the loop's clock
    bool shield = false;                              // a timeout leaves the job running
    bool cancel_on_disconnect = false;                // a cancelled call cancels the job
    // True once the server is shutting down: a call cancelled then cancels no job.
    std::function<bool()> server_stopping = nullptr;
  };
  // asyncio.wait_for: the job's result once it SUCCEEDED; ABORTED ("job X FAILED:
  // code: message") if it ended FAILED or CANCELLED. The wait ends at the earlier of
  // `timeout` and `call_deadline`: then the job is cancelled, unless the request or
  // its spec is shielded, and the answer is DEADLINE_EXCEEDED saying which.
  //
  // If the wait itself is cancelled (the client left, or the RPC's deadline passed as
  // the call saw it), CancelledError is raised after deciding the job's fate: a call
  // within kDeadlineSlack of `call_deadline` counts as timed out (cancels the job
  // unless shielded); an earlier one cancels the job only with
  // `cancel_on_disconnect` (and unless shielded); and none does while
  // `server_stopping()` holds.
  runtime::Task<absl::StatusOr<std::string>> WaitFor(WaitForRequest request);

  // The RPC deadline travels as a relative timeout, so a client may give up before this
  // server's clock reaches it, by as much as the request's headers took to arrive
  // beyond the cancel's own transit (over 100 ms on a loaded 2-core machine): within
  // this, a cancel counts as the timeout.
  static constexpr runtime::Duration kDeadlineSlack = std::chrono::milliseconds(250);

 private:
  BrokerEngine& engine_;
  BrokerMetrics& metrics_;
};

// asyncio.as_completed over jobs: Next() returns each job's outcome as it ends,
// earliest first (those already ended first, in request order). Loop thread only;
// one consumer.
//
//   AsCompletedJobs jobs(engine, metrics);
//   if (absl::Status s = co_await jobs.Start(ids, deadline); !s.ok()) co_return s;
//   while (true) {
//     absl::StatusOr<std::optional<JobOutcome>> next = co_await jobs.Next();
//     if (!next.ok()) return next.status();  // DEADLINE_EXCEEDED
//     if (!next->has_value()) break;         // every job has been returned
//     Send(**next);
//   }
class AsCompletedJobs {
 public:
  AsCompletedJobs(BrokerEngine& engine, BrokerMetrics& metrics) : waiter_(engine, metrics) {}

  // Watches the distinct `ids` until `deadline`. NOT_FOUND for unknown ids.
  runtime::Task<absl::Status> Start(std::vector<std::string> ids, std::optional<runtime::TimePoint> deadline);
  // The next outcome; nullopt once every job's has been returned; DEADLINE_EXCEEDED
  // ("timeout: N of M jobs ended") if the deadline passes first. Cancellable; nothing
  // is ever cancelled.
  runtime::Task<absl::StatusOr<std::optional<cohort::v1::JobOutcome>>> Next();

 private:
  JobSetWaiter waiter_;
  std::optional<runtime::TimePoint> deadline_;
  std::size_t returned_ = 0;
};

}  // namespace cohort::broker
