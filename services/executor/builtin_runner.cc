#include "services/executor/builtin_runner.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "libs/common/wire_time.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/sleep.h"

namespace cohort::executor {
namespace {

// The most of a payload an error message quotes.
constexpr std::size_t kMaxQuotedPayload = 64;

// Sleeps for `total` (cancellable), reporting the fraction slept every
// SleepProgressInterval(total).
runtime::Task<void> SleepReportingProgress(absl::Duration total, ProgressSink& progress) {
  runtime::EventLoop& loop = *runtime::EventLoop::Current();
  const runtime::TimePoint start = loop.Now();
  const runtime::Duration length = common::ToChronoSaturated(total);
  const runtime::Duration step = common::ToChronoSaturated(SleepProgressInterval(total));
  // Deadlines from the start, so steps do not drift.
  for (runtime::Duration at = step; at < length; at += step) {
    co_await runtime::SleepUntil(common::AddSaturated(start, at));
    progress.Report(std::chrono::duration<double>(at) / std::chrono::duration<double>(length),
                    absl::StrCat("slept ", absl::FormatDuration(absl::FromChrono(at)), " of ",
                                 absl::FormatDuration(total)));
  }
  co_await runtime::SleepUntil(common::AddSaturated(start, length));
}

}  // namespace

const std::vector<std::string>& BuiltinRunner::Kinds() {
  static const auto* kinds = new std::vector<std::string>{"builtin.echo", "builtin.noop", "builtin.sleep", "builtin.fail"};
  return *kinds;
}

absl::Duration SleepProgressInterval(absl::Duration total) { return std::max(absl::Seconds(1), total / 100); }

runtime::Task<Outcome> BuiltinRunner::Run(const cohort::v1::Job& job, int attempt, ProgressSink& progress) {
  const std::string& kind = job.spec().kind();
  const std::string& payload = job.spec().payload();
  if (kind == "builtin.echo") co_return Outcome::Success(payload);
  if (kind == "builtin.noop") co_return Outcome::Success("");
  if (kind == "builtin.fail") co_return Outcome::Failure("handler", payload.empty() ? "builtin.fail" : payload);
  if (kind == "builtin.sleep") {
    absl::Duration d;
    if (!absl::ParseDuration(payload, &d) || d < absl::ZeroDuration() || d > common::kMaxWireDuration) {
      co_return Outcome::Failure("bad_payload", absl::StrCat("builtin.sleep wants a duration like \"250ms\", at most ",
                                                             absl::FormatDuration(common::kMaxWireDuration), ", got \"",
                                                             payload.substr(0, kMaxQuotedPayload), "\""));
    }
    co_await SleepReportingProgress(d, progress);
    co_return Outcome::Success(payload);
  }
  co_return Outcome::Failure("unknown_kind", absl::StrCat("this executor cannot run kind \"", kind, "\""));
}

}  // namespace cohort::executor
