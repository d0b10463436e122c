// Every RPC of broker.proto and scheduler.proto, sent what a hostile or broken client
// sends: a body that is not protobuf, a body cut short, and fields far over any limit
// (1 MiB ids and names). Each must end with the status code its contract names and a
// message under 1 KiB (a longer one hits a default client's metadata limit and turns
// into RESOURCE_EXHAUSTED), against the real cohort-broker and cohort-scheduler.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/client_callback.h"
#include "gtest/gtest.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "protos/cohort/v1/scheduler.grpc.pb.h"
#include "tests/testing/runfiles.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort {
namespace {

using grpc::StatusCode;
using testing::BinaryPath;
using testing::ServiceProcess;
using testing::TempDir;

constexpr std::size_t kMaxStatusMessage = 1024;
const std::string kHuge(1 << 20, 'x');  // a 1 MiB id, name or token

// One call with a raw request body, through the generic stub, as a stream (on the
// wire a unary call is a stream of one message each way): the request is sent as the
// last message, responses are read and dropped, and the final status is returned.
class RawCall final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  RawCall(grpc::GenericStub& stub, const std::string& method, const std::string& body) {
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Slice slice(body);
    request_ = grpc::ByteBuffer(&slice, 1);
    stub.PrepareBidiStreamingCall(&ctx_, method, grpc::StubOptions(), this);
    StartWriteLast(&request_, grpc::WriteOptions());
    StartRead(&response_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (ok) StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = status;
    done_ = true;
    cv_.notify_all();
  }
  grpc::Status Await() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
    return status_;
  }

 private:
  grpc::ClientContext ctx_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  grpc::Status status_;
};

// A row: one RPC and the request with its fields far over any limit, with the codes
// its contract allows for that request.
struct Row {
  std::string method;  // "/cohort.v1.Broker/GetJob"
  std::string oversized;
  std::set<StatusCode> oversized_codes;
};

std::string Bytes(const google::protobuf::Message& m) { return m.SerializeAsString(); }

