#include "services/scheduler/cron/cron_expression.h"

#include <algorithm>
#include <array>
#include <bit>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace cohort::scheduler {
namespace {

constexpr absl::string_view kFieldList = "minute hour day-of-month month day-of-week";

// One of the five fields: its name in messages, its range, and its names (index i of
// `names` stands for min + i).
struct FieldSpec {
  absl::string_view name;
  int min;
  int max;
  absl::Span<const absl::string_view> names;
  absl::string_view names_hint;  // e.g. "JAN-DEC", for messages
  // Day-of-week: the name for 0 (SUN) ending a range means 7, so "FRI-SUN" is 5-7.
  bool zero_name_ends_at_max = false;
};

constexpr absl::string_view kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                             "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr absl::string_view kWeekdayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

constexpr FieldSpec kMinute{"minute", 0, 59, {}, ""};
constexpr FieldSpec kHour{"hour", 0, 23, {}, ""};
constexpr FieldSpec kDayOfMonth{"day-of-month", 1, 31, {}, ""};
constexpr FieldSpec kMonth{"month", 1, 12, kMonthNames, "JAN-DEC"};
constexpr FieldSpec kDayOfWeek{"day-of-week", 0, 7, kWeekdayNames, "SUN-SAT", true};

// Longest day of each month (index 1-12), counting the 29th of February.
constexpr std::array<int, 13> kMaxDaysInMonth = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

std::string Quote(absl::string_view text) { return absl::StrCat("\"", absl::CEscape(text), "\""); }

absl::Status FieldError(const FieldSpec& field, absl::string_view what, absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("cron: ", field.name, " ", Quote(what), " ", problem));
}

std::string RangeText(const FieldSpec& field) {
  std::string range = absl::StrCat(field.min, "-", field.max);
  if (!field.names.empty()) absl::StrAppend(&range, " or ", field.names_hint);
  return range;
}

// A value of `field` written as a number or (month, day-of-week) a name, taken from
// the list item `item`. `is_name` tells the caller which, for the "FRI-SUN" rule.
absl::StatusOr<int> ParseValue(const FieldSpec& field, absl::string_view text,
                               absl::string_view item, bool* is_name) {
  *is_name = false;
  if (text.empty()) {
    return FieldError(field, item, absl::StrCat("is missing a value: use ", RangeText(field)));
  }
  if (std::all_of(text.begin(), text.end(), absl::ascii_isdigit)) {
    int value = 0;
    // More than 4 digits cannot be in any field's range (and could overflow an int).
    if (text.size() > 4 || !absl::SimpleAtoi(text, &value) || value < field.min ||
        value > field.max) {
      return FieldError(field, text, absl::StrCat("is out of range ", field.min, "-", field.max));
    }
    return value;
  }
  for (std::size_t i = 0; i < field.names.size(); ++i) {
    if (absl::EqualsIgnoreCase(text, field.names[i])) {
      *is_name = true;
      return field.min + static_cast<int>(i);
    }
  }
  if (!field.names.empty()) {
    return FieldError(field, text, absl::StrCat("is not a number or name: use ", RangeText(field)));
  }
  return FieldError(field, text, absl::StrCat("is not a number: use ", RangeText(field)));
}

// One list item: "*", "N", "N-M", each optionally followed by "/S". Sets its values'
// bits in `bits`.
absl::Status ParseItem(const FieldSpec& field, absl::string_view item, std::uint64_t* bits) {
  const std::vector<absl::string_view> base_and_step = absl::StrSplit(item, '/');
  if (base_and_step.size() > 2) {
    return FieldError(field, item, "has more than one \"/\": use N-M/S");
  }
  const absl::string_view base = base_and_step[0];
  int low = 0;
  int high = 0;
  if (base == "*") {
    low = field.min;
    high = field.max;
  } else {
    const std::vector<absl::string_view> ends = absl::StrSplit(base, '-');
    if (ends.size() > 2) return FieldError(field, item, "has more than one \"-\": use N-M");
    bool low_is_name = false;
    absl::StatusOr<int> first = ParseValue(field, ends[0], item, &low_is_name);
    if (!first.ok()) return first.status();
    low = *first;
    high = *first;
    if (ends.size() == 2) {
      bool high_is_name = false;
      absl::StatusOr<int> last = ParseValue(field, ends[1], item, &high_is_name);
      if (!last.ok()) return last.status();
      high = *last;
      if (field.zero_name_ends_at_max && high_is_name && high == 0 && low > 0) high = field.max;
      if (low > high) {
        return FieldError(field, item, "is a reversed range: write the lower value first");
      }
    } else if (base_and_step.size() == 2) {
      high = field.max;  // Vixie: "N/S" is "N-max/S".
    }
  }
  int step = 1;
  if (base_and_step.size() == 2) {
    const absl::string_view step_text = base_and_step[1];
    if (step_text.empty() ||
        !std::all_of(step_text.begin(), step_text.end(), absl::ascii_isdigit)) {
      return FieldError(field, item, "has a step that is not a number: use N-M/S with S >= 1");
    }
    if (step_text.size() > 4 || !absl::SimpleAtoi(step_text, &step) || step > field.max) {
      return FieldError(field, item, absl::StrCat("has a step out of range 1-", field.max));
    }
    if (step == 0) return FieldError(field, item, "has a zero step: use a step of at least 1");
  }
  for (int value = low; value <= high; value += step) *bits |= std::uint64_t{1} << value;
  return absl::OkStatus();
}

