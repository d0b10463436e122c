#include "services/console/watch_hub.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cohort::console {
namespace {

TEST(EventSubscriber, HandsOverQueuedFramesInOrder) {
  EventSubscriber s("", 1024);
  s.Push("a");
  s.Push("b");
  std::vector<std::string> frames;
  EXPECT_EQ(s.Take(absl::Seconds(5), frames), EventSubscriber::Wake::kFrames);
  EXPECT_EQ(frames, (std::vector<std::string>{"a", "b"}));
}

TEST(EventSubscriber, ReplacesWhatIsQueuedWithOneResetWhenTheReaderFallsTooFarBehind) {
  EventSubscriber s("", 100);
  for (int i = 0; i < 10; ++i) s.Push(std::string(30, 'x'));
  std::vector<std::string> frames;
  ASSERT_EQ(s.Take(absl::Seconds(5), frames), EventSubscriber::Wake::kFrames);
  // Bounded: never more than the budget queued, and the reset comes before what follows it.
  std::size_t bytes = 0;
  for (const std::string& f : frames) bytes += f.size();
  EXPECT_LE(bytes, 100u);
  EXPECT_NE(std::find(frames.begin(), frames.end(), SseFrame("reset", "{}")), frames.end());
}

TEST(EventSubscriber, TimesOutWhenNothingComesAndReportsClose) {
  EventSubscriber s("", 100);
  std::vector<std::string> frames;
  EXPECT_EQ(s.Take(absl::Milliseconds(1), frames), EventSubscriber::Wake::kTimeout);
  s.Close();
  EXPECT_EQ(s.Take(absl::Seconds(5), frames), EventSubscriber::Wake::kClosed);
  s.Push("late");
  EXPECT_EQ(s.Take(absl::Milliseconds(1), frames), EventSubscriber::Wake::kClosed);
}

TEST(SseFrame, IsOneEventWithOneDataLine) { EXPECT_EQ(SseFrame("jobs", "{}"), "event: jobs\ndata: {}\n\n"); }

}  // namespace
}  // namespace cohort::console
