// The engine's one time source: every time it stores or sends (expiry, event
// retention, a retry's not_before, run_at) is the loop clock's wall time, so a
// ManualClock moves them as it moves leases. Before, they followed absl::Now() and a
// manual-clock test silently did not move TTLs.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/common/proto_time.h"
#include "libs/runtime/runtime.h"
#include "services/broker/engine_test_util.h"

namespace cohort::broker {
namespace {

using namespace std::chrono_literals;
using cohort::v1::JobSpec;
using runtime::Task;
using testing::Batch;
using testing::Credit;
using testing::Fail;
using testing::FakeChannel;
using testing::Hello;
using testing::Spec;

using EngineClockTest = testing::EngineTest;

TEST_F(EngineClockTest, AnEndedJobIsDeletedOnceTheManualClockPassesItsTtl) {
  options_.sweep_interval = 1s;
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    JobSpec spec = Spec("q");
    spec.mutable_result_ttl()->set_seconds(3600);
    const std::string id = (*co_await e.Submit(Batch(spec), false))[0];
    EXPECT_TRUE((co_await e.CancelJob(id)).ok());
    EXPECT_EQ(common::FromProto(e.GetJob(id)->expire_time()), clock_.SystemNow() + absl::Hours(1));
    co_await runtime::Sleep(59min);
    EXPECT_TRUE(e.GetJob(id).ok());
    co_await runtime::Sleep(2min);  // past the hour: a sweep has deleted it
    EXPECT_EQ(e.GetJob(id).status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ((co_await store_.GetJob(id)).status().code(), absl::StatusCode::kNotFound);
  });
}

TEST_F(EngineClockTest, EventsAreTrimmedOnceTheManualClockPassesTheirRetention) {
  options_.sweep_interval = 1s;
  options_.event_retention = 1h;
  WithEngine([](BrokerEngine& e) -> Task<void> {
    co_await e.Submit(Batch(Spec("q"), Spec("q")), false);  // events 1 and 2
    co_await runtime::Sleep(30min);
    co_await e.Submit(Batch(Spec("q")), false);  // event 3
    co_await runtime::Sleep(29min);
    EventLog::Cursor kept(e.events(), 0);
    EXPECT_EQ((co_await kept.Next())->events(0).sequence(), 1);
    co_await runtime::Sleep(2min);  // events 1 and 2 are over an hour old, event 3 is not
    EventLog::Cursor trimmed(e.events(), 0);
    absl::StatusOr<cohort::v1::WatchResponse> oldest = co_await trimmed.Next();
    EXPECT_TRUE(oldest.ok()) << oldest.status();
    EXPECT_EQ(oldest->events(0).sequence(), 3);
  });
}

TEST_F(EngineClockTest, ARetryWaitsItsBackoffFromTheManualClocksWallTime) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    JobSpec spec = Spec("q");
    spec.set_max_attempts(3);
    spec.mutable_backoff()->mutable_initial()->set_seconds(10);
    const std::string id = (*co_await e.Submit(Batch(spec), false))[0];
    co_await runtime::Sleep(5h);  // the manual wall time is now hours ahead of the real one
    FakeChannel exec;
    const std::uint64_t s = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1)).ok());
    co_await Settle();
    EXPECT_TRUE(e.OnExecutorMessage(s, Fail(id, 1, "boom")).ok());
    co_await Settle();
    const cohort::v1::Job retried = *e.GetJob(id);
    EXPECT_EQ(retried.state(), cohort::v1::JOB_STATE_PENDING);
    EXPECT_EQ(common::FromProto(retried.not_before()), clock_.SystemNow() + absl::Seconds(10));
    EXPECT_EQ(common::FromProto(retried.update_time()), clock_.SystemNow());
  });
}

TEST_F(EngineClockTest, ARunAtTheManualClockHasPassedQueuesTheJobAtOnce) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    JobSpec later = Spec("q");
    *later.mutable_run_at() = common::ToProto(clock_.SystemNow() + absl::Hours(1));
    const std::string held = (*co_await e.Submit(Batch(later), false))[0];
    EXPECT_EQ(e.GetJob(held)->state(), cohort::v1::JOB_STATE_PENDING);
    EXPECT_EQ(common::FromProto(e.GetJob(held)->not_before()), common::FromProto(later.run_at()));
    co_await runtime::Sleep(2h);
    const std::string due = (*co_await e.Submit(Batch(later), false))[0];
    EXPECT_EQ(e.GetJob(due)->state(), cohort::v1::JOB_STATE_QUEUED);
    EXPECT_FALSE(e.GetJob(due)->has_not_before());
  });
}

}  // namespace
}  // namespace cohort::broker
