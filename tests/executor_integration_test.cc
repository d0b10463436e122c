// The real cohort-executor working for the real cohort-broker: built-in kinds, exec
// child processes, progress, cancel, timeout, leases, capacity, drain on SIGTERM and
// metrics.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/synchronization/notification.h"
#include "absl/strings/strip.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"

#include "gtest/gtest.h"
#include "tests/broker_fixture.h"
#include "tests/testing/fault_proxy.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/runfiles.h"

namespace cohort::testing {
namespace {

class ExecutorTest : public BrokerTest {
 protected:
  // Connects to the broker, or to `via` (e.g. a FaultProxy in front of it).
  void StartExecutor(int capacity, std::vector<std::string> extra = {}, std::string via = "") {
    std::vector<std::string> args = {"--broker=" + (via.empty() ? broker_->grpc_address() : via),
                                     "--listen=127.0.0.1:0",
                                     "--metrics-listen=127.0.0.1:0", "--executor-id=exec-under-test",
                                     "--capacity=" + std::to_string(capacity)};
    args.insert(args.end(), extra.begin(), extra.end());
    auto started = ServiceProcess::Start(BinaryPath("services/executor/cohort-executor"), args);
    ASSERT_TRUE(started.ok()) << started.status();
    executor_ = std::move(*started);
  }

  cohort::v1::JobSpec Kind(const std::string& kind, const std::string& payload) {
    cohort::v1::JobSpec s = Spec();
    s.set_kind(kind);
    s.set_payload(payload);
    return s;
  }

  grpc::Status WaitFor(const std::string& id, cohort::v1::WaitForResponse* resp) {
    cohort::v1::WaitForRequest req;
    req.set_job_id(id);
    auto ctx = Context();
    return stub().WaitFor(ctx.get(), req, resp);
  }

  // Waits (bounded) until the broker reports the job in `state`.
  bool AwaitState(const std::string& id, cohort::v1::JobState state) {
    cohort::v1::WatchRequest req;
    auto ctx = Context(std::chrono::seconds(20));
    auto reader = stub().Watch(ctx.get(), req);
    if (Get(id).state() == state) return true;
    cohort::v1::WatchResponse batch;
    while (reader->Read(&batch)) {
      for (const auto& e : batch.events()) {
        if (e.job_id() == id && e.to_state() == state) return true;
      }
    }
    return false;
  }

  // One series of the executor's /metrics, or nullopt.
  std::optional<double> ExecutorMetric(const std::string& series) {
    auto body = ScrapeMetrics(executor_->metrics_address());
    if (!body.ok()) return std::nullopt;
    return MetricValue(*body, series);
  }

  std::unique_ptr<ServiceProcess> executor_;
};

// Polls `done` every 10 ms until it holds or 20 s have passed; returns whether it held.
// Only for state Cohort announces no event for: progress (kept, not logged), the
// executor list, a gauge.
template <typename Pred>
bool Eventually(Pred done) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// The pid a script wrote to `path` (once it has written a whole line), or -1.
pid_t PidIn(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  int pid = -1;
  if (s.empty() || s.back() != '\n' || !absl::SimpleAtoi(absl::StripAsciiWhitespace(s), &pid)) return -1;
  return pid;
}

bool ProcessGone(pid_t pid) { return kill(pid, 0) == -1 && errno == ESRCH; }

// A FIFO at `path` that a job's script writes its pid into once it runs: Read() blocks
// until then (the job starting is the event, no polling).
class PidPipe {
 public:
  explicit PidPipe(std::string path) : path_(std::move(path)) { EXPECT_EQ(mkfifo(path_.c_str(), 0600), 0); }
  const std::string& path() const { return path_; }
  // The pid the script wrote (opening blocks until the script opens its end).
  pid_t Read() const { return PidIn(path_); }

