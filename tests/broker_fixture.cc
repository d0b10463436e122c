#include "tests/broker_fixture.h"

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/runfiles.h"

namespace cohort::testing {

using cohort::v1::BrokerMessage;
using cohort::v1::ExecutorMessage;

TestExecutor::TestExecutor(cohort::v1::Broker::Stub& stub, std::string id, int capacity) {
  ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  stream_ = stub.Connect(&ctx_);
  ExecutorMessage hello;
  hello.mutable_hello()->set_executor_id(std::move(id));
  hello.mutable_hello()->set_capacity(capacity);
  EXPECT_TRUE(stream_->Write(hello));
}

TestExecutor::~TestExecutor() {
  if (dropped_) return;
  stream_->WritesDone();
  ctx_.TryCancel();
  stream_->Finish().error_code();
}

void TestExecutor::Grant(int credits) {
  ExecutorMessage m;
  m.mutable_credit()->set_credits(credits);
  EXPECT_TRUE(stream_->Write(m));
}

std::optional<BrokerMessage> TestExecutor::Next() {
  BrokerMessage m;
  if (!stream_->Read(&m)) return std::nullopt;
  return m;
}

std::optional<BrokerMessage::Assign> TestExecutor::NextAssign() {
  while (std::optional<BrokerMessage> m = Next()) {
    if (m->has_assign()) return m->assign();
  }
  return std::nullopt;
}

std::optional<BrokerMessage::Cancel> TestExecutor::NextCancel() {
  while (std::optional<BrokerMessage> m = Next()) {
    if (m->has_cancel()) return m->cancel();
  }
  return std::nullopt;
}

void TestExecutor::Complete(const std::string& job_id, int attempt, const std::string& result) {
  ExecutorMessage m;
  m.mutable_complete()->set_job_id(job_id);
  m.mutable_complete()->set_attempt(attempt);
  m.mutable_complete()->set_result(result);
  EXPECT_TRUE(stream_->Write(m));
}

void TestExecutor::Fail(const std::string& job_id, int attempt, const std::string& message) {
  ExecutorMessage m;
  m.mutable_complete()->set_job_id(job_id);
  m.mutable_complete()->set_attempt(attempt);
  m.mutable_complete()->mutable_error()->set_code("exit_status");
  m.mutable_complete()->mutable_error()->set_message(message);
  EXPECT_TRUE(stream_->Write(m));
}

void TestExecutor::Drop() {
  ctx_.TryCancel();
  stream_->Finish().error_code();
  dropped_ = true;
}

void BrokerTest::StartBroker(std::vector<std::string> extra_args) {
  stub_.reset();
  channel_.reset();
  broker_.reset();
  std::vector<std::string> args = {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                                   "--data-dir=" + dir_.path() + "/broker"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  auto started = ServiceProcess::Start(BinaryPath("services/broker/cohort-broker"), args);
  ASSERT_TRUE(started.ok()) << started.status();
  broker_ = std::move(*started);
  channel_ = grpc::CreateChannel(broker_->grpc_address(), grpc::InsecureChannelCredentials());
  stub_ = cohort::v1::Broker::NewStub(channel_);
}

std::vector<std::string> BrokerTest::Submit(const std::vector<cohort::v1::JobSpec>& specs) {
  cohort::v1::SubmitRequest req;
  for (const auto& s : specs) *req.add_jobs() = s;
  cohort::v1::SubmitResponse resp;
  auto ctx = Context();
  grpc::Status status = stub_->Submit(ctx.get(), req, &resp);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(static_cast<std::size_t>(resp.job_ids_size()), status.ok() ? specs.size() : 0u);
  // One entry per spec whatever happened, so `Submit({...})[0]` after a failure is an
  // empty id that later calls reject by name, not an out-of-range read.
  std::vector<std::string> ids(resp.job_ids().begin(), resp.job_ids().end());
  ids.resize(specs.size());
  return ids;
}

cohort::v1::BrokerMessage::Assign TestExecutor::RequireAssign() {
  std::optional<cohort::v1::BrokerMessage::Assign> assign = NextAssign();
  if (!assign.has_value()) {
    ADD_FAILURE() << "the Connect stream ended before an Assign";
    return {};
  }
  return *std::move(assign);
}

cohort::v1::Job BrokerTest::Get(const std::string& id) {
  cohort::v1::GetJobRequest req;
  req.set_job_id(id);
  cohort::v1::GetJobResponse resp;
  auto ctx = Context();
  grpc::Status status = stub_->GetJob(ctx.get(), req, &resp);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return resp.job();
}

std::optional<double> BrokerTest::Metric(const std::string& series) {
  absl::StatusOr<std::string> body = ScrapeMetrics(broker_->metrics_address());
  if (!body.ok()) return std::nullopt;
  return MetricValue(*body, series);
}

bool BrokerTest::AwaitMetric(const std::string& series, double value, std::chrono::seconds bound) {
  const auto give_up = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < give_up) {
    if (Metric(series) == value) return true;
  }
  return false;
}

std::optional<cohort::v1::JobOutcome> BrokerTest::AwaitEnd(const std::string& id, std::chrono::seconds bound) {
  cohort::v1::WaitRequest req;
  req.add_job_ids(id);
  req.mutable_timeout()->set_seconds(bound.count());
  cohort::v1::WaitResponse resp;
  auto ctx = Context(bound + std::chrono::seconds(10));
  grpc::Status status = stub_->Wait(ctx.get(), req, &resp);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.done_size(), 1) << "job " << id << " did not end within " << bound.count() << " s";
  if (resp.done_size() != 1) return std::nullopt;
  return resp.done(0);
}

cohort::v1::JobSpec BrokerTest::Spec(const std::string& queue, int priority) {
  cohort::v1::JobSpec s;
  s.set_queue(queue);
  s.set_kind("builtin.echo");
  s.set_priority(priority);
  s.set_payload("payload");
  return s;
}

std::unique_ptr<grpc::ClientContext> BrokerTest::Context(std::chrono::milliseconds deadline) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + deadline);
  return ctx;
}

}  // namespace cohort::testing
