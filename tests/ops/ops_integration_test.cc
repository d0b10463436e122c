// The operations API against a real cohort-broker: RetryJob keeps the history, bulk
// operations act on exactly their scope, dry runs count what a purge then deletes, a
// bulk operation survives kill -9 and finishes with exact counts, and bad input gets a
// clear status.
#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "tests/broker_fixture.h"

namespace cohort::testing {
namespace {

using cohort::v1::BulkOperation;
using cohort::v1::JobSpec;

class OpsTest : public BrokerTest {
 protected:
  static JobSpec Labelled(const std::string& key, const std::string& value) {
    JobSpec s = Spec("ops");
    (*s.mutable_labels())[key] = value;
    s.set_max_attempts(1);
    return s;
  }
  grpc::Status Start(const cohort::v1::StartBulkOperationRequest& request, BulkOperation* op) {
    cohort::v1::StartBulkOperationResponse response;
    grpc::Status s = stub().StartBulkOperation(Context().get(), request, &response);
    *op = response.operation();
    return s;
  }
  // The operation once DONE; a test failure if it is not within `bound`.
  BulkOperation AwaitDone(const std::string& id, std::chrono::seconds bound = std::chrono::seconds(60)) {
    const auto give_up = std::chrono::steady_clock::now() + bound;
    cohort::v1::GetBulkOperationRequest request;
    request.set_id(id);
    cohort::v1::GetBulkOperationResponse response;
    while (std::chrono::steady_clock::now() < give_up) {
      grpc::Status s = stub().GetBulkOperation(Context().get(), request, &response);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok() || response.operation().state() == BulkOperation::STATE_DONE) return response.operation();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a durable record, not synchronising
    }
    ADD_FAILURE() << "bulk operation " << id << " not done within " << bound.count() << " s";
    return response.operation();
  }
  // Submits `specs` in calls of at most 5,000.
  std::vector<std::string> SubmitAll(const std::vector<JobSpec>& specs) {
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < specs.size(); i += 5000) {
      std::vector<JobSpec> part(specs.begin() + i, specs.begin() + std::min(specs.size(), i + 5000));
      std::vector<std::string> got = Submit(part);
      ids.insert(ids.end(), got.begin(), got.end());
    }
    return ids;
  }
  // Every job the broker holds now, with the given label value (ListJobs pages).
  std::vector<cohort::v1::Job> ListLabelled(const std::string& selector) {
    std::vector<cohort::v1::Job> jobs;
    cohort::v1::ListJobsRequest request;
    request.mutable_filter()->set_label_selector(selector);
    request.set_page_size(1000);
    while (true) {
      cohort::v1::ListJobsResponse response;
      grpc::Status s = stub().ListJobs(Context().get(), request, &response);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) return jobs;
      jobs.insert(jobs.end(), response.jobs().begin(), response.jobs().end());
      if (response.next_page_token().empty()) return jobs;
      request.set_page_token(response.next_page_token());
    }
  }
  // Runs and fails every one of `ids` once on a test executor.
  void FailAll(const std::vector<std::string>& ids) {
    TestExecutor exec(stub(), "ops-exec", static_cast<int>(ids.size()));
    exec.Grant(static_cast<int>(ids.size()));
    for (std::size_t i = 0; i < ids.size(); ++i) {
      cohort::v1::BrokerMessage::Assign a = exec.RequireAssign();
      exec.Fail(a.job().id(), a.attempt(), "first attempt failed");
    }
    for (const std::string& id : ids) AwaitEnd(id);
  }
};

