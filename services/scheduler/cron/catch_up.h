#pragma once

#include <vector>

#include "absl/time/time.h"
#include "services/scheduler/cron/trigger.h"

namespace cohort::scheduler {

// What happens to slots missed while the scheduler was down (cohort.v1.CatchUpPolicy;
// the engine maps CATCH_UP_POLICY_UNSPECIFIED to kRunOnce).
enum class CatchUpPolicy {
  kSkipMissed,  // missed slots are dropped
  kRunOnce,     // the most recent missed slot fires once, the others are dropped
  kRunAll,      // the most recent `run_all_limit` missed slots fire, oldest first
};

// The most slots one PlanCatchUp returns, whatever run_all_limit says: bounds the
// memory and the burst of jobs after a long outage.
inline constexpr int kMaxCatchUpSlots = 1000;

// How far back before `now` missed slots are looked for: one Gregorian cycle
// (146,097 days, about 400 years), the same horizon as cron's search.
inline constexpr absl::Duration kCatchUpLookback = absl::Hours(24 * 146097);

// The outcome of PlanCatchUp.
struct CatchUpPlan {
  // Missed slots to fire now, oldest first, as the policy selects them.
  std::vector<absl::Time> fire;
  // The first slot after both `now` and `fired_through`: the next timer to arm.
  // absl::InfiniteFuture() if the trigger has no more slots.
  absl::Time next_slot = absl::InfiniteFuture();
  // Whether some missed slots are not in `fire` (dropped by the policy or the cap).
  bool dropped = false;
};

// Plans what a schedule fires after downtime. The missed slots are the slots in
// (fired_through, now], a slot due exactly at `now` included, so after the plan is
// carried out every slot up to `now` has either fired or been dropped, and none twice.
//
// `fired_through` is the schedule's watermark: every slot at or before it has fired or
// was skipped on purpose. Pass the last fired slot; before the first fire, or after an
// update or a resume, pass the time of that event (the proto makes the next slot the
// first one after it). A `fired_through` after `now` (a clock stepped back) yields no
// missed slots and a next_slot after `fired_through`, so no slot fires twice.
//
// `run_all_limit` applies to kRunAll only and is clamped to 1..kMaxCatchUpSlots.
// Slots more than kCatchUpLookback before `now` are never considered.
//
// Cost is bounded by the slots it returns, not by the backlog: it searches backwards
// from `now` in windows that double (first guess: run_all_limit slots at the trigger's
// TypicalSpacing), enumerating forwards in each and keeping at most run_all_limit slots
// in memory. A year of missed every-minute slots costs a few thousand NextAfter calls.
CatchUpPlan PlanCatchUp(const Trigger& trigger, absl::Time fired_through, absl::Time now,
                        CatchUpPolicy policy, int run_all_limit);

}  // namespace cohort::scheduler
