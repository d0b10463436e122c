// Every Cohort binary's command line, as the README documents it: --version prints
// one line and exits 0; an unknown flag, a stray argument and a malformed value exit 2
// with one line on stderr naming the flag, the value and the reason; --help lists
// dashed flag names.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/version.h"
#include "tests/cli/run_process.h"
#include "tests/testing/runfiles.h"

namespace cohort::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

struct Binary {
  const char* path;          // workspace-relative
  const char* name;          // what it calls itself
  std::vector<std::string> bad_value;  // arguments with one malformed value
  const char* bad_flag;      // the flag bad_value names, dashed
  const char* bad_text;      // the value it quotes
  const char* reason;        // part of the reason given
  const char* dashed_flag;   // a multi-word flag --help must show with dashes
};

std::vector<Binary> Binaries() {
  return {
      {"services/broker/cohort-broker", "cohort-broker", {"--lease=abc"}, "--lease", "abc", "use a duration",
       "--metrics-listen"},
      {"services/scheduler/cohort-scheduler", "cohort-scheduler", {"--max-schedules", "many"}, "--max-schedules",
       "many", "use a whole number", "--min-interval"},
      {"services/executor/cohort-executor", "cohort-executor", {"--capacity=1x"}, "--capacity", "1x",
       "use a whole number", "--drain-grace"},
      {"services/dev/cohort-dev", "cohort-dev", {"--drain_grace=soon"}, "--drain-grace", "soon", "use a duration",
       "--data-dir"},
      {"services/dev/cohort-demo", "cohort-demo", {"--jobs=lots"}, "--jobs", "lots", "use a whole number",
       "--step-timeout"},
      {"services/console/cohort-console", "cohort-console", {"--http-threads=-"}, "--http-threads", "-",
       "use a whole number", "--metrics-listen"},
      {"services/cli/cohortctl", "cohortctl", {"submit", "--priority=abc", "q", "builtin.noop"}, "--priority", "abc",
       "use a whole number", "--tls-server-name"},
  };
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

class CommandLineTest : public ::testing::TestWithParam<Binary> {};

TEST_P(CommandLineTest, VersionPrintsOneLineAndExitsZero) {
  const Binary& b = GetParam();
  absl::StatusOr<ProcessResult> r = RunProcess(BinaryPath(b.path), {"--version"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->stderr_text;
  EXPECT_THAT(r->stdout_text, StartsWith(absl::StrCat(b.name, " ", common::kCohortVersion, " (")));
  EXPECT_EQ(Lines(r->stdout_text).size(), 1u) << r->stdout_text;
  EXPECT_EQ(r->stderr_text, "");
}

TEST_P(CommandLineTest, AnUnknownFlagExitsTwoNamingIt) {
  const Binary& b = GetParam();
  absl::StatusOr<ProcessResult> r = RunProcess(BinaryPath(b.path), {"--no-such-flag=1"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_EQ(r->stderr_text, absl::StrCat(b.name, ": unknown flag --no-such-flag (see --help)\n"));
  EXPECT_EQ(r->stdout_text, "");
}

TEST_P(CommandLineTest, AStrayArgumentExitsTwoNamingIt) {
  const Binary& b = GetParam();
  absl::StatusOr<ProcessResult> r = RunProcess(BinaryPath(b.path), {"stray-arg"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 2);
  // cohortctl's first argument is its command; the services take only flags.
  EXPECT_EQ(r->stderr_text, b.name == std::string("cohortctl")
                                ? "cohortctl: unknown command \"stray-arg\" (see cohortctl --help)\n"
                                : absl::StrCat(b.name, ": unexpected argument \"stray-arg\": ", b.name,
                                               " takes only flags (see --help)\n"));
  EXPECT_EQ(r->stdout_text, "");
}

TEST_P(CommandLineTest, AMalformedValueExitsTwoNamingFlagValueAndReason) {
  const Binary& b = GetParam();
  absl::StatusOr<ProcessResult> r = RunProcess(BinaryPath(b.path), b.bad_value);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 2);
  ASSERT_EQ(Lines(r->stderr_text).size(), 1u) << r->stderr_text;
  EXPECT_THAT(r->stderr_text,
              StartsWith(absl::StrCat(b.name, ": ", b.bad_flag, " \"", b.bad_text, "\" is invalid: ", b.reason)));
}

TEST_P(CommandLineTest, AHugeValueIsQuotedOnlyInPart) {
  const Binary& b = GetParam();
  std::vector<std::string> args = b.bad_value;
  std::string& last_flag = b.name == std::string("cohortctl") ? args[1] : args.back();
  last_flag = absl::StrCat(b.bad_flag, "=", std::string(100'000, '7'), "x");
  absl::StatusOr<ProcessResult> r = RunProcess(BinaryPath(b.path), args);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_THAT(r->stderr_text, HasSubstr("is invalid"));
  EXPECT_LT(r->stderr_text.size(), 500u);
}

TEST_P(CommandLineTest, HelpListsFlagsWithDashesAndExitsZero) {
  const Binary& b = GetParam();
  absl::StatusOr<ProcessResult> r = RunProcess(BinaryPath(b.path), {"--help"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->stderr_text;
  EXPECT_THAT(r->stdout_text, HasSubstr(b.dashed_flag));
  EXPECT_THAT(r->stdout_text, HasSubstr("--version"));
  std::string underscored = std::string(b.dashed_flag).substr(2);
  std::replace(underscored.begin(), underscored.end(), '-', '_');
  EXPECT_THAT(r->stdout_text, Not(HasSubstr(absl::StrCat("--", underscored))));
}

INSTANTIATE_TEST_SUITE_P(EveryBinary, CommandLineTest, ::testing::ValuesIn(Binaries()),
                         [](const ::testing::TestParamInfo<Binary>& info) {
                           std::string name = info.param.name;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace cohort::testing
