#include "libs/rpc/message_sequence.h"

#include "gtest/gtest.h"

namespace cohort::rpc {
namespace {

TEST(MessageSequenceTest, NumbersWhatItWritesFromOne) {
  MessageSequence s;
  EXPECT_EQ(s.Next(), 1u);
  EXPECT_EQ(s.Next(), 2u);
  EXPECT_EQ(s.Next(), 3u);
}

TEST(MessageSequenceTest, AcceptsConsecutiveNumbers) {
  MessageSequence s;
  for (std::uint64_t seq = 1; seq <= 100; ++seq) EXPECT_TRUE(s.Receive(seq).ok()) << seq;
}

TEST(MessageSequenceTest, APeerThatNeverNumbersIsNotChecked) {
  MessageSequence s;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(s.Receive(0).ok());
}

TEST(MessageSequenceTest, ALostMessageIsDataLossNamingBothNumbers) {
  MessageSequence s;
  ASSERT_TRUE(s.Receive(1).ok());
  ASSERT_TRUE(s.Receive(2).ok());
  absl::Status gap = s.Receive(5);
  EXPECT_EQ(gap.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(gap.message(), "message 5 arrived after message 2: the stream lost, repeated or reordered messages");
}

TEST(MessageSequenceTest, ARepeatedOrReorderedMessageIsDataLoss) {
  MessageSequence s;
  ASSERT_TRUE(s.Receive(1).ok());
  ASSERT_TRUE(s.Receive(2).ok());
  EXPECT_EQ(s.Receive(2).code(), absl::StatusCode::kDataLoss);
  MessageSequence t;
  ASSERT_TRUE(t.Receive(1).ok());
  EXPECT_EQ(t.Receive(0).code(), absl::StatusCode::kDataLoss) << "a numbering peer stopped numbering";
}

TEST(MessageSequenceTest, AFirstMessageOtherThanOneIsDataLoss) {
  MessageSequence s;
  EXPECT_EQ(s.Receive(2).code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace cohort::rpc