 private:
  std::string path_;
};

TEST_F(ExecutorTest, BuiltinEchoRunsAndItsResultComesBack) {
  StartExecutor(2);
  std::string id = Submit({Kind("builtin.echo", "hello from a job")})[0];
  cohort::v1::WaitForResponse resp;
  ASSERT_TRUE(WaitFor(id, &resp).ok());
  EXPECT_EQ(resp.result(), "hello from a job");
  EXPECT_EQ(Get(id).attempts(0).executor_id(), "exec-under-test");
}

TEST_F(ExecutorTest, BuiltinFailEndsTheJobFailedWithItsMessage) {
  StartExecutor(1);
  std::string id = Submit({Kind("builtin.fail", "no such customer")})[0];
  cohort::v1::WaitForResponse resp;
  grpc::Status s = WaitFor(id, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Get(id).error().message(), "no such customer");
}

TEST_F(ExecutorTest, CancellingARunningJobStopsItPromptly) {
  StartExecutor(1);
  std::string id = Submit({Kind("builtin.sleep", "1h")})[0];
  ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_RUNNING));
  cohort::v1::CancelJobRequest cancel;
  cancel.set_job_id(id);
  cohort::v1::CancelJobResponse cancelled;
  auto ctx = Context();
  ASSERT_TRUE(stub().CancelJob(ctx.get(), cancel, &cancelled).ok());
  ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_CANCELLED));
  EXPECT_EQ(Get(id).error().code(), "cancelled");
}

TEST_F(ExecutorTest, CancelArrivingRightBehindItsAssignmentStillEndsTheJob) {
  StartExecutor(1);
  for (int i = 0; i < 20; ++i) {  // races the Cancel against the Assign in the executor
    std::string id = Submit({Kind("builtin.sleep", "1h")})[0];
    cohort::v1::CancelJobRequest cancel;
    cancel.set_job_id(id);
    cohort::v1::CancelJobResponse cancelled;
    auto ctx = Context();
    ASSERT_TRUE(stub().CancelJob(ctx.get(), cancel, &cancelled).ok());
    ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_CANCELLED)) << "job " << i << " never ended";
  }
}

TEST_F(ExecutorTest, AnAttemptPastItsTimeoutFails) {
  StartExecutor(1);
  cohort::v1::JobSpec slow = Kind("builtin.sleep", "1h");
  slow.mutable_timeout()->set_nanos(200'000'000);
  std::string id = Submit({slow})[0];
  ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_FAILED));
  EXPECT_EQ(Get(id).error().code(), "timeout");
}

// Without prefetch: an attempt the executor holds prefetched is RUNNING on the broker
// (executor.proto, Hello.prefetch), so --prefetch=0 shows the capacity bound alone.
TEST_F(ExecutorTest, CapacityBoundsTheAttemptsRunningAtOnce) {
  StartExecutor(2, {"--prefetch=0"});
  std::vector<std::string> ids = Submit({Kind("builtin.sleep", "1h"), Kind("builtin.sleep", "1h"),
                                         Kind("builtin.sleep", "1h")});
  ASSERT_TRUE(AwaitState(ids[1], cohort::v1::JOB_STATE_RUNNING));
  cohort::v1::ListExecutorsResponse executors;
  auto ctx = Context();
  ASSERT_TRUE(stub().ListExecutors(ctx.get(), {}, &executors).ok());
  ASSERT_EQ(executors.executors_size(), 1);
  EXPECT_EQ(executors.executors(0).running(), 2);
  EXPECT_EQ(Get(ids[2]).state(), cohort::v1::JOB_STATE_QUEUED);
}

TEST_F(ExecutorTest, SigtermDrainsRunningAttemptsThenExitsZero) {
  StartExecutor(1, {"--drain-grace=30s"});
  std::string id = Submit({Kind("builtin.sleep", "500ms")})[0];
  // The executor itself must have started the attempt (an Assign still in flight at
  // SIGTERM is handed back to the queue instead): poll its own gauge, bounded.
  std::optional<double> running;
  for (int i = 0; i < 2000 && running != 1; ++i) {
    auto body = ScrapeMetrics(executor_->metrics_address());
    if (body.ok()) running = MetricValue(*body, "cohort_executor_running");
  }
  ASSERT_EQ(running, 1);
  auto code = executor_->Terminate(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  cohort::v1::WaitForResponse resp;
  grpc::Status waited = WaitFor(id, &resp);
  ASSERT_TRUE(waited.ok()) << waited.error_message() << "\n" << Get(id).DebugString();  // finished during the drain
  EXPECT_EQ(resp.result(), "500ms");
}

cohort::v1::JobSpec Exec(std::vector<std::string> argv, const std::string& payload = "") {
  cohort::v1::JobSpec s;
  s.set_queue("default");
  s.set_kind("exec");
  s.set_payload(payload);
  for (auto& a : argv) s.mutable_command()->add_argv(std::move(a));
  return s;
}

TEST_F(ExecutorTest, ExecJobReadsThePayloadOnStdinAndItsStdoutIsTheResult) {
  StartExecutor(1, {"--allow-exec=/bin/cat"});
  std::string id = Submit({Exec({"/bin/cat"}, "piped through a real process")})[0];
  cohort::v1::WaitForResponse resp;
  grpc::Status s = WaitFor(id, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.result(), "piped through a real process");
}

TEST_F(ExecutorTest, CommandOutsideTheAllowlistNeverStarts) {
  StartExecutor(1, {"--allow-exec=/bin/cat", "--allow-exec=/bin/echo"});
  std::string marker = dir_.path() + "/must-not-exist";
  std::string id = Submit({Exec({"/bin/sh", "-c", "touch " + marker})})[0];
  ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_FAILED));
  cohort::v1::Job job = Get(id);
  EXPECT_EQ(job.error().code(), "not_allowed");
  EXPECT_NE(job.error().message().find("/bin/sh"), std::string::npos) << job.error().message();
  EXPECT_NE(access(marker.c_str(), F_OK), 0);  // nothing ran
}

