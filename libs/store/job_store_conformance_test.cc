// One suite, run against every JobStore (Temporal's shared persistence tests): a fake
// that passes it behaves like the real store for the services built on it.

#include <stdlib.h>

#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/runtime/runtime.h"
#include "libs/runtime/test_util.h"
#include "libs/store/job_store.h"
#include "libs/store/mem_job_store.h"
#include "libs/store/recover_all.h"
#include "libs/store/rocks_job_store.h"

namespace cohort::store {
namespace {

using cohort::v1::Job;
using cohort::v1::JobEvent;
using cohort::v1::JobState;
using runtime::Task;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

enum class Kind { kRocks, kMem };

constexpr BatchLimits kLimits{.max_bytes = 1 << 20, .max_records = 1000};
constexpr std::size_t kAnyBytes = std::numeric_limits<std::size_t>::max();

Job MakeJob(std::string id, std::string queue, int priority, JobState state, std::int64_t sequence) {
  Job job;
  job.set_id(std::move(id));
  job.mutable_spec()->set_queue(std::move(queue));
  job.mutable_spec()->set_kind("builtin.echo");
  job.mutable_spec()->set_priority(priority);
  job.set_state(state);
  job.set_sequence(sequence);
  return job;
}

Job Queued(std::string id, std::string queue = "default", int priority = 0, std::int64_t sequence = 1) {
  return MakeJob(std::move(id), std::move(queue), priority, cohort::v1::JOB_STATE_QUEUED, sequence);
}

Job WithState(Job job, JobState state, std::int64_t sequence) {
  job.set_state(state);
  job.set_sequence(sequence);
  return job;
}

Job PendingUntil(std::string id, std::int64_t unix_seconds) {
  Job job = MakeJob(std::move(id), "default", 0, cohort::v1::JOB_STATE_PENDING, 1);
  job.mutable_not_before()->set_seconds(unix_seconds);
  return job;
}

JobEvent MakeEvent(std::int64_t sequence, std::string job_id) {
  JobEvent event;
  event.set_sequence(sequence);
  event.set_job_id(std::move(job_id));
  event.set_to_state(cohort::v1::JOB_STATE_QUEUED);
  return event;
}

std::vector<std::string> ReadyIds(const RecoveredState& state) {
  std::vector<std::string> ids;
  for (const ReadyEntry& e : state.ready) ids.push_back(e.job_id);
  return ids;
}

std::vector<std::string> PendingIds(const RecoveredState& state) {
  std::vector<std::string> ids;
  for (const PendingEntry& e : state.pending) ids.push_back(e.job_id);
  return ids;
}

std::vector<std::int64_t> Sequences(const std::vector<JobEvent>& events) {
  std::vector<std::int64_t> out;
  for (const JobEvent& e : events) out.push_back(e.sequence());
  return out;
}

class JobStoreConformanceTest : public runtime::testing::ManualLoopTest,
                                public ::testing::WithParamInterface<Kind> {
 protected:
  void SetUp() override {
    std::string tmpl = absl::StrCat(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp", "/store-XXXXXX");
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Open();
  }

  void Open() {
    if (GetParam() == Kind::kMem) {
      store_ = std::make_unique<MemJobStore>(kLimits);
      return;
    }
    absl::StatusOr<std::unique_ptr<RocksJobStore>> store =
        RocksJobStore::Open(RocksJobStoreOptions{.path = dir_, .limits = kLimits});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  absl::Status Commit(JobBatch batch) { return Run(store_->Commit(std::move(batch))); }

  // Commits a batch that must succeed.
  void MustCommit(JobBatch batch) {
    absl::Status s = Commit(std::move(batch));
    ASSERT_TRUE(s.ok()) << s;
  }

  void Put(const Job& job, const Job* previous) {
    JobBatch batch;
    batch.PutJob(job, previous);
    MustCommit(std::move(batch));
  }

  RecoveredStore Recover(RecoverOptions options = {}) {
    absl::StatusOr<RecoveredStore> state = Run(RecoverAll(*store_, options));
    EXPECT_TRUE(state.ok()) << state.status();
    return state.ok() ? *std::move(state) : RecoveredStore{};
  }

  // Reads a recovery's pages until the empty one: each page's ids, in order.
  std::vector<std::vector<std::string>> PageIds(JobRecovery& recovery) {
    std::vector<std::vector<std::string>> pages;
    for (;;) {
      absl::StatusOr<std::vector<Job>> page = Run(recovery.NextJobs());
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok() || page->empty()) return pages;
      pages.emplace_back();
      for (const Job& job : *page) pages.back().push_back(job.id());
    }
  }

  std::string dir_;
  std::unique_ptr<JobStore> store_;
};

TEST_P(JobStoreConformanceTest, GetJobReturnsTheJobLastPut) {
  Job job = Queued("j1");
  job.mutable_spec()->set_payload("hello");
  Put(job, nullptr);
  Job running = WithState(job, cohort::v1::JOB_STATE_RUNNING, 2);
  Put(running, &job);

  absl::StatusOr<Job> got = Run(store_->GetJob("j1"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->SerializeAsString(), running.SerializeAsString());
}

TEST_P(JobStoreConformanceTest, GetJobOfAnUnknownIdIsNotFound) {
  absl::StatusOr<Job> got = Run(store_->GetJob("nope"));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound) << got.status();
}

TEST_P(JobStoreConformanceTest, AQueuedJobIsInTheReadyIndexUntilItRuns) {
  Job queued = Queued("j1", "q", 5, 7);
  Put(queued, nullptr);
  EXPECT_THAT(Recover().ready, ElementsAre(ReadyEntry{"q", 5, 7, "j1"}));

  Job running = WithState(queued, cohort::v1::JOB_STATE_RUNNING, 8);
  Put(running, &queued);
  RecoveredStore state = Recover();
  EXPECT_THAT(state.ready, IsEmpty());
  EXPECT_THAT(state.pending, IsEmpty());
  ASSERT_EQ(state.jobs.size(), 1u);
  EXPECT_EQ(state.jobs[0].state(), cohort::v1::JOB_STATE_RUNNING);
}

TEST_P(JobStoreConformanceTest, APendingJobWithNotBeforeIsInThePendingIndexUntilReleased) {
  Job pending = PendingUntil("j1", 1'700'000'000);
  Put(pending, nullptr);
  RecoveredStore state = Recover();
  EXPECT_THAT(state.pending, ElementsAre(PendingEntry{absl::FromUnixSeconds(1'700'000'000), "j1"}));
  EXPECT_THAT(state.ready, IsEmpty());

  Job queued = WithState(pending, cohort::v1::JOB_STATE_QUEUED, 2);
  Put(queued, &pending);
  state = Recover();
  EXPECT_THAT(state.pending, IsEmpty());
  EXPECT_THAT(ReadyIds(state), ElementsAre("j1"));
}

TEST_P(JobStoreConformanceTest, APendingJobWithoutNotBeforeIsInNoIndex) {
  Put(MakeJob("j1", "default", 0, cohort::v1::JOB_STATE_PENDING, 1), nullptr);
  RecoveredStore state = Recover();
  EXPECT_THAT(state.pending, IsEmpty());
  EXPECT_THAT(state.ready, IsEmpty());
  EXPECT_EQ(state.jobs.size(), 1u);
}

TEST_P(JobStoreConformanceTest, ARetryBackoffMovesARunningJobToThePendingIndex) {
  Job running = MakeJob("j1", "default", 0, cohort::v1::JOB_STATE_RUNNING, 3);
  Put(running, nullptr);
  Job retry = WithState(running, cohort::v1::JOB_STATE_PENDING, 4);
  retry.mutable_not_before()->set_seconds(100);
  Put(retry, &running);
  Job later = retry;  // the backoff grows: the entry moves
  later.mutable_not_before()->set_seconds(200);
  Put(later, &retry);
  EXPECT_THAT(Recover().pending, ElementsAre(PendingEntry{absl::FromUnixSeconds(200), "j1"}));
}

TEST_P(JobStoreConformanceTest, ATerminalStateRemovesEveryIndexEntry) {
  Job queued = Queued("q1");
  Job pending = PendingUntil("p1", 100);
  JobBatch submit;
  submit.PutJob(queued, nullptr);
  submit.PutJob(pending, nullptr);
  MustCommit(std::move(submit));

  JobBatch cancel;
  cancel.PutJob(WithState(queued, cohort::v1::JOB_STATE_CANCELLED, 3), &queued);
  cancel.PutJob(WithState(pending, cohort::v1::JOB_STATE_CANCELLED, 4), &pending);
  MustCommit(std::move(cancel));

  RecoveredStore state = Recover();
  EXPECT_THAT(state.ready, IsEmpty());
  EXPECT_THAT(state.pending, IsEmpty());
  EXPECT_EQ(state.jobs.size(), 2u);
}

TEST_P(JobStoreConformanceTest, TheReadyIndexIsInDispatchOrderPerQueue) {
  JobBatch batch;
  batch.PutJob(Queued("b-low", "b", -1, 1), nullptr);
  batch.PutJob(Queued("a-0-second", "a", 0, 5), nullptr);
  batch.PutJob(Queued("a-high", "a", 10, 6), nullptr);
  batch.PutJob(Queued("a-0-first", "a", 0, 2), nullptr);
  batch.PutJob(Queued("a-negative", "a", -3, 3), nullptr);
  batch.PutJob(Queued("b-max", "b", 2147483647, 9), nullptr);
  batch.PutJob(Queued("ab-min", "ab", -2147483648, 4), nullptr);
  MustCommit(std::move(batch));

  EXPECT_THAT(ReadyIds(Recover()),
              ElementsAre("a-high", "a-0-first", "a-0-second", "a-negative", "ab-min", "b-max", "b-low"));
}

TEST_P(JobStoreConformanceTest, ThePendingIndexIsInNotBeforeOrder) {
  JobBatch batch;
  batch.PutJob(PendingUntil("late", 300), nullptr);
  batch.PutJob(PendingUntil("early", 100), nullptr);
  batch.PutJob(PendingUntil("before-epoch", -50), nullptr);
  MustCommit(std::move(batch));
  EXPECT_THAT(PendingIds(Recover()), ElementsAre("before-epoch", "early", "late"));
}

TEST_P(JobStoreConformanceTest, ReadEventsReturnsAtMostCountEventsFromTheSequence) {
  JobBatch batch;
  for (int seq = 1; seq <= 10; ++seq) batch.AppendEvent(MakeEvent(seq, absl::StrCat("j", seq)));
  MustCommit(std::move(batch));

  absl::StatusOr<std::vector<JobEvent>> events = Run(store_->ReadEvents(4, 3, kAnyBytes));
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_THAT(Sequences(*events), ElementsAre(4, 5, 6));
  EXPECT_EQ((*events)[0].job_id(), "j4");

  events = Run(store_->ReadEvents(9, 100, kAnyBytes));
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_THAT(Sequences(*events), ElementsAre(9, 10));

  events = Run(store_->ReadEvents(11, 100, kAnyBytes));
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_THAT(*events, IsEmpty());
  EXPECT_EQ(Recover().last_event_sequence, 10);
}

TEST_P(JobStoreConformanceTest, ReadEventsStopsAtItsByteBudgetButAlwaysReturnsTheFirstEvent) {
  JobBatch batch;
  for (int seq = 1; seq <= 10; ++seq) {
    JobEvent event = MakeEvent(seq, "j");
    event.mutable_job()->mutable_spec()->set_payload(std::string(10'000, 'p'));  // ~10 KB stored
    batch.AppendEvent(event);
  }
  MustCommit(std::move(batch));

  absl::StatusOr<std::vector<JobEvent>> events = Run(store_->ReadEvents(1, 100, 25'000));
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_THAT(Sequences(*events), ElementsAre(1, 2));
  events = Run(store_->ReadEvents(3, 100, 1));  // smaller than any event: still one
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_THAT(Sequences(*events), ElementsAre(3));
}

TEST_P(JobStoreConformanceTest, TrimEventsBeforeDeletesOlderEventsButKeepsTheNewest) {
  JobBatch batch;
  for (int seq = 1; seq <= 5; ++seq) batch.AppendEvent(MakeEvent(seq, "j"));
  MustCommit(std::move(batch));

  JobBatch trim;
  trim.TrimEventsBefore(3);
  MustCommit(std::move(trim));
  absl::StatusOr<std::vector<JobEvent>> events = Run(store_->ReadEvents(0, 100, kAnyBytes));
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_THAT(Sequences(*events), ElementsAre(3, 4, 5));

  JobBatch trim_all;
  trim_all.TrimEventsBefore(1000);
  MustCommit(std::move(trim_all));
  events = Run(store_->ReadEvents(0, 100, kAnyBytes));
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_THAT(Sequences(*events), ElementsAre(5));
  EXPECT_EQ(Recover().last_event_sequence, 5);
}

TEST_P(JobStoreConformanceTest, DeleteJobRemovesTheJobAndItsIndexEntries) {
  Job queued = Queued("q1");
  Job pending = PendingUntil("p1", 100);
  Job kept = Queued("kept", "default", 0, 2);
  JobBatch submit;
  submit.PutJob(queued, nullptr);
  submit.PutJob(pending, nullptr);
  submit.PutJob(kept, nullptr);
  MustCommit(std::move(submit));

  JobBatch retention;
  retention.DeleteJob(queued);
  retention.DeleteJob(pending);
  MustCommit(std::move(retention));

  RecoveredStore state = Recover();
  ASSERT_EQ(state.jobs.size(), 1u);
  EXPECT_EQ(state.jobs[0].id(), "kept");
  EXPECT_THAT(ReadyIds(state), ElementsAre("kept"));
  EXPECT_THAT(state.pending, IsEmpty());
  EXPECT_EQ(Run(store_->GetJob("q1")).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(JobStoreConformanceTest, SeveralVersionsOfAJobInOneBatchLeaveTheLastOnesEntries) {
  Job queued = Queued("j1", "default", 0, 1);
  Job running = WithState(queued, cohort::v1::JOB_STATE_RUNNING, 2);
  Job requeued = WithState(running, cohort::v1::JOB_STATE_QUEUED, 3);
  JobBatch batch;
  batch.PutJob(queued, nullptr);
  batch.PutJob(running, &queued);
  batch.PutJob(requeued, &running);
  MustCommit(std::move(batch));
  EXPECT_THAT(Recover().ready, ElementsAre(ReadyEntry{"default", 0, 3, "j1"}));
}

TEST_P(JobStoreConformanceTest, RecoverReturnsMetaValuesAndTheLastEventSequence) {
  JobBatch batch;
  batch.PutMeta("scheduler.cursor", "42");
  batch.PutMeta("format", "1");
  batch.AppendEvent(MakeEvent(7, "j"));
  MustCommit(std::move(batch));
  JobBatch update;
  update.PutMeta("scheduler.cursor", "43");
  MustCommit(std::move(update));

  RecoveredStore state = Recover();
  EXPECT_EQ(state.meta, (std::map<std::string, std::string>{{"format", "1"}, {"scheduler.cursor", "43"}}));
  EXPECT_EQ(state.last_event_sequence, 7);
}

cohort::v1::BulkOperation MakeBulkOperation(std::string id, std::string cursor, std::int64_t changed) {
  cohort::v1::BulkOperation op;
  op.set_id(std::move(id));
  op.set_action(cohort::v1::BULK_ACTION_RETRY);
  op.set_state(cohort::v1::BulkOperation::STATE_RUNNING);
  op.set_cursor_job_id(std::move(cursor));
  op.set_changed(changed);
  return op;
}

std::vector<std::string> BulkIds(const RecoveredState& state) {
  std::vector<std::string> ids;
  for (const cohort::v1::BulkOperation& op : state.bulk_operations) ids.push_back(op.id());
  return ids;
}

TEST_P(JobStoreConformanceTest, RecoverReturnsTheLatestRecordOfEachBulkOperationInIdOrder) {
  JobBatch first;
  first.PutBulkOperation(MakeBulkOperation("bulk-2", "", 0));
  first.PutBulkOperation(MakeBulkOperation("bulk-1", "", 0));
  MustCommit(std::move(first));
  JobBatch progress;  // a batch's jobs and the operation's progress, in one commit
  progress.PutJob(Queued("j1"), nullptr);
  progress.PutBulkOperation(MakeBulkOperation("bulk-2", "j1", 1));
  MustCommit(std::move(progress));

  RecoveredStore state = Recover();
  EXPECT_THAT(BulkIds(state), ElementsAre("bulk-1", "bulk-2"));
  ASSERT_EQ(state.bulk_operations.size(), 2u);
  EXPECT_EQ(state.bulk_operations[1].cursor_job_id(), "j1");
  EXPECT_EQ(state.bulk_operations[1].changed(), 1);
  EXPECT_EQ(state.jobs.size(), 1u);
}

TEST_P(JobStoreConformanceTest, DeleteBulkOperationRemovesItsRecord) {
  JobBatch batch;
  batch.PutBulkOperation(MakeBulkOperation("bulk-1", "", 0));
  batch.PutBulkOperation(MakeBulkOperation("bulk-2", "", 0));
  MustCommit(std::move(batch));
  JobBatch trim;
  trim.DeleteBulkOperation("bulk-1");
  MustCommit(std::move(trim));
  EXPECT_THAT(BulkIds(Recover()), ElementsAre("bulk-2"));
}

TEST_P(JobStoreConformanceTest, ABulkOperationWithAnUnprintableIdIsInvalidArgumentAndWritesNothing) {
  JobBatch batch;
  batch.PutJob(Queued("j1"), nullptr);
  batch.PutBulkOperation(MakeBulkOperation(std::string("bad\x01id"), "", 0));
  EXPECT_EQ(Commit(std::move(batch)).code(), absl::StatusCode::kInvalidArgument);
  RecoveredStore state = Recover();
  EXPECT_THAT(state.jobs, IsEmpty());
  EXPECT_THAT(state.bulk_operations, IsEmpty());
}

TEST_P(JobStoreConformanceTest, AnEmptyStoreRecoversNothing) {
  RecoveredStore state = Recover();
  EXPECT_THAT(state.jobs, IsEmpty());
  EXPECT_THAT(state.ready, IsEmpty());
  EXPECT_THAT(state.pending, IsEmpty());
  EXPECT_THAT(state.meta, IsEmpty());
  EXPECT_THAT(state.bulk_operations, IsEmpty());
  EXPECT_EQ(state.last_event_sequence, 0);
}

TEST_P(JobStoreConformanceTest, ReopeningTheSameDirectoryRecoversAnIdenticalView) {
  if (GetParam() == Kind::kMem) GTEST_SKIP() << "MemJobStore keeps nothing across instances";
  Job running = MakeJob("r", "a", 1, cohort::v1::JOB_STATE_RUNNING, 4);
  JobBatch batch;
  batch.PutJob(Queued("q1", "a", 3, 1), nullptr);
  batch.PutJob(Queued("q2", "b", 0, 2), nullptr);
  batch.PutJob(PendingUntil("p", 500), nullptr);
  batch.PutJob(running, nullptr);
  for (int seq = 1; seq <= 4; ++seq) batch.AppendEvent(MakeEvent(seq, "x"));
  batch.PutMeta("k", "v");
  batch.PutBulkOperation(MakeBulkOperation("bulk-1", "q1", 1));
  MustCommit(std::move(batch));
  RecoveredStore before = Recover();

  store_.reset();
  Open();
  RecoveredStore after = Recover();

  ASSERT_EQ(after.jobs.size(), before.jobs.size());
  for (std::size_t i = 0; i < before.jobs.size(); ++i) {
    EXPECT_EQ(after.jobs[i].SerializeAsString(), before.jobs[i].SerializeAsString());
  }
  EXPECT_EQ(after.ready, before.ready);
  EXPECT_EQ(after.pending, before.pending);
  EXPECT_EQ(after.meta, before.meta);
  ASSERT_EQ(after.bulk_operations.size(), 1u);
  EXPECT_EQ(after.bulk_operations[0].SerializeAsString(), before.bulk_operations[0].SerializeAsString());
  EXPECT_EQ(after.last_event_sequence, 4);
  EXPECT_EQ(ReadyIds(after), (std::vector<std::string>{"q1", "q2"}));
}

TEST_P(JobStoreConformanceTest, ABatchOverTheRecordLimitIsResourceExhaustedAndWritesNothing) {
  JobBatch batch;
  for (std::size_t i = 0; i <= kLimits.max_records; ++i) batch.AppendEvent(MakeEvent(i + 1, "j"));
  batch.PutJob(Queued("j"), nullptr);
  absl::Status s = Commit(std::move(batch));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;

  RecoveredStore state = Recover();
  EXPECT_THAT(state.jobs, IsEmpty());
  EXPECT_THAT(state.ready, IsEmpty());
  EXPECT_EQ(state.last_event_sequence, 0);
}

TEST_P(JobStoreConformanceTest, ABatchOverTheByteLimitIsResourceExhaustedAndWritesNothing) {
  JobBatch batch;
  Job job = Queued("j");
  job.mutable_spec()->set_payload(std::string(kLimits.max_bytes, 'x'));
  batch.PutJob(job, nullptr);
  absl::Status s = Commit(std::move(batch));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(Run(store_->GetJob("j")).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(JobStoreConformanceTest, ABatchWithAnInvalidRecordIsInvalidArgumentAndWritesNothing) {
  Job bad = Queued("bad id\n");
  Job other = Queued("other");
  JobBatch batch;
  batch.PutJob(Queued("good"), nullptr);
  batch.PutJob(bad, nullptr);
  absl::Status s = Commit(std::move(batch));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;

  JobBatch mismatch;
  mismatch.PutJob(Queued("good"), &other);
  s = Commit(std::move(mismatch));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;

  JobBatch zero_sequence;
  zero_sequence.AppendEvent(MakeEvent(0, "good"));
  s = Commit(std::move(zero_sequence));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;

  EXPECT_THAT(Recover().jobs, IsEmpty());
}

TEST_P(JobStoreConformanceTest, ConcurrentCommitsAllCompleteAndShareSyncedWrites) {
  constexpr int kCommits = 300;
  std::vector<Task<absl::Status>> commits;
  for (int i = 0; i < kCommits; ++i) {
    JobBatch batch;
    batch.PutJob(Queued(absl::StrCat("job-", i), "q", 0, i + 1), nullptr);
    batch.AppendEvent(MakeEvent(i + 1, absl::StrCat("job-", i)));
    commits.push_back(store_->Commit(std::move(batch)));
  }
  std::vector<absl::Status> results = Run(runtime::Gather(std::move(commits)));
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;

  JobStoreStats stats = store_->stats();
  EXPECT_EQ(stats.commits, static_cast<std::uint64_t>(kCommits));
  EXPECT_GE(stats.syncs, 1u);
  EXPECT_LT(stats.syncs, stats.commits);
  EXPECT_EQ(stats.records, static_cast<std::uint64_t>(3 * kCommits));  // job, ready entry, event
  RecoveredStore state = Recover();
  EXPECT_EQ(state.jobs.size(), static_cast<std::size_t>(kCommits));
  EXPECT_EQ(state.last_event_sequence, kCommits);
}

TEST_P(JobStoreConformanceTest, RecoveryPagesEveryJobOnceInIdOrderWithinThePageSize) {
  JobBatch batch;
  for (int i = 0; i < 10; ++i) batch.PutJob(Queued(absl::StrCat("j", i), "q", 0, i + 1), nullptr);
  MustCommit(std::move(batch));

  absl::StatusOr<std::unique_ptr<JobRecovery>> recovery = Run(store_->Recover(RecoverOptions{.page_jobs = 3}));
  ASSERT_TRUE(recovery.ok()) << recovery.status();
  EXPECT_THAT(PageIds(**recovery),
              ElementsAre(ElementsAre("j0", "j1", "j2"), ElementsAre("j3", "j4", "j5"),
                          ElementsAre("j6", "j7", "j8"), ElementsAre("j9")));
  absl::StatusOr<std::vector<Job>> after_end = Run((*recovery)->NextJobs());
  ASSERT_TRUE(after_end.ok()) << after_end.status();
  EXPECT_THAT(*after_end, IsEmpty()) << "every call after the last page is empty";
  EXPECT_THAT(ReadyIds((*recovery)->state()), ElementsAre("j0", "j1", "j2", "j3", "j4", "j5", "j6", "j7", "j8", "j9"));

  // Pages of one job recover what one page of every job does.
  RecoveredStore whole = Recover(RecoverOptions{.page_jobs = 1'000});
  RecoveredStore single = Recover(RecoverOptions{.page_jobs = 1});
  ASSERT_EQ(single.jobs.size(), whole.jobs.size());
  for (std::size_t i = 0; i < whole.jobs.size(); ++i) {
    EXPECT_EQ(single.jobs[i].SerializeAsString(), whole.jobs[i].SerializeAsString());
  }
}

TEST_P(JobStoreConformanceTest, ARecoveryPageEndsOnceItHoldsThePageBytesButNeverEmpty) {
  JobBatch batch;
  for (int i = 0; i < 4; ++i) {
    Job job = Queued(absl::StrCat("j", i), "q", 0, i + 1);
    job.mutable_spec()->set_payload(std::string(1'000, 'x'));
    batch.PutJob(job, nullptr);
  }
  MustCommit(std::move(batch));

  // 2,500 bytes: the third job (past 2,000) ends a page.
  absl::StatusOr<std::unique_ptr<JobRecovery>> pages_of_3 =
      Run(store_->Recover(RecoverOptions{.page_jobs = 100, .page_bytes = 2'500}));
  ASSERT_TRUE(pages_of_3.ok()) << pages_of_3.status();
  EXPECT_THAT(PageIds(**pages_of_3), ElementsAre(ElementsAre("j0", "j1", "j2"), ElementsAre("j3")));
  // Fewer bytes than one job: one job per page, never an empty page before the end.
  absl::StatusOr<std::unique_ptr<JobRecovery>> pages_of_1 =
      Run(store_->Recover(RecoverOptions{.page_jobs = 100, .page_bytes = 1}));
  ASSERT_TRUE(pages_of_1.ok()) << pages_of_1.status();
  EXPECT_THAT(PageIds(**pages_of_1),
              ElementsAre(ElementsAre("j0"), ElementsAre("j1"), ElementsAre("j2"), ElementsAre("j3")));
}

TEST_P(JobStoreConformanceTest, RecoveryPagesReadTheStoreAsItWasWhenRecoverCompleted) {
  JobBatch batch;
  for (int i = 0; i < 4; ++i) batch.PutJob(Queued(absl::StrCat("j", i), "q", 0, i + 1), nullptr);
  MustCommit(std::move(batch));
  absl::StatusOr<std::unique_ptr<JobRecovery>> recovery = Run(store_->Recover(RecoverOptions{.page_jobs = 2}));
  ASSERT_TRUE(recovery.ok()) << recovery.status();
  absl::StatusOr<std::vector<Job>> first = Run((*recovery)->NextJobs());
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 2u);

  // Between two pages: a job of the next page is deleted, one is added after every job
  // and one at the boundary (j10 sorts between j1 and j2).
  JobBatch later;
  later.DeleteJob(Queued("j3", "q", 0, 4));
  later.PutJob(Queued("j9", "q", 0, 9), nullptr);
  later.PutJob(Queued("j10", "q", 0, 10), nullptr);
  MustCommit(std::move(later));

  EXPECT_THAT(PageIds(**recovery), ElementsAre(ElementsAre("j2", "j3")));
  EXPECT_EQ(Recover().jobs.size(), 5u) << "a new recovery sees the change";
}

TEST_P(JobStoreConformanceTest, ARecoveryDroppedBeforeItsLastPageLeavesTheStoreUsable) {
  JobBatch batch;
  for (int i = 0; i < 6; ++i) batch.PutJob(Queued(absl::StrCat("j", i), "q", 0, i + 1), nullptr);
  MustCommit(std::move(batch));
  absl::StatusOr<std::unique_ptr<JobRecovery>> recovery = Run(store_->Recover(RecoverOptions{.page_jobs = 2}));
  ASSERT_TRUE(recovery.ok()) << recovery.status();
  absl::StatusOr<std::vector<Job>> first = Run((*recovery)->NextJobs());
  ASSERT_TRUE(first.ok()) << first.status();
  recovery->reset();  // RocksJobStore may be reading the next page meanwhile

  Put(Queued("j6", "q", 0, 7), nullptr);
  EXPECT_EQ(Recover().jobs.size(), 7u);
}

INSTANTIATE_TEST_SUITE_P(AllStores, JobStoreConformanceTest, ::testing::Values(Kind::kRocks, Kind::kMem),
                         [](const ::testing::TestParamInfo<Kind>& info) {
                           return info.param == Kind::kRocks ? "Rocks" : "Mem";
                         });

}  // namespace
}  // namespace cohort::store
