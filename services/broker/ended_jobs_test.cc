// Finished jobs out of the engine's memory: once a job's end is durable only a summary
// stays (EndedJobs), and every answer about it (GetJob, ListJobs, the waits, retry,
// delete, bulk operations, expiry, restart) reads its record from the store and is the
// same as when the whole job was in memory. The record cache is off here, so that
// every read goes to the (in-memory) store.
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/common/proto_time.h"
#include "libs/runtime/test_util.h"
#include "absl/container/btree_set.h"
#include "services/broker/broker_engine.h"
#include "services/broker/compact_id.h"
#include "services/broker/ended_jobs.h"
#include "services/broker/engine_test_util.h"
#include "services/broker/job_waits.h"

namespace cohort::broker {
namespace {

using namespace std::chrono_literals;
using cohort::v1::Job;
using cohort::v1::JobSpec;
using runtime::Task;
using testing::Batch;
using testing::Complete;
using testing::Credit;
using testing::Fail;
using testing::FakeChannel;
using testing::Hello;
using testing::Spec;

JobSpec Labelled(JobSpec spec, std::string key, std::string value) {
  (*spec.mutable_labels())[std::move(key)] = std::move(value);
  return spec;
}

// Records the job a watcher was told ended.
struct EndWatcher final : JobWatcher {
  void OnJobEnded(const Job& job) override { ended = job; }
  std::optional<Job> ended;
};

class EndedJobsTest : public testing::EngineTest {
 protected:
  EndedJobsTest() { options_.ended_cache.jobs = 0; }

  // Runs every queued job of queue "q" on one executor: the first succeeds with
  // "result-<id>", the others fail with code "boom". Returns once all are durable.
  static Task<void> RunAll(BrokerEngine& e, const std::vector<std::string>& ids) {
    FakeChannel exec;
    const std::uint64_t session = *e.Attach(Hello("x", 100).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(static_cast<int>(ids.size()))).ok());
    co_await Settle();
    for (const auto& m : exec.Assigns()) {
      const std::string& id = m.assign().job().id();
      EXPECT_TRUE(e.OnExecutorMessage(session, id == ids[0] ? Complete(id, 1, "result-" + id)
                                                            : Fail(id, 1, "went wrong", "boom"))
                      .ok());
    }
    co_await Settle();
    e.Detach(session, /*graceful=*/true);
    co_await Settle();
  }

  // Waits (yielding) until bulk operation `id` is DONE; its record.
  static Task<cohort::v1::BulkOperation> AwaitDone(BrokerEngine& e, const std::string& id) {
    for (int i = 0; i < 1000; ++i) {
      absl::StatusOr<cohort::v1::BulkOperation> op = e.bulk_operations().Get(id);
      if (!op.ok() || op->state() == cohort::v1::BulkOperation::STATE_DONE) co_return op.ok() ? *op : cohort::v1::BulkOperation();
      co_await runtime::Yield();
    }
    ADD_FAILURE() << "bulk operation " << id << " is not done";
    co_return cohort::v1::BulkOperation();
  }
};

TEST_F(EndedJobsTest, AFinishedJobLeavesMemoryAndReadsBackAsItEnded) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q", 0, "payload-0"), Spec("q")), false);
    EndWatcher watcher;
    EXPECT_FALSE((co_await e.WatchJob(ids[0], &watcher))->has_value());
    co_await RunAll(e, ids);
    EXPECT_TRUE(watcher.ended.has_value());
    if (!watcher.ended.has_value()) co_return;
    EXPECT_EQ(e.summarized_jobs(), 2u);
    // Not in memory any more: the synchronous look-up says so, ReadJob reads the store.
    EXPECT_EQ(e.GetJob(ids[0]).status().code(), absl::StatusCode::kUnavailable);
    absl::StatusOr<Job> read = co_await e.ReadJob(ids[0]);
    EXPECT_TRUE(read.ok()) << read.status();
    if (!read.ok()) co_return;
    EXPECT_EQ(read->SerializeAsString(), watcher.ended->SerializeAsString());
    EXPECT_EQ(read->result(), "result-" + ids[0]);
    EXPECT_EQ(read->spec().payload(), "payload-0");
    absl::StatusOr<Job> failed = co_await e.ReadJob(ids[1]);
    EXPECT_EQ(failed->state(), cohort::v1::JOB_STATE_FAILED);
    EXPECT_EQ(failed->error().code(), "boom");
    EXPECT_EQ(failed->attempts_size(), 1);
    EXPECT_EQ((co_await e.ReadJob("job-nope")).status().code(), absl::StatusCode::kNotFound);
    // CancelJob answers from the summary.
    absl::StatusOr<cohort::v1::CancelJobResponse> cancel = co_await e.CancelJob(ids[1]);
    EXPECT_TRUE(cancel->already_ended());
    EXPECT_EQ(cancel->state(), cohort::v1::JOB_STATE_FAILED);
  });
}

