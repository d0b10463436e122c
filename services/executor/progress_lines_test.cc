#include "services/executor/progress_lines.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cohort::executor {
namespace {

std::optional<ProgressLine> Parse(absl::string_view line) { return ParseProgressLine(line); }

TEST(ParseProgressLine, ReadsTheFractionAndTheMessage) {
  EXPECT_EQ(Parse("0.5 half way"), (ProgressLine{0.5, "half way"}));
  EXPECT_EQ(Parse("1"), (ProgressLine{1, ""}));
  EXPECT_EQ(Parse("5e-1\tuploading  "), (ProgressLine{0.5, "uploading"}));
  EXPECT_EQ(Parse("0.25   spaced out"), (ProgressLine{0.25, "spaced out"}));
  EXPECT_EQ(Parse("0.75 done\r"), (ProgressLine{0.75, "done"}));
  EXPECT_EQ(Parse("0.1 caf\xc3\xa9 \xe2\x9c\x93"), (ProgressLine{0.1, "caf\xc3\xa9 \xe2\x9c\x93"}));
}

TEST(ParseProgressLine, ClampsTheFractionToZeroOne) {
  EXPECT_EQ(Parse("1.5 over")->fraction, 1.0);
  EXPECT_EQ(Parse("-0.2 under")->fraction, 0.0);
  EXPECT_EQ(Parse("1e300")->fraction, 1.0);
}

TEST(ParseProgressLine, RejectsMalformedLines) {
  EXPECT_EQ(Parse(""), std::nullopt);
  EXPECT_EQ(Parse(" 0.5 leading space"), std::nullopt);
  EXPECT_EQ(Parse("half way"), std::nullopt);
  EXPECT_EQ(Parse("50% done"), std::nullopt);
  EXPECT_EQ(Parse("0.5x"), std::nullopt);
  EXPECT_EQ(Parse("nan"), std::nullopt);
  EXPECT_EQ(Parse("inf"), std::nullopt);
  EXPECT_EQ(Parse("0.5 bad \xff utf8"), std::nullopt);
  EXPECT_EQ(Parse("0.5 overlong \xc0\xaf"), std::nullopt);
  EXPECT_EQ(Parse("0.5 surrogate \xed\xa0\x80"), std::nullopt);
  EXPECT_EQ(Parse("0.5 cut \xe2\x9c"), std::nullopt);
  EXPECT_EQ(Parse("0.5 " + std::string(kMaxProgressLineBytes, 'x')), std::nullopt);
}

class SplitterTest : public ::testing::Test {
 protected:
  void Feed(absl::string_view bytes) {
    splitter_.Feed(bytes, [this](ProgressLine line) { lines_.push_back(std::move(line)); });
  }
  void Finish() {
    splitter_.Finish([this](ProgressLine line) { lines_.push_back(std::move(line)); });
  }

  ProgressLineSplitter splitter_;
  std::vector<ProgressLine> lines_;
};

TEST_F(SplitterTest, CutsLinesAcrossReads) {
  Feed("0.1 one\n0.");
  Feed("2 tw");
  Feed("o\n0.3\n");
  EXPECT_EQ(lines_, (std::vector<ProgressLine>{{0.1, "one"}, {0.2, "two"}, {0.3, ""}}));
  EXPECT_EQ(splitter_.accepted(), 3);
  EXPECT_EQ(splitter_.malformed(), 0);
}

TEST_F(SplitterTest, IgnoresAndCountsMalformedLinesBetweenGoodOnes) {
  Feed("garbage\n0.4 fine\n\nnan\n0.6 also fine\n");
  EXPECT_EQ(lines_, (std::vector<ProgressLine>{{0.4, "fine"}, {0.6, "also fine"}}));
  EXPECT_EQ(splitter_.accepted(), 2);
  EXPECT_EQ(splitter_.malformed(), 3);
}

TEST_F(SplitterTest, SkipsAnOverlongLineToItsEndAndKeepsGoing) {
  Feed("0.5 ");
  for (int i = 0; i < 10; ++i) Feed(std::string(kMaxProgressLineBytes, 'x'));  // memory stays bounded
  Feed(" still the same line\n0.7 next\n");
  EXPECT_EQ(lines_, (std::vector<ProgressLine>{{0.7, "next"}}));
  EXPECT_EQ(splitter_.malformed(), 1);
}

TEST_F(SplitterTest, ALineOfExactlyTheCapIsAccepted) {
  std::string line = "0.5 " + std::string(kMaxProgressLineBytes - 4, 'm');
  Feed(line + "\n");
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].message.size(), kMaxProgressLineBytes - 4);
}

TEST_F(SplitterTest, FinishTakesALastLineWithoutNewline) {
  Feed("0.2 a\n0.9 last");
  EXPECT_EQ(lines_.size(), 1u);
  Finish();
  EXPECT_EQ(lines_, (std::vector<ProgressLine>{{0.2, "a"}, {0.9, "last"}}));
  Finish();  // nothing left
  EXPECT_EQ(lines_.size(), 2u);
}

}  // namespace
}  // namespace cohort::executor
