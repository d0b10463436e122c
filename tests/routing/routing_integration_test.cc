// Routing by kind across real processes: the real cohort-broker, the real
// cohort-executor (which declares its built-in kinds, and `exec` only with an
// allowlist) and a minimal Connect worker declaring other kinds on the same queue.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/runfiles.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {
namespace {

using cohort::v1::BrokerMessage;
using cohort::v1::ExecutorMessage;

// A worker in a few lines of any gRPC language: Hello with its kinds, credits,
// Assigns in, Completes out (synchronous client).
class KindWorker {
 public:
  KindWorker(cohort::v1::Broker::Stub& stub, const std::string& id, const std::vector<std::string>& kinds,
             int capacity = 8) {
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    stream_ = stub.Connect(&ctx_);
    ExecutorMessage hello;
    hello.mutable_hello()->set_executor_id(id);
    hello.mutable_hello()->set_capacity(capacity);
    for (const std::string& k : kinds) hello.mutable_hello()->add_kinds(k);
    EXPECT_TRUE(stream_->Write(hello));
  }
  ~KindWorker() {
    if (finished_) return;
    stream_->WritesDone();
    ctx_.TryCancel();
    stream_->Finish().error_code();
  }

  void Grant(int credits) {
    ExecutorMessage m;
    m.mutable_credit()->set_credits(credits);
    EXPECT_TRUE(stream_->Write(m));
  }
  // The next Assign, skipping other messages; nullopt if the stream ends.
  std::optional<BrokerMessage::Assign> NextAssign() {
    BrokerMessage m;
    while (stream_->Read(&m)) {
      if (m.has_assign()) return m.assign();
    }
    return std::nullopt;
  }
  void Complete(const BrokerMessage::Assign& a, const std::string& result) {
    ExecutorMessage m;
    m.mutable_complete()->set_job_id(a.job().id());
    m.mutable_complete()->set_attempt(a.attempt());
    m.mutable_complete()->set_result(result);
    EXPECT_TRUE(stream_->Write(m));
  }
  // How the broker ended the stream (reads until it does).
  grpc::Status Finish() {
    BrokerMessage m;
    while (stream_->Read(&m)) {
    }
    finished_ = true;
    return stream_->Finish();
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<ExecutorMessage, BrokerMessage>> stream_;
  bool finished_ = false;
};

class RoutingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = ServiceProcess::Start(
        BinaryPath("services/broker/cohort-broker"),
        {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir_.path() + "/broker"});
    ASSERT_TRUE(started.ok()) << started.status();
    broker_ = std::move(*started);
    stub_ = cohort::v1::Broker::NewStub(
        grpc::CreateChannel(broker_->grpc_address(), grpc::InsecureChannelCredentials()));
  }

