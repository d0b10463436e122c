#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "protos/cohort/v1/job.pb.h"

namespace cohort::testing {

// The history of a fault test (Jepsen-style): every operation a client saw acknowledged
// (a Submit's job id for an idempotency key, a successful completion of an attempt), every
// run an executor recorded (job, attempt), and every answer or interruption of a wait, each
// numbered in the order it was recorded. Check() compares the history with the final state
// read from the surviving leader and returns one line per violated invariant, naming the
// operations involved (#sequence, what, when), so a failure says what went wrong:
//   - lost:        an acknowledged job is absent from the final state;
//   - not ended:   an acknowledged job did not end SUCCEEDED;
//   - duplicate:   one idempotency key acknowledged with two job ids;
//   - ran twice:   a (job, attempt) ran more than once;
//   - overrun:     a job ran an attempt beyond its recorded attempt, or more runs than its
//                  recorded attempts;
//   - phantom:     a run of a job that the final state does not hold;
//   - unrun:       a SUCCEEDED job with no recorded run;
//   - completion:  an acknowledged completion that the final state does not reflect
//                  (not SUCCEEDED at that attempt) or that has no run;
//   - wrong answer: a wait answered with a state or result that differs from the job's
//                  final one (an ended job's outcome never changes);
//   - bad status:  a wait interrupted with a status a client must not retry (anything but
//                  UNAVAILABLE or CANCELLED).
// Recording is thread-safe; Check() may run at any time and reads a consistent copy.
class History {
 public:
  // One recorded operation.
  struct Operation {
    enum class Kind { kSubmitAcked, kCompletionAcked, kRun, kWaitAnswered, kWaitInterrupted };
    int64_t sequence = 0;  // 1, 2, ... in recording order
    absl::Duration at;     // since the History was created
    Kind kind = Kind::kSubmitAcked;
    std::string job_id;
    std::string key;                                   // kSubmitAcked
    int attempt = 0;                                   // kRun, kCompletionAcked
    cohort::v1::JobState state = cohort::v1::JOB_STATE_UNSPECIFIED;  // kWaitAnswered
    std::string result;                                // kWaitAnswered (when SUCCEEDED)
    int status_code = 0;                               // kWaitInterrupted: grpc::StatusCode
    std::string message;                               // kWaitInterrupted: its message

    // "#12 submit key=k → job 7 at 1.234s", for violation reports.
    std::string Describe() const;
  };

  History() = default;
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  void SubmitAcknowledged(const std::string& key, const std::string& job_id);
  void CompletionAcknowledged(const std::string& job_id, int attempt);
  void Ran(const std::string& job_id, int attempt);
  void WaitAnswered(const std::string& job_id, cohort::v1::JobState state, const std::string& result);
  void WaitInterrupted(const std::string& job_id, int status_code, const std::string& message);

  // Records a Ran() for each line "JOB_ID ATTEMPT" of a run log (what the test's exec jobs
  // append). INVALID_ARGUMENT naming the first malformed line; NOT_FOUND if unreadable.
  absl::Status LoadRuns(const std::string& path);

  // Every job id the history mentions (acknowledged, run or waited on), for fetching
  // the final state.
  std::vector<std::string> JobIds() const;
  std::vector<Operation> Operations() const;

  // The violations of the invariants above against `final_jobs` (job id → the job as
  // the leader reports it; a missing id is a job the leader does not have). Empty when
  // the history is consistent.
  std::vector<std::string> Check(const std::map<std::string, cohort::v1::Job>& final_jobs) const;

 private:
  void Add(Operation op);

  const absl::Time start_ = absl::Now();
  mutable absl::Mutex mu_;
  std::vector<Operation> ops_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cohort::testing
