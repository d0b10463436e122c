#include "services/broker/label_selector.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cohort::broker {
namespace {

using ::testing::HasSubstr;
using Labels = google::protobuf::Map<std::string, std::string>;

Labels MakeLabels(std::initializer_list<std::pair<const char*, const char*>> kv) {
  Labels labels;
  for (const auto& [k, v] : kv) labels[k] = v;
  return labels;
}

struct MatchCase {
  const char* selector;
  bool matches;  // against {team=data, tier=gold, empty=""}
};

class LabelSelectorMatchTest : public ::testing::TestWithParam<MatchCase> {};

TEST_P(LabelSelectorMatchTest, MatchesAsKubernetesDoes) {
  const MatchCase& c = GetParam();
  absl::StatusOr<LabelSelector> s = LabelSelector::Parse(c.selector);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->Matches(MakeLabels({{"team", "data"}, {"tier", "gold"}, {"empty", ""}})), c.matches) << c.selector;
}

INSTANTIATE_TEST_SUITE_P(
    Table, LabelSelectorMatchTest,
    ::testing::Values(MatchCase{"", true}, MatchCase{"   ", true}, MatchCase{"team=data", true},
                      MatchCase{"team==data", true}, MatchCase{"team=web", false}, MatchCase{"team!=web", true},
                      MatchCase{"team!=data", false}, MatchCase{"missing!=x", true},
                      MatchCase{"team in (web,data)", true}, MatchCase{"team in (web)", false},
                      MatchCase{"missing in (a)", false}, MatchCase{"team notin (web)", true},
                      MatchCase{"team notin (web, data)", false}, MatchCase{"missing notin (a)", true},
                      MatchCase{"team", true}, MatchCase{"missing", false}, MatchCase{"!missing", true},
                      MatchCase{"!team", false}, MatchCase{"empty=", true}, MatchCase{"empty", true},
                      MatchCase{" team = data , tier in ( gold ) , !canary ", true},
                      MatchCase{"team=data,tier=silver", false}, MatchCase{"team notin(web),tier", true},
                      MatchCase{"a.b/c-d_e=data", false}, MatchCase{"in", false}));

struct ErrorCase {
  const char* selector;
  const char* message_part;  // includes the byte offset
};

class LabelSelectorErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(LabelSelectorErrorTest, RejectsMalformedInputNamingThePosition) {
  const ErrorCase& c = GetParam();
  absl::StatusOr<LabelSelector> s = LabelSelector::Parse(c.selector, "filter.label_selector");
  ASSERT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << c.selector;
  EXPECT_THAT(s.status().message(), HasSubstr("filter.label_selector at byte "));
  EXPECT_THAT(s.status().message(), HasSubstr(c.message_part)) << s.status();
}

INSTANTIATE_TEST_SUITE_P(
    Table, LabelSelectorErrorTest,
    ::testing::Values(ErrorCase{",", "byte 0: expected a key"}, ErrorCase{"a,", "byte 2: expected a key"},
                      ErrorCase{"a,,b", "byte 2: expected a key"}, ErrorCase{"=v", "byte 0: expected a key"},
                      ErrorCase{"!", "byte 1: expected a key after \"!\""}, ErrorCase{"a b", "byte 2: expected \"=\""},
                      ErrorCase{"a!v", "byte 2: expected \"!=\""}, ErrorCase{"a===v", "byte 3: expected a value"},
                      ErrorCase{"a=v=w", "byte 3: expected \",\" or the end"},
                      ErrorCase{"a in b", "byte 5: expected \"(\""}, ErrorCase{"a in ()", "byte 6: expected a value"},
                      ErrorCase{"a in (x", "byte 7: expected \",\" or \")\""},
                      ErrorCase{"a in (x,)", "byte 8: expected a value"},
                      ErrorCase{"a notin (x y)", "byte 11: expected \",\" or \")\""},
                      ErrorCase{"a) ", "byte 1: expected \"=\""}, ErrorCase{"!a=b", "byte 2: expected \",\""}));

TEST(LabelSelector, QuotesOnlyABoundedPrefixOfTheText) {
  std::string text = "a in (" + std::string(900, 'x');
  absl::StatusOr<LabelSelector> s = LabelSelector::Parse(text);
  ASSERT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(s.status().message().size(), 400u);
  EXPECT_THAT(s.status().message(), HasSubstr("(906 bytes)"));
}

TEST(LabelSelector, RefusesTextOverOneKibibyte) {
  absl::StatusOr<LabelSelector> s = LabelSelector::Parse("k=" + std::string(1023, 'v'));
  ASSERT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("1025 bytes: the limit is 1024"));
  EXPECT_TRUE(LabelSelector::Parse("k=" + std::string(1022, 'v')).ok());
}

TEST(LabelSelector, RefusesMoreThanTwentyRequirements) {
  std::string twenty;
  for (int i = 0; i < 20; ++i) twenty += (i ? ",k" : "k") + std::to_string(i);
  absl::StatusOr<LabelSelector> ok = LabelSelector::Parse(twenty);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->requirements().size(), 20u);
  absl::StatusOr<LabelSelector> over = LabelSelector::Parse(twenty + ",k20");
  ASSERT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(over.status().message(), HasSubstr("more than 20 requirements"));
}

TEST(LabelSelector, ParsesEachOperatorIntoItsRequirement) {
  absl::StatusOr<LabelSelector> s = LabelSelector::Parse("a=1,b!=2,c in (y,x,y),d notin (z),e,!f");
  ASSERT_TRUE(s.ok()) << s.status();
  const auto& r = s->requirements();
  ASSERT_EQ(r.size(), 6u);
  EXPECT_EQ(r[0].op, LabelRequirement::Op::kEquals);
  EXPECT_EQ(r[1].op, LabelRequirement::Op::kNotEquals);
  EXPECT_EQ(r[2].op, LabelRequirement::Op::kIn);
  EXPECT_THAT(r[2].values, ::testing::ElementsAre("x", "y"));
  EXPECT_EQ(r[3].op, LabelRequirement::Op::kNotIn);
  EXPECT_EQ(r[4].op, LabelRequirement::Op::kExists);
  EXPECT_EQ(r[5].op, LabelRequirement::Op::kNotExists);
  EXPECT_EQ(r[5].key, "f");
}

}  // namespace
}  // namespace cohort::broker