  cohort::v1::Broker::Stub& stub() { return *stub_; }
  static std::unique_ptr<grpc::ClientContext> Context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return ctx;
  }
  std::vector<std::string> Submit(const std::vector<cohort::v1::JobSpec>& specs) {
    cohort::v1::SubmitRequest req;
    for (const auto& s : specs) *req.add_jobs() = s;
    cohort::v1::SubmitResponse resp;
    auto ctx = Context();
    grpc::Status status = stub_->Submit(ctx.get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<std::string> ids(resp.job_ids().begin(), resp.job_ids().end());
    ids.resize(specs.size());
    return ids;
  }
  // The job once it has ended (the broker's Wait, at most 20 s), or nullopt.
  std::optional<cohort::v1::JobOutcome> AwaitEnd(const std::string& id) {
    cohort::v1::WaitRequest req;
    req.add_job_ids(id);
    req.mutable_timeout()->set_seconds(20);
    cohort::v1::WaitResponse resp;
    auto ctx = Context();
    grpc::Status status = stub_->Wait(ctx.get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (resp.done_size() != 1) return std::nullopt;
    return resp.done(0);
  }
  std::optional<double> Metric(const std::string& series) {
    absl::StatusOr<std::string> body = ScrapeMetrics(broker_->metrics_address());
    if (!body.ok()) return std::nullopt;
    return MetricValue(*body, series);
  }
  // The real cohort-executor (built-in kinds only: no --allow-exec), connected.
  void StartExecutor() {
    auto started = ServiceProcess::Start(BinaryPath("services/executor/cohort-executor"),
                                         {"--broker=" + broker_->grpc_address(), "--listen=127.0.0.1:0",
                                          "--metrics-listen=127.0.0.1:0", "--executor-id=builtins", "--capacity=4"});
    ASSERT_TRUE(started.ok()) << started.status();
    executor_ = std::move(*started);
    ASSERT_TRUE(AwaitExecutors(1)) << "cohort-executor did not connect";
  }

  cohort::v1::ListExecutorsResponse Executors() {
    cohort::v1::ListExecutorsResponse resp;
    auto ctx = Context();
    grpc::Status status = stub().ListExecutors(ctx.get(), cohort::v1::ListExecutorsRequest(), &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp;
  }
  // The executor list has no event to wait on: poll it, bounded.
  bool AwaitExecutors(int n) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (Executors().executors_size() != n) {
      if (std::chrono::steady_clock::now() > give_up) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }
  cohort::v1::QueueInfo Queue(const std::string& name) {
    cohort::v1::ListQueuesResponse resp;
    auto ctx = Context();
    grpc::Status status = stub().ListQueues(ctx.get(), cohort::v1::ListQueuesRequest(), &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    for (const auto& q : resp.queues()) {
      if (q.name() == name) return q;
    }
    ADD_FAILURE() << "no queue " << name;
    return {};
  }
  cohort::v1::GetJobResponse GetJob(const std::string& id) {
    cohort::v1::GetJobRequest req;
    req.set_job_id(id);
    cohort::v1::GetJobResponse resp;
    auto ctx = Context();
    grpc::Status status = stub().GetJob(ctx.get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp;
  }
  static cohort::v1::JobSpec Kind(const std::string& kind, const std::string& payload) {
    cohort::v1::JobSpec s;
    s.set_queue("mixed");
    s.set_kind(kind);
    s.set_payload(payload);
    return s;
  }

  TempDir dir_;
  std::unique_ptr<ServiceProcess> broker_;
  std::unique_ptr<cohort::v1::Broker::Stub> stub_;
  std::unique_ptr<ServiceProcess> executor_;
};

TEST_F(RoutingTest, EachExecutorOfAQueueGetsOnlyItsKinds) {
  StartExecutor();
  KindWorker python(stub(), "python-worker", {"python.upper"});
  python.Grant(8);
  ASSERT_TRUE(AwaitExecutors(2));
  const std::vector<std::string> ids =
      Submit({Kind("python.upper", "a"), Kind("builtin.echo", "b"), Kind("python.upper", "c"),
              Kind("builtin.echo", "d"), Kind("python.upper", "e"), Kind("builtin.echo", "f")});
  for (int i = 0; i < 3; ++i) {
    std::optional<BrokerMessage::Assign> a = python.NextAssign();
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->job().spec().kind(), "python.upper");
    python.Complete(*a, absl::AsciiStrToUpper(a->job().spec().payload()));
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    std::optional<cohort::v1::JobOutcome> end = AwaitEnd(ids[i]);
    ASSERT_TRUE(end.has_value());
    EXPECT_EQ(end->state(), cohort::v1::JOB_STATE_SUCCEEDED) << end->ShortDebugString();
    const bool python_job = i % 2 == 0;
    // Upper-cased by the worker, echoed by cohort-executor: none went to the other one.
    EXPECT_EQ(end->result(), python_job ? absl::AsciiStrToUpper(std::string(1, 'a' + i)) : std::string(1, 'a' + i));
  }
  // ListExecutors shows what each one declared: cohort-executor its built-ins, and
  // no `exec` without an allowlist.
  const cohort::v1::ListExecutorsResponse executors = Executors();
  ASSERT_EQ(executors.executors_size(), 2);
  for (const cohort::v1::ExecutorInfo& e : executors.executors()) {
    std::vector<std::string> kinds(e.kinds().begin(), e.kinds().end());
    if (e.executor_id() == "builtins") {
      EXPECT_EQ(kinds, (std::vector<std::string>{"builtin.echo", "builtin.noop", "builtin.sleep", "builtin.fail"}));
    } else {
      EXPECT_EQ(kinds, (std::vector<std::string>{"python.upper"}));
    }
  }
}

TEST_F(RoutingTest, AJobNobodyServesIsShownAsUnservedAndRunsOnceAMatchingExecutorConnects) {
  StartExecutor();
  const std::string id = Submit({Kind("python.upper", "late")})[0];
  const std::string exec_id = Submit({[] {
    cohort::v1::JobSpec s = Kind("exec", "");
    s.mutable_command()->add_argv("/bin/true");
    return s;
  }()})[0];
  EXPECT_TRUE(GetJob(id).unserved());
  EXPECT_EQ(GetJob(id).job().state(), cohort::v1::JOB_STATE_QUEUED);
  cohort::v1::QueueInfo q = Queue("mixed");
  EXPECT_EQ(q.executors(), 1);
  EXPECT_EQ(std::vector<std::string>(q.unserved_kinds().begin(), q.unserved_kinds().end()),
            (std::vector<std::string>{"exec", "python.upper"}));
  EXPECT_EQ(q.unserved(), 2);
  EXPECT_EQ(Metric("cohort_broker_unserved_jobs{queue=\"mixed\"}"), 2);

  KindWorker python(stub(), "python-worker", {"python.upper"});
  python.Grant(1);
  std::optional<BrokerMessage::Assign> a = python.NextAssign();
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->job().id(), id);
  python.Complete(*a, "LATE");
  std::optional<cohort::v1::JobOutcome> end = AwaitEnd(id);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->result(), "LATE");
  EXPECT_FALSE(GetJob(id).unserved());
  // The exec job still waits for an executor whose allowlist admits commands.
  EXPECT_TRUE(GetJob(exec_id).unserved());
  q = Queue("mixed");
  EXPECT_EQ(q.executors(), 2);
  EXPECT_EQ(std::vector<std::string>(q.unserved_kinds().begin(), q.unserved_kinds().end()),
            (std::vector<std::string>{"exec"}));
  EXPECT_EQ(Metric("cohort_broker_unserved_jobs{queue=\"mixed\"}"), 1);
}

TEST_F(RoutingTest, HelloWithInvalidKindsIsInvalidArgument) {
  {
    KindWorker bad(stub(), "bad-kind", {"Not A Kind"});
    grpc::Status status = bad.Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(status.error_message().find("hello.kinds"), std::string::npos) << status.error_message();
  }
  std::vector<std::string> many;
  for (int i = 0; i < 257; ++i) many.push_back("kind-" + std::to_string(i));
  KindWorker too_many(stub(), "too-many", many);
  grpc::Status status = too_many.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("the limit is 256"), std::string::npos) << status.error_message();
  EXPECT_EQ(Executors().executors_size(), 0);
}

}  // namespace
}  // namespace cohort::testing
