// The Python examples against a real cluster, on the SDK installed with pip:
// examples/python/client.py (gather and wait with FIRST_COMPLETED) and
// examples/python/worker.py, a cohort.Worker of its own kinds, each checked against what
// the broker records.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "tests/examples/child_program.h"
#include "tests/examples/example_cluster.h"
#include "tests/examples/example_programs.h"

namespace cohort::testing {
namespace {

using cohort::v1::Job;
using cohort::v1::JobOutcome;
using cohort::v1::JobSpec;

// Bounds for anything the test waits on; generous, since CI runs on two cores.
constexpr absl::Duration kTimeout = absl::Seconds(60);
constexpr char kWorkerQueue[] = "python";
constexpr char kWorkerId[] = "python-worker-under-test";

std::unique_ptr<grpc::ClientContext> Context() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  return ctx;
}

JobSpec Spec(const std::string& queue, const std::string& kind, const std::string& payload) {
  JobSpec spec;
  spec.set_queue(queue);
  spec.set_kind(kind);
  spec.set_payload(payload);
  return spec;
}

// Index of the first line equal to `line` in `lines`, or lines.size().
size_t Find(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) - lines.begin();
}

class PythonExamplesTest : public ::testing::Test {
 protected:
  void StartCluster(const ClusterOptions& options = {}) {
    absl::StatusOr<std::unique_ptr<ExampleCluster>> started = StartExampleCluster(options);
    ASSERT_TRUE(started.ok()) << started.status();
    cluster_ = std::move(*started);
  }

  // worker.py for kWorkerQueue, as kWorkerId, with `extra` flags.
  std::unique_ptr<ChildProgram> StartWorker(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--broker=" + cluster_->address(), std::string("--queue=") + kWorkerQueue,
                                     std::string("--executor-id=") + kWorkerId, "--capacity=2"};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<std::unique_ptr<ChildProgram>> worker = StartPython("worker.py", args);
    EXPECT_TRUE(worker.ok()) << worker.status();
    return worker.ok() ? std::move(*worker) : nullptr;
  }

  std::vector<std::string> Submit(const std::vector<JobSpec>& specs) {
    cohort::v1::SubmitRequest req;
    for (const JobSpec& spec : specs) *req.add_jobs() = spec;
    cohort::v1::SubmitResponse resp;
    grpc::Status status = cluster_->stub().Submit(Context().get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    // One entry per spec even after a failure: `Submit(...)[0]` is then "", which later
    // calls reject by name, instead of an out-of-range read.
    std::vector<std::string> ids(resp.job_ids().begin(), resp.job_ids().end());
    ids.resize(specs.size());
    return ids;
  }

  Job Get(const std::string& id) {
    cohort::v1::GetJobRequest req;
    req.set_job_id(id);
    cohort::v1::GetJobResponse resp;
    grpc::Status status = cluster_->stub().GetJob(Context().get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp.job();
  }

  // Every job's outcome, in the order of `ids`, failures included (waits for them all).
  std::vector<JobOutcome> GatherAll(const std::vector<std::string>& ids) {
    cohort::v1::GatherRequest req;
    for (const std::string& id : ids) req.add_job_ids(id);
    req.set_return_exceptions(true);
    cohort::v1::GatherResponse resp;
    grpc::Status status = cluster_->stub().Gather(Context().get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {resp.outcomes().begin(), resp.outcomes().end()};
  }

  std::unique_ptr<ExampleCluster> cluster_;
};

TEST_F(PythonExamplesTest, ClientGathersResultsInSubmissionOrderAndWaitsForTheFirstToComplete) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  absl::StatusOr<std::unique_ptr<ChildProgram>> client =
      StartPython("client.py", {"--server=" + cluster_->address(), "--count=8"});
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<int> exit = (*client)->Wait(kTimeout);
  ASSERT_TRUE(exit.ok()) << exit.status();
  ASSERT_EQ(*exit, 0) << (*client)->err();
  EXPECT_EQ((*client)->lines(), ExpectedClientLines(8));

  // The broker agrees: 8 echoes whose results are their payloads, in submission (id)
  // order; of the sleeps, the short one succeeded and the client cancelled the others.
  cohort::v1::ListJobsRequest req;
  req.set_queue(kBuiltinQueue);
  cohort::v1::ListJobsResponse listed;
  ASSERT_TRUE(cluster_->stub().ListJobs(Context().get(), req, &listed).ok());
  ASSERT_EQ(listed.jobs_size(), 11);
  for (int i = 0; i < 8; ++i) {
    const Job job = Get(listed.jobs(i).id());
    EXPECT_EQ(job.spec().kind(), "builtin.echo");
    EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_SUCCEEDED);
    EXPECT_EQ(job.result(), "hello " + std::to_string(i));
  }
  std::vector<std::string> sleeps;
  for (int i = 8; i < 11; ++i) {
    const Job job = Get(listed.jobs(i).id());
    sleeps.push_back(job.spec().payload() + " " + cohort::v1::JobState_Name(job.state()));
  }
  EXPECT_EQ(sleeps, (std::vector<std::string>{"60s JOB_STATE_CANCELLED", "100ms JOB_STATE_SUCCEEDED",
                                              "60s JOB_STATE_CANCELLED"}));
}

