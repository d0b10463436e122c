// Bulk operations on the engine, on a manual clock with an in-memory store: scope,
// counts, batches, the durable record and its resumption after a restart, and the
// refusals.
#include "services/broker/bulk_operations.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/runtime/test_util.h"
#include "services/broker/broker_engine.h"
#include "services/broker/engine_test_util.h"

namespace cohort::broker {
namespace {

using cohort::v1::BulkOperation;
using cohort::v1::JobSpec;
using cohort::v1::StartBulkOperationRequest;
using runtime::Task;
using testing::Batch;
using testing::Credit;
using testing::FakeChannel;
using testing::Hello;
using testing::Spec;

JobSpec Labelled(std::string team) {
  JobSpec s = Spec("q");
  (*s.mutable_labels())["team"] = std::move(team);
  return s;
}

StartBulkOperationRequest Request(cohort::v1::BulkAction action, std::string selector,
                                  std::vector<cohort::v1::JobState> states = {}) {
  StartBulkOperationRequest r;
  r.set_action(action);
  r.mutable_filter()->set_label_selector(std::move(selector));
  for (cohort::v1::JobState s : states) r.mutable_filter()->add_states(s);
  return r;
}

class BulkOperationsTest : public testing::EngineTest {
 protected:
  BulkOperationsTest() {
    options_.bulk.batch_jobs = 16;  // several batches for a few hundred jobs
    options_.bulk.scan_jobs = 64;
  }

  // Submits n jobs labelled team=<team> in one call and cancels them (CANCELLED jobs
  // are ready to be retried).
  static Task<std::vector<std::string>> SubmitCancelled(BrokerEngine& e, int n, std::string team) {
    std::vector<JobSpec> specs(n, Labelled(team));
    std::vector<std::string> ids = *co_await e.Submit(std::move(specs), false);
    for (const std::string& id : ids) EXPECT_TRUE((co_await e.CancelJob(id)).ok());
    co_return ids;
  }

  // The operation once DONE (a test failure if it is not after many batches).
  static Task<BulkOperation> AwaitDone(BrokerEngine& e, std::string id) {
    for (int i = 0; i < 1000; ++i) {
      absl::StatusOr<BulkOperation> op = e.bulk_operations().Get(id);
      EXPECT_TRUE(op.ok()) << op.status();
      if (!op.ok() || op->state() == BulkOperation::STATE_DONE) co_return op.ok() ? *op : BulkOperation();
      co_await runtime::Yield();
    }
    ADD_FAILURE() << "bulk operation " << id << " is not done";
    co_return *e.bulk_operations().Get(id);
  }
};

TEST_F(BulkOperationsTest, RetryRetriesExactlyTheMatchingJobsInBatchesAndItsCountsAddUp) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> a = co_await SubmitCancelled(e, 100, "a");
    std::vector<std::string> b = co_await SubmitCancelled(e, 50, "b");
    std::vector<cohort::v1::JobState> states(1, cohort::v1::JOB_STATE_CANCELLED);
    StartBulkOperationRequest request = Request(cohort::v1::BULK_ACTION_RETRY, "team=a", states);
    auto started = co_await e.bulk_operations().Start(request, "ops");
    EXPECT_TRUE(started.ok()) << started.status();
    EXPECT_EQ(started->state(), BulkOperation::STATE_RUNNING);
    EXPECT_EQ(started->last_job_id(), b.back());
    EXPECT_EQ(started->started_by(), "ops");
    const BulkOperation done = co_await AwaitDone(e, started->id());
    EXPECT_EQ(done.matched(), 100);
    EXPECT_EQ(done.changed(), 100);
    EXPECT_EQ(done.skipped(), 0);
    EXPECT_EQ(done.cursor_job_id(), b.back());
    EXPECT_TRUE(done.has_end_time());
    for (const std::string& id : a) {
      EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_QUEUED);
      EXPECT_EQ(e.GetJob(id)->retry_count(), 1);
    }
    for (const std::string& id : b) EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_CANCELLED);
  });
}

TEST_F(BulkOperationsTest, JobsSubmittedAfterTheStartAreNeverTouched) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    co_await SubmitCancelled(e, 40, "a");
    auto started = co_await e.bulk_operations().Start(Request(cohort::v1::BULK_ACTION_DELETE, "team=a"), "");
    EXPECT_TRUE(started.ok()) << started.status();
    // Before the first batch runs: a later job that matches the filter.
    const std::string late = (*co_await e.Submit(Batch(Labelled("a")), false))[0];
    const BulkOperation done = co_await AwaitDone(e, started->id());
    EXPECT_EQ(done.changed(), 40);
    EXPECT_TRUE(e.GetJob(late).ok());
  });
}

