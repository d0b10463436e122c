// Every RPC of broker.proto and scheduler.proto against a real broker and scheduler
// running with a token file: allowed with its scope, PERMISSION_DENIED without it
// (naming the scope), UNAUTHENTICATED with no token, and a refused call changes
// nothing (the requests sent are ones that would change state if allowed).
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/notification.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "libs/auth/channel_credentials.h"
#include "libs/auth/scope_table.h"
#include "libs/auth/token_store.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "protos/cohort/v1/scheduler.grpc.pb.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/runfiles.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {
namespace {

using auth::Principal;
using auth::Scope;

// The scope table, written out independently of libs/auth's.
const std::map<std::string, std::set<std::string>>& ExpectedScopes() {
  static const auto* table = new std::map<std::string, std::set<std::string>>{
      {"/cohort.v1.Broker/Submit", {"submit"}},
      {"/cohort.v1.Broker/GetJob", {"read"}},
      {"/cohort.v1.Broker/ListJobs", {"read"}},
      {"/cohort.v1.Broker/CancelJob", {"cancel"}},
      {"/cohort.v1.Broker/RetryJob", {"admin"}},
      {"/cohort.v1.Broker/DeleteJob", {"admin"}},
      {"/cohort.v1.Broker/StartBulkOperation", {"admin"}},
      {"/cohort.v1.Broker/GetBulkOperation", {"read"}},
      {"/cohort.v1.Broker/ListBulkOperations", {"read"}},
      {"/cohort.v1.Broker/Gather", {"read"}},
      {"/cohort.v1.Broker/Wait", {"read"}},
      {"/cohort.v1.Broker/WaitFor", {"read", "cancel"}},
      {"/cohort.v1.Broker/AsCompleted", {"read"}},
      {"/cohort.v1.Broker/Watch", {"read"}},
      {"/cohort.v1.Broker/ListQueues", {"read"}},
      {"/cohort.v1.Broker/CreateQueue", {"admin"}},
      {"/cohort.v1.Broker/DeleteQueue", {"admin"}},
      {"/cohort.v1.Broker/PauseQueue", {"admin"}},
      {"/cohort.v1.Broker/ResumeQueue", {"admin"}},
      {"/cohort.v1.Broker/SetQueueLimits", {"admin"}},
      {"/cohort.v1.Broker/ListExecutors", {"read"}},
      {"/cohort.v1.Broker/Connect", {"execute"}},
      {"/cohort.v1.Broker/ReleaseJobs", {"release"}},
      {"/cohort.v1.Scheduler/CreateSchedule", {"admin"}},
      {"/cohort.v1.Scheduler/GetSchedule", {"read"}},
      {"/cohort.v1.Scheduler/ListSchedules", {"read"}},
      {"/cohort.v1.Scheduler/UpdateSchedule", {"admin"}},
      {"/cohort.v1.Scheduler/DeleteSchedule", {"admin"}},
      {"/cohort.v1.Scheduler/PauseSchedule", {"admin"}},
      {"/cohort.v1.Scheduler/ResumeSchedule", {"admin"}},
      {"/cohort.v1.Scheduler/TriggerSchedule", {"admin"}},
  };
  return *table;
}

std::string ScopeList(const std::set<std::string>& scopes) {
  std::string out;
  for (const std::string& s : scopes) absl::StrAppend(&out, out.empty() ? "" : ",", s);
  return out;
}

constexpr const char* kAllScopes[] = {"submit", "read", "cancel", "admin", "execute", "release"};

class ScopesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Tokens: root (*), the scheduler's, one per exact scope set of the table, and one
    // per scope holding every scope but that one.
    std::ofstream tokens(dir_.path() + "/tokens");
    auto grant = [&](const std::string& token, const std::string& name, const std::string& scopes) {
      tokens << auth::TokenFileLine(token, Principal{name, *auth::ParseScopes(scopes), "*", {}}) << "\n";
    };
    grant("root", "root", "*");
    grant("scheduler", "scheduler", "read,submit,release");
    std::set<std::string> exact;
    for (const auto& [method, scopes] : ExpectedScopes()) exact.insert(ScopeList(scopes));
    for (const std::string& scopes : exact) grant("exact " + scopes, "exact-" + absl::StrReplaceAll(scopes, {{",", "-"}}), scopes);
    for (const char* scope : kAllScopes) {
      std::string others;
      for (const char* s : kAllScopes) {
        if (std::string(s) != scope) absl::StrAppend(&others, others.empty() ? "" : ",", s);
      }
      grant(absl::StrCat("all-but ", scope), absl::StrCat("all-but-", scope), others);
    }
    tokens << auth::TokenFileLine("reports-only",
                                  Principal{"reports-bot", *auth::ParseScopes("submit,read"), "", {"reports.*"}})
           << "\n";
    tokens << auth::TokenFileLine("reports-admin",
                                  Principal{"reports-admin", *auth::ParseScopes("admin,read"), "", {"reports.*"}})
           << "\n";
    tokens.close();
    std::ofstream(dir_.path() + "/scheduler.token") << "scheduler\n";