TEST_F(ExecutorTest, NonZeroExitIsAFailureWithItsCodeAndStderr) {
  StartExecutor(1, {"--allow-exec=/bin/sh"});
  std::string id = Submit({Exec({"/bin/sh", "-c", "echo boom >&2; exit 3"})})[0];
  ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_FAILED));
  cohort::v1::Job job = Get(id);
  EXPECT_EQ(job.error().code(), "exit_status");
  EXPECT_NE(job.error().message().find("3"), std::string::npos) << job.error().message();
  EXPECT_NE(job.error().details().find("boom"), std::string::npos);
}

TEST_F(ExecutorTest, ExecPastItsTimeoutIsKilledAndFails) {
  StartExecutor(1, {"--allow-exec=/bin/sh", "--kill-grace=200ms"});
  cohort::v1::JobSpec slow = Exec({"/bin/sh", "-c", "sleep 600"});
  slow.mutable_timeout()->set_nanos(200'000'000);
  std::string id = Submit({slow})[0];
  ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_FAILED));
  EXPECT_EQ(Get(id).error().code(), "timeout");
}

TEST_F(ExecutorTest, BadFlagsExitNonZeroWithOneLine) {
  auto started = ServiceProcess::Start(BinaryPath("services/executor/cohort-executor"), {"--capacity=0"});
  EXPECT_EQ(started.status().code(), absl::StatusCode::kUnavailable) << started.status();
  EXPECT_NE(std::string(started.status().message()).find("exit code 2"), std::string::npos) << started.status();
}


TEST_F(ExecutorTest, ExecJobProgressReachesTheBrokerWhileItRuns) {
  StartExecutor(1, {"--allow-exec=/bin/sh"});
  const std::string go = dir_.Path("go");
  // Reports half way, then waits until the test creates `go`.
  std::string id = Submit({Exec({"/bin/sh", "-c",
                                 "echo '0.5 half way' >&\"$COHORT_PROGRESS_FD\"; "
                                 "while [ ! -e \"$1\" ]; do sleep 0.01; done; echo finished",
                                 "sh", go})})[0];
  cohort::v1::Job job;
  ASSERT_TRUE(Eventually([&] {
    job = Get(id);
    return job.progress().fraction() == 0.5;
  })) << job.DebugString();
  EXPECT_EQ(job.progress().message(), "half way");
  EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_RUNNING);
  std::ofstream(go).put('\n');
  cohort::v1::WaitForResponse resp;
  grpc::Status s = WaitFor(id, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.result(), "finished\n");
  EXPECT_EQ(ExecutorMetric("cohort_executor_progress_reports_total{outcome=\"sent\"}"), 1);
}

TEST_F(ExecutorTest, BuiltinSleepReportsTheFractionSlept) {
  StartExecutor(1);
  std::string id = Submit({Kind("builtin.sleep", "4s")})[0];  // reports once a second
  cohort::v1::Job job;
  ASSERT_TRUE(Eventually([&] {
    job = Get(id);
    return job.progress().fraction() > 0;
  })) << job.DebugString();
  EXPECT_EQ(job.progress().fraction(), 0.25);
  EXPECT_EQ(job.progress().message(), "slept 1s of 4s");
}

