// The real cohort-scheduler with the real broker and executor: delayed jobs, retries
// with backoff, DAGs and chords, schedules, bad input, and kill -9 at the worst moment.
#include <stdlib.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "libs/common/proto_time.h"
#include "protos/cohort/v1/scheduler.grpc.pb.h"
#include "services/scheduler/schedule_store.h"
#include "tests/broker_fixture.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/runfiles.h"

namespace cohort::testing {
namespace {

using common::FromProto;
using common::ToProto;
using cohort::v1::Job;
using cohort::v1::JobSpec;

class SchedulerTest : public BrokerTest {
 protected:
  void SetUp() override {
    BrokerTest::SetUp();
    StartExecutor();
    StartScheduler();
  }

  void StartExecutor() {
    auto executor = ServiceProcess::Start(BinaryPath("services/executor/cohort-executor"),
                                          {"--broker=" + broker_->grpc_address(), "--listen=127.0.0.1:0",
                                           "--metrics-listen=127.0.0.1:0", "--capacity=8"});
    ASSERT_TRUE(executor.ok()) << executor.status();
    executor_ = std::move(*executor);
  }

  void StartScheduler(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--broker=" + broker_->grpc_address(), "--listen=127.0.0.1:0",
                                     "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir_.path() + "/scheduler",
                                     "--min-interval=100ms"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto started = ServiceProcess::Start(BinaryPath("services/scheduler/cohort-scheduler"), args);
    ASSERT_TRUE(started.ok()) << started.status();
    scheduler_ = std::move(*started);
    scheduler_stub_ = cohort::v1::Scheduler::NewStub(
        grpc::CreateChannel(scheduler_->grpc_address(), grpc::InsecureChannelCredentials()));
  }

  static JobSpec Kind(const std::string& kind, const std::string& payload, const std::string& queue = "default") {
    JobSpec s = Spec(queue);
    s.set_kind(kind);
    s.set_payload(payload);
    return s;
  }

