#include "services/cli/output.h"

#include "gtest/gtest.h"

namespace cohort::cli {
namespace {

TEST(Table, AlignsColumnsToTheWidestCellAndTrimsTheLastOne) {
  Table table({"ID", "STATE", "RESULT"});
  table.AddRow({"a", "SUCCEEDED", "x"});
  table.AddRow({"long-id", "FAILED", ""});
  EXPECT_EQ(table.Render(),
            "ID       STATE      RESULT\n"
            "a        SUCCEEDED  x\n"
            "long-id  FAILED\n");
}

TEST(Table, CountsUtf8CharactersNotBytes) {
  Table table;
  table.AddRow({"é", "1"});
  table.AddRow({"ab", "2"});
  EXPECT_EQ(table.Render(), "é   1\nab  2\n");
}

TEST(FormatAge, IsShortAtEveryScale) {
  EXPECT_EQ(FormatAge(absl::Milliseconds(850)), "850ms");
  EXPECT_EQ(FormatAge(absl::Seconds(12)), "12s");
  EXPECT_EQ(FormatAge(absl::Seconds(312)), "5m12s");
  EXPECT_EQ(FormatAge(absl::Minutes(185)), "3h05m");
  EXPECT_EQ(FormatAge(absl::Hours(51)), "2d03h");
  EXPECT_EQ(FormatAge(-absl::Seconds(3)), "0ms");
}

TEST(Excerpt, EscapesControlCharactersAndCutsLongText) {
  EXPECT_EQ(Excerpt("a\nb\tc\x01"), "a\\nb\\tc\\x01");
  EXPECT_EQ(Excerpt("abcdefgh", 5), "abcde...");
  EXPECT_EQ(Excerpt("abcde", 5), "abcde");
}

TEST(JobState, ParsesAnySpellingAndPrintsWithoutPrefix) {
  cohort::v1::JobState state;
  ASSERT_TRUE(ParseJobState("queued", &state));
  EXPECT_EQ(state, cohort::v1::JOB_STATE_QUEUED);
  ASSERT_TRUE(ParseJobState("JOB_STATE_FAILED", &state));
  EXPECT_EQ(state, cohort::v1::JOB_STATE_FAILED);
  EXPECT_FALSE(ParseJobState("unspecified", &state));
  EXPECT_FALSE(ParseJobState("done", &state));
  EXPECT_EQ(StateName(cohort::v1::JOB_STATE_CANCELLED), "CANCELLED");
}

TEST(OutcomeText, ShowsTheResultWithoutItsFinalNewlineOrTheError) {
  cohort::v1::JobOutcome ok;
  ok.set_result("hi\n");
  EXPECT_EQ(OutcomeText(ok), "hi");
  cohort::v1::JobOutcome failed;
  failed.mutable_error()->set_code("exit_status");
  failed.mutable_error()->set_message("exited with 3");
  EXPECT_EQ(OutcomeText(failed), "exit_status: exited with 3");
}

}  // namespace
}  // namespace cohort::cli
