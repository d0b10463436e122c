// Limits against the real broker: one spec size that every hop carries (refused at
// Submit above it, run end to end by a real executor just under it), and status
// messages that stay small whatever the caller sent.
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/broker_fixture.h"
#include "tests/testing/runfiles.h"

namespace cohort::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kMaxSpecBytes = 2 << 20;  // the broker's default --max-spec-bytes

class LimitsTest : public BrokerTest {
 protected:
  // A job for /bin/sh that prints how many bytes of payload it read, padded with
  // ignored arguments until its serialized spec is `bytes` long, give or take 100.
  static cohort::v1::JobSpec ShSpecOfSize(std::size_t bytes) {
    cohort::v1::JobSpec s = Spec();
    s.set_kind("exec");
    s.set_payload(std::string(1'000'000, 'p'));
    for (const char* arg : {"/bin/sh", "-c", "wc -c", "sh"}) s.mutable_command()->add_argv(arg);
    while (s.ByteSizeLong() + 30'000 < bytes) s.mutable_command()->add_argv(std::string(30'000 - 8, 'x'));
    if (s.ByteSizeLong() + 100 < bytes) s.mutable_command()->add_argv(std::string(bytes - s.ByteSizeLong() - 8, 'y'));
    return s;
  }

  grpc::Status TrySubmit(const cohort::v1::JobSpec& spec) {
    cohort::v1::SubmitRequest req;
    *req.add_jobs() = spec;
    cohort::v1::SubmitResponse resp;
    auto ctx = Context();
    return stub().Submit(ctx.get(), req, &resp);
  }
};

