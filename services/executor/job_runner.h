#pragma once

#include <string>

#include "libs/runtime/task.h"
#include "protos/cohort/v1/job.pb.h"

namespace cohort::executor {

// What one attempt produced: a result, or an error (code as in job.proto's Error).
struct Outcome {
  bool ok = false;
  std::string result;
  cohort::v1::Error error;

  static Outcome Success(std::string result) { return Outcome{true, std::move(result), {}}; }
  static Outcome Failure(std::string code, std::string message, std::string details = "") {
    Outcome o;
    o.error.set_code(std::move(code));
    o.error.set_message(std::move(message));
    o.error.set_details(std::move(details));
    return o;
  }
};

// Where a running attempt reports its progress. Loop thread only; Report never blocks
// and may be called as often as the job likes: only the latest report is sure to be
// forwarded to the broker.
class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  // `fraction` is clamped to [0, 1]; `message` must be UTF-8.
  virtual void Report(double fraction, std::string message) = 0;
};

// Runs one attempt of a job on the executor's loop. Cancellation of the awaiting task
// (a broker Cancel, a timeout, a drain) must stop the work and release everything
// before the task ends; the runner then returns or raises CancelledError. `progress`
// outlives the returned task.
class JobRunner {
 public:
  virtual ~JobRunner() = default;
  virtual runtime::Task<Outcome> Run(const cohort::v1::Job& job, int attempt, ProgressSink& progress) = 0;
};

}  // namespace cohort::executor
