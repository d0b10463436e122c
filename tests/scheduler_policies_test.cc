// scheduler.proto's schedule policies through the real cohort-scheduler and
// cohort-broker: overlap SKIP and BUFFER_ONE, catch-up RUN_ALL (with its limit),
// RUN_ONCE and SKIP_MISSED after a kill -9, slots passing while paused, and
// UpdateSchedule never firing a slot again. A test executor holds jobs running for the
// overlap cases. Which slot a job belongs to is read from its idempotency key
// ("cohort.schedule/<id>/<slot, RFC 3339 UTC>"), so every check is about slots.
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "protos/cohort/v1/scheduler.grpc.pb.h"
#include "tests/broker_fixture.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/runfiles.h"

namespace cohort::testing {
namespace {

using namespace std::chrono_literals;

absl::Time TimeOf(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

// One fired slot: the slot's time and the job it made.
struct Fired {
  absl::Time slot;
  cohort::v1::Job job;
};

class SchedulerPoliciesTest : public BrokerTest {
 protected:
  void SetUp() override {
    BrokerTest::SetUp();
    if (HasFatalFailure()) return;
    StartScheduler();
  }

  void StartScheduler() {
    scheduler_stub_.reset();
    scheduler_.reset();
    auto started = ServiceProcess::Start(
        BinaryPath("services/scheduler/cohort-scheduler"),
        {"--broker=" + broker_->grpc_address(), "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
         "--data-dir=" + dir_.path() + "/scheduler", "--min-interval=100ms"});
    ASSERT_TRUE(started.ok()) << started.status();
    scheduler_ = std::move(*started);
    scheduler_stub_ = cohort::v1::Scheduler::NewStub(
        grpc::CreateChannel(scheduler_->grpc_address(), grpc::InsecureChannelCredentials()));
  }

  static cohort::v1::ScheduleSpec Every(absl::Duration interval, const std::string& queue,
                                        cohort::v1::OverlapPolicy overlap) {
    cohort::v1::ScheduleSpec spec;
    spec.mutable_job()->set_queue(queue);
    spec.mutable_job()->set_kind("builtin.echo");
    spec.mutable_job()->set_payload("tick");
    spec.mutable_interval()->set_seconds(absl::ToInt64Seconds(interval));
    spec.mutable_interval()->set_nanos(
        static_cast<int32_t>(absl::ToInt64Nanoseconds(interval - absl::Seconds(absl::ToInt64Seconds(interval)))));
    spec.set_overlap_policy(overlap);
    return spec;
  }

  cohort::v1::Schedule Create(const std::string& id, const cohort::v1::ScheduleSpec& spec) {
    cohort::v1::CreateScheduleRequest req;
    req.set_schedule_id(id);
    *req.mutable_spec() = spec;
    cohort::v1::CreateScheduleResponse resp;
    auto ctx = Context();
    grpc::Status status = scheduler_stub_->CreateSchedule(ctx.get(), req, &resp);
    EXPECT_TRUE(status.ok()) << id << ": " << status.error_message();
    return resp.schedule();
  }

  cohort::v1::Schedule Update(const std::string& id, const cohort::v1::ScheduleSpec& spec) {
    cohort::v1::UpdateScheduleRequest req;
    req.set_schedule_id(id);
    *req.mutable_spec() = spec;
    cohort::v1::UpdateScheduleResponse resp;
    auto ctx = Context();
    grpc::Status status = scheduler_stub_->UpdateSchedule(ctx.get(), req, &resp);
    EXPECT_TRUE(status.ok()) << id << ": " << status.error_message();
    return resp.schedule();
  }

  void SetPaused(const std::string& id, bool paused) {
    auto ctx = Context();
    grpc::Status status;
    if (paused) {
      cohort::v1::PauseScheduleRequest req;
      req.set_schedule_id(id);
      cohort::v1::PauseScheduleResponse resp;
      status = scheduler_stub_->PauseSchedule(ctx.get(), req, &resp);
    } else {
      cohort::v1::ResumeScheduleRequest req;
      req.set_schedule_id(id);
      cohort::v1::ResumeScheduleResponse resp;
      status = scheduler_stub_->ResumeSchedule(ctx.get(), req, &resp);
    }
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  // Every job of `queue` that a slot of schedule `id` made, oldest slot first.
  std::vector<Fired> SlotsOf(const std::string& id, const std::string& queue) {
    cohort::v1::ListJobsRequest req;
    req.set_queue(queue);
    req.set_page_size(1000);
    cohort::v1::ListJobsResponse resp;
    auto ctx = Context();
    grpc::Status status = stub().ListJobs(ctx.get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    const std::string prefix = absl::StrCat("cohort.schedule/", id, "/");
    std::vector<Fired> fired;
    for (const cohort::v1::Job& job : resp.jobs()) {
      const std::string& key = job.spec().idempotency_key();
      if (!absl::StartsWith(key, prefix)) continue;
      absl::Time slot;
      std::string error;
      EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, key.substr(prefix.size()), &slot, &error)) << key << error;
      fired.push_back({slot, job});
    }
    std::sort(fired.begin(), fired.end(), [](const Fired& a, const Fired& b) { return a.slot < b.slot; });
    return fired;
  }

  // Polls until `done(SlotsOf(id, queue))` holds, for at most `bound`; the last listing.
  template <typename Predicate>
  std::vector<Fired> AwaitSlots(const std::string& id, const std::string& queue, Predicate done,
                                std::chrono::seconds bound = 20s) {
    const auto give_up = std::chrono::steady_clock::now() + bound;
    std::vector<Fired> fired = SlotsOf(id, queue);
    while (!done(fired) && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(25ms);  // polling a condition with a bound
      fired = SlotsOf(id, queue);
    }
    EXPECT_TRUE(done(fired)) << "schedule " << id << ": the slots never got there (" << fired.size() << " fired)";
    return fired;
  }

  double FiresTotal(const std::string& result) {
    absl::StatusOr<std::string> body = ScrapeMetrics(scheduler_->metrics_address());
    EXPECT_TRUE(body.ok()) << body.status();
    if (!body.ok()) return -1;
    return MetricValue(*body, absl::StrCat("cohort_scheduler_schedule_fires_total{result=\"", result, "\"}"))
        .value_or(0);
  }

  // Polls the scheduler's fires counter until it reaches `at_least`, for at most 20 s.
  bool AwaitFires(const std::string& result, double at_least) {
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < give_up) {
      if (FiresTotal(result) >= at_least) return true;
      std::this_thread::sleep_for(25ms);  // polling a condition with a bound
    }
    return false;
  }

  // The next Assign's job; a default Job (after a test failure) if the stream ended.
  static cohort::v1::Job NextJob(TestExecutor& exec) {
    std::optional<cohort::v1::BrokerMessage::Assign> assign = exec.NextAssign();
    EXPECT_TRUE(assign.has_value()) << "the Connect stream ended before an Assign";
    return assign ? assign->job() : cohort::v1::Job();
  }

  static void SleepUntil(absl::Time t) {
    const absl::Duration left = t - absl::Now();
    if (left > absl::ZeroDuration()) absl::SleepFor(left);
  }

  std::unique_ptr<ServiceProcess> scheduler_;
  std::unique_ptr<cohort::v1::Scheduler::Stub> scheduler_stub_;
};

TEST_F(SchedulerPoliciesTest, OverlapSkipDropsTheSlotsThatComeWhileTheLastJobRuns) {
  TestExecutor exec(stub(), "holder", 4);
  exec.Grant(4);
  Create("skip", Every(absl::Milliseconds(300), "skip", cohort::v1::OVERLAP_POLICY_SKIP));
  const cohort::v1::Job first = NextJob(exec);
  ASSERT_FALSE(first.id().empty());
  ASSERT_TRUE(AwaitFires("skipped", 2)) << "no slot was skipped while the job ran";
  ASSERT_EQ(SlotsOf("skip", "skip").size(), 1u);

  exec.Complete(first.id(), 1, "done");
  const cohort::v1::Job second = NextJob(exec);
  std::vector<Fired> fired = SlotsOf("skip", "skip");
  ASSERT_GE(fired.size(), 2u);
  EXPECT_EQ(fired[0].job.id(), first.id());
  EXPECT_EQ(fired[1].job.id(), second.id());
  // The skipped slots never run: the next job is for a slot at least two intervals on.
  EXPECT_GE(fired[1].slot - fired[0].slot, absl::Milliseconds(600));
}

TEST_F(SchedulerPoliciesTest, OverlapBufferOneFiresOneWaitingSlotWhenTheLastJobEnds) {
  TestExecutor exec(stub(), "holder", 4);
  exec.Grant(4);
  Create("buffer", Every(absl::Milliseconds(300), "buffer", cohort::v1::OVERLAP_POLICY_BUFFER_ONE));
  const cohort::v1::Job first = NextJob(exec);
  ASSERT_FALSE(first.id().empty());
  // One slot waits; the ones after it are skipped meanwhile.
  ASSERT_TRUE(AwaitFires("skipped", 2)) << "no slot was skipped behind the buffered one";
  ASSERT_EQ(SlotsOf("buffer", "buffer").size(), 1u);

  exec.Complete(first.id(), 1, "done");
  const cohort::v1::Job second = NextJob(exec);
  std::vector<Fired> fired = SlotsOf("buffer", "buffer");
  ASSERT_GE(fired.size(), 2u);
  EXPECT_EQ(fired[1].job.id(), second.id());
  // The buffered slot is the first that came while the first job ran, fired late.
  EXPECT_EQ(fired[1].slot - fired[0].slot, absl::Milliseconds(300));
  EXPECT_GE(TimeOf(second.create_time()), TimeOf(Get(first.id()).end_time()));
}

TEST_F(SchedulerPoliciesTest, SlotsThatPassWhilePausedAreSkippedNotCaughtUp) {
  Create("pausing", Every(absl::Milliseconds(200), "pausing", cohort::v1::OVERLAP_POLICY_ALLOW));
  AwaitSlots("pausing", "pausing", [](const std::vector<Fired>& f) { return !f.empty(); });
  SetPaused("pausing", true);
  const absl::Time paused = absl::Now();
  {
    cohort::v1::GetScheduleRequest req;
    req.set_schedule_id("pausing");
    cohort::v1::GetScheduleResponse resp;
    auto ctx = Context();
    ASSERT_TRUE(scheduler_stub_->GetSchedule(ctx.get(), req, &resp).ok());
    EXPECT_TRUE(resp.schedule().paused());
    EXPECT_FALSE(resp.schedule().has_next_fire_time()) << "next_fire_time is set while paused";
  }
  // Five slots pass while paused: the passing of time is what this test is about.
  absl::SleepFor(absl::Seconds(1));
  const absl::Time resumed = absl::Now();
  SetPaused("pausing", false);
  std::vector<Fired> fired =
      AwaitSlots("pausing", "pausing", [&](const std::vector<Fired>& f) { return !f.empty() && f.back().slot > resumed; });
  for (const Fired& f : fired) {
    EXPECT_FALSE(f.slot > paused + absl::Milliseconds(10) && f.slot < resumed)
        << "slot " << absl::FormatTime(f.slot) << " passed while paused and fired";
  }
}

TEST_F(SchedulerPoliciesTest, CatchUpAfterAKill9FollowsEachPolicyAndRunAllItsLimit) {
  const absl::Duration interval = absl::Seconds(1);
  cohort::v1::ScheduleSpec run_all = Every(interval, "run-all", cohort::v1::OVERLAP_POLICY_ALLOW);
  run_all.set_catch_up_policy(cohort::v1::CATCH_UP_POLICY_RUN_ALL);
  run_all.set_catch_up_limit(3);
  cohort::v1::ScheduleSpec run_once = Every(interval, "run-once", cohort::v1::OVERLAP_POLICY_ALLOW);
  run_once.set_catch_up_policy(cohort::v1::CATCH_UP_POLICY_RUN_ONCE);
  cohort::v1::ScheduleSpec skip_missed = Every(interval, "skip-missed", cohort::v1::OVERLAP_POLICY_ALLOW);
  skip_missed.set_catch_up_policy(cohort::v1::CATCH_UP_POLICY_SKIP_MISSED);
  Create("run-all", run_all);
  Create("run-once", run_once);
  Create("skip-missed", skip_missed);

  // Down from just after slot b0 to just after slot b4 (slots are whole seconds since the
  // epoch): b1..b4 are missed, and the restart is over well before b5.
  const absl::Time b0 = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) + 2);
  SleepUntil(b0 + absl::Milliseconds(150));
  ASSERT_TRUE(scheduler_->Kill9().ok());
  const absl::Time killed = absl::Now();
  SleepUntil(b0 + 4 * interval + absl::Milliseconds(150));
  StartScheduler();
  ASSERT_LT(absl::Now(), b0 + 5 * interval - absl::Milliseconds(50))
      << "the scheduler took too long to start for this test to tell catch-up from a normal fire";