TEST_F(BulkOperationsTest, ADryRunCountsWhatTheOperationThenDeletesAndWritesNothing) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    co_await SubmitCancelled(e, 70, "a");
    co_await SubmitCancelled(e, 5, "b");
    const std::uint64_t commits = store_.stats().commits;
    StartBulkOperationRequest dry = Request(cohort::v1::BULK_ACTION_DELETE, "team in (a)");
    dry.set_dry_run(true);
    auto counted = co_await e.bulk_operations().Start(dry, "");
    EXPECT_TRUE(counted.ok()) << counted.status();
    EXPECT_EQ(counted->matched(), 70);
    EXPECT_TRUE(counted->id().empty());
    EXPECT_EQ(counted->state(), BulkOperation::STATE_DONE);
    EXPECT_EQ(store_.stats().commits, commits);
    EXPECT_TRUE(e.bulk_operations().List().operations().empty());

    auto started = co_await e.bulk_operations().Start(Request(cohort::v1::BULK_ACTION_DELETE, "team in (a)"), "");
    const BulkOperation done = co_await AwaitDone(e, started->id());
    EXPECT_EQ(done.changed(), counted->matched());
  });
}

TEST_F(BulkOperationsTest, DeleteSkipsRunningJobsAndCountsThem) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    auto ids = *co_await e.Submit(Batch(Labelled("a"), Labelled("a"), Labelled("a")), false);
    FakeChannel exec;
    const std::uint64_t session = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(1)).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob(ids[0])->state(), cohort::v1::JOB_STATE_RUNNING);
    auto started = co_await e.bulk_operations().Start(Request(cohort::v1::BULK_ACTION_DELETE, "team=a"), "");
    const BulkOperation done = co_await AwaitDone(e, started->id());
    EXPECT_EQ(done.matched(), 3);
    EXPECT_EQ(done.changed(), 2);
    EXPECT_EQ(done.skipped(), 1);
    EXPECT_TRUE(e.GetJob(ids[0]).ok());
    EXPECT_FALSE(e.GetJob(ids[1]).ok());
  });
}

TEST_F(BulkOperationsTest, CancelCancelsJobsThatHaveNotEnded) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    auto ids = *co_await e.Submit(Batch(Labelled("a"), Labelled("a")), false);
    EXPECT_TRUE((co_await e.CancelJob(ids[1])).ok());
    auto started = co_await e.bulk_operations().Start(Request(cohort::v1::BULK_ACTION_CANCEL, "team=a"), "");
    const BulkOperation done = co_await AwaitDone(e, started->id());
    EXPECT_EQ(done.changed(), 1);
    EXPECT_EQ(done.skipped(), 1);  // already ended
    EXPECT_EQ(e.GetJob(ids[0])->state(), cohort::v1::JOB_STATE_CANCELLED);
  });
}

TEST_F(BulkOperationsTest, ARestartResumesTheOperationFromItsCursorAndHandlesEachJobOnce) {
  std::string op_id;
  std::vector<std::string> ids;
  WithEngine([&](BrokerEngine& e) -> Task<void> {
    ids = co_await SubmitCancelled(e, 200, "a");
    auto started = co_await e.bulk_operations().Start(Request(cohort::v1::BULK_ACTION_RETRY, "team=a"), "");
    op_id = started->id();
    // A first batch, then the engine stops (as a crash would, for what is durable).
    for (int i = 0; i < 100 && e.bulk_operations().Get(op_id)->changed() == 0; ++i) co_await runtime::Yield();
    const BulkOperation partial = *e.bulk_operations().Get(op_id);
    EXPECT_EQ(partial.state(), BulkOperation::STATE_RUNNING);
    EXPECT_GT(partial.changed(), 0);
    EXPECT_LT(partial.changed(), 200);
  });
  engine_.reset();  // only the store remains
  WithEngine([&](BrokerEngine& e) -> Task<void> {
    const BulkOperation done = co_await AwaitDone(e, op_id);
    EXPECT_EQ(done.resumed(), 1);
    EXPECT_EQ(done.matched(), 200);
    EXPECT_EQ(done.changed() + done.skipped(), done.matched());
    EXPECT_EQ(done.changed(), 200);
    for (const std::string& id : ids) EXPECT_EQ(e.GetJob(id)->retry_count(), 1) << id;
  });
}