std::vector<Row> BrokerRows() {
  const std::string b = "/cohort.v1.Broker/";
  const std::set<StatusCode> invalid = {StatusCode::INVALID_ARGUMENT};
  // An id of 1 MiB is malformed or unknown: either answer is right.
  const std::set<StatusCode> invalid_or_unknown = {StatusCode::INVALID_ARGUMENT, StatusCode::NOT_FOUND};
  std::vector<Row> rows;
  {
    v1::SubmitRequest r;
    v1::JobSpec* spec = r.add_jobs();
    spec->set_queue(kHuge);
    spec->set_kind("builtin.echo");
    rows.push_back({b + "Submit", Bytes(r), invalid});
  }
  {
    v1::GetJobRequest r;
    r.set_job_id(kHuge);
    rows.push_back({b + "GetJob", Bytes(r), invalid_or_unknown});
  }
  {
    v1::ListJobsRequest r;
    r.set_queue(kHuge);
    r.mutable_filter()->set_label_selector(kHuge);
    r.set_page_token(kHuge);
    rows.push_back({b + "ListJobs", Bytes(r), invalid});
  }
  {
    v1::CancelJobRequest r;
    r.set_job_id(kHuge);
    rows.push_back({b + "CancelJob", Bytes(r), invalid_or_unknown});
  }
  {
    v1::RetryJobRequest r;
    r.set_job_id(kHuge);
    rows.push_back({b + "RetryJob", Bytes(r), invalid_or_unknown});
  }
  {
    v1::DeleteJobRequest r;
    r.set_job_id(kHuge);
    rows.push_back({b + "DeleteJob", Bytes(r), invalid_or_unknown});
  }
  {
    v1::StartBulkOperationRequest r;
    r.set_action(v1::BULK_ACTION_DELETE);
    r.mutable_filter()->set_label_selector(kHuge);
    r.set_request_id(kHuge);
    rows.push_back({b + "StartBulkOperation", Bytes(r), invalid});
  }
  {
    v1::GetBulkOperationRequest r;
    r.set_id(kHuge);
    rows.push_back({b + "GetBulkOperation", Bytes(r), invalid_or_unknown});
  }
  {
    v1::GatherRequest r;
    r.add_job_ids(kHuge);
    rows.push_back({b + "Gather", Bytes(r), invalid_or_unknown});
  }
  {
    v1::WaitRequest r;
    r.add_job_ids(kHuge);
    rows.push_back({b + "Wait", Bytes(r), invalid_or_unknown});
  }
  {
    v1::WaitForRequest r;
    r.set_job_id(kHuge);
    rows.push_back({b + "WaitFor", Bytes(r), invalid_or_unknown});
  }
  {
    v1::AsCompletedRequest r;
    r.add_job_ids(kHuge);
    rows.push_back({b + "AsCompleted", Bytes(r), invalid_or_unknown});
  }
  {
    v1::WatchRequest r;  // no string to inflate: a sequence far past the end
    r.set_after_sequence(std::numeric_limits<std::int64_t>::max());
    rows.push_back({b + "Watch", Bytes(r), {StatusCode::OUT_OF_RANGE}});
  }
  {
    // No fields at all: a 1 MiB unknown field is ignored, as proto3 says.
    v1::GetJobRequest unknown;
    unknown.set_job_id(kHuge);
    rows.push_back({b + "ListQueues", Bytes(unknown), {StatusCode::OK}});
    rows.push_back({b + "ListExecutors", Bytes(unknown), {StatusCode::OK}});
    rows.push_back({b + "ListBulkOperations", Bytes(unknown), {StatusCode::OK}});
  }
  {
    v1::CreateQueueRequest r;
    r.set_queue(kHuge);
    rows.push_back({b + "CreateQueue", Bytes(r), invalid});
  }
  {
    v1::DeleteQueueRequest r;
    r.set_queue(kHuge);
    rows.push_back({b + "DeleteQueue", Bytes(r), invalid});
  }
  {
    v1::PauseQueueRequest r;
    r.set_queue(kHuge);
    rows.push_back({b + "PauseQueue", Bytes(r), invalid});
  }
  {
    v1::ResumeQueueRequest r;
    r.set_queue(kHuge);
    rows.push_back({b + "ResumeQueue", Bytes(r), invalid});
  }
  {
    v1::SetQueueLimitsRequest r;
    r.set_queue(kHuge);
    rows.push_back({b + "SetQueueLimits", Bytes(r), invalid});
  }
  {
    v1::ExecutorMessage r;
    r.mutable_hello()->set_executor_id(kHuge);
    r.mutable_hello()->set_capacity(1);
    rows.push_back({b + "Connect", Bytes(r), invalid});
  }
  {
    v1::ReleaseJobsRequest r;
    v1::ReleaseJobsRequest::Release* release = r.add_releases();
    release->set_job_id(kHuge);
    release->set_attempt(1);
    release->set_reason(v1::TRANSITION_REASON_RUN_AT);
    rows.push_back({b + "ReleaseJobs", Bytes(r), invalid_or_unknown});
  }
  return rows;
}

std::vector<Row> SchedulerRows() {
  const std::string s = "/cohort.v1.Scheduler/";
  const std::set<StatusCode> invalid = {StatusCode::INVALID_ARGUMENT};
  const std::set<StatusCode> invalid_or_unknown = {StatusCode::INVALID_ARGUMENT, StatusCode::NOT_FOUND};
  std::vector<Row> rows;
  {
    v1::CreateScheduleRequest r;
    r.set_schedule_id(kHuge);
    r.mutable_spec()->mutable_job()->set_queue("default");
    r.mutable_spec()->mutable_job()->set_kind("builtin.echo");
    r.mutable_spec()->mutable_interval()->set_seconds(3600);
    rows.push_back({s + "CreateSchedule", Bytes(r), invalid});
  }
  {
    v1::GetScheduleRequest r;
    r.set_schedule_id(kHuge);
    rows.push_back({s + "GetSchedule", Bytes(r), invalid_or_unknown});
  }
  {
    v1::ListSchedulesRequest r;
    r.set_page_token(kHuge);
    rows.push_back({s + "ListSchedules", Bytes(r), invalid});
  }
  {
    v1::UpdateScheduleRequest r;
    r.set_schedule_id(kHuge);
    r.mutable_spec()->mutable_job()->set_queue("default");
    r.mutable_spec()->mutable_job()->set_kind("builtin.echo");
    r.mutable_spec()->mutable_interval()->set_seconds(3600);
    rows.push_back({s + "UpdateSchedule", Bytes(r), invalid_or_unknown});
  }
  for (const char* method : {"DeleteSchedule", "PauseSchedule", "ResumeSchedule", "TriggerSchedule"}) {
    v1::GetScheduleRequest r;  // the same single field: schedule_id = 1
    r.set_schedule_id(kHuge);
    rows.push_back({s + method, Bytes(r), invalid_or_unknown});
  }
  return rows;
}