    auto broker = ServiceProcess::Start(BinaryPath("services/broker/cohort-broker"),
                                        {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                                         "--data-dir=" + dir_.path() + "/broker", "--auth-tokens=" + dir_.path() + "/tokens"});
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = std::move(*broker);
    auto scheduler = ServiceProcess::Start(
        BinaryPath("services/scheduler/cohort-scheduler"),
        {"--broker=" + broker_->grpc_address(), "--broker-token-file=" + dir_.path() + "/scheduler.token",
         "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir_.path() + "/scheduler",
         "--auth-tokens=" + dir_.path() + "/tokens"});
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = std::move(*scheduler);

    root_broker_ = cohort::v1::Broker::NewStub(Channel(broker_->grpc_address(), "root"));
    root_scheduler_ = cohort::v1::Scheduler::NewStub(Channel(scheduler_->grpc_address(), "root"));
    // A job held for an hour, and a schedule: what the refused calls would change.
    cohort::v1::SubmitRequest submit;
    submit.add_jobs()->set_kind("builtin.noop");
    submit.mutable_jobs(0)->set_queue("default");
    submit.mutable_jobs(0)->mutable_delay()->set_seconds(3600);
    cohort::v1::SubmitResponse submitted;
    grpc::ClientContext submit_ctx;
    grpc::Status submit_status = root_broker_->Submit(&submit_ctx, submit, &submitted);
    ASSERT_TRUE(submit_status.ok()) << submit_status.error_message();
    job_id_ = submitted.job_ids(0);
    cohort::v1::CreateScheduleRequest create;
    create.set_schedule_id("hourly");
    create.mutable_spec()->mutable_job()->set_kind("builtin.noop");
    create.mutable_spec()->mutable_job()->set_queue("default");
    create.mutable_spec()->mutable_interval()->set_seconds(3600);
    cohort::v1::CreateScheduleResponse created;
    grpc::ClientContext create_ctx;
    grpc::Status s = root_scheduler_->CreateSchedule(&create_ctx, create, &created);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& address, const std::string& token) {
    auth::ClientSecurityOptions options;
    options.token = token;
    return *auth::MakeChannel(address, options);
  }

  // A request that would change state if it were allowed (empty for reads).
  std::string RequestFor(const std::string& method) {
    std::string name = method.substr(method.rfind('/') + 1);
    if (name == "Submit") {
      cohort::v1::SubmitRequest r;
      r.add_jobs()->set_kind("builtin.noop");
      r.mutable_jobs(0)->set_queue("default");
      return r.SerializeAsString();
    }
    if (name == "CancelJob") {
      cohort::v1::CancelJobRequest r;
      r.set_job_id(job_id_);
      return r.SerializeAsString();
    }
    if (name == "PauseQueue" || name == "ResumeQueue" || name == "SetQueueLimits") {
      cohort::v1::PauseQueueRequest r;  // field 1 is the queue in all three
      r.set_queue("default");
      return r.SerializeAsString();
    }
    if (name == "ReleaseJobs") {
      cohort::v1::ReleaseJobsRequest r;
      auto* release = r.add_releases();
      release->set_job_id(job_id_);
      release->set_attempt(Job().attempt());
      release->set_reason(cohort::v1::TRANSITION_REASON_RUN_AT);
      return r.SerializeAsString();
    }
    if (name == "CreateSchedule") {
      cohort::v1::CreateScheduleRequest r;
      r.set_schedule_id("another");
      r.mutable_spec()->mutable_job()->set_kind("builtin.noop");
      r.mutable_spec()->mutable_job()->set_queue("default");
      r.mutable_spec()->mutable_interval()->set_seconds(3600);
      return r.SerializeAsString();
    }
    if (name == "DeleteSchedule" || name == "PauseSchedule" || name == "TriggerSchedule" ||
        name == "ResumeSchedule" || name == "GetSchedule") {
      cohort::v1::DeleteScheduleRequest r;  // field 1 is the schedule id in all of them
      r.set_schedule_id("hourly");
      return r.SerializeAsString();
    }
    return "";
  }

  grpc::Status Call(const std::string& method, const std::string& token) {
    const std::string& address =
        method.rfind("/cohort.v1.Scheduler/", 0) == 0 ? scheduler_->grpc_address() : broker_->grpc_address();
    grpc::GenericStub stub(Channel(address, token));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    std::string body = RequestFor(method);
    grpc::Slice slice(body);
    grpc::ByteBuffer request(&slice, 1), response;
    grpc::Status status;
    absl::Notification done;
    stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
      status = std::move(s);
      done.Notify();
    });
    done.WaitForNotification();
    return status;
  }

  cohort::v1::Job Job() {
    cohort::v1::GetJobRequest r;
    r.set_job_id(job_id_);
    cohort::v1::GetJobResponse response;
    grpc::ClientContext ctx;
    EXPECT_TRUE(root_broker_->GetJob(&ctx, r, &response).ok());
    return response.job();
  }

  // Everything a refused call could have changed, as text to compare.
  std::string State() {
    std::string out;
    cohort::v1::ListJobsResponse jobs;
    {
      grpc::ClientContext ctx;
      EXPECT_TRUE(root_broker_->ListJobs(&ctx, {}, &jobs).ok());
    }
    for (const auto& job : jobs.jobs()) absl::StrAppend(&out, job.id(), " ", job.state(), " ", job.attempt(), "\n");
    cohort::v1::ListQueuesResponse queues;
    {
      grpc::ClientContext ctx;
      EXPECT_TRUE(root_broker_->ListQueues(&ctx, {}, &queues).ok());
    }
    for (const auto& q : queues.queues()) absl::StrAppend(&out, q.ShortDebugString(), "\n");
    cohort::v1::ListSchedulesResponse schedules;
    {
      grpc::ClientContext ctx;
      EXPECT_TRUE(root_scheduler_->ListSchedules(&ctx, {}, &schedules).ok());
    }
    for (const auto& s : schedules.schedules()) absl::StrAppend(&out, s.id(), " ", s.paused(), "\n");
    return out;
  }

  TempDir dir_;
  std::unique_ptr<ServiceProcess> broker_, scheduler_;
  std::unique_ptr<cohort::v1::Broker::Stub> root_broker_;
  std::unique_ptr<cohort::v1::Scheduler::Stub> root_scheduler_;
  std::string job_id_;
};