TEST_F(BulkOperationsTest, ARequestIdReturnsTheFirstOperation) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    co_await SubmitCancelled(e, 3, "a");
    StartBulkOperationRequest r = Request(cohort::v1::BULK_ACTION_RETRY, "team=a");
    r.set_request_id("retry-a-1");
    auto first = co_await e.bulk_operations().Start(r, "");
    auto second = co_await e.bulk_operations().Start(r, "");
    EXPECT_TRUE(first.ok() && second.ok());
    EXPECT_EQ(first->id(), second->id());
    EXPECT_EQ(e.bulk_operations().List().operations_size(), 1);
  });
}

TEST_F(BulkOperationsTest, OnlyTheLatestRecordsAreKeptNewestFirst) {
  options_.bulk.kept = 2;
  WithEngine([](BrokerEngine& e) -> Task<void> {
    co_await SubmitCancelled(e, 1, "a");
    std::vector<std::string> started;
    for (int i = 0; i < 3; ++i) {
      auto op = co_await e.bulk_operations().Start(Request(cohort::v1::BULK_ACTION_CANCEL, "team=a"), "");
      started.push_back(op->id());
      co_await AwaitDone(e, op->id());
    }
    cohort::v1::ListBulkOperationsResponse list = e.bulk_operations().List();
    EXPECT_EQ(list.operations_size(), 2);
    EXPECT_EQ(list.operations(0).id(), started[2]);
    EXPECT_EQ(list.operations(1).id(), started[1]);
    EXPECT_EQ(e.bulk_operations().Get(started[0]).status().code(), absl::StatusCode::kNotFound);
  });
}

TEST_F(BulkOperationsTest, BadRequestsAreInvalidArgumentAndStartNothing) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    BulkOperations& bulk = e.bulk_operations();
    EXPECT_EQ((co_await bulk.Start(Request(cohort::v1::BULK_ACTION_UNSPECIFIED, "team=a"), "")).status().code(),
              absl::StatusCode::kInvalidArgument);
    StartBulkOperationRequest unknown = Request(cohort::v1::BULK_ACTION_RETRY, "team=a");
    unknown.set_action(static_cast<cohort::v1::BulkAction>(77));
    EXPECT_EQ((co_await bulk.Start(unknown, "")).status().code(), absl::StatusCode::kInvalidArgument);
    auto everything = co_await bulk.Start(Request(cohort::v1::BULK_ACTION_DELETE, ""), "");
    EXPECT_EQ(everything.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(everything.status().message().find("match_all"), absl::string_view::npos) << everything.status();
    StartBulkOperationRequest long_id = Request(cohort::v1::BULK_ACTION_RETRY, "team=a");
    long_id.set_request_id(std::string(129, 'r'));
    EXPECT_EQ((co_await bulk.Start(long_id, "")).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ((co_await bulk.Start(Request(cohort::v1::BULK_ACTION_RETRY, "team in (a"), "")).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(bulk.List().operations().empty());
    EXPECT_EQ(bulk.Get("bulk-nope").status().code(), absl::StatusCode::kNotFound);
  });
}

TEST_F(BulkOperationsTest, AnEmptyFilterWithMatchAllActsOnEveryJob) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    co_await SubmitCancelled(e, 3, "a");
    co_await SubmitCancelled(e, 2, "b");
    StartBulkOperationRequest r = Request(cohort::v1::BULK_ACTION_DELETE, "");
    r.set_match_all(true);
    auto started = co_await e.bulk_operations().Start(r, "");
    EXPECT_TRUE(started.ok()) << started.status();
    EXPECT_EQ((co_await AwaitDone(e, started->id())).changed(), 5);
  });
}

TEST_F(BulkOperationsTest, OnlyADryRunIsAdmittedWhileWritesAreRefused) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    co_await SubmitCancelled(e, 2, "a");
    e.SetWriteAdmission([] { return absl::ResourceExhaustedError("disk low"); });
    StartBulkOperationRequest r = Request(cohort::v1::BULK_ACTION_RETRY, "team=a");
    EXPECT_EQ((co_await e.bulk_operations().Start(r, "")).status().code(), absl::StatusCode::kResourceExhausted);
    r.set_dry_run(true);
    EXPECT_EQ((co_await e.bulk_operations().Start(r, ""))->matched(), 2);
  });
}

}  // namespace
}  // namespace cohort::broker
