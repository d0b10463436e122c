// Schedules on a manual clock: slots fire when the loop's clock passes them (no real
// waiting), against an in-process fake broker and a real ScheduleStore; fires are
// counted even when their schedule changes while they are in flight.
#include "services/scheduler/schedules.h"

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "libs/common/log.h"
#include "libs/common/proto_time.h"
#include "libs/runtime/runtime.h"
#include "prometheus/registry.h"
#include "services/scheduler/schedule_store.h"
#include "services/scheduler/scheduler_metrics.h"

namespace cohort::scheduler {
namespace {

using namespace std::chrono_literals;

// 30 s before a minute boundary, so a "* * * * *" schedule's first slot is 30 s away.
const absl::Time kStart = absl::FromUnixSeconds(1'893'456'000) + absl::Seconds(30);  // 2030-01-01T00:00:30Z
const absl::Time kFirstSlot = absl::FromUnixSeconds(1'893'456'060);                 // 2030-01-01T00:01:00Z

// The broker as Schedules sees it: Submit answers job-1, job-2, ... (validate_only
// answers OK and records nothing); GetJob says every job is `state`.
class FakeBroker final : public cohort::v1::Broker::CallbackService {
 public:
  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* ctx, const cohort::v1::SubmitRequest* req,
                                   cohort::v1::SubmitResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    {
      absl::MutexLock lock(&mu_);
      if (!req->validate_only()) {
        for (const cohort::v1::JobSpec& job : req->jobs()) {
          submitted_.push_back(job);
          resp->add_job_ids(absl::StrCat("job-", submitted_.size()));
        }
        if (hold_) {  // answered by Release
          held_.push_back(reactor);
          return reactor;
        }
      }
    }
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* ctx, const cohort::v1::GetJobRequest* req,
                                   cohort::v1::GetJobResponse* resp) override {
    {
      absl::MutexLock lock(&mu_);
      resp->mutable_job()->set_id(req->job_id());
      resp->mutable_job()->set_state(state_);
    }
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  std::vector<cohort::v1::JobSpec> submitted() {
    absl::MutexLock lock(&mu_);
    return submitted_;
  }
  void set_state(cohort::v1::JobState state) {
    absl::MutexLock lock(&mu_);
    state_ = state;
  }
  // While held, a Submit (but validate_only) is recorded and left unanswered until Release.
  void Hold() {
    absl::MutexLock lock(&mu_);
    hold_ = true;
  }
  std::size_t held() {
    absl::MutexLock lock(&mu_);
    return held_.size();
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    hold_ = false;
    for (grpc::ServerUnaryReactor* reactor : held_) reactor->Finish(grpc::Status::OK);
    held_.clear();
  }

 private:
  absl::Mutex mu_;
  bool hold_ = false;
  std::vector<grpc::ServerUnaryReactor*> held_;
  std::vector<cohort::v1::JobSpec> submitted_;
  cohort::v1::JobState state_ = cohort::v1::JOB_STATE_SUCCEEDED;
};

cohort::v1::ScheduleSpec EveryMinute(cohort::v1::OverlapPolicy overlap = cohort::v1::OVERLAP_POLICY_ALLOW) {
  cohort::v1::ScheduleSpec spec;
  spec.mutable_cron()->set_expression("* * * * *");
  spec.mutable_cron()->set_time_zone("UTC");
  spec.set_overlap_policy(overlap);
  spec.mutable_job()->set_queue("reports");
  spec.mutable_job()->set_kind("builtin.echo");
  spec.mutable_job()->set_payload("s3cret-payload");
  return spec;
}

// fires_total{result} in `registry`; 0 before the first.
double FiresTotal(prometheus::Registry& registry, const std::string& result) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != "cohort_scheduler_schedule_fires_total") continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      for (const prometheus::ClientMetric::Label& label : metric.label) {
        if (label.name == "result" && label.value == result) return metric.counter.value;
      }
    }
  }
  return 0;
}

class SchedulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&broker_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = cohort::v1::Broker::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
    const char* tmp = std::getenv("TEST_TMPDIR");
    absl::StatusOr<std::unique_ptr<ScheduleStore>> store =
        ScheduleStore::Open(absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/schedules-", ::testing::UnitTest::GetInstance()
                                                                                            ->current_test_info()
                                                                                            ->name()));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    schedules_ = std::make_unique<Schedules>(loop_, *store_, *stub_, metrics_, ScheduleLimits{});
    log::Configure({.out = &log_, .now = [this] { return clock_.SystemNow(); }});
  }
  void TearDown() override {
    broker_.Release();
    if (schedules_ != nullptr) runtime::RunUntilComplete(loop_, schedules_->Stop());
    schedules_.reset();
    log::Configure({});
    if (server_ != nullptr) server_->Shutdown();
  }

  template <typename T>
  T Run(runtime::Task<T> task) {
    return runtime::RunUntilComplete(loop_, std::move(task));
  }
  // Moves the manual clock `d` ahead, running every timer due on the way and the work
  // they start (gRPC calls and store writes in flight hold the clock until they end).
  void Advance(std::chrono::milliseconds d) {
    Run([](std::chrono::milliseconds d) -> runtime::Task<void> { co_await runtime::Sleep(d); }(d));
  }
  std::vector<std::string> LogLinesWith(absl::string_view text) const {
    std::vector<std::string> out;
    for (absl::string_view line : absl::StrSplit(log_.str(), '\n')) {
      if (absl::StrContains(line, text)) out.emplace_back(line);
    }
    return out;
  }

  runtime::ManualClock clock_{/*auto_advance=*/true, kStart};
  runtime::EventLoop loop_{&clock_};
  FakeBroker broker_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<cohort::v1::Broker::Stub> stub_;
  prometheus::Registry registry_;
  SchedulerMetrics metrics_{registry_};
  std::unique_ptr<ScheduleStore> store_;
  std::unique_ptr<Schedules> schedules_;
  std::ostringstream log_;
};

