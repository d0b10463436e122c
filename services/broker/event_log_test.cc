// The event log as Watch reads it, through the engine, on a manual clock with an
// in-memory store: where a reader may start, batches of committed events, and the
// gap retention leaves.
#include "services/broker/event_log.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/runtime/runtime.h"
#include "services/broker/engine_test_util.h"

namespace cohort::broker {
namespace {

using namespace std::chrono_literals;
using runtime::Task;
using testing::Batch;
using testing::Spec;

using EventLogTest = testing::EngineTest;

TEST_F(EventLogTest, AStartBeyondTheCommittedLogIsOutOfRangeAndANegativeOneInvalid) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    co_await e.Submit(Batch(Spec("q")), false);
    const std::int64_t last = e.events().committed();
    EXPECT_EQ(last, 1);
    EXPECT_TRUE(e.events().CheckStart(last).ok());
    EXPECT_EQ(e.events().CheckStart(last + 1).code(), absl::StatusCode::kOutOfRange);
    EXPECT_EQ(e.events().CheckStart(-1).code(), absl::StatusCode::kInvalidArgument);
  });
}

TEST_F(EventLogTest, ACursorReturnsCommittedEventsInOrderAndWaitsForTheNext) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q"), Spec("q")), false);
    EventLog::Cursor cursor(e.events(), 0);
    absl::StatusOr<cohort::v1::WatchResponse> first = co_await cursor.Next();
    EXPECT_TRUE(first.ok()) << first.status();
    EXPECT_EQ(first->events_size(), 2);
    EXPECT_EQ(first->events(0).sequence(), 1);
    EXPECT_EQ(first->events(1).job_id(), ids[1]);
    runtime::TaskHandle<absl::StatusOr<cohort::v1::WatchResponse>> next = runtime::Spawn(cursor.Next());
    for (int i = 0; i < 10; ++i) co_await runtime::Yield();
    EXPECT_FALSE(next.Done());
    EXPECT_TRUE((co_await e.CancelJob(ids[0])).ok());
    absl::StatusOr<cohort::v1::WatchResponse> second = co_await next;
    EXPECT_EQ(second->events(0).sequence(), 3);
    EXPECT_EQ(second->events(0).to_state(), cohort::v1::JOB_STATE_CANCELLED);
  });
}

TEST_F(EventLogTest, ACursorAfterEventsRetentionDeletedIsFailedPreconditionUnlessItStartsAtZero) {
  options_.event_retention = 0s;
  options_.sweep_interval = 1s;
  WithEngine([](BrokerEngine& e) -> Task<void> {
    co_await e.Submit(Batch(Spec("q"), Spec("q")), false);
    co_await e.Submit(Batch(Spec("q")), false);
    co_await runtime::Sleep(2s);  // a sweep trims every event but the newest (the store keeps it)
    EventLog::Cursor behind(e.events(), 1);
    absl::StatusOr<cohort::v1::WatchResponse> gap = co_await behind.Next();
    EXPECT_EQ(gap.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(gap.status().message(),
              "events 2..2 were deleted by retention: list again, then watch from the listing's sequence");
    EventLog::Cursor oldest(e.events(), 0);
    absl::StatusOr<cohort::v1::WatchResponse> retained = co_await oldest.Next();
    EXPECT_TRUE(retained.ok()) << retained.status();
    EXPECT_EQ(retained->events(0).sequence(), 3);
  });
}

}  // namespace
}  // namespace cohort::broker