TEST_F(LimitsTest, ASpecOverTheSizeLimitIsInvalidArgumentAtSubmit) {
  cohort::v1::JobSpec spec = ShSpecOfSize(kMaxSpecBytes + 1000);
  ASSERT_GT(spec.ByteSizeLong(), kMaxSpecBytes);
  grpc::Status status = TrySubmit(spec);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("jobs[0] is"), std::string::npos) << status.error_message();
  // Far over it (what broke the executor's stream before): the same.
  cohort::v1::JobSpec huge = spec;
  for (int i = 0; i < 200; ++i) huge.mutable_command()->add_argv(std::string(30'000, 'z'));
  EXPECT_EQ(TrySubmit(huge).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(LimitsTest, ASpecJustUnderTheSizeLimitRunsEndToEndOnARealExecutor) {
  auto executor = ServiceProcess::Start(BinaryPath("services/executor/cohort-executor"),
                                        {"--broker=" + broker_->grpc_address(), "--listen=127.0.0.1:0",
                                         "--metrics-listen=127.0.0.1:0", "--capacity=1", "--allow-exec=/bin/sh"});
  ASSERT_TRUE(executor.ok()) << executor.status();
  cohort::v1::JobSpec spec = ShSpecOfSize(kMaxSpecBytes - 200);
  ASSERT_LE(spec.ByteSizeLong(), kMaxSpecBytes);
  ASSERT_GT(spec.ByteSizeLong(), kMaxSpecBytes - 1000);
  std::string id = Submit({spec})[0];
  std::optional<cohort::v1::JobOutcome> end = AwaitEnd(id, 60s);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->state(), cohort::v1::JOB_STATE_SUCCEEDED) << end->error().code() << ": " << end->error().message();
  EXPECT_EQ(end->result(), "1000000\n");
  EXPECT_EQ(Get(id).attempt(), 1);  // one attempt: the Assign reached the executor whole
}

TEST_F(LimitsTest, ASubmitTooLargeForOneCommitIsRefusedWithTheLimitAndTheBrokerKeepsServing) {
  // 20 specs of 1.5 MB: each valid, together over the store's 32 MiB batch (this
  // stopped the broker: "commit failed, stopping").
  cohort::v1::SubmitRequest req;
  for (int i = 0; i < 20; ++i) *req.add_jobs() = ShSpecOfSize(1'500'000);
  cohort::v1::SubmitResponse resp;
  auto ctx = Context();
  grpc::Status status = stub().Submit(ctx.get(), req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("33554432"), std::string::npos) << status.error_message();
  EXPECT_LT(status.error_message().size(), 1024u);
  // Still serving, and a Submit of five of them is one commit and durable.
  std::vector<cohort::v1::JobSpec> five(5, ShSpecOfSize(1'500'000));
  std::vector<std::string> ids = Submit(five);
  ASSERT_EQ(ids.size(), 5u);
  for (const std::string& id : ids) EXPECT_EQ(Get(id).state(), cohort::v1::JOB_STATE_QUEUED);
  cohort::v1::ListJobsRequest list;
  cohort::v1::ListJobsResponse listed;
  auto list_ctx = Context();
  ASSERT_TRUE(stub().ListJobs(list_ctx.get(), list, &listed).ok());
  EXPECT_EQ(listed.jobs_size(), 5);  // nothing of the refused Submit was written
}

TEST_F(LimitsTest, TheBrokerRefusesToStartWithASpecLimitNoMessageCanCarry) {
  auto started = ServiceProcess::Start(BinaryPath("services/broker/cohort-broker"),
                                       {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                                        "--data-dir=" + dir_.path() + "/other", "--max-spec-bytes=8388608",
                                        "--max-message-bytes=8388608"});
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.status().code(), absl::StatusCode::kUnavailable) << started.status();
  EXPECT_NE(started.status().message().find("exit code 2"), std::string::npos) << started.status();
}

TEST_F(LimitsTest, EveryStatusMessageStaysUnderOneKibWhateverTheCallerSent) {
  const std::string huge(1 << 20, 'Z');  // 1 MiB of caller text in every field
  std::vector<std::string> some_ids = Submit({Spec()});
  struct Call {
    std::string name;
    std::function<grpc::Status(grpc::ClientContext*)> run;
    grpc::StatusCode expected;
  };
  std::vector<Call> calls = {
      {"GetJob", [&](grpc::ClientContext* c) { cohort::v1::GetJobRequest r; r.set_job_id(huge);
         cohort::v1::GetJobResponse o; return stub().GetJob(c, r, &o); }, grpc::StatusCode::NOT_FOUND},
      {"CancelJob", [&](grpc::ClientContext* c) { cohort::v1::CancelJobRequest r; r.set_job_id(huge);
         cohort::v1::CancelJobResponse o; return stub().CancelJob(c, r, &o); }, grpc::StatusCode::NOT_FOUND},
      {"WaitFor", [&](grpc::ClientContext* c) { cohort::v1::WaitForRequest r; r.set_job_id(huge);
         cohort::v1::WaitForResponse o; return stub().WaitFor(c, r, &o); }, grpc::StatusCode::NOT_FOUND},
      {"Gather of many unknown ids", [&](grpc::ClientContext* c) { cohort::v1::GatherRequest r;
         for (int i = 0; i < 100; ++i) r.add_job_ids(huge.substr(0, 10'000) + std::to_string(i));
         cohort::v1::GatherResponse o; return stub().Gather(c, r, &o); }, grpc::StatusCode::NOT_FOUND},
      {"Submit queue", [&](grpc::ClientContext* c) { cohort::v1::SubmitRequest r; *r.add_jobs() = Spec();
         r.mutable_jobs(0)->set_queue(huge); cohort::v1::SubmitResponse o; return stub().Submit(c, r, &o); },
       grpc::StatusCode::INVALID_ARGUMENT},
      {"Submit kind", [&](grpc::ClientContext* c) { cohort::v1::SubmitRequest r; *r.add_jobs() = Spec();
         r.mutable_jobs(0)->set_kind("builtin." + huge.substr(0, 500'000)); cohort::v1::SubmitResponse o;
         return stub().Submit(c, r, &o); }, grpc::StatusCode::INVALID_ARGUMENT},
      {"Submit unknown parents", [&](grpc::ClientContext* c) { cohort::v1::SubmitRequest r; *r.add_jobs() = Spec();
         for (int i = 0; i < 100; ++i) r.mutable_jobs(0)->add_depends_on(huge.substr(0, 10'000) + std::to_string(i));
         cohort::v1::SubmitResponse o; return stub().Submit(c, r, &o); }, grpc::StatusCode::NOT_FOUND},
      {"ListJobs queue", [&](grpc::ClientContext* c) { cohort::v1::ListJobsRequest r; r.set_queue(huge);
         cohort::v1::ListJobsResponse o; return stub().ListJobs(c, r, &o); }, grpc::StatusCode::INVALID_ARGUMENT},
      {"PauseQueue", [&](grpc::ClientContext* c) { cohort::v1::PauseQueueRequest r; r.set_queue(huge);
         cohort::v1::PauseQueueResponse o; return stub().PauseQueue(c, r, &o); }, grpc::StatusCode::INVALID_ARGUMENT},
      {"SetQueueLimits", [&](grpc::ClientContext* c) { cohort::v1::SetQueueLimitsRequest r; r.set_queue(huge);
         cohort::v1::SetQueueLimitsResponse o; return stub().SetQueueLimits(c, r, &o); },
       grpc::StatusCode::INVALID_ARGUMENT},
      {"ReleaseJobs", [&](grpc::ClientContext* c) { cohort::v1::ReleaseJobsRequest r;
         r.add_releases()->set_job_id(huge); cohort::v1::ReleaseJobsResponse o; return stub().ReleaseJobs(c, r, &o); },
       grpc::StatusCode::INVALID_ARGUMENT},
  };
  for (const Call& call : calls) {
    auto ctx = Context();
    grpc::Status status = call.run(ctx.get());
    EXPECT_EQ(status.error_code(), call.expected) << call.name << ": " << status.error_message().substr(0, 200);
    EXPECT_LT(status.error_message().size(), 1024u) << call.name;
  }
}

}  // namespace
}  // namespace cohort::testing
