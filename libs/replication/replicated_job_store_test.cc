// ReplicatedJobStore with three replicas in one process on 127.0.0.1 (free ports, temp
// dirs): commits through the leader, refusals on followers, leader failover, catch-up
// of a restarted follower from the log and from a snapshot, and refusal of corrupt
// entries and snapshots. Every group test ends by comparing every family of every
// running replica's local store (ExportLocal: byte-identical).
#include "libs/replication/replicated_job_store.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "libs/replication/job_batch_codec.h"
#include "libs/replication/job_store_machine.h"
#include "libs/runtime/runtime.h"
#include "libs/store/recover_all.h"
#include "tests/testing/free_port.h"

namespace cohort::replication {
namespace {

using store::JobBatch;

using ::cohort::testing::FreePort;

std::string TempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(base ? base : "/tmp", "/replicated_job_store_test.XXXXXX");
  EXPECT_NE(mkdtemp(pattern.data()), nullptr);
  return pattern;
}

// Polls `pred` until it holds; false after `timeout`. (The store offers no event for
// "another replica applied index n"; polling with a deadline is the bounded wait.)
bool Eventually(absl::FunctionRef<bool()> pred, absl::Duration timeout = absl::Seconds(10)) {
  absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// Batch n: 16 new queued jobs "b<n>-<k>", each with its event (sequences n*100+k+1),
// the scheduler's cursor, a bulk operation's record, and every 5th batch an event trim.
JobBatch SubmitBatch(int n) {
  JobBatch batch;
  for (int k = 0; k < 16; ++k) {
    cohort::v1::Job job;
    job.set_id(absl::StrCat("b", n, "-", k));
    job.set_state(cohort::v1::JOB_STATE_QUEUED);
    job.mutable_spec()->set_queue("default");
    job.mutable_spec()->set_payload(std::string(64, 'p'));
    job.set_sequence(n * 100 + k + 1);
    batch.PutJob(job, nullptr);
    cohort::v1::JobEvent event;
    event.set_sequence(n * 100 + k + 1);
    event.set_job_id(job.id());
    batch.AppendEvent(event);
  }
  batch.PutMeta("cursor", absl::StrCat(n));
  cohort::v1::BulkOperation op;
  op.set_id(absl::StrCat("op-", n % 3));
  batch.PutBulkOperation(op);
  if (n % 5 == 4) batch.TrimEventsBefore(n * 100 - 200);
  return batch;
}

class ReplicatedJobStoreTest : public ::testing::Test {
 protected:
  static constexpr int kMembers = 3;

  void SetUp() override {
    for (int i = 0; i < kMembers; ++i) {
      members_.push_back(Member{static_cast<std::uint64_t>(i + 1), absl::StrCat("127.0.0.1:", FreePort())});
      store_dirs_.push_back(TempDir());
      raft_dirs_.push_back(TempDir());
    }
    stores_.resize(kMembers);
  }

  void TearDown() override {
    for (auto& store : stores_) {
      if (store) store->Stop();
    }
  }

  // Starts replica i from its dirs, as a (re)started process would.
  void StartMember(int i) {
    ReplicatedJobStoreOptions options;
    options.local.path = store_dirs_[i];
    options.raft = raft_;
    options.raft.self = members_[i];
    options.raft.members = members_;
    options.raft.dir = raft_dirs_[i];
    absl::StatusOr<std::unique_ptr<ReplicatedJobStore>> store = ReplicatedJobStore::Open(std::move(options));
    ASSERT_TRUE(store.ok()) << store.status();
    stores_[i] = *std::move(store);
  }

  void StartAll() {
    for (int i = 0; i < kMembers; ++i) StartMember(i);
  }

  void StopMember(int i) {
    stores_[i]->Stop();
    stores_[i].reset();
  }

  // The running replica that leads in the highest term above `above_term`, or -1 after
  // `timeout`.
  int WaitForLeader(std::uint64_t above_term = 0, absl::Duration timeout = absl::Seconds(10)) {
    int leader = -1;
    Eventually([&] {
      leader = -1;
      std::uint64_t term = above_term;
      for (int i = 0; i < kMembers; ++i) {
        if (!stores_[i]) continue;
        LogStatus s = stores_[i]->status();
        if (s.role == Role::kLeader && s.term > term) leader = i, term = s.term;
      }
      return leader >= 0;
    }, timeout);
    return leader;
  }

  absl::Status Commit(int i, JobBatch batch) {
    return runtime::RunUntilComplete(loop_, stores_[i]->Commit(std::move(batch)));
  }

  absl::Status Barrier(int i) { return runtime::RunUntilComplete(loop_, stores_[i]->Barrier()); }

  // Commits batch n at whoever leads, following refusals that appended nothing.
  void CommitAtLeader(int n) {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    absl::Status last;
    while (absl::Now() < deadline) {
      int leader = WaitForLeader();
      if (leader < 0) break;
      last = Commit(leader, SubmitBatch(n));
      if (last.ok()) {
        acked_.push_back(n);
        return;
      }
      if (last.code() != absl::StatusCode::kUnavailable) break;
    }
    ADD_FAILURE() << "no leader committed batch " << n << ": " << last;
  }

  store::RecoveredStore Recover(int i) {
    absl::StatusOr<store::RecoveredStore> state = runtime::RunUntilComplete(loop_, store::RecoverAll(*stores_[i]));
    EXPECT_TRUE(state.ok()) << state.status();
    return state.ok() ? *std::move(state) : store::RecoveredStore{};
  }

  // Every job of every acknowledged batch, except those deleted since, is in replica
  // i's store.
  void ExpectAcknowledgedIn(int i) {
    store::RecoveredStore state = Recover(i);
    std::set<std::string> ids;
    for (const cohort::v1::Job& job : state.jobs) ids.insert(job.id());
    for (int n : acked_) {
      for (int k = 0; k < 16; ++k) {
        std::string id = absl::StrCat("b", n, "-", k);
        if (!deleted_.count(id)) EXPECT_TRUE(ids.count(id)) << "replica " << i + 1 << " lost " << id;
      }
    }
  }

  // The invariant every group test ends with: every running replica's local store,
  // every family and the applied index, is byte-identical.
  void ExpectIdenticalReplicas() {
    std::vector<std::string> exports;
    bool converged = Eventually([&] {
      exports.clear();
      for (int i = 0; i < kMembers; ++i) {
        if (!stores_[i]) continue;
        absl::StatusOr<std::string> e = stores_[i]->ExportLocal();
        if (!e.ok()) return false;
        exports.push_back(*std::move(e));
      }
      for (const std::string& e : exports) {
        if (e != exports.front()) return false;
      }
      return true;
    });
    EXPECT_TRUE(converged) << "the replicas' stores differ after 10 s";
    for (int i = 0; i < kMembers; ++i) {
      if (stores_[i]) ExpectAcknowledgedIn(i);
    }
  }

  RaftLogOptions raft_;
  std::vector<Member> members_;
  std::vector<std::string> store_dirs_, raft_dirs_;
  std::vector<std::unique_ptr<ReplicatedJobStore>> stores_;
  std::vector<int> acked_;
  std::set<std::string> deleted_;
  runtime::EventLoop loop_;
};

TEST_F(ReplicatedJobStoreTest, CommitsThroughTheLeaderApplyIdenticallyOnEveryReplica) {
  StartAll();
  int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  ASSERT_TRUE(Barrier(leader).ok());
  for (int n = 0; n < 20; ++n) CommitAtLeader(n);
  // Concurrent commits from one loop share entries: the first goes alone, the others
  // queue behind it and go out together.
  std::vector<runtime::TaskHandle<absl::Status>> inflight;
  for (int n = 20; n < 40; ++n) inflight.push_back(runtime::Spawn(loop_, stores_[leader]->Commit(SubmitBatch(n))));
  loop_.RunUntil([&] {
    for (auto& h : inflight) {
      if (!h.Done()) return false;
    }
    return true;
  });
  for (int n = 20; n < 40; ++n) {
    absl::Status s = inflight[n - 20].TakeResult();
    ASSERT_TRUE(s.ok()) << s;
    acked_.push_back(n);
  }
  // Updates and deletes replicate as well: batch 0's first job runs, its second goes.
  store::RecoveredStore state = Recover(leader);
  ASSERT_EQ(state.jobs.size(), 40u * 16);
  const cohort::v1::Job queued = state.jobs[0];
  cohort::v1::Job running = queued;
  running.set_state(cohort::v1::JOB_STATE_RUNNING);
  JobBatch change;
  change.PutJob(running, &queued);
  change.DeleteJob(state.jobs[1]);
  ASSERT_TRUE(Commit(leader, std::move(change)).ok());
  deleted_.insert(state.jobs[1].id());

  state = Recover(leader);  // Commit completed: the leader's store holds it
  EXPECT_EQ(state.jobs.size(), 40u * 16 - 1);
  EXPECT_EQ(state.ready.size(), 40u * 16 - 2);
  EXPECT_EQ(state.last_event_sequence, 39 * 100 + 16);
  EXPECT_EQ(state.meta["cursor"], "39");
  EXPECT_EQ(state.bulk_operations.size(), 3u);
  store::JobStoreStats stats = stores_[leader]->stats();
  EXPECT_EQ(stats.commits, 41u);
  EXPECT_LE(stats.syncs, 20u + 5 + 1) << "20 sequential commits, 20 concurrent ones in a few entries, 1 more";
  EXPECT_EQ(stats.failed_syncs, 0u);
  EXPECT_GE(stores_[leader]->merge_stats().largest_entry_commits, 10u);
  ExpectIdenticalReplicas();
  for (int i = 0; i < kMembers; ++i) {
    store::RecoveredStore replica = Recover(i);
    EXPECT_EQ(replica.jobs.size(), state.jobs.size()) << "replica " << i + 1;
    EXPECT_EQ(replica.ready, state.ready) << "replica " << i + 1;
    EXPECT_EQ(stores_[i]->counters().entries_applied, stats.syncs + 1) << "the entries and a barrier, replica " << i + 1;
  }
}

TEST_F(ReplicatedJobStoreTest, AFollowersCommitIsUnavailableWithTheLeadersHintAndWritesNothing) {
  StartAll();
  int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  CommitAtLeader(0);
  int follower = (leader + 1) % kMembers;
  ASSERT_TRUE(Eventually([&] { return stores_[follower]->status().leader == members_[leader]; }));

  JobBatch refused;
  refused.PutMeta("refused", "x");
  absl::Status s = Commit(follower, std::move(refused));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(LeaderHint(s), members_[leader]) << s;
  absl::Status barrier = Barrier(follower);
  EXPECT_EQ(barrier.code(), absl::StatusCode::kUnavailable) << barrier;
  EXPECT_EQ(LeaderHint(barrier), members_[leader]) << barrier;
  EXPECT_EQ(stores_[follower]->stats().commits, 0u);

  CommitAtLeader(1);
  ExpectIdenticalReplicas();
  for (int i = 0; i < kMembers; ++i) EXPECT_EQ(Recover(i).meta.count("refused"), 0u) << "replica " << i + 1;
}

TEST_F(ReplicatedJobStoreTest, AfterTheLeaderStopsANewLeaderRecoversEveryAcknowledgedBatch) {
  StartAll();  // default timings: heartbeat 100 ms, election timeout 1 s
  int old_leader = WaitForLeader();
  ASSERT_GE(old_leader, 0);
  for (int n = 0; n < 10; ++n) CommitAtLeader(n);
  std::uint64_t old_term = stores_[old_leader]->status().term;
  StopMember(old_leader);

  int new_leader = WaitForLeader(old_term, absl::Seconds(5));
  ASSERT_GE(new_leader, 0) << "no new leader within 5 s";
  ASSERT_TRUE(Barrier(new_leader).ok());
  ExpectAcknowledgedIn(new_leader);
  for (int n = 10; n < 15; ++n) CommitAtLeader(n);
  // The old leader comes back as a follower and converges.
  StartMember(old_leader);
  ExpectIdenticalReplicas();
}

TEST_F(ReplicatedJobStoreTest, ARestartedFollowerCatchesUpFromTheLogKeepingItsNewerStore) {
  // Every replica snapshots every 16 entries but keeps 200 behind: the follower's own
  // snapshot is older than its store, and the leader's log still has what it missed.
  raft_.snapshot_threshold = 16;
  raft_.snapshot_trailing = 200;
  StartAll();
  int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  for (int n = 0; n < 20; ++n) CommitAtLeader(n);
  ExpectIdenticalReplicas();
  int follower = (leader + 1) % kMembers;
  StopMember(follower);
  for (int n = 20; n < 50; ++n) CommitAtLeader(n);
  StartMember(follower);
  ExpectIdenticalReplicas();
  ReplicaCounters counters = stores_[follower]->counters();
  EXPECT_EQ(counters.snapshots_restored, 0u);
  EXPECT_GE(counters.snapshots_kept, 1u) << "its own snapshot, older than its store";
  EXPECT_GE(counters.entries_replayed, 1u) << "entries between its snapshot and its store";
  EXPECT_GE(counters.entries_applied, 30u);
}

TEST_F(ReplicatedJobStoreTest, AFollowerFurtherBehindThanTheLogCatchesUpFromASnapshot) {
  raft_.snapshot_threshold = 8;
  raft_.snapshot_trailing = 2;
  raft_.snapshot_send_timeout = absl::Seconds(1);  // it may go out while the follower is down
  StartAll();
  int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  CommitAtLeader(0);
  ExpectIdenticalReplicas();
  int follower = (leader + 1) % kMembers;
  StopMember(follower);
  for (int n = 1; n < 40; ++n) CommitAtLeader(n);
  StartMember(follower);
  ExpectIdenticalReplicas();
  EXPECT_GE(stores_[follower]->counters().snapshots_restored, 1u)
      << "the follower was expected to install the leader's snapshot";
}

TEST(ReplicatedJobStoreOpen, RefusesSharedDirectoriesAndAnEntryLimitBelowTheBatchLimits) {
  ReplicatedJobStoreOptions options;
  options.local.path = TempDir();
  options.raft.self = Member{1, "127.0.0.1:1"};
  options.raft.members = {options.raft.self};
  options.raft.dir = absl::StrCat(options.local.path, "/raft");
  EXPECT_EQ(ReplicatedJobStore::Open(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.raft.dir = TempDir();
  options.raft.max_entry_bytes = options.local.limits.max_bytes;
  absl::Status s = ReplicatedJobStore::Open(options).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("max_entry_bytes"), absl::string_view::npos) << s;
}

// The state machine alone, on a local store: what a corrupt committed entry or snapshot
// does to a replica.
class JobStoreMachineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<store::RocksJobStore>> local =
        store::RocksJobStore::Open(store::RocksJobStoreOptions{.path = TempDir()});
    ASSERT_TRUE(local.ok()) << local.status();
    local_ = *std::move(local);
    machine_ = std::make_unique<JobStoreMachine>(local_.get());
  }

  std::unique_ptr<store::RocksJobStore> local_;
  std::unique_ptr<JobStoreMachine> machine_;
};

TEST_F(JobStoreMachineTest, ACorruptCommittedEntryStopsTheReplica) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  machine_->Apply(LogPosition{3, 1}, EncodeJobBatch(SubmitBatch(1)));
  std::string corrupt = EncodeJobBatch(SubmitBatch(2));
  corrupt.resize(corrupt.size() - 1);
  EXPECT_DEATH(machine_->Apply(LogPosition{4, 1}, corrupt), "cannot apply a committed log entry");
  EXPECT_DEATH(machine_->Apply(LogPosition{4, 1}, std::string("\x02\x01", 2)), "format version 2");
  // A replay at or below the applied index is skipped before it is read.
  machine_->Apply(LogPosition{3, 1}, corrupt);
  EXPECT_EQ(machine_->counters().entries_replayed, 1u);
  EXPECT_EQ(local_->applied_index(), 3u);
}

