#include "services/scheduler/cron/cron_expression.h"

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cohort::scheduler {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

CronExpression MustParse(std::string_view text) {
  absl::StatusOr<CronExpression> cron = CronExpression::Parse(text);
  EXPECT_TRUE(cron.ok()) << text << ": " << cron.status();
  return cron.ok() ? *cron : *CronExpression::Parse("* * * * *");
}

absl::TimeZone Zone(std::string_view name) {
  absl::StatusOr<absl::TimeZone> zone = LoadCronTimeZone(name);
  EXPECT_TRUE(zone.ok()) << zone.status();
  return zone.ok() ? *zone : absl::UTCTimeZone();
}

absl::Time Utc(int year, int month, int day, int hour, int minute, int second = 0) {
  return absl::FromCivil(absl::CivilSecond(year, month, day, hour, minute, second),
                         absl::UTCTimeZone());
}

std::string Local(absl::Time time, absl::TimeZone zone) {
  return absl::FormatTime("%Y-%m-%d %H:%M %Z", time, zone);
}

std::string InUtc(absl::Time time) { return Local(time, absl::UTCTimeZone()); }

// Every fire of `cron` in [from, to).
std::vector<absl::Time> Fires(const CronExpression& cron, absl::TimeZone zone, absl::Time from,
                              absl::Time to) {
  std::vector<absl::Time> fires;
  for (absl::Time t = cron.NextAfter(from - absl::Nanoseconds(1), zone); t < to;
       t = cron.NextAfter(t, zone)) {
    fires.push_back(t);
  }
  return fires;
}

// The values of one field that match, the other fields being "*" (or "0" for the
// minute and hour where another field is under test).
std::vector<int> Minutes(std::string_view field) {
  const CronExpression cron = MustParse(std::string(field) + " * * * *");
  std::vector<int> values;
  for (int m = 0; m < 60; ++m) {
    if (cron.Matches(absl::CivilMinute(2024, 1, 1, 0, m))) values.push_back(m);
  }
  return values;
}

std::vector<int> Hours(std::string_view field) {
  const CronExpression cron = MustParse("0 " + std::string(field) + " * * *");
  std::vector<int> values;
  for (int h = 0; h < 24; ++h) {
    if (cron.Matches(absl::CivilMinute(2024, 1, 1, h, 0))) values.push_back(h);
  }
  return values;
}

std::vector<int> Months(std::string_view field) {
  const CronExpression cron = MustParse("0 0 1 " + std::string(field) + " *");
  std::vector<int> values;
  for (int month = 1; month <= 12; ++month) {
    if (cron.Matches(absl::CivilMinute(2024, month, 1, 0, 0))) values.push_back(month);
  }
  return values;
}

// 0 = Sunday: 2024-01-07 was a Sunday.
std::vector<int> Weekdays(std::string_view field) {
  const CronExpression cron = MustParse("0 0 * * " + std::string(field));
  std::vector<int> values;
  for (int d = 0; d < 7; ++d) {
    if (cron.Matches(absl::CivilMinute(absl::CivilDay(2024, 1, 7) + d))) values.push_back(d);
  }
  return values;
}

std::vector<int> DaysOfMonth(std::string_view field) {
  const CronExpression cron = MustParse("0 0 " + std::string(field) + " * *");
  std::vector<int> values;
  for (int d = 1; d <= 31; ++d) {
    if (cron.Matches(absl::CivilMinute(2024, 1, d, 0, 0))) values.push_back(d);
  }
  return values;
}

// ---- Parsing ----

TEST(CronParse, AcceptsNumbersListsRangesAndStar) {
  EXPECT_EQ(Minutes("*").size(), 60u);
  EXPECT_THAT(Minutes("7"), ElementsAre(7));
  EXPECT_THAT(Minutes("0,15,59"), ElementsAre(0, 15, 59));
  EXPECT_THAT(Hours("9-12"), ElementsAre(9, 10, 11, 12));
  EXPECT_THAT(Hours("1-3,22,5-5"), ElementsAre(1, 2, 3, 5, 22));
  EXPECT_THAT(DaysOfMonth("1,31"), ElementsAre(1, 31));
  EXPECT_THAT(Months("12"), ElementsAre(12));
}

TEST(CronParse, AcceptsStepsIncludingVixieStartSlashStep) {
  EXPECT_THAT(Minutes("*/15"), ElementsAre(0, 15, 30, 45));
  EXPECT_THAT(Minutes("10-30/10"), ElementsAre(10, 20, 30));
  EXPECT_THAT(Minutes("5/20"), ElementsAre(5, 25, 45));  // "5-59/20"
  EXPECT_THAT(Hours("*/7"), ElementsAre(0, 7, 14, 21));
  EXPECT_THAT(DaysOfMonth("*/10"), ElementsAre(1, 11, 21, 31));  // the range starts at 1
  EXPECT_THAT(Months("*/4"), ElementsAre(1, 5, 9));
  EXPECT_THAT(Minutes("0-4/2,50/5"), ElementsAre(0, 2, 4, 50, 55));
  EXPECT_THAT(Minutes("*/59"), ElementsAre(0, 59));
}

TEST(CronParse, AcceptsMonthAndDayNamesInAnyCase) {
  EXPECT_THAT(Months("JAN"), ElementsAre(1));
  EXPECT_THAT(Months("jan-Mar,dec"), ElementsAre(1, 2, 3, 12));
  EXPECT_THAT(Months("FEB/3"), ElementsAre(2, 5, 8, 11));
  EXPECT_THAT(Weekdays("MON-FRI"), ElementsAre(1, 2, 3, 4, 5));
  EXPECT_THAT(Weekdays("sun,Sat"), ElementsAre(0, 6));
}

TEST(CronParse, TreatsSundayAsZeroOrSeven) {
  EXPECT_THAT(Weekdays("0"), ElementsAre(0));
  EXPECT_THAT(Weekdays("7"), ElementsAre(0));
  EXPECT_THAT(Weekdays("5-7"), ElementsAre(0, 5, 6));
  EXPECT_THAT(Weekdays("FRI-SUN"), ElementsAre(0, 5, 6));  // SUN ending a range is 7
  EXPECT_THAT(Weekdays("0-7"), ElementsAre(0, 1, 2, 3, 4, 5, 6));
}

TEST(CronParse, AcceptsTabsAndSurroundingBlanks) {
  EXPECT_TRUE(CronExpression::Parse("  0\t9  * *\tMON  ").ok());
}

TEST(CronParse, NamesTheFieldAndTheValueThatIsOutOfRange) {
  absl::StatusOr<CronExpression> cron = CronExpression::Parse("0 25 * * *");
  EXPECT_EQ(cron.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cron.status().message(), "cron: hour \"25\" is out of range 0-23");
}

struct BadExpression {
  const char* expression;
  const char* message;
};

TEST(CronParse, RejectsEveryKindOfBadExpressionWithAClearMessage) {
  const BadExpression cases[] = {
      // Shape of the expression.
      {"",
       "cron: expression is empty: use 5 fields \"minute hour day-of-month month "
       "day-of-week\""},
      {"  \t ", "cron: expression is empty"},
      {"0 0 * *",
       "cron: \"0 0 * *\" has 4 fields, want 5 (minute hour day-of-month month "
       "day-of-week)"},
      {"0 0 0 * * *",
       "has 6 fields, want 5 (minute hour day-of-month month day-of-week): "
       "seconds and year fields are not supported"},
      {"0 0 0 * * * 2030", "has 7 fields, want 5"},
      {"@daily", "cron: macro \"@daily\" is not supported: write the 5 fields"},
      {"@reboot", "cron: macro \"@reboot\" is not supported"},
      // Out of range, one per field.
      {"60 * * * *", "cron: minute \"60\" is out of range 0-59"},
      {"0 24 * * *", "cron: hour \"24\" is out of range 0-23"},
      {"0 0 0 * *", "cron: day-of-month \"0\" is out of range 1-31"},
      {"0 0 32 * *", "cron: day-of-month \"32\" is out of range 1-31"},
      {"0 0 * 0 *", "cron: month \"0\" is out of range 1-12"},
      {"0 0 * 13 *", "cron: month \"13\" is out of range 1-12"},
      {"0 0 * * 8", "cron: day-of-week \"8\" is out of range 0-7"},
      {"0 1-30 * * *", "cron: hour \"30\" is out of range 0-23"},
      {"99999999999999999999 * * * *",
       "cron: minute \"99999999999999999999\" is out of range 0-59"},
      // Not numbers, unknown names.
      {"x * * * *", "cron: minute \"x\" is not a number: use 0-59"},
      {"0 JAN * * *", "cron: hour \"JAN\" is not a number: use 0-23"},
      {"0 0 * FOO *", "cron: month \"FOO\" is not a number or name: use 1-12 or JAN-DEC"},
      {"0 0 * MON *", "cron: month \"MON\" is not a number or name"},
      {"0 0 * * MONDAY",
       "cron: day-of-week \"MONDAY\" is not a number or name: use 0-7 or "
       "SUN-SAT"},
      {"0 0 * * L", "cron: day-of-week \"L\" is not a number or name"},
      {"0 0 ? * *", "cron: day-of-month \"?\" is not a number: use 1-31"},
      {"-1 * * * *", "cron: minute \"-1\" is missing a value: use 0-59"},
      {"5- * * * *", "cron: minute \"5-\" is missing a value"},
      // Lists.
      {"1,,2 * * * *", "cron: minute \"1,,2\" has an empty list item"},
      {"0 , * * *", "cron: hour \",\" has an empty list item"},
      {"0 0 1, * *", "cron: day-of-month \"1,\" has an empty list item"},
      // Steps.
      {"*/0 * * * *", "cron: minute \"*/0\" has a zero step: use a step of at least 1"},
      {"0 0 1-10/0 * *", "cron: day-of-month \"1-10/0\" has a zero step"},
      {"*/60 * * * *", "cron: minute \"*/60\" has a step out of range 1-59"},
      {"0 0 * */13 *", "cron: month \"*/13\" has a step out of range 1-12"},
      {"0 */x * * *", "cron: hour \"*/x\" has a step that is not a number"},
      {"0 5/ * * *", "cron: hour \"5/\" has a step that is not a number"},
      {"*/2/3 * * * *", "cron: minute \"*/2/3\" has more than one \"/\""},
      // Ranges.
      {"0 5-2 * * *", "cron: hour \"5-2\" is a reversed range: write the lower value first"},
      {"0 0 * DEC-JAN *", "cron: month \"DEC-JAN\" is a reversed range"},
      {"0 0 * * SAT-MON", "cron: day-of-week \"SAT-MON\" is a reversed range"},
      {"1-2-3 * * * *", "cron: minute \"1-2-3\" has more than one \"-\""},
  };
  for (const BadExpression& bad : cases) {
    absl::StatusOr<CronExpression> cron = CronExpression::Parse(bad.expression);
    EXPECT_EQ(cron.status().code(), absl::StatusCode::kInvalidArgument) << bad.expression;
    EXPECT_THAT(cron.status().message(), HasSubstr(bad.message)) << bad.expression;
  }
}

TEST(CronParse, RejectsExpressionsOverTheLengthLimit) {
  std::string text = "0";
  while (text.size() <= kMaxCronExpressionLength) text += ",0";
  text += " * * * *";
  absl::StatusOr<CronExpression> cron = CronExpression::Parse(text);
  EXPECT_EQ(cron.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(cron.status().message(), HasSubstr("the limit is 1024"));
}

// ---- Days: Vixie's rule ----

TEST(CronDays, BothDayFieldsRestrictedFireOnEither) {
  const CronExpression cron = MustParse("0 0 13 * 5");                // the 13th, and Fridays
  EXPECT_TRUE(cron.Matches(absl::CivilMinute(2024, 10, 13, 0, 0)));   // Sunday the 13th
  EXPECT_TRUE(cron.Matches(absl::CivilMinute(2024, 10, 18, 0, 0)));   // a Friday
  EXPECT_TRUE(cron.Matches(absl::CivilMinute(2024, 9, 13, 0, 0)));    // Friday the 13th
  EXPECT_FALSE(cron.Matches(absl::CivilMinute(2024, 10, 14, 0, 0)));  // Monday the 14th
}

TEST(CronDays, OneRestrictedDayFieldFiltersAlone) {
  const CronExpression fridays = MustParse("0 0 * * 5");
  EXPECT_TRUE(fridays.Matches(absl::CivilMinute(2024, 10, 18, 0, 0)));
  EXPECT_FALSE(fridays.Matches(absl::CivilMinute(2024, 10, 13, 0, 0)));
  const CronExpression thirteenths = MustParse("0 0 13 * *");
  EXPECT_TRUE(thirteenths.Matches(absl::CivilMinute(2024, 10, 13, 0, 0)));
  EXPECT_FALSE(thirteenths.Matches(absl::CivilMinute(2024, 10, 18, 0, 0)));
}

TEST(CronDays, AFieldStartingWithStarCountsAsUnrestrictedAsInVixieCron) {
  // "*/2" starts with "*": Vixie (entry.c) sets DOM_STAR, so both fields must match:
  // odd days that are Mondays.
  const CronExpression star_step = MustParse("0 0 */2 * 1");
  EXPECT_TRUE(star_step.Matches(absl::CivilMinute(2024, 10, 7, 0, 0)));    // Monday the 7th
  EXPECT_FALSE(star_step.Matches(absl::CivilMinute(2024, 10, 14, 0, 0)));  // Monday the 14th
  EXPECT_FALSE(star_step.Matches(absl::CivilMinute(2024, 10, 9, 0, 0)));   // Wednesday the 9th
  // The same days spelled without the star are restricted: odd days, and all Mondays.
  const CronExpression range_step = MustParse("0 0 1-31/2 * 1");
  EXPECT_TRUE(range_step.Matches(absl::CivilMinute(2024, 10, 7, 0, 0)));
  EXPECT_TRUE(range_step.Matches(absl::CivilMinute(2024, 10, 14, 0, 0)));
  EXPECT_TRUE(range_step.Matches(absl::CivilMinute(2024, 10, 9, 0, 0)));
  EXPECT_FALSE(range_step.Matches(absl::CivilMinute(2024, 10, 10, 0, 0)));  // Thursday 10th
}

// ---- Next slot, in UTC ----

TEST(CronNextAfter, ReturnsTheFirstSlotStrictlyAfter) {
  const CronExpression every_minute = MustParse("* * * * *");
  EXPECT_EQ(every_minute.NextAfter(Utc(2024, 5, 1, 10, 0, 30), absl::UTCTimeZone()),
            Utc(2024, 5, 1, 10, 1));
  EXPECT_EQ(every_minute.NextAfter(Utc(2024, 5, 1, 10, 0), absl::UTCTimeZone()),
            Utc(2024, 5, 1, 10, 1));
  EXPECT_EQ(
      every_minute.NextAfter(Utc(2024, 5, 1, 10, 0) - absl::Nanoseconds(1), absl::UTCTimeZone()),
      Utc(2024, 5, 1, 10, 0));
}

TEST(CronNextAfter, CrossesDayMonthAndYearEnds) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  EXPECT_EQ(MustParse("0 0 1 1 *").NextAfter(Utc(2024, 6, 15, 8, 0), utc), Utc(2025, 1, 1, 0, 0));
  EXPECT_EQ(MustParse("59 23 31 12 *").NextAfter(Utc(2024, 12, 31, 23, 59), utc),
            Utc(2025, 12, 31, 23, 59));
  EXPECT_EQ(MustParse("0 0 31 * *").NextAfter(Utc(2024, 1, 31, 0, 0), utc),
            Utc(2024, 3, 31, 0, 0));  // February has no 31st
  EXPECT_EQ(MustParse("30 8 * * *").NextAfter(Utc(2024, 2, 29, 9, 0), utc), Utc(2024, 3, 1, 8, 30));
  EXPECT_EQ(MustParse("*/15 9-17 * * MON-FRI").NextAfter(Utc(2024, 10, 11, 17, 50), utc),
            Utc(2024, 10, 14, 9, 0));  // Friday evening to Monday morning
}

TEST(CronNextAfter, FindsTheTwentyNinthOfFebruaryOnlyInLeapYears) {
  const CronExpression leap_day = MustParse("0 0 29 2 *");
  const absl::TimeZone utc = absl::UTCTimeZone();
  EXPECT_EQ(leap_day.NextAfter(Utc(2023, 3, 1, 0, 0), utc), Utc(2024, 2, 29, 0, 0));
  EXPECT_EQ(leap_day.NextAfter(Utc(2024, 2, 29, 0, 0), utc), Utc(2028, 2, 29, 0, 0));
  // 2100 is not a leap year (divisible by 100, not by 400); 2000 was.
  EXPECT_EQ(leap_day.NextAfter(Utc(2096, 3, 1, 0, 0), utc), Utc(2104, 2, 29, 0, 0));
  EXPECT_EQ(leap_day.NextAfter(Utc(1997, 1, 1, 0, 0), utc), Utc(2000, 2, 29, 0, 0));
}

TEST(CronNextAfter, FindsRareSlotsDecadesAhead) {
  // "*/7" starts with "*", so the 29th of February must also be a Sunday: 2004, 2032,
  // 2060, 2088, then 2128 (2100 is no leap year), 40 years on.
  const CronExpression leap_sunday = MustParse("0 12 29 2 */7");
  ASSERT_TRUE(leap_sunday.CanEverMatch());
  const absl::TimeZone utc = absl::UTCTimeZone();
  EXPECT_EQ(leap_sunday.NextAfter(Utc(2005, 1, 1, 0, 0), utc), Utc(2032, 2, 29, 12, 0));
  EXPECT_EQ(leap_sunday.NextAfter(Utc(2088, 3, 1, 0, 0), utc), Utc(2128, 2, 29, 12, 0));
}

TEST(CronNextAfter, ReturnsInfiniteFutureForExpressionsThatNeverFire) {
  for (const char* never : {"0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 2 */7", "0 0 30-31 2 *"}) {
    const CronExpression cron = MustParse(never);
    EXPECT_FALSE(cron.CanEverMatch()) << never;
    EXPECT_EQ(cron.NextAfter(Utc(2024, 1, 1, 0, 0), absl::UTCTimeZone()), absl::InfiniteFuture())
        << never;
  }
  // With both day fields restricted, Mondays in February still fire.
  const CronExpression or_rule = MustParse("0 0 30 2 1");
  EXPECT_TRUE(or_rule.CanEverMatch());
  EXPECT_EQ(or_rule.NextAfter(Utc(2024, 1, 1, 0, 0), absl::UTCTimeZone()), Utc(2024, 2, 5, 0, 0));
}

TEST(CronNextAfter, ReturnsInfiniteFutureAfterAnInfiniteTime) {
  const CronExpression cron = MustParse("* * * * *");
  EXPECT_EQ(cron.NextAfter(absl::InfiniteFuture(), absl::UTCTimeZone()), absl::InfiniteFuture());
  EXPECT_EQ(cron.NextAfter(absl::InfinitePast(), absl::UTCTimeZone()), absl::InfiniteFuture());
}

TEST(CronNextAfter, AgreesWithAMinuteByMinuteScan) {
  // Eighty days across a year end and a leap day, every wall-clock minute checked.
  const absl::CivilMinute start(2023, 12, 20, 0, 0);
  const absl::CivilMinute end(2024, 3, 10, 0, 0);
  const absl::TimeZone utc = absl::UTCTimeZone();
  for (const char* text :
       {"* * * * *", "*/7 */5 * * *", "5/20 1-3 1,15 * *", "0 0 13 * 5", "0 12 */2 * 1",
        "30 4 * 2 0", "0 0 29 2 *", "0 0 1-7 * MON", "59 23 31 DEC,JAN *"}) {
    const CronExpression cron = MustParse(text);
    std::vector<absl::Time> scanned;
    for (absl::CivilMinute m = start; m < end; ++m) {
      if (cron.Matches(m)) scanned.push_back(absl::FromCivil(m, utc));
    }
    const std::vector<absl::Time> stepped =
        Fires(cron, utc, absl::FromCivil(start, utc), absl::FromCivil(end, utc));
    EXPECT_EQ(stepped, scanned) << text;
    EXPECT_FALSE(scanned.empty()) << text;
  }
}

// ---- Next slot across DST ----

TEST(CronDst, ParisSpringForwardFiresASkippedSlotOnceAtThreeOClock) {
  // 2024-03-31 02:00 CET jumps to 03:00 CEST.
  const absl::TimeZone paris = Zone("Europe/Paris");
  const CronExpression half_past_two = MustParse("30 2 * * *");
  const absl::Time fire = half_past_two.NextAfter(Utc(2024, 3, 30, 12, 0), paris);
  EXPECT_EQ(Local(fire, paris), "2024-03-31 03:00 CEST");
  EXPECT_EQ(fire, Utc(2024, 3, 31, 1, 0));
  EXPECT_EQ(Local(half_past_two.NextAfter(fire, paris), paris), "2024-04-01 02:30 CEST");
}

TEST(CronDst, ParisSpringForwardLeavesSlotsOutsideTheGapAlone) {
  const absl::TimeZone paris = Zone("Europe/Paris");
  const absl::Time before = Utc(2024, 3, 30, 12, 0);
  EXPECT_EQ(Local(MustParse("30 1 * * *").NextAfter(before, paris), paris), "2024-03-31 01:30 CET");
  EXPECT_EQ(Local(MustParse("30 3 * * *").NextAfter(before, paris), paris),
            "2024-03-31 03:30 CEST");
}

TEST(CronDst, ParisSpringForwardCollapsesSlotsOfTheGapIntoOneFire) {
  const absl::TimeZone paris = Zone("Europe/Paris");
  const CronExpression half_hourly = MustParse("*/30 * * * *");
  // From 01:30 CET: 02:00, 02:30 and 03:00 are all 03:00 CEST, fired once.
  absl::Time t = half_hourly.NextAfter(Utc(2024, 3, 31, 0, 30), paris);
  EXPECT_EQ(Local(t, paris), "2024-03-31 03:00 CEST");
  t = half_hourly.NextAfter(t, paris);
  EXPECT_EQ(Local(t, paris), "2024-03-31 03:30 CEST");
}

TEST(CronDst, HourlyFiresOncePerWallClockHourOnBothChangeDays) {
  const absl::TimeZone paris = Zone("Europe/Paris");
  const CronExpression hourly = MustParse("0 * * * *");
  // Spring: a 23-hour day, 02:00 fires as 03:00 together with 03:00.
  std::vector<absl::Time> spring =
      Fires(hourly, paris, absl::FromCivil(absl::CivilDay(2024, 3, 31), paris),
            absl::FromCivil(absl::CivilDay(2024, 4, 1), paris));
  ASSERT_EQ(spring.size(), 23u);
  EXPECT_EQ(Local(spring[1], paris), "2024-03-31 01:00 CET");
  EXPECT_EQ(Local(spring[2], paris), "2024-03-31 03:00 CEST");
  EXPECT_EQ(Local(spring[3], paris), "2024-03-31 04:00 CEST");
  // Autumn: a 25-hour day, 02:00 fires at its first occurrence only.
  std::vector<absl::Time> autumn =
      Fires(hourly, paris, absl::FromCivil(absl::CivilDay(2024, 10, 27), paris),
            absl::FromCivil(absl::CivilDay(2024, 10, 28), paris));
  ASSERT_EQ(autumn.size(), 24u);
  EXPECT_EQ(Local(autumn[2], paris), "2024-10-27 02:00 CEST");
  EXPECT_EQ(Local(autumn[3], paris), "2024-10-27 03:00 CET");
  EXPECT_EQ(autumn[3] - autumn[2], absl::Hours(2));
}

TEST(CronDst, ParisFallBackFiresARepeatedSlotOnceAtItsFirstOccurrence) {
  // 2024-10-27 03:00 CEST falls back to 02:00 CET: 02:00-02:59 happen twice.
  const absl::TimeZone paris = Zone("Europe/Paris");
  const CronExpression half_past_two = MustParse("30 2 * * *");
  std::vector<absl::Time> fires =
      Fires(half_past_two, paris, Utc(2024, 10, 26, 12, 0), Utc(2024, 10, 28, 12, 0));
  ASSERT_EQ(fires.size(), 2u);
  EXPECT_EQ(Local(fires[0], paris), "2024-10-27 02:30 CEST");
  EXPECT_EQ(fires[0], Utc(2024, 10, 27, 0, 30));
  EXPECT_EQ(Local(fires[1], paris), "2024-10-28 02:30 CET");
}

TEST(CronDst, FromInsideTheRepeatedHourTheNextSlotIsNotOneAlreadyFired) {
  const absl::TimeZone paris = Zone("Europe/Paris");
  const CronExpression quarterly = MustParse("*/15 * * * *");
  // 02:10 CEST (first pass): 02:15 CEST is next.
  EXPECT_EQ(Local(quarterly.NextAfter(Utc(2024, 10, 27, 0, 10), paris), paris),
            "2024-10-27 02:15 CEST");
  // 02:10 CET (second pass): 02:15..02:45 fired an hour ago, so 03:00 CET is next.
  EXPECT_EQ(Local(quarterly.NextAfter(Utc(2024, 10, 27, 1, 10), paris), paris),
            "2024-10-27 03:00 CET");
}

TEST(CronDst, NewYorkSpringForwardFiresTwoThirtyAtThreeEdt) {
  // 2024-03-10 02:00 EST jumps to 03:00 EDT.
  const absl::TimeZone new_york = Zone("America/New_York");
  const CronExpression half_past_two = MustParse("30 2 * * *");
  const absl::Time fire = half_past_two.NextAfter(Utc(2024, 3, 9, 17, 0), new_york);
  EXPECT_EQ(Local(fire, new_york), "2024-03-10 03:00 EDT");
  EXPECT_EQ(fire, Utc(2024, 3, 10, 7, 0));
  EXPECT_EQ(Local(half_past_two.NextAfter(fire, new_york), new_york), "2024-03-11 02:30 EDT");
  EXPECT_EQ(Local(MustParse("30 3 * * *").NextAfter(Utc(2024, 3, 9, 17, 0), new_york), new_york),
            "2024-03-10 03:30 EDT");

  const CronExpression hourly = MustParse("0 * * * *");
  const absl::Time one_am = Utc(2024, 3, 10, 6, 0);  // 01:00 EST
  const absl::Time three_am = hourly.NextAfter(one_am, new_york);
  EXPECT_EQ(Local(three_am, new_york), "2024-03-10 03:00 EDT");
  EXPECT_EQ(Local(hourly.NextAfter(three_am, new_york), new_york), "2024-03-10 04:00 EDT");
}

TEST(CronDst, NewYorkFallBackFiresOneThirtyOnce) {
  // 2024-11-03 02:00 EDT falls back to 01:00 EST: 01:00-01:59 happen twice.
  const absl::TimeZone new_york = Zone("America/New_York");
  std::vector<absl::Time> fires =
      Fires(MustParse("30 1 * * *"), new_york, Utc(2024, 11, 2, 12, 0), Utc(2024, 11, 4, 12, 0));
  ASSERT_EQ(fires.size(), 2u);
  EXPECT_EQ(Local(fires[0], new_york), "2024-11-03 01:30 EDT");
  EXPECT_EQ(fires[0], Utc(2024, 11, 3, 5, 30));
  EXPECT_EQ(Local(fires[1], new_york), "2024-11-04 01:30 EST");

  const CronExpression hourly = MustParse("0 * * * *");
  const absl::Time one_edt = Utc(2024, 11, 3, 5, 0);
  const absl::Time next = hourly.NextAfter(one_edt, new_york);
  EXPECT_EQ(Local(next, new_york), "2024-11-03 02:00 EST");
  EXPECT_EQ(next - one_edt, absl::Hours(2));
}

TEST(CronDst, ASkippedDayFiresItsSlotsAtTheStartOfTheNextDay) {
  // Samoa skipped 2011-12-30 entirely, moving across the date line.
  const absl::TimeZone apia = Zone("Pacific/Apia");
  const CronExpression noon = MustParse("0 12 * * *");
  const absl::Time skipped =
      noon.NextAfter(absl::FromCivil(absl::CivilDay(2011, 12, 29), apia) + absl::Hours(13), apia);
  EXPECT_EQ(absl::FormatTime("%Y-%m-%d %H:%M", skipped, apia), "2011-12-31 00:00");
  EXPECT_EQ(absl::FormatTime("%Y-%m-%d %H:%M", noon.NextAfter(skipped, apia), apia),
            "2011-12-31 12:00");
}

// ---- Time zones ----

TEST(CronTimeZone, EmptyMeansUtc) {
  absl::StatusOr<absl::TimeZone> zone = LoadCronTimeZone("");
  ASSERT_TRUE(zone.ok()) << zone.status();
  EXPECT_EQ(*zone, absl::UTCTimeZone());
}

TEST(CronTimeZone, LoadsIanaNames) {
  for (const char* name : {"UTC", "Europe/Paris", "America/New_York",
                           "America/Argentina/Buenos_Aires", "Etc/GMT+5", "Asia/Kolkata"}) {
    absl::StatusOr<absl::TimeZone> zone = LoadCronTimeZone(name);
    ASSERT_TRUE(zone.ok()) << name << ": " << zone.status();
    EXPECT_EQ(zone->name(), name);
  }
  EXPECT_EQ(InUtc(absl::FromCivil(absl::CivilMinute(2024, 7, 1, 12, 0), Zone("Asia/Kolkata"))),
            "2024-07-01 06:30 UTC");
}

TEST(CronTimeZone, RejectsUnknownNamesPathsAndTheHostZone) {
  for (const char* name :
       {"Mars/Olympus_Mons", "europe/paris", "/etc/localtime", "../../etc/passwd",
        "Europe/../Europe/Paris", "localtime", "Europe//Paris", "zone.tab", "Europe/Paris "}) {
    absl::StatusOr<absl::TimeZone> zone = LoadCronTimeZone(name);
    EXPECT_EQ(zone.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(zone.status().message(),
                HasSubstr(std::string("unknown time zone \"") + name + "\""))
        << name;
  }
}

}  // namespace
}  // namespace cohort::scheduler
