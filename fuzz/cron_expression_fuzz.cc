// Cron expressions as CreateSchedule receives them: CronExpression::Parse of the input,
// and for an expression it accepts, NextAfter in UTC and in a zone with DST from a few
// starting points. Slots must come strictly in order and match the expression (in UTC,
// where wall clock and instant agree).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "services/scheduler/cron/cron_expression.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cron = cohort::scheduler::CronExpression::Parse(text);
  if (!cron.ok()) return 0;
  static const absl::TimeZone paris = [] {
    auto z = cohort::scheduler::LoadCronTimeZone("Europe/Paris");
    return z.ok() ? *z : absl::UTCTimeZone();
  }();
  const absl::Time starts[] = {absl::FromUnixSeconds(1'711'846'800),  // 2024-03-31, a DST change
                               absl::FromUnixSeconds(4'102'444'800)};  // 2100-01-01, not a leap year
  for (absl::Time start : starts) {
    absl::Time t = start;
    for (int i = 0; i < 3; ++i) {
      const absl::Time next = cron->NextAfter(t, absl::UTCTimeZone());
      if (next == absl::InfiniteFuture()) {
        if (cron->CanEverMatch()) __builtin_trap();  // the header: it always has a slot
        break;
      }
      if (next <= t) __builtin_trap();
      if (!cron->Matches(absl::ToCivilMinute(next, absl::UTCTimeZone()))) __builtin_trap();
      t = next;
    }
    t = start;
    for (int i = 0; i < 3; ++i) {
      const absl::Time next = cron->NextAfter(t, paris);
      if (next == absl::InfiniteFuture()) break;
      if (next <= t) __builtin_trap();
      t = next;
    }
  }
  return 0;
}