TEST_F(OpsTest, RetryOfAFailedJobSucceedsWithTheFirstAttemptsErrorKept) {
  const std::string id = Submit({Labelled("t", "retry")})[0];
  TestExecutor exec(stub(), "exec-1", 1);
  exec.Grant(1);
  cohort::v1::BrokerMessage::Assign first = exec.RequireAssign();
  exec.Fail(id, first.attempt(), "disk was full");
  std::optional<cohort::v1::JobOutcome> failed = AwaitEnd(id);
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->state(), cohort::v1::JOB_STATE_FAILED);

  cohort::v1::RetryJobRequest request;
  request.set_job_id(id);
  request.set_expected_attempt(first.attempt());
  cohort::v1::RetryJobResponse response;
  ASSERT_TRUE(stub().RetryJob(Context().get(), request, &response).ok());
  EXPECT_TRUE(response.retried());
  // The same request again (a client that resent it) changes nothing.
  cohort::v1::RetryJobResponse again;
  ASSERT_TRUE(stub().RetryJob(Context().get(), request, &again).ok());
  EXPECT_FALSE(again.retried());

  exec.Grant(1);
  cohort::v1::BrokerMessage::Assign second = exec.RequireAssign();
  EXPECT_EQ(second.attempt(), first.attempt() + 1);
  exec.Complete(id, second.attempt(), "done");
  std::optional<cohort::v1::JobOutcome> succeeded = AwaitEnd(id);
  ASSERT_TRUE(succeeded.has_value());
  EXPECT_EQ(succeeded->state(), cohort::v1::JOB_STATE_SUCCEEDED);
  const cohort::v1::Job job = Get(id);
  EXPECT_EQ(job.retry_count(), 1);
  ASSERT_EQ(job.attempts_size(), 2);
  EXPECT_EQ(job.attempts(0).error().message(), "disk was full");
  EXPECT_FALSE(job.attempts(1).has_error());
}

TEST_F(OpsTest, BulkRetryOfAThousandFailedJobsByLabelRetriesThemAllAndNothingElse) {
  std::vector<JobSpec> specs(1000, Labelled("batch", "nightly"));
  for (int i = 0; i < 10; ++i) specs.push_back(Labelled("batch", "other"));
  const std::vector<std::string> ids = SubmitAll(specs);
  FailAll(ids);

  cohort::v1::StartBulkOperationRequest request;
  request.set_action(cohort::v1::BULK_ACTION_RETRY);
  request.mutable_filter()->set_label_selector("batch=nightly");
  request.mutable_filter()->add_states(cohort::v1::JOB_STATE_FAILED);
  BulkOperation op;
  ASSERT_TRUE(Start(request, &op).ok());
  const BulkOperation done = AwaitDone(op.id());
  EXPECT_EQ(done.matched(), 1000);
  EXPECT_EQ(done.changed(), 1000);
  EXPECT_EQ(done.skipped(), 0);
  for (const cohort::v1::Job& job : ListLabelled("batch=nightly")) {
    EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_QUEUED) << job.id();
    EXPECT_EQ(job.retry_count(), 1) << job.id();
    EXPECT_EQ(job.attempts_size(), 1) << job.id();
  }
  for (const cohort::v1::Job& job : ListLabelled("batch=other")) EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_FAILED);
  EXPECT_EQ(Metric("cohort_broker_bulk_jobs_total{action=\"retry\",outcome=\"changed\"}"), 1000);
}

TEST_F(OpsTest, PurgeByFilterDeletesExactlyWhatItsDryRunCounted) {
  std::vector<JobSpec> specs(200, Labelled("team", "a"));
  for (int i = 0; i < 50; ++i) specs.push_back(Labelled("team", "b"));
  SubmitAll(specs);
  cohort::v1::StartBulkOperationRequest request;
  request.set_action(cohort::v1::BULK_ACTION_DELETE);
  request.mutable_filter()->set_label_selector("team=a");
  request.set_dry_run(true);
  BulkOperation counted;
  ASSERT_TRUE(Start(request, &counted).ok());
  EXPECT_EQ(counted.matched(), 200);
  EXPECT_EQ(ListLabelled("team=a").size(), 200u);  // a dry run writes nothing

  request.set_dry_run(false);
  BulkOperation op;
  ASSERT_TRUE(Start(request, &op).ok());
  const BulkOperation done = AwaitDone(op.id());
  EXPECT_EQ(done.changed(), counted.matched());
  EXPECT_TRUE(ListLabelled("team=a").empty());
  EXPECT_EQ(ListLabelled("team=b").size(), 50u);
}