TEST_F(ExecutorTest, MetricsCountSpawnsOutputProgressAndOutcomes) {
  StartExecutor(3, {"--allow-exec=/bin/sh"});
  std::string id = Submit({Exec({"/bin/sh", "-c",
                                 "echo out; echo errr >&2; echo bogus >&\"$COHORT_PROGRESS_FD\"; "
                                 "echo '0.3 fine' >&\"$COHORT_PROGRESS_FD\""})})[0];
  cohort::v1::WaitForResponse resp;
  ASSERT_TRUE(WaitFor(id, &resp).ok());
  auto body = ScrapeMetrics(executor_->metrics_address());
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(MetricValue(*body, "cohort_executor_spawn_seconds_count"), 1);
  EXPECT_GT(MetricValue(*body, "cohort_executor_spawn_seconds_sum"), 0);
  EXPECT_EQ(MetricValue(*body, "cohort_executor_output_bytes_total{stream=\"stdout\"}"), 4);
  EXPECT_EQ(MetricValue(*body, "cohort_executor_output_bytes_total{stream=\"stderr\"}"), 5);
  EXPECT_EQ(MetricValue(*body, "cohort_executor_progress_reports_total{outcome=\"malformed\"}"), 1);
  EXPECT_EQ(MetricValue(*body, "cohort_executor_attempts_total{kind=\"exec\",outcome=\"succeeded\"}"), 1);
  EXPECT_EQ(MetricValue(*body, "cohort_executor_run_duration_seconds_count{kind=\"exec\"}"), 1);
  EXPECT_EQ(MetricValue(*body, "cohort_executor_running"), 0);
  EXPECT_EQ(MetricValue(*body, "cohort_executor_capacity"), 3);
  EXPECT_EQ(MetricValue(*body, "cohort_executor_connected"), 1);
}

TEST_F(ExecutorTest, AJobRunningPastItsLeaseIsNotRedeliveredWhileTheExecutorLives) {
  StartBroker({"--lease=500ms", "--heartbeat-interval=100ms"});
  StartExecutor(1);
  std::string id = Submit({Kind("builtin.sleep", "2s")})[0];  // four leases long
  cohort::v1::WaitForResponse resp;
  grpc::Status s = WaitFor(id, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  cohort::v1::Job job = Get(id);
  EXPECT_EQ(job.attempt(), 1);
  EXPECT_EQ(job.attempts_size(), 1) << job.DebugString();
  EXPECT_EQ(Metric("cohort_broker_jobs_redelivered_total{queue=\"default\"}").value_or(0), 0);
}

TEST_F(ExecutorTest, CapacityTwoNeverRunsAThirdJobAtOnce) {
  StartExecutor(2, {"--allow-exec=/bin/sh"});
  const std::string running = dir_.Path("running");
  ASSERT_EQ(mkdir(running.c_str(), 0700), 0);
  // Each job marks itself running, counts the marks, and holds its slot a moment: if
  // three ever overlapped, the last of them to start would count three.
  const std::string script =
      "touch \"$1/$COHORT_JOB_ID\"; n=$(ls \"$1\" | wc -l); sleep 0.1; rm \"$1/$COHORT_JOB_ID\"; echo $n";
  std::vector<cohort::v1::JobSpec> specs(8, Exec({"/bin/sh", "-c", script, "sh", running}));
  std::vector<std::string> ids = Submit(specs);
  int most = 0;
  for (const std::string& id : ids) {
    cohort::v1::WaitForResponse resp;
    grpc::Status s = WaitFor(id, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    int n = 0;
    ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(resp.result()), &n)) << resp.result();
    most = std::max(most, n);
  }
  EXPECT_GE(most, 1);
  EXPECT_LE(most, 2);
}

TEST_F(ExecutorTest, ExecPastItsTimeoutLeavesNoBackgroundGrandchild) {
  StartExecutor(1, {"--allow-exec=/bin/sh", "--kill-grace=200ms"});
  const std::string pid_file = dir_.Path("grandchild");
  cohort::v1::JobSpec slow = Exec({"/bin/sh", "-c", "sleep 600 & echo $! > \"$1\"; wait", "sh", pid_file});
  slow.mutable_timeout()->set_nanos(300'000'000);
  std::string id = Submit({slow})[0];
  ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_FAILED));
  EXPECT_EQ(Get(id).error().code(), "timeout");
  pid_t grandchild = PidIn(pid_file);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(ProcessGone(grandchild));  // killed and reaped before the failure was reported
}