TEST_F(EndedJobsTest, ListingFiltersFinishedJobsByTheirSummaryAndReturnsTheirRecords) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    // Job 2's labels are too large for the summary: a label selector reads its record.
    const std::string large(200, 'v');
    std::vector<std::string> ids = *co_await e.Submit(
        Batch(Labelled(Spec("q"), "team", "a"), Labelled(Spec("q"), "team", "b"),
              Labelled(Labelled(Spec("q"), "team", "a"), "big", large), Spec("q")),
        false);
    co_await RunAll(e, ids);
    std::vector<std::string> live = *co_await e.Submit(Batch(Labelled(Spec("q"), "team", "a")), false);
    EXPECT_EQ(e.summarized_jobs(), 4u);
    if (e.summarized_jobs() != 4u) co_return;

    cohort::v1::ListJobsRequest by_label;
    by_label.mutable_filter()->set_label_selector("team=a");
    absl::StatusOr<cohort::v1::ListJobsResponse> page = co_await e.ListJobs(by_label);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) co_return;
    EXPECT_EQ(page->jobs_size(), 3);
    if (page->jobs_size() != 3) co_return;
    EXPECT_EQ(page->jobs(0).id(), ids[0]);
    EXPECT_EQ(page->jobs(1).id(), ids[2]);
    EXPECT_EQ(page->jobs(2).id(), live[0]);
    EXPECT_EQ(page->jobs(0).state(), cohort::v1::JOB_STATE_SUCCEEDED);
    EXPECT_FALSE(page->jobs(0).has_result());  // listings leave payload and result out
    EXPECT_EQ(page->jobs(1).spec().labels().at("big"), large);
    EXPECT_EQ(page->jobs(1).error().message(), "went wrong");

    cohort::v1::ListJobsRequest failed;
    failed.mutable_filter()->set_error_code("boom");
    failed.set_page_size(1);
    std::vector<std::string> seen;
    for (int pages = 0; pages < 10; ++pages) {
      absl::StatusOr<cohort::v1::ListJobsResponse> r = co_await e.ListJobs(failed);
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) co_return;
      for (const Job& job : r->jobs()) seen.push_back(job.id());
      if (r->next_page_token().empty()) break;
      failed.set_page_token(r->next_page_token());
    }
    EXPECT_EQ(seen, (std::vector<std::string>{ids[1], ids[2], ids[3]}));

    cohort::v1::ListJobsRequest newest;
    newest.set_newest_first(true);
    newest.set_page_size(2);
    absl::StatusOr<cohort::v1::ListJobsResponse> top = co_await e.ListJobs(newest);
    EXPECT_EQ(top->jobs_size(), 2);
    if (top->jobs_size() != 2) co_return;
    EXPECT_EQ(top->jobs(0).id(), live[0]);
    EXPECT_EQ(top->jobs(1).id(), ids[3]);
    EXPECT_FALSE(top->next_page_token().empty());
  });
}

