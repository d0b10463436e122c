#include "libs/common/names.h"

#include <string>

#include "gtest/gtest.h"

namespace cohort::common {
namespace {

TEST(IsValidName, AcceptsLowercaseDigitsDotUnderscoreDashUpTo64Bytes) {
  EXPECT_TRUE(IsValidName("a"));
  EXPECT_TRUE(IsValidName("emails.v2_high-priority"));
  EXPECT_TRUE(IsValidName(std::string(64, 'x')));
}

TEST(IsValidName, RefusesEmptyLongUppercaseSpacesAndOtherBytes) {
  EXPECT_FALSE(IsValidName(""));
  EXPECT_FALSE(IsValidName(std::string(65, 'x')));
  EXPECT_FALSE(IsValidName("Emails"));
  EXPECT_FALSE(IsValidName("a b"));
  EXPECT_FALSE(IsValidName("a/b"));
  EXPECT_FALSE(IsValidName(std::string("a\0b", 3)));
}

TEST(CheckName, NamesTheFieldQuotesTheNameAndStatesTheRule) {
  const absl::Status s = CheckName("Bad Queue", "jobs[0].queue ");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "jobs[0].queue \"Bad Queue\" is invalid: use [a-z0-9._-]{1,64}");
  EXPECT_TRUE(CheckName("ok", "queue ").ok());
}

TEST(CheckName, QuotesOnlyABoundedPrefixOfAHugeName) {
  const absl::Status s = CheckName(std::string(1'000'000, 'X'), "queue ");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(s.message().size(), 400u);
}

}  // namespace
}  // namespace cohort::common
