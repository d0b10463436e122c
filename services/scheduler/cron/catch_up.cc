#include "services/scheduler/cron/catch_up.h"

#include <algorithm>
#include <cstddef>
#include <deque>

namespace cohort::scheduler {
namespace {

// The most recent `limit` slots in (lower, now], oldest first. Searches windows
// (now - window, now] that double until one holds `limit` slots or reaches `lower`;
// each window's slots are enumerated forwards with at most `limit` of them kept.
std::deque<absl::Time> MostRecentSlots(const Trigger& trigger, absl::Time lower, absl::Time now,
                                       std::size_t limit) {
  absl::Duration window = trigger.TypicalSpacing() * static_cast<double>(limit);
  for (;;) {
    const absl::Time from = std::max(lower, now - window);
    std::deque<absl::Time> slots;
    for (absl::Time slot = trigger.NextAfter(from); slot <= now; slot = trigger.NextAfter(slot)) {
      slots.push_back(slot);
      if (slots.size() > limit) slots.pop_front();
    }
    if (slots.size() == limit || from == lower) return slots;
    window *= 2;
  }
}

}  // namespace

CatchUpPlan PlanCatchUp(const Trigger& trigger, absl::Time fired_through, absl::Time now,
                        CatchUpPolicy policy, int run_all_limit) {
  CatchUpPlan plan;
  plan.next_slot = trigger.NextAfter(std::max(fired_through, now));
  const absl::Time lower = std::max(fired_through, now - kCatchUpLookback);
  const absl::Time oldest_missed = trigger.NextAfter(lower);
  if (oldest_missed > now) return plan;  // nothing missed (or fired_through >= now)

  std::size_t limit = 0;
  switch (policy) {
    case CatchUpPolicy::kSkipMissed:
      break;
    case CatchUpPolicy::kRunOnce:
      limit = 1;
      break;
    case CatchUpPolicy::kRunAll:
      limit = static_cast<std::size_t>(std::clamp(run_all_limit, 1, kMaxCatchUpSlots));
      break;
  }
  if (limit > 0) {
    const std::deque<absl::Time> slots = MostRecentSlots(trigger, lower, now, limit);
    plan.fire.assign(slots.begin(), slots.end());
  }
  plan.dropped = plan.fire.empty() || oldest_missed < plan.fire.front();
  return plan;
}

}  // namespace cohort::scheduler