TEST_F(ScopesTest, EveryRpcInTheProtosHasARowInTheScopeTable) {
  for (const char* service : {"cohort.v1.Broker", "cohort.v1.Scheduler"}) {
    const google::protobuf::ServiceDescriptor* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    ASSERT_NE(descriptor, nullptr) << service;
    for (int i = 0; i < descriptor->method_count(); ++i) {
      std::string method = absl::StrCat("/", service, "/", descriptor->method(i)->name());
      ASSERT_TRUE(ExpectedScopes().contains(method)) << method << " is missing from this test's table";
      const auth::MethodRule* rule = auth::FindMethodRule(method);
      ASSERT_NE(rule, nullptr) << method << " is missing from libs/auth's scope table";
      EXPECT_EQ(auth::FormatScopes(rule->required), auth::FormatScopes(*auth::ParseScopes(ScopeList(ExpectedScopes().at(method)))))
          << method;
    }
  }
}

TEST_F(ScopesTest, EachRpcIsRefusedWithoutItsScopeAndChangesNothing) {
  const std::string before = State();
  for (const auto& [method, scopes] : ExpectedScopes()) {
    grpc::Status anonymous = Call(method, "");
    EXPECT_EQ(anonymous.error_code(), grpc::StatusCode::UNAUTHENTICATED) << method;
    for (const std::string& scope : scopes) {
      grpc::Status s = Call(method, "all-but " + scope);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << method << " without " << scope;
      EXPECT_NE(s.error_message().find("lacks scope " + scope), std::string::npos) << s.error_message();
    }
  }
  EXPECT_EQ(State(), before);
  EXPECT_EQ(Job().state(), cohort::v1::JOB_STATE_PENDING);
}