absl::StatusOr<std::uint64_t> ParseField(const FieldSpec& field, absl::string_view text) {
  std::uint64_t bits = 0;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    if (item.empty()) return FieldError(field, text, "has an empty list item");
    if (absl::Status status = ParseItem(field, item, &bits); !status.ok()) return status;
  }
  return bits;
}

bool HasBit(std::uint64_t bits, int i) { return (bits >> i) & 1; }

// The lowest set bit at or above `from`, or -1.
int NextBit(std::uint64_t bits, int from) {
  const std::uint64_t masked = bits & (~std::uint64_t{0} << from);
  return masked == 0 ? -1 : std::countr_zero(masked);
}

// Cron numbers weekdays from Sunday = 0; absl from Monday = 0.
int CronWeekday(absl::CivilDay day) { return (static_cast<int>(absl::GetWeekday(day)) + 1) % 7; }

// The instant a slot (a wall-clock minute in `zone`) fires at: the first occurrence of
// a repeated time, the transition for a skipped one.
absl::Time FireTime(absl::CivilMinute slot, absl::TimeZone zone) {
  const absl::TimeZone::TimeInfo info = zone.At(absl::CivilSecond(slot));
  return info.kind == absl::TimeZone::TimeInfo::SKIPPED ? info.trans : info.pre;
}

// IANA names are ASCII components of letters, digits, '_', '+' and '-' joined by '/'
// ("America/Argentina/Buenos_Aires", "Etc/GMT+5"); the longest is 32 characters.
// The longest IANA name is about 30 characters; more of a caller's text is not quoted.
constexpr std::size_t kMaxQuotedZoneName = 64;

bool LooksLikeZoneName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxQuotedZoneName || name == "localtime") return false;
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty()) return false;
    for (char c : part) {
      if (!absl::ascii_isalnum(c) && c != '_' && c != '+' && c != '-') return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<CronExpression> CronExpression::Parse(std::string_view expression) {
  const absl::string_view text(expression.data(), expression.size());
  if (text.size() > kMaxCronExpressionLength) {
    return absl::InvalidArgumentError(absl::StrCat("cron: expression is ", text.size(),
                                                   " characters long, the limit is ",
                                                   kMaxCronExpressionLength));
  }
  const std::vector<absl::string_view> fields =
      absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (fields.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cron: expression is empty: use 5 fields \"", kFieldList, "\""));
  }
  if (absl::StartsWith(fields[0], "@")) {
    return absl::InvalidArgumentError(
        absl::StrCat("cron: macro ", Quote(fields[0]),
                     " is not supported: write the 5 fields, e.g. \"0 0 * * *\" for @daily"));
  }
  if (fields.size() != 5) {
    return absl::InvalidArgumentError(
        absl::StrCat("cron: ", Quote(text), " has ", fields.size(), " fields, want 5 (", kFieldList,
                     ")", fields.size() > 5 ? ": seconds and year fields are not supported" : ""));
  }

  CronExpression cron;
  absl::StatusOr<std::uint64_t> bits = ParseField(kMinute, fields[0]);
  if (!bits.ok()) return bits.status();
  cron.minutes_ = *bits;
  bits = ParseField(kHour, fields[1]);
  if (!bits.ok()) return bits.status();
  cron.hours_ = static_cast<std::uint32_t>(*bits);
  bits = ParseField(kDayOfMonth, fields[2]);
  if (!bits.ok()) return bits.status();
  cron.days_of_month_ = static_cast<std::uint32_t>(*bits);
  bits = ParseField(kMonth, fields[3]);
  if (!bits.ok()) return bits.status();
  cron.months_ = static_cast<std::uint32_t>(*bits);
  bits = ParseField(kDayOfWeek, fields[4]);
  if (!bits.ok()) return bits.status();
  // Sunday is 0 or 7.
  cron.days_of_week_ = static_cast<std::uint32_t>((*bits | (*bits >> 7)) & 0x7F);
  cron.day_of_month_star_ = absl::StartsWith(fields[2], "*");
  cron.day_of_week_star_ = absl::StartsWith(fields[4], "*");

  // With both day fields restricted, any weekday fires, and every month has each one.
  // Otherwise a day must match both fields; a date fires iff it exists, because over
  // kCronSearchYears every date (the 29th of February included) falls on every weekday.
  cron.can_ever_match_ = !cron.day_of_month_star_ && !cron.day_of_week_star_;
  for (int month = 1; month <= 12 && !cron.can_ever_match_; ++month) {
    if (!HasBit(cron.months_, month)) continue;
    const std::uint64_t existing_days = (std::uint64_t{1} << (kMaxDaysInMonth[month] + 1)) - 2;
    cron.can_ever_match_ = (cron.days_of_month_ & existing_days) != 0;
  }
  return cron;
}