TEST_F(EndedJobsTest, WaitsReturnTheOutcomesOfFinishedJobsFromTheStore) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q"), Spec("q")), false);
    co_await RunAll(e, ids);
    EXPECT_EQ(e.summarized_jobs(), 2u);
    if (e.summarized_jobs() != 2u) co_return;
    JobWaits waits(e, metrics_);
    std::vector<std::string> both = ids;
    absl::StatusOr<std::vector<cohort::v1::JobOutcome>> gathered = co_await waits.Gather(both, true, std::nullopt);
    EXPECT_TRUE(gathered.ok()) << gathered.status();
    if (!gathered.ok()) co_return;
    EXPECT_EQ((*gathered)[0].result(), "result-" + ids[0]);
    EXPECT_EQ((*gathered)[1].error().code(), "boom");
    JobWaits::WaitForRequest request;
    request.job_id = ids[0];
    absl::StatusOr<std::string> result = co_await waits.WaitFor(request);
    EXPECT_EQ(*result, "result-" + ids[0]);
    request.job_id = ids[1];
    EXPECT_EQ((co_await waits.WaitFor(request)).status().code(), absl::StatusCode::kAborted);
  });
}

TEST_F(EndedJobsTest, RetryAndDeleteReadTheRecordBackAndChangeIt) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q"), Spec("q"), Spec("q")), false);
    co_await RunAll(e, ids);
    EXPECT_EQ(e.summarized_jobs(), 3u);
    if (e.summarized_jobs() != 3u) co_return;
    absl::StatusOr<cohort::v1::RetryJobResponse> refused = co_await e.RetryJob(ids[0], 0);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);  // SUCCEEDED
    absl::StatusOr<cohort::v1::RetryJobResponse> retried = co_await e.RetryJob(ids[1], 0);
    EXPECT_TRUE(retried.ok()) << retried.status();
    if (!retried.ok()) co_return;
    EXPECT_TRUE(retried->retried());
    EXPECT_EQ(retried->job().state(), cohort::v1::JOB_STATE_QUEUED);
    EXPECT_EQ(retried->job().retry_count(), 1);
    EXPECT_EQ(retried->job().attempts_size(), 1);  // the history comes back with it
    EXPECT_EQ(e.GetJob(ids[1])->state(), cohort::v1::JOB_STATE_QUEUED);

    EndWatcher before;
    std::int64_t from = e.committed_sequence();
    absl::StatusOr<cohort::v1::DeleteJobResponse> deleted = co_await e.DeleteJob(ids[2]);
    EXPECT_TRUE(deleted.ok()) << deleted.status();
    if (!deleted.ok()) co_return;
    EXPECT_EQ(deleted->state(), cohort::v1::JOB_STATE_FAILED);
    EXPECT_EQ((co_await e.ReadJob(ids[2])).status().code(), absl::StatusCode::kNotFound);
    // The DELETED event carries the whole job, as read back.
    EventLog::Cursor cursor(e.events(), from);
    absl::StatusOr<cohort::v1::WatchResponse> events = co_await cursor.Next();
    EXPECT_TRUE(events.ok()) << events.status();
    if (!events.ok()) co_return;
    EXPECT_EQ(events->events_size(), 1);
    if (events->events_size() != 1) co_return;
    EXPECT_EQ(events->events(0).reason(), cohort::v1::TRANSITION_REASON_DELETED);
    EXPECT_EQ(events->events(0).job().error().message(), "went wrong");
    EXPECT_EQ(events->events(0).job().attempts_size(), 1);
    EXPECT_EQ(e.summarized_jobs(), 1u);  // ids[0]: still summarized after the refused retry
  });
}

