#include "services/executor/builtin_runner.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "libs/runtime/sleep.h"

namespace cohort::executor {

runtime::Task<Outcome> BuiltinRunner::Run(const cohort::v1::Job& job, int attempt) {
  const std::string& kind = job.spec().kind();
  const std::string& payload = job.spec().payload();
  if (kind == "builtin.echo") co_return Outcome::Success(payload);
  if (kind == "builtin.noop") co_return Outcome::Success("");
  if (kind == "builtin.fail") co_return Outcome::Failure("failed", payload.empty() ? "builtin.fail" : payload);
  if (kind == "builtin.sleep") {
    absl::Duration d;
    if (!absl::ParseDuration(payload, &d) || d < absl::ZeroDuration()) {
      co_return Outcome::Failure("bad_payload",
                                 absl::StrCat("builtin.sleep wants a duration like \"250ms\", got \"", payload, "\""));
    }
    co_await runtime::Sleep(absl::ToChronoNanoseconds(d));  // cancellable
    co_return Outcome::Success(payload);
  }
  co_return Outcome::Failure("unknown_kind", absl::StrCat("this executor cannot run kind \"", kind, "\""));
}

}  // namespace cohort::executor
