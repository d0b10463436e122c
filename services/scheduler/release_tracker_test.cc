// The release decisions of the scheduler, on a manual clock.
#include "services/scheduler/release_tracker.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/common/proto_time.h"
#include "libs/runtime/test_util.h"

namespace cohort::scheduler {
namespace {

using namespace std::chrono_literals;
using cohort::v1::Job;
using cohort::v1::JobState;

struct Released {
  std::string id;
  int attempt;
  cohort::v1::TransitionReason reason;
  std::string parent;
  absl::Time at;
};

class ReleaseTrackerTest : public runtime::testing::ManualLoopTest {
 protected:
  // The tracker's wall time: the loop clock's, moved by the manual clock like its timers.
  absl::Time WallNow() const { return clock_.SystemNow(); }

  Job MakeJob(const std::string& id, JobState state, int64_t sequence, int attempt = 0) {
    Job job;
    job.set_id(id);
    job.set_state(state);
    job.set_sequence(sequence);
    job.set_attempt(attempt);
    return job;
  }
  Job Pending(const std::string& id, int64_t sequence, std::vector<std::string> parents = {},
              absl::Duration delay = absl::ZeroDuration(), int attempt = 0) {
    Job job = MakeJob(id, cohort::v1::JOB_STATE_PENDING, sequence, attempt);
    for (const std::string& p : parents) job.mutable_spec()->add_depends_on(p);
    if (delay > absl::ZeroDuration()) *job.mutable_not_before() = common::ToProto(WallNow() + delay);
    return job;
  }
  // Lets manual time run to `t` from the start, firing every timer due on the way.
  void RunFor(std::chrono::milliseconds t) {
    Run([](std::chrono::milliseconds d) -> runtime::Task<void> { co_await runtime::Sleep(d); }(t));
  }
  std::vector<std::string> ReleasedIds() const {
    std::vector<std::string> ids;
    for (const Released& r : released_) ids.push_back(r.id);
    return ids;
  }