TEST_F(EndedJobsTest, BulkOperationsMatchSummariesAndChangeRecordsReadBack) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(
        Batch(Labelled(Spec("q"), "team", "a"), Labelled(Spec("q"), "team", "a"), Labelled(Spec("q"), "team", "b"),
              Labelled(Spec("q"), "team", "a")),
        false);
    co_await RunAll(e, ids);
    cohort::v1::StartBulkOperationRequest retry;
    retry.set_action(cohort::v1::BULK_ACTION_RETRY);
    retry.mutable_filter()->set_label_selector("team=a");
    retry.set_dry_run(true);
    EXPECT_EQ((co_await e.bulk_operations().Start(retry, ""))->matched(), 3);
    retry.set_dry_run(false);
    absl::StatusOr<cohort::v1::BulkOperation> retrying = co_await e.bulk_operations().Start(retry, "");
    EXPECT_TRUE(retrying.ok()) << retrying.status();
    if (!retrying.ok()) co_return;
    const cohort::v1::BulkOperation retried = co_await AwaitDone(e, retrying->id());
    EXPECT_EQ(retried.matched(), 3);
    EXPECT_EQ(retried.changed(), 2);
    EXPECT_EQ(retried.skipped(), 1);
    EXPECT_EQ(e.GetJob(ids[1])->state(), cohort::v1::JOB_STATE_QUEUED);
    EXPECT_EQ(e.GetJob(ids[3])->state(), cohort::v1::JOB_STATE_QUEUED);
    EXPECT_EQ((co_await e.ReadJob(ids[0]))->state(), cohort::v1::JOB_STATE_SUCCEEDED);  // skipped
    EXPECT_EQ((co_await e.ReadJob(ids[2]))->state(), cohort::v1::JOB_STATE_FAILED);     // not matched

    cohort::v1::StartBulkOperationRequest remove;
    remove.set_action(cohort::v1::BULK_ACTION_DELETE);
    remove.mutable_filter()->add_states(cohort::v1::JOB_STATE_FAILED);
    absl::StatusOr<cohort::v1::BulkOperation> removing = co_await e.bulk_operations().Start(remove, "");
    EXPECT_TRUE(removing.ok()) << removing.status();
    if (!removing.ok()) co_return;
    EXPECT_EQ((co_await AwaitDone(e, removing->id())).changed(), 1);
    EXPECT_FALSE(e.HasJob(ids[2]));
    EXPECT_TRUE(e.HasJob(ids[0]));
  });
}

TEST_F(EndedJobsTest, ExpiryAndRestartWorkOnSummaries) {
  options_.result_ttl = std::chrono::hours(1);
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q"), Spec("q")), false);
    co_await RunAll(e, ids);
    EXPECT_EQ(e.summarized_jobs(), 2u);
    co_await runtime::Sleep(std::chrono::minutes(61));
    co_await Settle();
    EXPECT_FALSE(e.HasJob(ids[0]));
    EXPECT_EQ((co_await e.ReadJob(ids[1])).status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(e.summarized_jobs(), 0u);
  });
  options_.result_ttl = std::chrono::hours(24);
  std::string done;
  WithEngine([&done](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q"), Spec("q")), false);
    co_await RunAll(e, ids);
    done = ids[0];
  });
  // A restart recovers finished jobs as summaries, and reads them back on demand.
  WithEngine([&done](BrokerEngine& e) -> Task<void> {
    EXPECT_GE(e.summarized_jobs(), 2u);
    EXPECT_EQ(e.GetJob(done).status().code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ((co_await e.ReadJob(done))->result(), "result-" + done);
  });
}

TEST(EndedJobs, KeepsSummariesAndABoundedCacheOfRecords) {
  EndedJobs ended(EndedJobs::CacheLimits{.jobs = 2, .bytes = 1 << 20});
  for (int i = 0; i < 3; ++i) {
    Job job;
    job.set_id(absl::StrCat("job-", i));
    job.set_state(cohort::v1::JOB_STATE_SUCCEEDED);
    job.set_sequence(10 + i);
    job.mutable_spec()->set_queue("q");
    job.mutable_spec()->set_kind("k");
    job.mutable_spec()->set_idempotency_key(i == 0 ? "key" : "");
    job.set_result("r");
    ended.Insert(job, /*cache=*/true);
  }
  EXPECT_EQ(ended.size(), 3u);
  EXPECT_EQ(ended.Cached("job-0"), nullptr);  // the least recently used went
  ASSERT_NE(ended.Cached("job-2"), nullptr);
  EXPECT_EQ(ended.Cached("job-2")->result(), "r");
  const Job probe = ended.Find("job-0")->Probe("job-0");
  EXPECT_EQ(probe.spec().queue(), "q");
  EXPECT_EQ(probe.spec().idempotency_key(), "key");
  EXPECT_EQ(probe.sequence(), 10);
  // A record of another version than the summary's is not cached.
  Job stale;
  stale.set_id("job-0");
  stale.set_sequence(9);
  ended.Cache(stale);
  EXPECT_EQ(ended.Cached("job-0"), nullptr);
  ended.Erase("job-2");
  EXPECT_EQ(ended.Find("job-2"), nullptr);
  EXPECT_EQ(ended.Cached("job-2"), nullptr);
  EXPECT_EQ(*ended.After("job-0"), "job-1");
  EXPECT_EQ(*ended.Last(), "job-1");
}

