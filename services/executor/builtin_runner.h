#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "services/executor/job_runner.h"

namespace cohort::executor {

// The built-in kinds, for tests and demos:
//   builtin.echo   result = payload
//   builtin.noop   result = empty
//   builtin.sleep  sleeps for the payload's duration ("250ms", "2s"); cancellable;
//                  reports the fraction slept every SleepProgressInterval
//   builtin.fail   fails with the payload as the message (code "failed")
// Any other kind fails with code "unknown_kind". Run on a task of a running loop.
class BuiltinRunner final : public JobRunner {
 public:
  // The kinds above, which the executor declares in Hello.kinds.
  static const std::vector<std::string>& Kinds();

  runtime::Task<Outcome> Run(const cohort::v1::Job& job, int attempt, ProgressSink& progress) override;
};

// How often builtin.sleep reports progress: every hundredth of its duration, but at
// most once a second.
absl::Duration SleepProgressInterval(absl::Duration total);

}  // namespace cohort::executor
