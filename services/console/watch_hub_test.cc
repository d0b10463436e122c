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

TEST(CountsFrame, CountsTheBatchsEventsAndTheJobsThatEndedInEachState) {
  cohort::v1::WatchResponse batch;
  using cohort::v1::JobState;
  const struct {
    JobState from, to;
    const char* queue;
  } events[] = {
      {cohort::v1::JOB_STATE_QUEUED, cohort::v1::JOB_STATE_RUNNING, "a"},
      {cohort::v1::JOB_STATE_RUNNING, cohort::v1::JOB_STATE_SUCCEEDED, "b"},
      {cohort::v1::JOB_STATE_RUNNING, cohort::v1::JOB_STATE_SUCCEEDED, "a"},
      {cohort::v1::JOB_STATE_RUNNING, cohort::v1::JOB_STATE_FAILED, "a"},
      {cohort::v1::JOB_STATE_QUEUED, cohort::v1::JOB_STATE_CANCELLED, "q\"uote"},
      {cohort::v1::JOB_STATE_UNSPECIFIED, cohort::v1::JOB_STATE_QUEUED, "a"},  // submitted
  };
  for (const auto& e : events) {
    cohort::v1::JobEvent* event = batch.add_events();
    event->set_job_id("j");
    event->set_from_state(e.from);
    event->set_to_state(e.to);
    event->mutable_job()->mutable_spec()->set_queue(e.queue);
    event->mutable_job()->mutable_spec()->set_payload(std::string(1000, 'p'));
  }
  EXPECT_EQ(CountsFrame(batch),
            "event: counts\ndata: {\"events\":6,\"succeeded\":2,\"failed\":1,\"cancelled\":1,"
            "\"queues\":{\"a\":[1,2],\"b\":[0,1],\"q\\\"uote\":[0,1]}}\n\n");
}

TEST(EventSubscriber, AJobStreamIsOneJobsWhateverViewWasAsked) {
  EXPECT_EQ(EventSubscriber("", 10, StreamView::kCounts).view(), StreamView::kCounts);
  EXPECT_EQ(EventSubscriber("j", 10, StreamView::kCounts).view(), StreamView::kOneJob);
  EXPECT_EQ(EventSubscriber("", 10).view(), StreamView::kAllEvents);
}

TEST(SseFrame, IsOneEventWithOneDataLine) { EXPECT_EQ(SseFrame("jobs", "{}"), "event: jobs\ndata: {}\n\n"); }

}  // namespace
}  // namespace cohort::console
