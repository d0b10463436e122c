#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace cohort::scheduler {

// The longest expression Parse accepts. Every minute, hour, day and month spelled out
// as a list is about 360 characters.
inline constexpr std::size_t kMaxCronExpressionLength = 1024;

// How far ahead of `after` NextAfter looks, in civil years: one full Gregorian cycle,
// after which the calendar (leap years and weekdays alike) repeats. An expression that
// can fire at all (CanEverMatch) always has a slot inside it: the rarest one, the 29th
// of February on a given weekday, recurs within about 40 years. So the bound never
// cuts off a real slot; it only guarantees that NextAfter terminates.
inline constexpr int kCronSearchYears = 400;

// A parsed 5-field Vixie cron expression: "minute hour day-of-month month day-of-week".
//
// Accepted in each field, as a comma-separated list of items:
//   "*"            every value of the field
//   "N"            one value
//   "N-M"          a range, N <= M
//   "*/S", "N-M/S" every S-th value of the range, starting at its low end
//   "N/S"          Vixie's shorthand for "N-max/S"
// Ranges are minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or JAN-DEC,
// day-of-week 0-7 or SUN-SAT, where 0 and 7 both mean Sunday (so "FRI-SUN" is 5-7).
// Names are three letters, case-insensitive. Fields are separated by spaces or tabs.
//
// Days: a day-of-month or day-of-week field whose text begins with "*" (including
// "*/2" and "*,5") counts as unrestricted. This is what Vixie cron and cronie actually
// do (entry.c sets DOM_STAR/DOW_STAR from the field's first character) and what users
// of system crontabs get. When neither day field is unrestricted, a day fires if it
// matches either one ("0 0 13 * 5": the 13th and every Friday); otherwise a day must
// match both ("0 0 */2 * 1": odd days of the month that are Mondays, whereas
// "0 0 1-31/2 * 1" means odd days and all Mondays).
//
// Immutable and cheap to copy (a few bitmasks); safe to share across threads.
class CronExpression {
 public:
  // Parses `expression`. Everything else is INVALID_ARGUMENT with a message that names
  // the field and the problem, e.g. `cron: hour "25" is out of range 0-23`: a number of
  // fields other than 5 (seconds and year fields are not supported), "@daily"-style
  // macros, values out of range, unknown names, empty lists or list items, zero or
  // oversized steps, reversed ranges, and anything else malformed.
  static absl::StatusOr<CronExpression> Parse(std::string_view expression);

  // The first slot strictly after `after`, as an absolute time, for slots that are
  // wall-clock minutes in `zone` matching the expression.
  //
  // Across DST changes a slot keeps its wall-clock meaning:
  // - a slot inside a skipped local interval (spring forward) fires once, at the first
  //   valid time after it, which is the instant of the transition: on 2024-03-31 in
  //   Europe/Paris, "30 2 * * *" fires at 03:00 CEST. Slots that land on the same
  //   instant this way (02:00 and 02:30 and 03:00 for "*/30 * * * *") fire once;
  // - a slot inside a repeated local interval (fall back) fires once, at its first
  //   occurrence: "30 1 * * *" fires at 01:30 EDT on 2024-11-03 in America/New_York,
  //   not again at 01:30 EST.
  // Consecutive calls, each with the previous result, therefore yield every slot once,
  // in increasing order.
  //
  // Returns absl::InfiniteFuture() when no slot follows within kCronSearchYears (which
  // means the expression never fires, e.g. "0 0 30 2 *"), and for an infinite `after`.
  // Cost: the search jumps by month, day, hour and minute, so a call takes at most a
  // few hundred steps for a slot within the year and returns at once for an
  // expression that can never fire.
  absl::Time NextAfter(absl::Time after, absl::TimeZone zone) const;

  // Whether the wall-clock minute `minute` is a slot (ignores time zones and DST).
  bool Matches(absl::CivilMinute minute) const;

  // False for expressions that name no real date, such as "0 0 30 2 *" or
  // "0 0 31 4,6,9,11 *": they parse (as in Vixie cron) but never fire.
  bool CanEverMatch() const { return can_ever_match_; }

 private:
  CronExpression() = default;

  bool DayMatches(absl::CivilDay day) const;
  // The first wall-clock minute at or after `from` that matches, or nullopt if none
  // does before the end of the civil year `last_year`.
  std::optional<absl::CivilMinute> NextMatchAtOrAfter(absl::CivilMinute from,
                                                      absl::civil_year_t last_year) const;

  // Bit i set: value i matches. Day-of-week uses 0 = Sunday .. 6 = Saturday (7 is
  // folded into 0 at parse time).
  std::uint64_t minutes_ = 0;
  std::uint32_t hours_ = 0;
  std::uint32_t days_of_month_ = 0;
  std::uint32_t months_ = 0;
  std::uint32_t days_of_week_ = 0;
  // The field's text began with "*" (Vixie's DOM_STAR / DOW_STAR).
  bool day_of_month_star_ = false;
  bool day_of_week_star_ = false;
  bool can_ever_match_ = false;
};

// The time zone of a cron schedule: an IANA name such as "Europe/Paris", loaded from
// the system's zoneinfo (tzdata). Empty means UTC. Anything that is not a zoneinfo
// name is INVALID_ARGUMENT `unknown time zone "X": ...`, including paths ("/etc/x",
// "../x") and "localtime", so a schedule never depends on the host's configuration.
absl::StatusOr<absl::TimeZone> LoadCronTimeZone(std::string_view name);

}  // namespace cohort::scheduler