  const absl::Time b5 = b0 + 5 * interval;
  auto missed = [&](const std::string& id) {
    std::vector<Fired> fired = AwaitSlots(id, id, [&](const std::vector<Fired>& f) {
      return std::any_of(f.begin(), f.end(), [&](const Fired& x) { return x.slot >= b5; });
    });
    std::vector<absl::Time> slots;
    std::vector<std::string> ids;
    for (const Fired& f : fired) {
      if (f.slot > killed && f.slot < b5) {
        slots.push_back(f.slot);
        ids.push_back(f.job.id());
      }
    }
    // Oldest first: job ids are k-sortable by submission.
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end())) << id;
    return slots;
  };
  EXPECT_EQ(missed("run-all"), (std::vector<absl::Time>{b0 + 2 * interval, b0 + 3 * interval, b0 + 4 * interval}));
  EXPECT_EQ(missed("run-once"), (std::vector<absl::Time>{b0 + 4 * interval}));
  EXPECT_EQ(missed("skip-missed"), (std::vector<absl::Time>{}));
}

TEST_F(SchedulerPoliciesTest, UpdateScheduleNeverFiresASlotAgain) {
  Create("updated", Every(absl::Milliseconds(200), "updated", cohort::v1::OVERLAP_POLICY_ALLOW));
  std::vector<Fired> before =
      AwaitSlots("updated", "updated", [](const std::vector<Fired>& f) { return f.size() >= 2; });
  const absl::Time updated_at = absl::Now();
  cohort::v1::ScheduleSpec spec = Every(absl::Milliseconds(300), "updated", cohort::v1::OVERLAP_POLICY_ALLOW);
  spec.set_catch_up_policy(cohort::v1::CATCH_UP_POLICY_RUN_ALL);
  spec.set_catch_up_limit(100);
  cohort::v1::Schedule after = Update("updated", spec);
  ASSERT_TRUE(after.has_next_fire_time());
  EXPECT_GT(TimeOf(after.next_fire_time()), updated_at);
  std::vector<Fired> fired = AwaitSlots("updated", "updated", [&](const std::vector<Fired>& f) {
    return std::count_if(f.begin(), f.end(), [&](const Fired& x) { return x.slot > updated_at; }) >= 2;
  });
  // Every submission made a new job: no slot was submitted twice (the broker would have
  // answered a repeated slot's key with the old job, hiding it from a count of jobs).
  // Paused, so that no fire lands between the count and the scrape.
  // The counter moves just after the broker's reply, so a fire in flight at the pause
  // may be listed before it is counted: wait for the count to catch up, then compare.
  SetPaused("updated", true);
  const std::size_t jobs = SlotsOf("updated", "updated").size();
  ASSERT_TRUE(AwaitFires("submitted", static_cast<double>(jobs)));
  ASSERT_EQ(SlotsOf("updated", "updated").size(), jobs) << "a slot fired after the pause";
  EXPECT_EQ(FiresTotal("submitted"), static_cast<double>(jobs));
  for (std::size_t i = 1; i < fired.size(); ++i) EXPECT_LT(fired[i - 1].slot, fired[i].slot);
}

TEST_F(SchedulerPoliciesTest, CreateScheduleIsUnavailableWhenTheBrokerCannotBeReached) {
  ASSERT_TRUE(broker_->Kill9().ok());
  cohort::v1::CreateScheduleRequest req;
  req.set_schedule_id("orphan");
  *req.mutable_spec() = Every(absl::Hours(1), "orphan", cohort::v1::OVERLAP_POLICY_SKIP);
  cohort::v1::CreateScheduleResponse resp;
  auto ctx = Context(std::chrono::seconds(60));
  grpc::Status status = scheduler_stub_->CreateSchedule(ctx.get(), req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  // Nothing was stored.
  cohort::v1::GetScheduleRequest get;
  get.set_schedule_id("orphan");
  cohort::v1::GetScheduleResponse got;
  auto ctx2 = Context();
  EXPECT_EQ(scheduler_stub_->GetSchedule(ctx2.get(), get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace cohort::testing