  std::vector<Released> released_;
  ReleaseTracker tracker_{loop_,
                          [this](ReleaseTracker::Release r) {
                            released_.push_back({r.job_id(), r.attempt(), r.reason(), r.parent_job_id(), WallNow()});
                          }};
  const absl::Time start_ = WallNow();
};

TEST_F(ReleaseTrackerTest, ADelayedJobIsReleasedAtItsTimeAndNotBefore) {
  tracker_.Observe(Pending("a", 1, {}, absl::Seconds(5)));
  EXPECT_EQ(tracker_.pending_timers(), 1u);
  RunFor(4'999ms);
  EXPECT_TRUE(released_.empty());
  RunFor(10s);
  ASSERT_EQ(released_.size(), 1u);
  EXPECT_EQ(released_[0].reason, cohort::v1::TRANSITION_REASON_RUN_AT);
  EXPECT_GE(released_[0].at, start_ + absl::Seconds(5));
  EXPECT_EQ(tracker_.pending_timers(), 0u);
  EXPECT_EQ(tracker_.pending_jobs(), 0u);
}

TEST_F(ReleaseTrackerTest, AJobDueInTheYear9999WaitsInsteadOfFiringAtOnce) {
  // 8,000 years: more nanoseconds than a steady-clock time point holds. The loop's clock
  // is past zero, as a real steady clock is, so an unsaturated sum would wrap.
  RunFor(1s);
  Job job = Pending("far", 1);
  job.mutable_not_before()->set_seconds(253'402'300'799);  // 9999-12-31T23:59:59Z
  tracker_.Observe(job);
  EXPECT_EQ(tracker_.pending_timers(), 1u);
  RunFor(10s);
  EXPECT_TRUE(released_.empty());
  EXPECT_EQ(tracker_.pending_timers(), 1u);
}

TEST_F(ReleaseTrackerTest, ARetryIsReleasedAfterItsBackoffWithItsAttempt) {
  tracker_.Observe(MakeJob("a", cohort::v1::JOB_STATE_RUNNING, 3, 1));
  tracker_.Observe(Pending("a", 4, {"parent-that-ran"}, absl::Seconds(2), /*attempt=*/1));
  RunFor(3s);
  ASSERT_EQ(released_.size(), 1u);
  EXPECT_EQ(released_[0].attempt, 1);
  EXPECT_EQ(released_[0].reason, cohort::v1::TRANSITION_REASON_BACKOFF);
  EXPECT_TRUE(tracker_.TakeUnknownParents().empty());
}

TEST_F(ReleaseTrackerTest, ADiamondIsReleasedInDependencyOrder) {
  tracker_.Observe(MakeJob("a", cohort::v1::JOB_STATE_QUEUED, 1));
  tracker_.Observe(Pending("b", 2, {"a"}));
  tracker_.Observe(Pending("c", 3, {"a"}));
  tracker_.Observe(Pending("d", 4, {"b", "c"}));
  EXPECT_TRUE(tracker_.TakeUnknownParents().empty());
  EXPECT_TRUE(released_.empty());

  tracker_.Observe(MakeJob("a", cohort::v1::JOB_STATE_SUCCEEDED, 5));
  EXPECT_EQ(ReleasedIds(), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(released_[0].reason, cohort::v1::TRANSITION_REASON_DEPENDENCIES);

  tracker_.Observe(MakeJob("b", cohort::v1::JOB_STATE_SUCCEEDED, 6));
  EXPECT_EQ(released_.size(), 2u);
  tracker_.Observe(MakeJob("c", cohort::v1::JOB_STATE_SUCCEEDED, 7));
  EXPECT_EQ(ReleasedIds(), (std::vector<std::string>{"b", "c", "d"}));
}

TEST_F(ReleaseTrackerTest, AFailedParentEndsItsDependentsNamingIt) {
  tracker_.Observe(MakeJob("a", cohort::v1::JOB_STATE_RUNNING, 1));
  tracker_.Observe(MakeJob("b", cohort::v1::JOB_STATE_RUNNING, 2));
  tracker_.Observe(Pending("c", 3, {"a", "b"}));
  tracker_.Observe(MakeJob("a", cohort::v1::JOB_STATE_SUCCEEDED, 4));
  tracker_.Observe(MakeJob("b", cohort::v1::JOB_STATE_CANCELLED, 5));
  ASSERT_EQ(released_.size(), 1u);
  EXPECT_EQ(released_[0].reason, cohort::v1::TRANSITION_REASON_DEPENDENCY_FAILED);
  EXPECT_EQ(released_[0].parent, "b");
}

TEST_F(ReleaseTrackerTest, ParentsOfUnknownStateAreLookedUp) {
  tracker_.Observe(Pending("child", 10, {"old-ok", "old-gone"}));
  std::vector<std::string> unknown = tracker_.TakeUnknownParents();
  std::sort(unknown.begin(), unknown.end());
  EXPECT_EQ(unknown, (std::vector<std::string>{"old-gone", "old-ok"}));
  EXPECT_TRUE(tracker_.TakeUnknownParents().empty());

  tracker_.Observe(MakeJob("old-ok", cohort::v1::JOB_STATE_SUCCEEDED, 2));
  EXPECT_TRUE(released_.empty());
  tracker_.ParentGone("old-gone");
  ASSERT_EQ(released_.size(), 1u);
  EXPECT_EQ(released_[0].reason, cohort::v1::TRANSITION_REASON_DEPENDENCY_FAILED);
  EXPECT_EQ(released_[0].parent, "old-gone");
}

TEST_F(ReleaseTrackerTest, AParentSeenLaterInTheSameBatchNeedsNoLookup) {
  tracker_.Observe(Pending("child", 1, {"parent"}));
  tracker_.Observe(Pending("parent", 2, {}, absl::Seconds(1)));
  EXPECT_TRUE(tracker_.TakeUnknownParents().empty());
  RunFor(2s);
  tracker_.Observe(MakeJob("parent", cohort::v1::JOB_STATE_SUCCEEDED, 3));
  EXPECT_EQ(ReleasedIds(), (std::vector<std::string>{"parent", "child"}));
}

TEST_F(ReleaseTrackerTest, DependenciesAndTimeBothHoldAndTheLastOneNamesTheReason) {
  tracker_.Observe(MakeJob("p", cohort::v1::JOB_STATE_QUEUED, 1));
  tracker_.Observe(Pending("late-parent", 2, {"p"}, absl::Seconds(1)));
  tracker_.Observe(Pending("late-time", 3, {"p"}, absl::Seconds(10)));
  RunFor(2s);
  EXPECT_TRUE(released_.empty());
  tracker_.Observe(MakeJob("p", cohort::v1::JOB_STATE_SUCCEEDED, 4));
  ASSERT_EQ(released_.size(), 1u);
  EXPECT_EQ(released_[0].id, "late-parent");
  EXPECT_EQ(released_[0].reason, cohort::v1::TRANSITION_REASON_DEPENDENCIES);
  RunFor(10s);
  ASSERT_EQ(released_.size(), 2u);
  EXPECT_EQ(released_[1].id, "late-time");
  EXPECT_EQ(released_[1].reason, cohort::v1::TRANSITION_REASON_RUN_AT);
}

TEST_F(ReleaseTrackerTest, ReplayedOlderEventsNeverReleaseTwice) {
  tracker_.Observe(Pending("a", 5));
  EXPECT_EQ(released_.size(), 1u);
  tracker_.Observe(Pending("a", 5));
  tracker_.Observe(Pending("a", 3));
  tracker_.Observe(MakeJob("a", cohort::v1::JOB_STATE_QUEUED, 6));
  tracker_.Observe(Pending("a", 4));
  EXPECT_EQ(released_.size(), 1u);
}

TEST_F(ReleaseTrackerTest, AJobThatLeavesPendingOtherwiseIsNotReleased) {
  tracker_.Observe(Pending("a", 1, {}, absl::Seconds(5)));
  tracker_.Observe(MakeJob("a", cohort::v1::JOB_STATE_CANCELLED, 2));
  EXPECT_EQ(tracker_.pending_timers(), 0u);
  RunFor(10s);
  EXPECT_TRUE(released_.empty());
}

cohort::v1::JobEvent Event(const Job& job, cohort::v1::TransitionReason reason) {
  cohort::v1::JobEvent event;
  event.set_sequence(job.sequence());
  event.set_job_id(job.id());
  event.set_reason(reason);
  *event.mutable_job() = job;
  return event;
}

TEST_F(ReleaseTrackerTest, ARetriedJobIsTrackedAgainAndReleasedAtItsRunAt) {
  EXPECT_TRUE(tracker_.OnEvent(Event(MakeJob("a", cohort::v1::JOB_STATE_CANCELLED, 3), cohort::v1::TRANSITION_REASON_CANCELLED)));
  // RetryJob of a job cancelled before its run_at: PENDING again, same attempt.
  EXPECT_FALSE(tracker_.OnEvent(Event(Pending("a", 5, {}, absl::Seconds(5)), cohort::v1::TRANSITION_REASON_RETRIED)));
  EXPECT_EQ(tracker_.pending_jobs(), 1u);
  RunFor(10s);
  ASSERT_EQ(released_.size(), 1u);
  EXPECT_EQ(released_[0].id, "a");
  EXPECT_EQ(released_[0].attempt, 0);
  EXPECT_EQ(released_[0].reason, cohort::v1::TRANSITION_REASON_RUN_AT);
}

TEST_F(ReleaseTrackerTest, ARetriedChildWaitsForItsRetriedParentToSucceed) {
  tracker_.OnEvent(Event(MakeJob("p", cohort::v1::JOB_STATE_FAILED, 3, 1), cohort::v1::TRANSITION_REASON_ATTEMPT_FAILED));
  tracker_.OnEvent(Event(MakeJob("p", cohort::v1::JOB_STATE_QUEUED, 7, 1), cohort::v1::TRANSITION_REASON_RETRIED));
  tracker_.OnEvent(Event(Pending("c", 8, {"p"}), cohort::v1::TRANSITION_REASON_RETRIED));
  EXPECT_TRUE(tracker_.TakeUnknownParents().empty());  // the parent is known to be live
  EXPECT_TRUE(released_.empty());
  EXPECT_TRUE(tracker_.OnEvent(Event(MakeJob("p", cohort::v1::JOB_STATE_SUCCEEDED, 9, 2), cohort::v1::TRANSITION_REASON_COMPLETED)));
  ASSERT_EQ(released_.size(), 1u);
  EXPECT_EQ(released_[0].id, "c");
  EXPECT_EQ(released_[0].reason, cohort::v1::TRANSITION_REASON_DEPENDENCIES);
}

TEST_F(ReleaseTrackerTest, ADeletedPendingJobIsForgottenAndNeverReleased) {
  tracker_.Observe(Pending("a", 1, {}, absl::Seconds(5)));
  // The DELETED event carries the job as it was (PENDING): it must not be tracked again.
  EXPECT_TRUE(tracker_.OnEvent(Event(Pending("a", 2, {}, absl::Seconds(5)), cohort::v1::TRANSITION_REASON_DELETED)));
  EXPECT_EQ(tracker_.pending_jobs(), 0u);
  EXPECT_EQ(tracker_.pending_timers(), 0u);
  RunFor(10s);
  EXPECT_TRUE(released_.empty());
}

TEST_F(ReleaseTrackerTest, ResetForgetsEverythingAndDisarmsTimers) {
  tracker_.Observe(Pending("a", 1, {}, absl::Seconds(5)));
  tracker_.Observe(Pending("b", 2, {"x"}));
  tracker_.Reset();
  EXPECT_EQ(tracker_.pending_jobs(), 0u);
  EXPECT_EQ(tracker_.pending_timers(), 0u);
  EXPECT_TRUE(tracker_.TakeUnknownParents().empty());
  tracker_.Observe(MakeJob("x", cohort::v1::JOB_STATE_SUCCEEDED, 3));
  RunFor(10s);
  EXPECT_TRUE(released_.empty());
}

}  // namespace
}  // namespace cohort::scheduler