TEST_F(JobStoreMachineTest, ACorruptSnapshotIsRefusedAndTheStoreIsUnchanged) {
  machine_->Apply(LogPosition{3, 1}, EncodeJobBatch(SubmitBatch(1)));
  absl::StatusOr<std::string> before = machine_->Snapshot();
  ASSERT_TRUE(before.ok()) << before.status();
  std::string corrupt = *before;
  corrupt.resize(corrupt.size() / 2);
  absl::Status s = machine_->Restore(LogPosition{10, 2}, corrupt);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  absl::StatusOr<std::string> after = machine_->Snapshot();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, *before);
  EXPECT_EQ(machine_->counters().snapshots_restored, 0u);
}

TEST_F(JobStoreMachineTest, AbandonedSnapshotsGiveUpWithCancelledAndChangeNothing) {
  machine_->Apply(LogPosition{1, 1}, EncodeJobBatch(SubmitBatch(1)));
  ASSERT_TRUE(machine_->Snapshot().ok());
  machine_->AbandonSnapshots();  // the log is stopping
  EXPECT_EQ(machine_->Snapshot().status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(machine_->counters().snapshots_taken, 1u);
  EXPECT_EQ(local_->applied_index(), 1u);
}

TEST_F(JobStoreMachineTest, ASnapshotTakenWhileEntriesApplyRestoresToTheStateItReadAndSkipsThoseEntries) {
  ASSERT_TRUE(machine_->SnapshotsMayRunConcurrently());
  machine_->Apply(LogPosition{1, 1}, EncodeJobBatch(SubmitBatch(1)));
  // The log takes the snapshot "at 1" while entries 2..40 apply on its own thread.
  std::thread applier([&] {
    for (int n = 2; n <= 40; ++n) {
      machine_->Apply(LogPosition{static_cast<std::uint64_t>(n), 1}, EncodeJobBatch(SubmitBatch(n)));
    }
  });
  absl::StatusOr<std::string> snapshot = machine_->Snapshot();
  applier.join();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  absl::StatusOr<std::string> full = machine_->Snapshot();
  ASSERT_TRUE(full.ok()) << full.status();

  // Another replica restores it at position 1, then the log replays 2..40 into it.
  absl::StatusOr<std::unique_ptr<store::RocksJobStore>> other =
      store::RocksJobStore::Open(store::RocksJobStoreOptions{.path = TempDir()});
  ASSERT_TRUE(other.ok()) << other.status();
  JobStoreMachine replica(other->get());
  ASSERT_TRUE(replica.Restore(LogPosition{1, 1}, *snapshot).ok());
  EXPECT_GE((*other)->applied_index(), 1u);
  const std::uint64_t read_at = (*other)->applied_index();
  for (int n = 2; n <= 40; ++n) {
    replica.Apply(LogPosition{static_cast<std::uint64_t>(n), 1}, EncodeJobBatch(SubmitBatch(n)));
  }
  EXPECT_EQ(replica.counters().entries_replayed, read_at - 1) << "entries the snapshot held were applied twice";
  EXPECT_EQ(replica.counters().entries_applied, 40 - read_at);
  absl::StatusOr<std::string> converged = replica.Snapshot();
  ASSERT_TRUE(converged.ok()) << converged.status();
  EXPECT_EQ(*converged, *full) << "the replica's store differs from the one the snapshot was taken of";
}

}  // namespace
}  // namespace cohort::replication