// Summaries share their labels (interned, counted): each keeps its own labels whatever
// happens to the others, and large labels are not kept (a selector reads the record).
TEST(EndedJobs, SummariesShareLabelsAndKeepTheirOwn) {
  EndedJobs ended(EndedJobs::CacheLimits{.jobs = 0, .bytes = 0});
  auto insert = [&](const std::string& id, std::map<std::string, std::string> labels) {
    Job job;
    job.set_id(id);
    job.set_state(cohort::v1::JOB_STATE_SUCCEEDED);
    job.mutable_spec()->set_queue("q");
    job.mutable_spec()->set_kind("k");
    for (const auto& [k, v] : labels) (*job.mutable_spec()->mutable_labels())[k] = v;
    ended.Insert(job, /*cache=*/false);
  };
  insert("a", {{"team", "x"}, {"env", "prod"}});
  insert("b", {{"team", "x"}});
  insert("c", {{"team", std::string(200, 'y')}});
  ended.Erase("a");
  insert("d", {{"env", "prod"}});
  insert("b", {{"team", "z"}});  // a new version of b replaces its summary
  const Job b = ended.Find("b")->Probe("b");
  EXPECT_EQ(b.spec().labels().size(), 1u);
  EXPECT_EQ(b.spec().labels().at("team"), "z");
  const Job d = ended.Find("d")->Probe("d");
  EXPECT_EQ(d.spec().labels().size(), 1u);
  EXPECT_EQ(d.spec().labels().at("env"), "prod");
  EXPECT_FALSE(ended.Find("c")->labels_known());
  EXPECT_TRUE(ended.Find("c")->Probe("c").spec().labels().empty());
  EXPECT_TRUE(ended.Find("b")->labels_known());
}

// The indexes hold ids as CompactId: the broker's 24-character ids inline, any other
// string (longer, or with a NUL) on the heap, each ordering and comparing as its string.
TEST(CompactIdTest, HoldsAnyIdAndOrdersAsItsString) {
  const std::string broker_id = "0190a1b2c3d4000000000001";  // kJobIdLength: inline
  const std::string longer(300, 'x');
  const std::string with_nul("a\0b", 3);
  static_assert(sizeof(CompactId) == 24);
  for (const std::string& id : {broker_id, longer, with_nul, std::string("j"), std::string()}) {
    CompactId c(id);
    EXPECT_EQ(c.view(), id);
    EXPECT_EQ(c.empty(), id.empty());
    CompactId copy = c;
    EXPECT_EQ(copy, c);
    CompactId moved = std::move(copy);
    EXPECT_EQ(moved.view(), id);
    EXPECT_TRUE(copy.empty());  // NOLINT: a moved-from id is empty
    copy = moved;
    EXPECT_EQ(copy.str(), id);
  }
  absl::btree_set<CompactId, CompactIdLess> set;
  for (const std::string& id : {longer, broker_id, std::string("a"), with_nul, std::string("zz")}) set.emplace(id);
  std::vector<std::string> in_order;
  for (const CompactId& c : set) in_order.push_back(c.str());
  EXPECT_EQ(in_order, (std::vector<std::string>{broker_id, "a", with_nul, longer, "zz"}))
      << "as std::string orders them";
  EXPECT_TRUE(set.contains(std::string("zz")));
  EXPECT_EQ(set.upper_bound(std::string("a"))->view(), with_nul);
  EXPECT_EQ(set.erase(longer), 1u);
  EXPECT_LT(CompactId("ab"), CompactId("abc"));
  EXPECT_LT(CompactId("abc"), std::string_view("abd"));
}

}  // namespace
}  // namespace cohort::broker
