#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {

// An executor played by the test over a real Connect stream (synchronous client).
class TestExecutor {
 public:
  TestExecutor(cohort::v1::Broker::Stub& stub, std::string id, int capacity);
  ~TestExecutor();

  void Grant(int credits);
  // The next Assign (skipping welcome/lease messages), or nullopt if the stream ends.
  std::optional<cohort::v1::BrokerMessage::Assign> NextAssign();
  // The next Assign; if the stream ends first, a test failure and an empty Assign (so a
  // caller reading ->job().id() gets "" instead of dereferencing an empty optional).
  cohort::v1::BrokerMessage::Assign RequireAssign();
  // The next Cancel, or nullopt if the stream ends.
  std::optional<cohort::v1::BrokerMessage::Cancel> NextCancel();
  void Complete(const std::string& job_id, int attempt, const std::string& result);
  void Fail(const std::string& job_id, int attempt, const std::string& message);
  // Drops the stream as a crashed executor would.
  void Drop();

 private:
  std::optional<cohort::v1::BrokerMessage> Next();
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<cohort::v1::ExecutorMessage, cohort::v1::BrokerMessage>> stream_;
  bool dropped_ = false;
};

// A real cohort-broker on 127.0.0.1 with free ports and its own data directory.
class BrokerTest : public ::testing::Test {
 protected:
  void SetUp() override { StartBroker(); }

  // Starts (or restarts, on the same data directory) the broker.
  void StartBroker(std::vector<std::string> extra_args = {});
  cohort::v1::Broker::Stub& stub() { return *stub_; }

  // Submits specs; fails the test on error. Always one id per spec ("" after a failure).
  std::vector<std::string> Submit(const std::vector<cohort::v1::JobSpec>& specs);
  cohort::v1::Job Get(const std::string& id);
  // Scrapes one series from the broker's /metrics.
  std::optional<double> Metric(const std::string& series);
  // Scrapes until `series` equals `value` (true) or `bound` passes (false): the broker
  // notices some things (a client gone) asynchronously, and its metric is the event.
  bool AwaitMetric(const std::string& series, double value, std::chrono::seconds bound = std::chrono::seconds(20));
  // The job once it has ended, waiting on the broker's Wait RPC for at most `bound`;
  // nullopt (after a test failure) if it has not ended by then.
  std::optional<cohort::v1::JobOutcome> AwaitEnd(const std::string& id,
                                                 std::chrono::seconds bound = std::chrono::seconds(20));

  static cohort::v1::JobSpec Spec(const std::string& queue = "default", int priority = 0);
  static std::unique_ptr<grpc::ClientContext> Context(std::chrono::milliseconds deadline = std::chrono::seconds(30));

  TempDir dir_;
  std::unique_ptr<ServiceProcess> broker_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<cohort::v1::Broker::Stub> stub_;
};

}  // namespace cohort::testing