TEST_F(PythonExamplesTest, ClientReportsAnUnreachableBrokerInOneLineAndExitsOne) {
  // Port 1 is privileged and nothing here serves it: connecting is refused at once.
  absl::StatusOr<std::unique_ptr<ChildProgram>> client = StartPython("client.py", {"--server=127.0.0.1:1"});
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<int> exit = (*client)->Wait(kTimeout);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 1);
  EXPECT_TRUE((*client)->lines().empty());
  EXPECT_TRUE(absl::StartsWith((*client)->err(), "client.py: Submit failed: UNAVAILABLE: ")) << (*client)->err();
  EXPECT_EQ(std::count((*client)->err().begin(), (*client)->err().end(), '\n'), 1);
}

TEST_F(PythonExamplesTest, ClientRejectsABadCountWithExitTwo) {
  absl::StatusOr<std::unique_ptr<ChildProgram>> client = StartPython("client.py", {"--count=0"});
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<int> exit = (*client)->Wait(kTimeout);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 2);
  EXPECT_TRUE(absl::StrContains((*client)->err(), "--count must be in 1..1000")) << (*client)->err();
}

TEST_F(PythonExamplesTest, WorkerRunsItsOwnKindAndTheBrokerRecordsItsResults) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  std::unique_ptr<ChildProgram> worker = StartWorker();
  ASSERT_NE(worker, nullptr);
  const std::vector<std::string> ids = Submit({Spec(kWorkerQueue, "python.upper", "hello, cohort"),
                                               Spec(kWorkerQueue, "python.upper", "\xff not utf-8")});
  const std::vector<JobOutcome> outcomes = GatherAll(ids);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].state(), cohort::v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(outcomes[0].result(), "HELLO, COHORT");
  EXPECT_EQ(outcomes[1].state(), cohort::v1::JOB_STATE_FAILED);
  EXPECT_EQ(outcomes[1].error().code(), "bad_payload");
  EXPECT_TRUE(absl::StrContains(outcomes[1].error().message(), "UTF-8")) << outcomes[1].error().message();
  // The worker ran them, not the cluster's own executor.
  for (const std::string& id : ids) {
    const Job job = Get(id);
    ASSERT_EQ(job.attempts_size(), 1);
    EXPECT_EQ(job.attempts(0).executor_id(), kWorkerId);
  }

  // It announced itself with the broker's default heartbeat interval, and stops on SIGINT.
  absl::StatusOr<std::string> connected = worker->AwaitLine("connected as ", kTimeout);
  ASSERT_TRUE(connected.ok()) << connected.status();
  EXPECT_EQ(*connected, std::string("connected as ") + kWorkerId +
                            ": queues=python kinds=python.sleep,python.upper capacity=2 heartbeat=5s");
  worker->Signal(SIGINT);
  absl::StatusOr<int> exit = worker->Wait(kTimeout);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 0) << worker->err();
  EXPECT_NE(Find(worker->lines(), "draining (SIGINT): 0 running"), worker->lines().size()) << worker->out();
  EXPECT_EQ(worker->lines().back(), "stopped");
}