TEST_F(SchedulesTest, ACronScheduleFiresOnceTheManualClockPassesItsNextFireTime) {
  absl::StatusOr<cohort::v1::Schedule> created = Run(schedules_->Create("every-minute", EveryMinute()));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(common::FromProto(created->next_fire_time()), kFirstSlot);
  EXPECT_EQ(common::FromProto(created->create_time()), kStart);  // wall time from the loop's clock

  Advance(29'999ms);
  EXPECT_TRUE(broker_.submitted().empty()) << "fired before its slot";

  Advance(2s);
  std::vector<cohort::v1::JobSpec> submitted = broker_.submitted();
  ASSERT_EQ(submitted.size(), 1u);
  EXPECT_EQ(submitted[0].idempotency_key(), "cohort.schedule/every-minute/2030-01-01T00:01:00+00:00");
  absl::StatusOr<cohort::v1::Schedule> after = schedules_->Get("every-minute");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(common::FromProto(after->last_fire_time()), kFirstSlot);
  EXPECT_EQ(after->last_job_id(), "job-1");
  EXPECT_EQ(common::FromProto(after->next_fire_time()), kFirstSlot + absl::Minutes(1));
  EXPECT_EQ(LogLinesWith("schedule fired").size(), 1u);
}

TEST_F(SchedulesTest, ASlotSkippedByTheOverlapPolicyLogsOneLineWithoutThePayload) {
  broker_.set_state(cohort::v1::JOB_STATE_RUNNING);
  ASSERT_TRUE(Run(schedules_->Create("nightly", EveryMinute(cohort::v1::OVERLAP_POLICY_SKIP))).ok());
  Advance(31s);  // the first slot fires: no previous job
  ASSERT_EQ(broker_.submitted().size(), 1u);

  Advance(60s);  // the second slot finds job-1 still running
  EXPECT_EQ(broker_.submitted().size(), 1u);
  const std::vector<std::string> skipped = LogLinesWith("skipped");
  ASSERT_EQ(skipped.size(), 1u) << log_.str();
  EXPECT_TRUE(absl::StrContains(skipped[0], "INFO")) << skipped[0];
  EXPECT_TRUE(absl::StrContains(skipped[0], "schedule_id=nightly")) << skipped[0];
  EXPECT_TRUE(absl::StrContains(skipped[0], "job_id=job-1")) << skipped[0];
  EXPECT_TRUE(absl::StrContains(skipped[0], "overlap_policy=skip")) << skipped[0];
  EXPECT_FALSE(absl::StrContains(log_.str(), "s3cret")) << log_.str();
  // The skipped slot is recorded: the schedule moves on to the next one.
  absl::StatusOr<cohort::v1::Schedule> after = schedules_->Get("nightly");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(common::FromProto(after->next_fire_time()), kFirstSlot + absl::Minutes(2));
  EXPECT_EQ(after->last_job_id(), "job-1");
}

TEST_F(SchedulesTest, MissedSlotsAreCaughtUpAtStartWithOneLogLine) {
  // Stored by a scheduler that stopped 3 minutes ago: slots 23:58, 23:59 and 00:00 were
  // missed, and RUN_ALL fires each of them.
  cohort::v1::Schedule stored;
  stored.set_id("catch-up");
  *stored.mutable_spec() = EveryMinute();
  stored.mutable_spec()->set_catch_up_policy(cohort::v1::CATCH_UP_POLICY_RUN_ALL);
  stored.mutable_spec()->set_catch_up_limit(10);
  ASSERT_TRUE(store_->Put({stored, kStart - absl::Minutes(3)}).ok());
  ASSERT_TRUE(schedules_->Load().ok());
  schedules_->Start();
  Advance(1ms);

  std::vector<std::string> keys;
  for (const cohort::v1::JobSpec& job : broker_.submitted()) keys.push_back(job.idempotency_key());
  EXPECT_EQ(keys, (std::vector<std::string>{"cohort.schedule/catch-up/2029-12-31T23:58:00+00:00",
                                            "cohort.schedule/catch-up/2029-12-31T23:59:00+00:00",
                                            "cohort.schedule/catch-up/2030-01-01T00:00:00+00:00"}));
  const std::vector<std::string> caught_up = LogLinesWith("catching up");
  ASSERT_EQ(caught_up.size(), 1u) << log_.str();
  EXPECT_TRUE(absl::StrContains(caught_up[0], "schedule_id=catch-up")) << caught_up[0];
  EXPECT_TRUE(absl::StrContains(caught_up[0], "slots=3")) << caught_up[0];
}

// A fire's Submit may be in flight when the schedule is paused or updated (both start
// a new generation): the job the broker accepted is counted all the same. Before, it
// was not, so fires_total{result="submitted"} stayed below the jobs the schedule made
// (scheduler_policies_test UpdateScheduleNeverFiresASlotAgain, once in CI).
TEST_F(SchedulesTest, ASlotSubmittedWhileItsScheduleIsPausedIsCounted) {
  broker_.Hold();
  ASSERT_TRUE(Run(schedules_->Create("paused-in-flight", EveryMinute())).ok());
  const absl::Status status = Run([](Schedules& schedules, FakeBroker& broker, prometheus::Registry& registry)
                                      -> runtime::Task<absl::Status> {
    // Polls `done` between the loop's other work, for at most 10 s of real time (a
    // call in flight holds the manual clock, so no timer can bound the wait).
    auto poll = [](auto done) -> runtime::Task<bool> {
      const absl::Time give_up = absl::Now() + absl::Seconds(10);
      while (!done() && absl::Now() < give_up) co_await runtime::Yield();
      co_return done();
    };
    co_await runtime::Sleep(std::chrono::seconds(30));  // the first slot
    if (!co_await poll([&] { return broker.held() == 1; })) co_return absl::InternalError("the slot never fired");
    absl::StatusOr<cohort::v1::Schedule> paused = co_await schedules.SetPaused("paused-in-flight", true);
    if (!paused.ok()) co_return paused.status();
    broker.Release();
    if (!co_await poll([&] { return FiresTotal(registry, "submitted") == 1; })) {
      co_return absl::InternalError("the job the broker accepted was never counted");
    }
    co_return absl::OkStatus();
  }(*schedules_, broker_, registry_));
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(broker_.submitted().size(), 1u);
  EXPECT_EQ(FiresTotal(registry_, "submitted"), 1);
}

}  // namespace
}  // namespace cohort::scheduler