  // Waits (up to 30 s) for every job to end and returns them.
  std::vector<Job> AwaitAll(const std::vector<std::string>& ids) {
    cohort::v1::WaitRequest req;
    for (const std::string& id : ids) req.add_job_ids(id);
    req.set_return_when(cohort::v1::RETURN_WHEN_ALL_COMPLETED);
    req.mutable_timeout()->set_seconds(30);
    cohort::v1::WaitResponse resp;
    auto ctx = Context(std::chrono::seconds(40));
    grpc::Status status = stub_->Wait(ctx.get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(resp.pending().empty()) << resp.pending_size() << " jobs still pending";
    std::vector<Job> jobs;
    for (const std::string& id : ids) jobs.push_back(Get(id));
    return jobs;
  }

  // The jobs of `queue`, oldest first.
  std::vector<Job> JobsIn(const std::string& queue) {
    cohort::v1::ListJobsRequest req;
    req.set_queue(queue);
    req.set_page_size(1000);
    cohort::v1::ListJobsResponse resp;
    auto ctx = Context();
    grpc::Status status = stub_->ListJobs(ctx.get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return std::vector<Job>(resp.jobs().begin(), resp.jobs().end());
  }

  // Follows the broker's event log (up to 30 s) until `n` jobs were submitted to `queue`.
  bool AwaitSubmitted(const std::string& queue, int n) {
    cohort::v1::WatchRequest req;
    auto ctx = Context(std::chrono::seconds(30));
    auto reader = stub().Watch(ctx.get(), req);
    cohort::v1::WatchResponse batch;
    int seen = 0;
    while (reader->Read(&batch)) {
      for (const auto& e : batch.events()) {
        if (e.reason() == cohort::v1::TRANSITION_REASON_SUBMITTED && e.job().spec().queue() == queue) ++seen;
      }
      if (seen >= n) return true;
    }
    return false;
  }

  grpc::Status CreateSchedule(const std::string& id, const cohort::v1::ScheduleSpec& spec,
                              cohort::v1::Schedule* out = nullptr) {
    cohort::v1::CreateScheduleRequest req;
    req.set_schedule_id(id);
    *req.mutable_spec() = spec;
    cohort::v1::CreateScheduleResponse resp;
    auto ctx = Context();
    grpc::Status status = scheduler_stub_->CreateSchedule(ctx.get(), req, &resp);
    if (out != nullptr) *out = resp.schedule();
    return status;
  }

  grpc::Status GetSchedule(const std::string& id, cohort::v1::Schedule* out) {
    cohort::v1::GetScheduleRequest req;
    req.set_schedule_id(id);
    cohort::v1::GetScheduleResponse resp;
    auto ctx = Context();
    grpc::Status status = scheduler_stub_->GetSchedule(ctx.get(), req, &resp);
    *out = resp.schedule();
    return status;
  }

  static cohort::v1::ScheduleSpec Every(absl::Duration interval, const std::string& queue) {
    cohort::v1::ScheduleSpec spec;
    *spec.mutable_job() = Kind("builtin.echo", "tick", queue);
    *spec.mutable_interval() = ToProto(interval);
    return spec;
  }

  std::optional<double> SchedulerMetric(const std::string& series) {
    absl::StatusOr<std::string> body = ScrapeMetrics(scheduler_->metrics_address());
    if (!body.ok()) return std::nullopt;
    return MetricValue(*body, series);
  }

  std::unique_ptr<ServiceProcess> executor_;
  std::unique_ptr<ServiceProcess> scheduler_;
  std::unique_ptr<cohort::v1::Scheduler::Stub> scheduler_stub_;
};

TEST_F(SchedulerTest, ADelayedJobIsReleasedNoEarlierThanAsked) {
  JobSpec spec = Kind("builtin.echo", "later");
  spec.mutable_delay()->set_nanos(700'000'000);
  std::string id = Submit({spec})[0];
  Job job = Get(id);
  EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_PENDING);
  ASSERT_TRUE(job.has_not_before());
  EXPECT_GE(FromProto(job.not_before()), FromProto(job.create_time()) + absl::Milliseconds(700));

  job = AwaitAll({id})[0];
  EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job.result(), "later");
  EXPECT_GE(FromProto(job.queue_time()), FromProto(job.not_before()));
  EXPECT_GE(SchedulerMetric("cohort_scheduler_releases_total{reason=\"run_at\"}").value_or(0), 1);
}

TEST_F(SchedulerTest, ARetriedJobWaitsOutItsBackoffAndKeepsEveryError) {
  JobSpec spec = Kind("builtin.fail", "boom");
  spec.set_max_attempts(3);
  spec.mutable_backoff()->mutable_initial()->set_nanos(100'000'000);
  spec.mutable_backoff()->set_multiplier(2);
  spec.mutable_backoff()->set_jitter(0);
  std::string id = Submit({spec})[0];
  Job job = AwaitAll({id})[0];
  EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_FAILED);
  EXPECT_EQ(job.attempt(), 3);
  ASSERT_EQ(job.attempts_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(job.attempts(i).number(), i + 1);
    EXPECT_EQ(job.attempts(i).error().message(), "boom");
  }
  EXPECT_GE(FromProto(job.attempts(1).start_time()) - FromProto(job.attempts(0).end_time()), absl::Milliseconds(100));
  EXPECT_GE(FromProto(job.attempts(2).start_time()) - FromProto(job.attempts(1).end_time()), absl::Milliseconds(200));
  EXPECT_GE(SchedulerMetric("cohort_scheduler_releases_total{reason=\"backoff\"}").value_or(0), 2);
}

TEST_F(SchedulerTest, ADiamondRunsInAValidOrder) {
  JobSpec a = Kind("builtin.echo", "a");
  JobSpec b = Kind("builtin.echo", "b");
  b.add_depends_on_index(0);
  JobSpec c = Kind("builtin.echo", "c");
  c.add_depends_on_index(0);
  JobSpec d = Kind("builtin.echo", "d");
  d.add_depends_on_index(1);
  d.add_depends_on_index(2);
  // A parent must come earlier in the batch, so a batch cannot hold a cycle.
  JobSpec forward = Kind("builtin.echo", "forward");
  forward.add_depends_on_index(1);
  cohort::v1::SubmitRequest cyclic;
  *cyclic.add_jobs() = forward;
  *cyclic.add_jobs() = a;
  cohort::v1::SubmitResponse refused;
  auto ctx = Context();
  EXPECT_EQ(stub().Submit(ctx.get(), cyclic, &refused).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  std::vector<std::string> ids = Submit({a, b, c, d});
  ASSERT_EQ(ids.size(), 4u);
  std::vector<Job> jobs = AwaitAll(ids);
  for (const Job& j : jobs) EXPECT_EQ(j.state(), cohort::v1::JOB_STATE_SUCCEEDED) << j.spec().payload();
  const Job& ja = jobs[0];
  const Job& jb = jobs[1];
  const Job& jc = jobs[2];
  const Job& jd = jobs[3];
  EXPECT_GE(FromProto(jb.start_time()), FromProto(ja.end_time()));
  EXPECT_GE(FromProto(jc.start_time()), FromProto(ja.end_time()));
  EXPECT_GE(FromProto(jd.start_time()), std::max(FromProto(jb.end_time()), FromProto(jc.end_time())));
}

TEST_F(SchedulerTest, AFailedParentEndsItsDependentsAsTheirPolicySays) {
  JobSpec parent = Kind("builtin.fail", "parent broke");
  JobSpec cancel_me = Kind("builtin.echo", "never");
  cancel_me.add_depends_on_index(0);
  JobSpec fail_me = Kind("builtin.echo", "never");
  fail_me.add_depends_on_index(0);
  fail_me.set_on_dependency_failure(cohort::v1::DEPENDENCY_FAILURE_POLICY_FAIL);
  std::vector<std::string> ids = Submit({parent, cancel_me, fail_me});
  std::vector<Job> jobs = AwaitAll(ids);
  EXPECT_EQ(jobs[0].state(), cohort::v1::JOB_STATE_FAILED);
  EXPECT_EQ(jobs[1].state(), cohort::v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(jobs[2].state(), cohort::v1::JOB_STATE_FAILED);
  for (int i : {1, 2}) {
    EXPECT_EQ(jobs[i].error().code(), "dependency_failed");
    EXPECT_NE(jobs[i].error().message().find(ids[0]), std::string::npos) << jobs[i].error().message();
    EXPECT_EQ(jobs[i].attempts_size(), 0);
  }
}

TEST_F(SchedulerTest, AChordCallbackRunsAfterItsWholeGroup) {
  std::vector<JobSpec> specs;
  JobSpec callback = Kind("builtin.echo", "callback");
  for (int i = 0; i < 10; ++i) {
    JobSpec member = Kind("builtin.sleep", absl::StrCat(10 * i, "ms"));
    specs.push_back(member);
    callback.add_depends_on_index(i);
  }
  specs.push_back(callback);
  std::vector<std::string> ids = Submit(specs);
  std::vector<Job> jobs = AwaitAll(ids);
  absl::Time group_end = absl::InfinitePast();
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(jobs[i].state(), cohort::v1::JOB_STATE_SUCCEEDED);
    group_end = std::max(group_end, FromProto(jobs[i].end_time()));
  }
  EXPECT_EQ(jobs[10].state(), cohort::v1::JOB_STATE_SUCCEEDED);
  EXPECT_GE(FromProto(jobs[10].start_time()), group_end);
}

TEST_F(SchedulerTest, AParentThatEndedBeforeTheSchedulerStartedIsLookedUp) {
  ASSERT_TRUE(scheduler_->Kill9().ok());
  std::string parent = Submit({Kind("builtin.echo", "early")})[0];
  AwaitAll({parent});
  JobSpec child = Kind("builtin.echo", "late child");
  child.add_depends_on(parent);
  std::string id = Submit({child})[0];
  EXPECT_EQ(Get(id).state(), cohort::v1::JOB_STATE_PENDING);
  StartScheduler();
  Job job = AwaitAll({id})[0];
  EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_SUCCEEDED);
}

TEST_F(SchedulerTest, ARestartedSchedulerReleasesWhatWasPendingExactlyOnce) {
  JobSpec spec = Kind("builtin.echo", "survivor");
  spec.mutable_delay()->set_seconds(1);
  std::string id = Submit({spec})[0];
  ASSERT_TRUE(scheduler_->Kill9().ok());
  StartScheduler();
  Job job = AwaitAll({id})[0];
  EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job.attempts_size(), 1);
}