TEST_F(ScopesTest, EachRpcIsAllowedWithExactlyItsScopes) {
  for (const auto& [method, scopes] : ExpectedScopes()) {
    grpc::Status s = Call(method, "exact " + ScopeList(scopes));
    // The handler ran: what it answers depends on the request, but it is not a refusal.
    EXPECT_NE(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << method << ": " << s.error_message();
    EXPECT_NE(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << method << ": " << s.error_message();
  }
}

TEST_F(ScopesTest, ReleaseJobsWithoutTheReleaseScopeIsRefusedAndCounted) {
  grpc::Status refused = Call("/cohort.v1.Broker/ReleaseJobs", "all-but release");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(refused.error_message().find("lacks scope release"), std::string::npos) << refused.error_message();
  EXPECT_EQ(Job().state(), cohort::v1::JOB_STATE_PENDING);
  absl::StatusOr<std::string> metrics = ScrapeMetrics(broker_->metrics_address());
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(MetricValue(*metrics, "cohort_broker_auth_denied_total{method=\"/cohort.v1.Broker/ReleaseJobs\","
                                  "reason=\"missing_scope\"}"),
            1);
  // The same request with the scope releases the job: the refusal was the only obstacle.
  EXPECT_EQ(Call("/cohort.v1.Broker/ReleaseJobs", "exact release").error_code(), grpc::StatusCode::OK);
  EXPECT_EQ(Job().state(), cohort::v1::JOB_STATE_QUEUED);
}

TEST_F(ScopesTest, ACredentialLimitedToQueuePatternsSubmitsOnlyThere) {
  auto stub = cohort::v1::Broker::NewStub(Channel(broker_->grpc_address(), "reports-only"));
  auto submit = [&](const std::vector<std::string>& queues) {
    cohort::v1::SubmitRequest r;
    for (const std::string& q : queues) {
      auto* job = r.add_jobs();
      job->set_kind("builtin.noop");
      job->set_queue(q);
    }
    cohort::v1::SubmitResponse response;
    grpc::ClientContext ctx;
    return stub->Submit(&ctx, r, &response);
  };
  const std::string before = State();
  grpc::Status refused = submit({"reports.daily", "default"});  // one job outside refuses the whole request
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(refused.error_message().find("jobs[1].queue \"default\""), std::string::npos) << refused.error_message();
  EXPECT_EQ(State(), before);
  absl::StatusOr<std::string> metrics = ScrapeMetrics(broker_->metrics_address());
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(MetricValue(*metrics, "cohort_broker_auth_denied_total{method=\"/cohort.v1.Broker/Submit\","
                                  "reason=\"queue_not_allowed\"}"),
            1);
  EXPECT_EQ(submit({"reports.daily", "reports.weekly"}).error_code(), grpc::StatusCode::OK);
}

TEST_F(ScopesTest, ACredentialLimitedToQueuePatternsReachesNoOtherQueueThroughSchedules) {
  auto stub = cohort::v1::Scheduler::NewStub(Channel(scheduler_->grpc_address(), "reports-admin"));
  auto create = [&](const std::string& id, const std::string& queue) {
    cohort::v1::CreateScheduleRequest r;
    r.set_schedule_id(id);
    r.mutable_spec()->mutable_job()->set_kind("builtin.noop");
    r.mutable_spec()->mutable_job()->set_queue(queue);
    r.mutable_spec()->mutable_interval()->set_seconds(3600);
    cohort::v1::CreateScheduleResponse response;
    grpc::ClientContext ctx;
    return stub->CreateSchedule(&ctx, r, &response);
  };
  const std::string before = State();
  grpc::Status refused = create("sneaky", "default");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(refused.error_message().find("spec.job.queue \"default\""), std::string::npos) << refused.error_message();

  // "hourly" (made in SetUp) submits to "default": none of its calls may touch it.
  cohort::v1::Schedule schedule;
  auto expect_denied = [&](const char* what, grpc::Status s) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << what << ": " << s.error_message();
  };
  {
    cohort::v1::TriggerScheduleRequest r;
    r.set_schedule_id("hourly");
    cohort::v1::TriggerScheduleResponse response;
    grpc::ClientContext ctx;
    expect_denied("trigger", stub->TriggerSchedule(&ctx, r, &response));
  }
  {
    cohort::v1::PauseScheduleRequest r;
    r.set_schedule_id("hourly");
    cohort::v1::PauseScheduleResponse response;
    grpc::ClientContext ctx;
    expect_denied("pause", stub->PauseSchedule(&ctx, r, &response));
  }
  {
    cohort::v1::DeleteScheduleRequest r;
    r.set_schedule_id("hourly");
    cohort::v1::DeleteScheduleResponse response;
    grpc::ClientContext ctx;
    expect_denied("delete", stub->DeleteSchedule(&ctx, r, &response));
  }
  {  // Moving it into an allowed queue is no way in either.
    cohort::v1::UpdateScheduleRequest r;
    r.set_schedule_id("hourly");
    r.mutable_spec()->mutable_job()->set_kind("builtin.noop");
    r.mutable_spec()->mutable_job()->set_queue("reports.hourly");
    r.mutable_spec()->mutable_interval()->set_seconds(3600);
    cohort::v1::UpdateScheduleResponse response;
    grpc::ClientContext ctx;
    expect_denied("update", stub->UpdateSchedule(&ctx, r, &response));
  }
  EXPECT_EQ(State(), before);
  absl::StatusOr<std::string> metrics = ScrapeMetrics(scheduler_->metrics_address());
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  for (const char* method : {"CreateSchedule", "TriggerSchedule", "PauseSchedule", "DeleteSchedule", "UpdateSchedule"}) {
    EXPECT_EQ(MetricValue(*metrics, absl::StrCat("cohort_scheduler_auth_denied_total{method=\"/cohort.v1.Scheduler/",
                                                 method, "\",reason=\"queue_not_allowed\"}")),
              1)
        << method;
  }
  grpc::Status allowed = create("reports", "reports.daily");
  EXPECT_TRUE(allowed.ok()) << allowed.error_message();
}

TEST_F(ScopesTest, AnUnknownTokenIsUnauthenticatedAndNeverQuoted) {
  grpc::Status s = Call("/cohort.v1.Broker/ListQueues", "cohort_stolen-or-mistyped");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message().find("stolen-or-mistyped"), std::string::npos) << s.error_message();
}

}  // namespace
}  // namespace cohort::testing