TEST_F(ExecutorTest, CancellingARunningExecJobKillsItWithinTheGrace) {
  StartExecutor(1, {"--allow-exec=/bin/sh", "--kill-grace=30s"});
  const PidPipe pipe(dir_.Path("child"));
  std::string id = Submit({Exec({"/bin/sh", "-c", "echo $$ > \"$1\"; exec sleep 600", "sh", pipe.path()})})[0];
  const pid_t child = pipe.Read();
  ASSERT_GT(child, 0);
  const auto start = std::chrono::steady_clock::now();
  cohort::v1::CancelJobRequest cancel;
  cancel.set_job_id(id);
  cohort::v1::CancelJobResponse cancelled;
  auto ctx = Context();
  ASSERT_TRUE(stub().CancelJob(ctx.get(), cancel, &cancelled).ok());
  ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_CANCELLED));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_TRUE(ProcessGone(child));
}

TEST_F(ExecutorTest, OutputOverTheCapIsTruncatedWithAMarker) {
  StartExecutor(1, {"--allow-exec=/bin/sh", "--max-output-bytes=10"});
  std::string id = Submit({Exec({"/bin/sh", "-c", "head -c 1000 /dev/zero | tr '\\0' x"})})[0];
  cohort::v1::WaitForResponse resp;
  grpc::Status s = WaitFor(id, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.result(), "xxxxxxxxxx\n[cohort: output truncated at 10 bytes]");
}

TEST_F(ExecutorTest, ChildKilledByASignalIsAFailureThatNamesIt) {
  StartExecutor(1, {"--allow-exec=/bin/sh"});
  std::string id = Submit({Exec({"/bin/sh", "-c", "kill -KILL $$"})})[0];
  ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_FAILED));
  cohort::v1::Job job = Get(id);
  EXPECT_EQ(job.error().code(), "signal");
  EXPECT_NE(job.error().message().find("signal 9 (SIGKILL)"), std::string::npos) << job.error().message();
}

TEST_F(ExecutorTest, SigtermPastTheDrainGraceInterruptsRunningJobsAndExitsZero) {
  StartExecutor(1, {"--allow-exec=/bin/sh", "--drain-grace=200ms", "--kill-grace=5s"});
  const PidPipe pipe(dir_.Path("child"));
  std::string id = Submit({Exec({"/bin/sh", "-c", "echo $$ > \"$1\"; exec sleep 600", "sh", pipe.path()})})[0];
  const pid_t child = pipe.Read();
  ASSERT_GT(child, 0);
  auto code = executor_->Terminate(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_FAILED));
  EXPECT_EQ(Get(id).error().code(), "interrupted");
  EXPECT_TRUE(ProcessGone(child));
}

TEST_F(ExecutorTest, BadAllowExecPatternExitsNonZeroNamingTheFlag) {
  auto started = ServiceProcess::Start(BinaryPath("services/executor/cohort-executor"), {"--allow-exec=bin/sh"});
  EXPECT_EQ(started.status().code(), absl::StatusCode::kUnavailable) << started.status();
  EXPECT_NE(std::string(started.status().message()).find("exit code 2"), std::string::npos) << started.status();
}

