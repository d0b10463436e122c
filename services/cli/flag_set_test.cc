#include "services/cli/flag_set.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cohort::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(FlagSet, ParsesBothSpellingsAndKeepsPositionalsInOrder) {
  FlagSet flags("t", "t");
  int priority = 0;
  absl::Duration delay;
  bool wait = false;
  flags.Add("priority", &priority, "p");
  flags.Add("delay", &delay, "d");
  flags.Add("wait", &wait, "w");
  absl::StatusOr<ParsedArgs> parsed =
      flags.Parse({"q", "--priority", "-5", "kind", "--delay=1m30s", "--wait", "payload"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(priority, -5);
  EXPECT_EQ(delay, absl::Seconds(90));
  EXPECT_TRUE(wait);
  EXPECT_THAT(parsed->positional, ElementsAre("q", "kind", "payload"));
  EXPECT_TRUE(flags.IsSet("delay"));
}

TEST(FlagSet, RepeatedListFlagKeepsEveryValueAndDashesEndFlags) {
  FlagSet flags("t", "t");
  std::vector<std::string> labels;
  flags.AddList("label", &labels, "l");
  absl::StatusOr<ParsedArgs> parsed = flags.Parse({"--label=a=1", "--label", "b=2", "-", "--", "/bin/sh", "--label=x"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(labels, ElementsAre("a=1", "b=2"));
  EXPECT_THAT(parsed->positional, ElementsAre("-"));
  EXPECT_THAT(parsed->after_dashes, ElementsAre("/bin/sh", "--label=x"));
}

TEST(FlagSet, UnknownFlagMissingValueAndBadValueAreInvalidArgument) {
  FlagSet flags("t", "t");
  int n = 0;
  flags.Add("n", &n, "n");
  absl::StatusOr<ParsedArgs> unknown = flags.Parse({"--bogus"});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown flag --bogus"));
  EXPECT_EQ(flags.Parse({"--n"}).status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<ParsedArgs> bad = flags.Parse({"--n=three"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("--n \"three\" is invalid"));
}

TEST(FlagSet, OwnFlagShadowsTheInheritedOneOfTheSameName) {
  FlagSet global("g", "g");
  absl::Duration global_timeout = absl::Seconds(5);
  std::string server = "a:1";
  global.Add("timeout", &global_timeout, "rpc deadline");
  global.Add("server", &server, "server", "HOST:PORT");
  FlagSet command("c", "c");
  absl::Duration wait_timeout;
  command.Add("timeout", &wait_timeout, "wait bound");
  command.Inherit(&global);
  ASSERT_TRUE(command.Parse({"--timeout=2s", "--server=b:2"}).ok());
  EXPECT_EQ(wait_timeout, absl::Seconds(2));
  EXPECT_EQ(global_timeout, absl::Seconds(5));
  EXPECT_EQ(server, "b:2");
  const std::string help = command.Help();
  EXPECT_THAT(help, HasSubstr("--server=HOST:PORT"));
  EXPECT_THAT(help, HasSubstr("wait bound"));
  EXPECT_THAT(help, Not(HasSubstr("rpc deadline")));
}

TEST(FlagSet, StopAtPositionalLeavesTheCommandAndItsArguments) {
  FlagSet global("g", "g");
  std::string server;
  global.Add("server", &server, "s");
  absl::StatusOr<ParsedArgs> parsed =
      global.Parse({"--server=h:1", "submit", "--priority=3"}, FlagSet::Mode::kStopAtPositional);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->consumed, 1u);
  EXPECT_EQ(server, "h:1");
}

TEST(FlagSet, HelpFlagIsReportedNotParsed) {
  FlagSet flags("cohortctl x [flags]", "Does x.");
  absl::StatusOr<ParsedArgs> parsed = flags.Parse({"--help"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->help);
  EXPECT_THAT(flags.Help(), HasSubstr("usage: cohortctl x [flags]"));
}

TEST(ParseChoice, NamesTheFlagAndTheChoices) {
  absl::StatusOr<int> ok = ParseChoice<int>("return-when", "all-completed", {{"first-completed", 1}, {"all-completed", 3}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 3);
  absl::StatusOr<int> bad = ParseChoice<int>("return-when", "soon", {{"first-completed", 1}, {"all-completed", 3}});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "--return-when \"soon\" is invalid: use first-completed, all-completed");
}

}  // namespace
}  // namespace cohort::cli