TEST_F(PythonExamplesTest, WorkerHeartbeatsAtTheBrokersIntervalAndKeepsItsLease) {
  // A 1 s lease: an attempt of 1.5 s survives only if heartbeats extend it.
  ASSERT_NO_FATAL_FAILURE(StartCluster({.lease = absl::Seconds(1), .heartbeat_interval = absl::Milliseconds(200)}));
  std::unique_ptr<ChildProgram> worker = StartWorker();
  ASSERT_NE(worker, nullptr);
  absl::StatusOr<std::string> connected = worker->AwaitLine("connected as ", kTimeout);
  ASSERT_TRUE(connected.ok()) << connected.status();
  EXPECT_TRUE(absl::EndsWith(*connected, " heartbeat=0.2s")) << *connected;

  const std::string id = Submit({Spec(kWorkerQueue, "python.sleep", "1500ms")})[0];
  const std::vector<JobOutcome> outcomes = GatherAll({id});
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].state(), cohort::v1::JOB_STATE_SUCCEEDED) << outcomes[0].error().message();
  EXPECT_EQ(outcomes[0].result(), "slept 1500ms");
  const Job job = Get(id);
  EXPECT_EQ(job.attempt(), 1);
  EXPECT_EQ(job.attempts_size(), 1);
}

TEST_F(PythonExamplesTest, WorkerStopsAnAttemptTheBrokerCancels) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  std::unique_ptr<ChildProgram> worker = StartWorker();
  ASSERT_NE(worker, nullptr);
  const std::string id = Submit({Spec(kWorkerQueue, "python.sleep", "1h")})[0];
  absl::StatusOr<std::string> started = worker->AwaitLine("started " + id, kTimeout);
  ASSERT_TRUE(started.ok()) << started.status();

  cohort::v1::CancelJobRequest req;
  req.set_job_id(id);
  cohort::v1::CancelJobResponse resp;
  ASSERT_TRUE(cluster_->stub().CancelJob(Context().get(), req, &resp).ok());
  const std::vector<JobOutcome> outcomes = GatherAll({id});
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].state(), cohort::v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(outcomes[0].error().code(), "cancelled");
  absl::StatusOr<std::string> completed = worker->AwaitLine("completed " + id, kTimeout);
  ASSERT_TRUE(completed.ok()) << completed.status();
  EXPECT_EQ(*completed, "completed " + id + " attempt 1: cancelled: cancelled by the broker");
}

TEST_F(PythonExamplesTest, WorkerDrainsOnSigtermFinishingWhatItHoldsAndTakingNothingNew) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  std::unique_ptr<ChildProgram> worker = StartWorker();
  ASSERT_NE(worker, nullptr);
  const std::string held = Submit({Spec(kWorkerQueue, "python.sleep", "1s")})[0];
  ASSERT_TRUE(worker->AwaitLine("started " + held, kTimeout).ok()) << worker->out();

  worker->Signal(SIGTERM);
  ASSERT_TRUE(worker->AwaitLine("draining (SIGTERM): 1 running", kTimeout).ok()) << worker->out();
  // Submitted while it drains: the worker must not start it, and it must not be lost.
  const std::string later = Submit({Spec(kWorkerQueue, "python.upper", "later")})[0];
  absl::StatusOr<int> exit = worker->Wait(kTimeout);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 0) << worker->err();

  const std::vector<std::string>& lines = worker->lines();
  const size_t draining = Find(lines, "draining (SIGTERM): 1 running");
  const size_t completed = Find(lines, "completed " + held + " attempt 1: ok");
  EXPECT_LT(draining, completed) << worker->out();
  EXPECT_LT(completed, lines.size()) << worker->out();
  EXPECT_EQ(lines.back(), "stopped");
  EXPECT_FALSE(absl::StrContains(worker->out(), later)) << worker->out();
  const Job job = Get(held);
  EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job.result(), "slept 1s");
  EXPECT_EQ(Get(later).state(), cohort::v1::JOB_STATE_QUEUED);

  // The next worker finds it, at its first attempt.
  std::unique_ptr<ChildProgram> next = StartWorker();
  ASSERT_NE(next, nullptr);
  const std::vector<JobOutcome> outcomes = GatherAll({later});
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].result(), "LATER");
  EXPECT_EQ(Get(later).attempt(), 1);
}

TEST_F(PythonExamplesTest, WorkerWithAnInvalidQueueExitsOneWithTheBrokersReason) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  absl::StatusOr<std::unique_ptr<ChildProgram>> worker =
      StartPython("worker.py", {"--broker=" + cluster_->address(), "--queue=Bad Queue"});
  ASSERT_TRUE(worker.ok()) << worker.status();
  absl::StatusOr<int> exit = (*worker)->Wait(kTimeout);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 1);
  EXPECT_EQ((*worker)->err(),
            "worker.py: stream to the broker failed: INVALID_ARGUMENT: hello.queues: \"Bad Queue\" is invalid: "
            "use [a-z0-9._-]{1,64}\n");
}

}  // namespace
}  // namespace cohort::testing