TEST_F(ExecutorTest, AnnouncesItsIdLabelsQueuesAndCapacityAndServesGrpcHealth) {
  StartExecutor(3, {"--labels=zone=a,tier=gpu", "--queues=default,reports"});
  cohort::v1::ListExecutorsResponse executors;
  ASSERT_TRUE(Eventually([&] {
    auto ctx = Context();
    return stub().ListExecutors(ctx.get(), {}, &executors).ok() && executors.executors_size() == 1;
  }));
  const cohort::v1::ExecutorInfo& info = executors.executors(0);
  EXPECT_EQ(info.executor_id(), "exec-under-test");
  EXPECT_EQ(info.capacity(), 3);
  EXPECT_EQ(info.labels().at("zone"), "a");
  EXPECT_EQ(info.labels().at("tier"), "gpu");
  EXPECT_EQ(std::vector<std::string>(info.queues().begin(), info.queues().end()),
            (std::vector<std::string>{"default", "reports"}));

  // grpc.health.v1.Health/Check with an empty request: SERVING is field 1 = 1.
  grpc::GenericStub health(grpc::CreateChannel(executor_->grpc_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  health.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                   [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
  done.WaitForNotification();
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& slice : slices) bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  EXPECT_EQ(bytes, std::string("\x08\x01"));
}

// Adaptive prefetch (the default): short jobs open a window of held attempts beyond the
// capacity; once nothing has finished for a moment it closes and the executor gives back
// the credit it did not use, so long jobs that come next are not hoarded behind its busy
// slots while another executor idles (the head-of-line problem of a fixed prefetch).
TEST_F(ExecutorTest, ShortJobsOpenAPrefetchWindowThatClosesSoLaterLongJobsGoToTheIdleExecutor) {
  StartExecutor(2);
  auto listed = [&]() -> std::optional<cohort::v1::ExecutorInfo> {
    cohort::v1::ListExecutorsResponse executors;
    auto ctx = Context();
    if (!stub().ListExecutors(ctx.get(), {}, &executors).ok()) return std::nullopt;
    for (const auto& info : executors.executors()) {
      if (info.executor_id() == "exec-under-test") return info;
    }
    return std::nullopt;
  };
  // The gauge, sampled while the short jobs run (the most it showed).
  std::atomic<bool> stop_sampling = false;
  double widest = 0;
  std::thread sampler([&] {
    while (!stop_sampling) {
      widest = std::max(widest, ExecutorMetric("cohort_executor_prefetch_window").value_or(0));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the sampling period
    }
  });
  std::vector<std::string> short_ids;
  for (int chunk = 0; chunk < 6; ++chunk) {
    std::vector<std::string> ids = Submit(std::vector<cohort::v1::JobSpec>(500, Kind("builtin.noop", "")));
    short_ids.insert(short_ids.end(), ids.begin(), ids.end());
  }
  const bool all_ran = AwaitState(short_ids.back(), cohort::v1::JOB_STATE_SUCCEEDED);
  stop_sampling = true;
  sampler.join();
  ASSERT_TRUE(all_ran);
  EXPECT_GT(widest, 2) << "the window never opened beyond the capacity";
  ASSERT_TRUE(Eventually([&] { return ExecutorMetric("cohort_executor_prefetch_window") == 0; }));
  // The credit it had asked for beyond its two slots is withdrawn.
  ASSERT_TRUE(Eventually([&] {
    std::optional<cohort::v1::ExecutorInfo> info = listed();
    return info && info->credits() == 2;
  }));

  std::vector<std::string> long_ids = Submit(std::vector<cohort::v1::JobSpec>(4, Kind("builtin.sleep", "1h")));
  ASSERT_TRUE(AwaitState(long_ids[0], cohort::v1::JOB_STATE_RUNNING));
  ASSERT_TRUE(AwaitState(long_ids[1], cohort::v1::JOB_STATE_RUNNING));
  EXPECT_EQ(Get(long_ids[2]).state(), cohort::v1::JOB_STATE_QUEUED);
  EXPECT_EQ(Get(long_ids[3]).state(), cohort::v1::JOB_STATE_QUEUED);

  auto other = ServiceProcess::Start(BinaryPath("services/executor/cohort-executor"),
                                     {"--broker=" + broker_->grpc_address(), "--listen=127.0.0.1:0",
                                      "--metrics-listen=127.0.0.1:0", "--executor-id=the-idle-one", "--capacity=2"});
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE(AwaitState(long_ids[2], cohort::v1::JOB_STATE_RUNNING));
  ASSERT_TRUE(AwaitState(long_ids[3], cohort::v1::JOB_STATE_RUNNING));
  for (int i = 0; i < 4; ++i) {
    const cohort::v1::Job job = Get(long_ids[i]);
    EXPECT_EQ(job.executor_id(), i < 2 ? "exec-under-test" : "the-idle-one") << i;
    EXPECT_EQ(job.attempt(), 1) << i;  // each assigned once, none redelivered
  }
  EXPECT_EQ(listed()->running(), 2);
}

TEST_F(ExecutorTest, APrefetchOutOfRangeExitsNonZero) {
  for (const char* prefetch : {"--prefetch=-2", "--prefetch=9997"}) {  // capacity 4: 0..9996
    auto started = ServiceProcess::Start(BinaryPath("services/executor/cohort-executor"), {prefetch});
    EXPECT_EQ(started.status().code(), absl::StatusCode::kUnavailable) << started.status();
    EXPECT_NE(std::string(started.status().message()).find("exit code 2"), std::string::npos) << started.status();
  }
}

TEST_F(ExecutorTest, BadLabelsExitNonZero) {
  auto started = ServiceProcess::Start(BinaryPath("services/executor/cohort-executor"), {"--labels=novalue"});
  EXPECT_EQ(started.status().code(), absl::StatusCode::kUnavailable) << started.status();
  EXPECT_NE(std::string(started.status().message()).find("exit code 2"), std::string::npos) << started.status();
}

TEST_F(ExecutorTest, AJobRunningWhenTheBrokerCrashesEndsOnceTheBrokerIsBack) {
  StartExecutor(2);
  cohort::v1::JobSpec spec = Kind("builtin.sleep", "1s");
  spec.set_max_attempts(2);  // the crash costs the running attempt
  std::string id = Submit({spec})[0];
  // Running on the executor, so the assignment is durable (GetJob may show RUNNING
  // before the commit that an Assign waits for).
  ASSERT_TRUE(Eventually([&] { return ExecutorMetric("cohort_executor_running") == 1; }));
  const std::string address = broker_->grpc_address();
  ASSERT_TRUE(broker_->Kill9().ok());
  // Back on the same address and data: the attempt that was running comes back as
  // attempt 2; the executor reconnects, its stale attempt 1 is cancelled and fenced,
  // and attempt 2 runs (on this executor, the only one).
  StartBroker({"--listen=" + address});
  cohort::v1::WaitForResponse resp;
  grpc::Status s = WaitFor(id, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << Get(id).DebugString();
  EXPECT_EQ(resp.result(), "1s");
  EXPECT_EQ(Get(id).attempt(), 2);
  EXPECT_GE(ExecutorMetric("cohort_executor_reconnects_total").value_or(0), 1);
}

TEST_F(ExecutorTest, AnExecutorWhoseConnectionIsCutReconnectsKeepsItsAttemptAndTheJobRunsExactlyOnce) {
  auto proxy = FaultProxy::Start(broker_->grpc_address());
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  StartExecutor(1, {"--allow-exec=/bin/sh"}, (*proxy)->address());
  const std::string runs = dir_.Path("runs");
  const std::string go = dir_.Path("go");
  const PidPipe pipe(dir_.Path("child"));
  // Counts its own runs, says it runs, then waits until the test creates `go`.
  cohort::v1::JobSpec spec = Exec({"/bin/sh", "-c",
                                   "echo run >> \"$1\"; echo $$ > \"$2\"; "
                                   "while [ ! -e \"$3\" ]; do sleep 0.01; done; echo done",
                                   "sh", runs, pipe.path(), go});
  spec.set_max_attempts(3);  // a lost attempt would be run again, not just fail
  std::string id = Submit({spec})[0];
  ASSERT_GT(pipe.Read(), 0);  // attempt 1 runs
  (*proxy)->Cut();            // both ends see the connection reset under the running attempt
  // The executor reconnects through the proxy and its Hello lists the attempt, which
  // the broker binds to the new session (ListExecutors counts it as running there).
  cohort::v1::ListExecutorsResponse executors;
  ASSERT_TRUE(Eventually([&] {
    if (ExecutorMetric("cohort_executor_reconnects_total").value_or(0) < 1) return false;
    auto ctx = Context();
    return stub().ListExecutors(ctx.get(), {}, &executors).ok() && executors.executors_size() == 1 &&
           executors.executors(0).running() == 1;
  })) << executors.DebugString();
  EXPECT_GE((*proxy)->accepted(), 2);
  EXPECT_EQ(Get(id).state(), cohort::v1::JOB_STATE_RUNNING);
  std::ofstream(go).put('\n');
  cohort::v1::WaitForResponse resp;
  grpc::Status s = WaitFor(id, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << Get(id).DebugString();
  EXPECT_EQ(resp.result(), "done\n");
  // Exactly once: one attempt on record and one run counted by the job itself.
  cohort::v1::Job job = Get(id);
  EXPECT_EQ(job.attempt(), 1);
  EXPECT_EQ(job.attempts_size(), 1) << job.DebugString();
  std::ifstream in(runs);
  std::stringstream counted;
  counted << in.rdbuf();
  EXPECT_EQ(counted.str(), "run\n");
  EXPECT_EQ(Metric("cohort_broker_jobs_redelivered_total{queue=\"default\"}").value_or(0), 0);
}

}  // namespace
}  // namespace cohort::testing