// Not protobuf: field 1 with wire type 7, which does not exist.
const std::string kUnparseable("\x0f\x01\x02\x03", 4);

// `body` cut in the middle of its first length-delimited field, or, for a body
// without one, a field 1 claiming 100 bytes and carrying 3.
std::string Truncated(const std::string& body) {
  if (body.size() > 16) return body.substr(0, body.size() / 2);
  return std::string("\x0a\x64" "abc", 5);
}

class BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("bad-input");
    auto broker = ServiceProcess::Start(BinaryPath("services/broker/cohort-broker"),
                                        {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                                         "--data-dir=" + dir_->Path("broker")});
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    auto scheduler = ServiceProcess::Start(
        BinaryPath("services/scheduler/cohort-scheduler"),
        {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir_->Path("scheduler"),
         "--broker=" + broker_->grpc_address()});
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = scheduler->release();
  }
  static void TearDownTestSuite() {
    delete scheduler_;
    delete broker_;
    delete dir_;
  }

  // Sends every row its three bad bodies and checks each status.
  void CheckRows(const std::string& address, const std::vector<Row>& rows) {
    // A default client, so an oversized status would show as its metadata limit.
    grpc::GenericStub stub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    for (const Row& row : rows) {
      struct Case {
        const char* name;
        std::string body;
        std::set<StatusCode> codes;
      };
      const Case cases[] = {
          {"unparseable", kUnparseable, {StatusCode::INVALID_ARGUMENT}},
          {"truncated", Truncated(row.oversized), {StatusCode::INVALID_ARGUMENT}},
          {"oversized", row.oversized, row.oversized_codes},
      };
      for (const Case& c : cases) {
        SCOPED_TRACE(absl::StrCat(row.method, ", ", c.name, " body"));
        RawCall call(stub, row.method, c.body);
        grpc::Status status = call.Await();
        EXPECT_TRUE(c.codes.contains(status.error_code()))
            << "code " << status.error_code() << ": " << status.error_message().substr(0, 200);
        EXPECT_LT(status.error_message().size(), kMaxStatusMessage) << status.error_message().substr(0, 200);
      }
    }
  }

  static TempDir* dir_;
  static ServiceProcess* broker_;
  static ServiceProcess* scheduler_;
};

TempDir* BadInputTest::dir_ = nullptr;
ServiceProcess* BadInputTest::broker_ = nullptr;
ServiceProcess* BadInputTest::scheduler_ = nullptr;

TEST_F(BadInputTest, EveryBrokerRpcAnswersBadBodiesWithItsCodeAndAShortMessage) {
  const std::vector<Row> rows = BrokerRows();
  // Every method of the service has a row.
  const auto* service = v1::SubmitRequest::descriptor()->file()->FindServiceByName("Broker");
  ASSERT_NE(service, nullptr);
  ASSERT_EQ(static_cast<int>(rows.size()), service->method_count());
  CheckRows(broker_->grpc_address(), rows);
}

TEST_F(BadInputTest, EverySchedulerRpcAnswersBadBodiesWithItsCodeAndAShortMessage) {
  const std::vector<Row> rows = SchedulerRows();
  const auto* service = v1::CreateScheduleRequest::descriptor()->file()->FindServiceByName("Scheduler");
  ASSERT_NE(service, nullptr);
  ASSERT_EQ(static_cast<int>(rows.size()), service->method_count());
  CheckRows(scheduler_->grpc_address(), rows);
}

}  // namespace
}  // namespace cohort
