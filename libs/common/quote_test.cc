#include "libs/common/quote.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cohort::common {
namespace {

TEST(QuoteBounded, QuotesShortTextWhole) { EXPECT_EQ(QuoteBounded("abc"), "\"abc\""); }

TEST(QuoteBounded, CutsLongTextToAPrefixAndSaysHowLongItWas) {
  const std::string quoted = QuoteBounded(std::string(1'000'000, 'x'));
  EXPECT_EQ(quoted, "\"" + std::string(kQuotePrefixBytes, 'x') + "\"…(1000000 bytes)");
}

TEST(QuoteBounded, EscapesBytesThatAreNotPrintable) {
  EXPECT_EQ(QuoteBounded(std::string("a\nb\0\"", 5)), "\"a\\nb\\x00\\\"\"");
}

TEST(QuoteBounded, StaysBoundedForTheWorstBytes) {
  EXPECT_LE(QuoteBounded(std::string(100'000, '\x01')).size(), 4 * kQuotePrefixBytes + 40);
}

TEST(QuoteListBounded, NamesTheFirstFewAndCountsTheRest) {
  std::vector<std::string> ids = {"a", "b", "c", "d", "e"};
  EXPECT_EQ(QuoteListBounded(ids), "\"a\", \"b\", \"c\" and 2 more");
  EXPECT_EQ(QuoteListBounded(std::vector<std::string>{"a"}), "\"a\"");
}

}  // namespace
}  // namespace cohort::common