bool CronExpression::DayMatches(absl::CivilDay day) const {
  const bool day_of_month = HasBit(days_of_month_, day.day());
  const bool day_of_week = HasBit(days_of_week_, CronWeekday(day));
  if (day_of_month_star_ || day_of_week_star_) return day_of_month && day_of_week;
  return day_of_month || day_of_week;
}

bool CronExpression::Matches(absl::CivilMinute minute) const {
  return HasBit(months_, minute.month()) && DayMatches(absl::CivilDay(minute)) &&
         HasBit(hours_, minute.hour()) && HasBit(minutes_, minute.minute());
}

std::optional<absl::CivilMinute> CronExpression::NextMatchAtOrAfter(
    absl::CivilMinute from, absl::civil_year_t last_year) const {
  absl::CivilMinute c = from;
  while (c.year() <= last_year) {
    const int month = NextBit(months_, c.month());
    if (month < 0) {
      c = absl::CivilMinute(absl::CivilYear(c) + 1);
      continue;
    }
    if (month != c.month()) {
      c = absl::CivilMinute(c.year(), month, 1, 0, 0);
      continue;
    }
    if (!DayMatches(absl::CivilDay(c))) {
      c = absl::CivilMinute(absl::CivilDay(c) + 1);
      continue;
    }
    const int hour = NextBit(hours_, c.hour());
    if (hour < 0) {
      c = absl::CivilMinute(absl::CivilDay(c) + 1);
      continue;
    }
    if (hour != c.hour()) c = absl::CivilMinute(c.year(), c.month(), c.day(), hour, 0);
    const int minute = NextBit(minutes_, c.minute());
    if (minute < 0) {
      c = absl::CivilMinute(absl::CivilHour(c) + 1);
      continue;
    }
    return absl::CivilMinute(c.year(), c.month(), c.day(), c.hour(), minute);
  }
  return std::nullopt;
}

absl::Time CronExpression::NextAfter(absl::Time after, absl::TimeZone zone) const {
  if (!can_ever_match_ || after == absl::InfiniteFuture() || after == absl::InfinitePast()) {
    return absl::InfiniteFuture();
  }
  // Slots at or before the wall-clock minute of `after` fire at or before `after`.
  absl::CivilMinute from = absl::CivilMinute(zone.At(after).cs) + 1;
  const absl::civil_year_t last_year = from.year() + kCronSearchYears;
  // Fire times never decrease as wall-clock slots increase, so the first slot whose
  // fire time is past `after` is the answer. Only when `after` is in the second pass of
  // a repeated interval do the next few slots (those of that interval, already fired
  // at their first occurrence) fire earlier; they are stepped over here.
  for (;;) {
    const std::optional<absl::CivilMinute> slot = NextMatchAtOrAfter(from, last_year);
    if (!slot.has_value()) return absl::InfiniteFuture();
    const absl::Time fire = FireTime(*slot, zone);
    if (fire > after) return fire;
    from = *slot + 1;
  }
}

absl::StatusOr<absl::TimeZone> LoadCronTimeZone(std::string_view name) {
  const absl::string_view text(name.data(), name.size());
  if (text.empty()) return absl::UTCTimeZone();
  absl::TimeZone zone;
  if (!LooksLikeZoneName(text) || !absl::LoadTimeZone(std::string(text), &zone)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown time zone ", Quote(text.substr(0, kMaxQuotedZoneName)),
                     ": use an IANA name such as \"Europe/Paris\", or empty for UTC"));
  }
  return zone;
}

}  // namespace cohort::scheduler
