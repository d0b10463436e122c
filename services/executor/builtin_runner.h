#pragma once

#include "services/executor/job_runner.h"

namespace cohort::executor {

// The built-in kinds, for tests and demos:
//   builtin.echo   result = payload
//   builtin.noop   result = empty
//   builtin.sleep  sleeps for the payload's duration ("250ms", "2s"); cancellable
//   builtin.fail   fails with the payload as the message (code "failed")
// Any other kind fails with code "unknown_kind".
class BuiltinRunner final : public JobRunner {
 public:
  runtime::Task<Outcome> Run(const cohort::v1::Job& job, int attempt) override;
};

}  // namespace cohort::executor