TEST_F(SchedulerTest, ReleasesGetThroughABrokerThatTakesSmallerBatches) {
  ASSERT_TRUE(scheduler_->Kill9().ok());
  ASSERT_TRUE(executor_->Kill9().ok());
  StartBroker({"--max-submit-batch=4"});
  StartExecutor();
  StartScheduler({"--release-batch=1000"});
  JobSpec spec = Kind("builtin.echo", "due together");
  *spec.mutable_run_at() = ToProto(absl::Now() + absl::Milliseconds(500));
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    std::vector<std::string> batch = Submit({spec, spec, spec, spec});
    ids.insert(ids.end(), batch.begin(), batch.end());
  }
  for (const Job& j : AwaitAll(ids)) EXPECT_EQ(j.state(), cohort::v1::JOB_STATE_SUCCEEDED);
}

TEST_F(SchedulerTest, AnIntervalScheduleFiresAndAnswersEveryCall) {
  cohort::v1::ScheduleSpec spec = Every(absl::Milliseconds(200), "ticks");
  spec.set_overlap_policy(cohort::v1::OVERLAP_POLICY_ALLOW);
  cohort::v1::Schedule created;
  ASSERT_TRUE(CreateSchedule("ticker", spec, &created).ok());
  EXPECT_EQ(created.id(), "ticker");
  EXPECT_TRUE(created.has_next_fire_time());
  ASSERT_TRUE(AwaitSubmitted("ticks", 3));

  std::vector<Job> jobs = JobsIn("ticks");
  std::map<std::string, int> keys;
  for (const Job& j : jobs) {
    ++keys[j.spec().idempotency_key()];
    EXPECT_EQ(j.spec().labels().at("cohort.schedule"), "ticker");
  }
  for (const auto& [key, n] : keys) EXPECT_EQ(n, 1) << key;

  cohort::v1::Schedule got;
  ASSERT_TRUE(GetSchedule("ticker", &got).ok());
  EXPECT_TRUE(got.has_last_fire_time());
  EXPECT_FALSE(got.last_job_id().empty());

  cohort::v1::ListSchedulesRequest list;
  cohort::v1::ListSchedulesResponse listed;
  auto ctx = Context();
  ASSERT_TRUE(scheduler_stub_->ListSchedules(ctx.get(), list, &listed).ok());
  ASSERT_EQ(listed.schedules_size(), 1);
  EXPECT_EQ(listed.schedules(0).id(), "ticker");

  cohort::v1::PauseScheduleRequest pause;
  pause.set_schedule_id("ticker");
  cohort::v1::PauseScheduleResponse paused;
  ctx = Context();
  ASSERT_TRUE(scheduler_stub_->PauseSchedule(ctx.get(), pause, &paused).ok());
  EXPECT_TRUE(paused.schedule().paused());
  EXPECT_FALSE(paused.schedule().has_next_fire_time());

  cohort::v1::TriggerScheduleRequest trigger;
  trigger.set_schedule_id("ticker");
  cohort::v1::TriggerScheduleResponse triggered;
  ctx = Context();
  ASSERT_TRUE(scheduler_stub_->TriggerSchedule(ctx.get(), trigger, &triggered).ok());
  EXPECT_EQ(Get(triggered.job_id()).spec().labels().at("cohort.schedule"), "ticker");

  cohort::v1::DeleteScheduleRequest del;
  del.set_schedule_id("ticker");
  cohort::v1::DeleteScheduleResponse deleted;
  ctx = Context();
  ASSERT_TRUE(scheduler_stub_->DeleteSchedule(ctx.get(), del, &deleted).ok());
  EXPECT_EQ(GetSchedule("ticker", &got).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_GE(SchedulerMetric("cohort_scheduler_schedule_fires_total{result=\"submitted\"}").value_or(0), 3);
}

TEST_F(SchedulerTest, SchedulesSurviveARestart) {
  ASSERT_TRUE(CreateSchedule("hourly", Every(absl::Hours(1), "hours")).ok());
  ASSERT_TRUE(scheduler_->Kill9().ok());
  StartScheduler();
  cohort::v1::Schedule got;
  ASSERT_TRUE(GetSchedule("hourly", &got).ok());
  EXPECT_EQ(FromProto(got.spec().interval()), absl::Hours(1));
  EXPECT_EQ(CreateSchedule("hourly", Every(absl::Hours(1), "hours")).error_code(), grpc::StatusCode::ALREADY_EXISTS);
}

TEST_F(SchedulerTest, BadSchedulesAreRejectedWithTheReasonAndChangeNothing) {
  auto expect_invalid = [&](const std::string& id, const cohort::v1::ScheduleSpec& spec, const std::string& words) {
    grpc::Status s = CreateSchedule(id, spec);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << id << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(words), std::string::npos) << id << ": " << s.error_message();
  };
  cohort::v1::ScheduleSpec cron;
  *cron.mutable_job() = Kind("builtin.echo", "x");
  cron.mutable_cron()->set_expression("61 * * * *");
  expect_invalid("bad-cron", cron, "minute");
  cron.mutable_cron()->set_expression("0 3 * * *");
  cron.mutable_cron()->set_time_zone("Mars/Olympus_Mons");
  expect_invalid("bad-zone", cron, "Mars/Olympus_Mons");
  expect_invalid("too-fast", Every(absl::Milliseconds(10), "q"), "minimum");
  cohort::v1::ScheduleSpec keyed = Every(absl::Hours(1), "q");
  keyed.mutable_job()->set_idempotency_key("mine");
  expect_invalid("keyed", keyed, "idempotency_key");
  expect_invalid("broker-says-no", Every(absl::Hours(1), "Not A Queue"), "queue");
  cohort::v1::ScheduleSpec no_trigger;
  *no_trigger.mutable_job() = Kind("builtin.echo", "x");
  expect_invalid("no-trigger", no_trigger, "interval or cron");
  expect_invalid("Bad Id", Every(absl::Hours(1), "q"), "schedule_id");

  cohort::v1::ListSchedulesRequest list;
  cohort::v1::ListSchedulesResponse listed;
  auto ctx = Context();
  ASSERT_TRUE(scheduler_stub_->ListSchedules(ctx.get(), list, &listed).ok());
  EXPECT_EQ(listed.schedules_size(), 0);
  list.set_page_token("forged");
  ctx = Context();
  EXPECT_EQ(scheduler_stub_->ListSchedules(ctx.get(), list, &listed).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  cohort::v1::TriggerScheduleRequest trigger;
  trigger.set_schedule_id("nope");
  cohort::v1::TriggerScheduleResponse triggered;
  ctx = Context();
  EXPECT_EQ(scheduler_stub_->TriggerSchedule(ctx.get(), trigger, &triggered).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(SchedulerTest, AHugeOrMalformedIntervalIsRefusedAndTheSchedulerStaysResponsive) {
  cohort::v1::ScheduleSpec huge = Every(absl::Hours(1), "huge");
  huge.mutable_interval()->set_seconds(1'000'000'000'000);  // 31,700 years
  grpc::Status s = CreateSchedule("huge", huge);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("spec.interval"), std::string::npos) << s.error_message();
  cohort::v1::ScheduleSpec nanos = Every(absl::Hours(1), "nanos");
  nanos.mutable_interval()->set_nanos(2'000'000'000);
  s = CreateSchedule("nanos", nanos);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("spec.interval"), std::string::npos) << s.error_message();

  ASSERT_TRUE(CreateSchedule("fine", Every(absl::Hours(1), "fine")).ok());
  cohort::v1::UpdateScheduleRequest update;
  update.set_schedule_id("fine");
  *update.mutable_spec() = huge;
  cohort::v1::UpdateScheduleResponse updated;
  auto ctx = Context();
  s = scheduler_stub_->UpdateSchedule(ctx.get(), update, &updated);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  // Still answering (a wedged loop would time these out), the schedule unchanged.
  cohort::v1::Schedule got;
  ASSERT_TRUE(GetSchedule("fine", &got).ok());
  EXPECT_EQ(FromProto(got.spec().interval()), absl::Hours(1));
  EXPECT_EQ(GetSchedule("huge", &got).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(SchedulerTest, AScheduleStoredWithAHugeIntervalStaysDisarmedAndDoesNotWedgeTheRestart) {
  ASSERT_TRUE(scheduler_->Kill9().ok());
  {
    // What an older scheduler accepted and stored: an interval of 31,700 years.
    auto store = scheduler::ScheduleStore::Open(dir_.path() + "/scheduler");
    ASSERT_TRUE(store.ok()) << store.status();
    scheduler::StoredSchedule stored;
    stored.schedule.set_id("ancient");
    *stored.schedule.mutable_spec() = Every(absl::Hours(1), "ancient");
    stored.schedule.mutable_spec()->mutable_interval()->set_seconds(1'000'000'000'000);
    stored.fired_through = absl::Now();
    ASSERT_TRUE((*store)->Put(stored).ok());
  }
  StartScheduler();
  for (int restart = 0; restart < 2; ++restart) {
    cohort::v1::Schedule got;
    ASSERT_TRUE(GetSchedule("ancient", &got).ok()) << "restart " << restart;
    EXPECT_FALSE(got.has_next_fire_time());
    EXPECT_EQ(SchedulerMetric("cohort_scheduler_schedules_invalid"), 1);
    // The loop serves: another schedule is created and fires.
    const std::string id = absl::StrCat("ticks-", restart);
    cohort::v1::ScheduleSpec ticks = Every(absl::Milliseconds(200), id);
    ticks.set_overlap_policy(cohort::v1::OVERLAP_POLICY_ALLOW);
    ASSERT_TRUE(CreateSchedule(id, ticks).ok());
    ASSERT_TRUE(AwaitSubmitted(id, 1));
    ASSERT_TRUE(scheduler_->Kill9().ok());
    StartScheduler();
  }
  // An update with a valid spec arms it again.
  cohort::v1::UpdateScheduleRequest update;
  update.set_schedule_id("ancient");
  *update.mutable_spec() = Every(absl::Hours(1), "ancient");
  cohort::v1::UpdateScheduleResponse updated;
  auto ctx = Context();
  ASSERT_TRUE(scheduler_stub_->UpdateSchedule(ctx.get(), update, &updated).ok());
  EXPECT_TRUE(updated.schedule().has_next_fire_time());
  EXPECT_EQ(SchedulerMetric("cohort_scheduler_schedules_invalid"), 0);
}

TEST_F(SchedulerTest, ASlotFiresOnceEvenWhenTheSchedulerDiesBetweenFiringAndRecording) {
  ASSERT_TRUE(scheduler_->Kill9().ok());
  ::setenv("COHORT_FAILPOINT", "scheduler.after_fire_submit", 1);
  StartScheduler();
  ::unsetenv("COHORT_FAILPOINT");
  cohort::v1::ScheduleSpec spec = Every(absl::Seconds(1), "crashy");
  spec.set_catch_up_policy(cohort::v1::CATCH_UP_POLICY_RUN_ALL);
  spec.set_catch_up_limit(100);
  spec.set_overlap_policy(cohort::v1::OVERLAP_POLICY_ALLOW);
  ASSERT_TRUE(CreateSchedule("crashy", spec).ok());
  // The first fire submits its job, then the scheduler kills itself before recording.
  absl::StatusOr<int> died = scheduler_->Wait(absl::Seconds(30));
  ASSERT_EQ(died.status().code(), absl::StatusCode::kAborted) << died.status();
  EXPECT_NE(died.status().message().find("SIGKILL"), std::string::npos) << died.status();
  std::vector<Job> before = JobsIn("crashy");
  ASSERT_EQ(before.size(), 1u);
  const std::string crashed_key = before[0].spec().idempotency_key();

  StartScheduler();
  // Catch-up re-fires the crashed slot first, then the next slot submits a new job.
  ASSERT_TRUE(AwaitSubmitted("crashy", 2));
  cohort::v1::Schedule got;
  ASSERT_TRUE(GetSchedule("crashy", &got).ok());
  EXPECT_TRUE(got.has_last_fire_time());
  std::map<std::string, std::vector<std::string>> by_key;
  for (const Job& j : JobsIn("crashy")) by_key[j.spec().idempotency_key()].push_back(j.id());
  for (const auto& [key, ids] : by_key) EXPECT_EQ(ids.size(), 1u) << key;
  ASSERT_EQ(by_key[crashed_key].size(), 1u);
  EXPECT_EQ(by_key[crashed_key][0], before[0].id());
}

}  // namespace
}  // namespace cohort::testing