TEST_F(OpsTest, ABulkOperationKilledMidwayFinishesAfterARestartWithExactCounts) {
  constexpr int kJobs = 20'000;
  std::vector<JobSpec> specs(kJobs, Labelled("wave", "1"));
  SubmitAll(specs);
  // Cancel them all first (a bulk operation too), so that they can be retried.
  cohort::v1::StartBulkOperationRequest cancel;
  cancel.set_action(cohort::v1::BULK_ACTION_CANCEL);
  cancel.mutable_filter()->set_label_selector("wave=1");
  BulkOperation cancelled;
  ASSERT_TRUE(Start(cancel, &cancelled).ok());
  EXPECT_EQ(AwaitDone(cancelled.id()).changed(), kJobs);

  cohort::v1::StartBulkOperationRequest retry;
  retry.set_action(cohort::v1::BULK_ACTION_RETRY);
  retry.mutable_filter()->set_label_selector("wave=1");
  retry.set_request_id("wave-1-retry");
  BulkOperation op;
  ASSERT_TRUE(Start(retry, &op).ok());
  // The kill lands once some batches have committed and others have not: the progress
  // the broker reports is the only event there is, so poll it (bounded).
  BulkOperation midway = op;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (midway.changed() == 0 && midway.state() != BulkOperation::STATE_DONE &&
         std::chrono::steady_clock::now() < give_up) {
    cohort::v1::GetBulkOperationRequest get;
    get.set_id(op.id());
    cohort::v1::GetBulkOperationResponse got;
    ASSERT_TRUE(stub().GetBulkOperation(Context().get(), get, &got).ok());
    midway = got.operation();
  }
  ASSERT_TRUE(broker_->Kill9().ok());
  ASSERT_NE(midway.state(), BulkOperation::STATE_DONE) << "finished before the kill: " << midway.ShortDebugString();
  ASSERT_GT(midway.changed(), 0) << "no batch committed within 30 s";
  ASSERT_LT(midway.changed(), kJobs);
  // A job submitted after the start, with the same label: outside the scope.
  StartBroker();
  const std::string late = Submit({Labelled("wave", "1")})[0];

  const BulkOperation done = AwaitDone(op.id());
  EXPECT_EQ(done.resumed(), 1);
  EXPECT_EQ(done.matched(), kJobs);
  EXPECT_EQ(done.changed() + done.skipped(), done.matched());
  EXPECT_EQ(done.changed(), kJobs);
  int retried = 0;
  for (const cohort::v1::Job& job : ListLabelled("wave=1")) {
    if (job.id() == late) {
      EXPECT_EQ(job.retry_count(), 0);
      EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_QUEUED);
      continue;
    }
    EXPECT_EQ(job.retry_count(), 1) << job.id();  // each job once, never twice
    ++retried;
  }
  EXPECT_EQ(retried, kJobs);
  // The request_id still names the same operation after the restart.
  BulkOperation again;
  ASSERT_TRUE(Start(retry, &again).ok());
  EXPECT_EQ(again.id(), op.id());
}

TEST_F(OpsTest, BadInputGetsAClearStatus) {
  cohort::v1::RetryJobRequest retry;
  retry.set_job_id("no-such-job");
  cohort::v1::RetryJobResponse retried;
  grpc::Status s = stub().RetryJob(Context().get(), retry, &retried);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("no-such-job"), std::string::npos) << s.error_message();

  cohort::v1::DeleteJobRequest del;
  del.set_job_id("no-such-job");
  cohort::v1::DeleteJobResponse deleted;
  EXPECT_EQ(stub().DeleteJob(Context().get(), del, &deleted).error_code(), grpc::StatusCode::NOT_FOUND);

  BulkOperation op;
  cohort::v1::StartBulkOperationRequest unspecified;
  unspecified.mutable_filter()->set_queue("ops");
  s = Start(unspecified, &op);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("BULK_ACTION_RETRY"), std::string::npos) << s.error_message();

  cohort::v1::StartBulkOperationRequest everything;
  everything.set_action(cohort::v1::BULK_ACTION_DELETE);
  s = Start(everything, &op);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("match_all"), std::string::npos) << s.error_message();

  cohort::v1::StartBulkOperationRequest long_id;
  long_id.set_action(cohort::v1::BULK_ACTION_RETRY);
  long_id.mutable_filter()->set_queue("ops");
  long_id.set_request_id(std::string(129, 'x'));
  s = Start(long_id, &op);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("128"), std::string::npos) << s.error_message();

  cohort::v1::GetBulkOperationRequest get;
  get.set_id("bulk-unknown");
  cohort::v1::GetBulkOperationResponse got;
  EXPECT_EQ(stub().GetBulkOperation(Context().get(), get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  cohort::v1::ListBulkOperationsResponse list;
  ASSERT_TRUE(stub().ListBulkOperations(Context().get(), {}, &list).ok());
  EXPECT_EQ(list.operations_size(), 0);
}

}  // namespace
}  // namespace cohort::testing
