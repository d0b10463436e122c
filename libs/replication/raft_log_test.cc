// RaftLog with three members in one process on 127.0.0.1 (free ports, temp dirs):
// commits, members addressed by host name, NOT_LEADER redirection, leader failover,
// catch-up from the log and from a snapshot. Every test ends by checking that every replica applied the same entries
// at the same positions.
#include "libs/replication/raft_log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/replication/peer_secret.h"
#include "libs/replication/raft_dns_transport.h"
#include "libs/replication/replicated_log.h"
#include "libs/replication/stream_cipher.h"
#include "libs/runtime/runtime.h"
#include "tests/testing/fault_proxy.h"
#include "tests/testing/free_port.h"

namespace cohort::replication {
namespace {

using ::testing::ElementsAreArray;

using ::cohort::testing::FreePort;

// A group's shared secret (32 bytes or more).
constexpr char kSecret[] = "0123456789abcdef0123456789abcdef-group-a";

std::string TempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(base ? base : "/tmp", "/raft_log_test.XXXXXX");
  char* dir = mkdtemp(pattern.data());
  EXPECT_NE(dir, nullptr);
  return pattern;
}

// True once every proposal in `inflight` has its answer.
bool AllDone(const std::vector<runtime::TaskHandle<absl::StatusOr<LogPosition>>>& inflight) {
  return std::all_of(inflight.begin(), inflight.end(), [](const auto& h) { return h.Done(); });
}

struct Applied {
  LogPosition at;
  std::string entry;
  friend bool operator==(const Applied&, const Applied&) = default;
};

// A replica's state: the list of entries it applied, with their positions. Its data
// is guarded by the group's mutex, which every callback signals.
//
// A concurrent machine (SnapshotsMayRunConcurrently) first waits in Snapshot until
// `*released` (guarded by the group's mutex) or AbandonSnapshots, which makes it return
// CANCELLED, so a test can hold snapshots for as long as it likes; its Restore accepts
// a state beyond its position, and Apply then skips the entries it already holds (an
// entry that differs from the one held counts as out of order).
class RecordingMachine final : public StateMachine {
 public:
  RecordingMachine(absl::Mutex* mu, absl::CondVar* changed, const bool* released = nullptr)
      : mu_(mu), changed_(changed), released_(released) {}

  void Apply(LogPosition at, absl::string_view entry) override {
    absl::MutexLock lock(mu_);
    if (!applied_.empty() && at.index <= applied_.back().at.index) {
      auto held = std::find_if(applied_.begin(), applied_.end(), [&](const Applied& a) { return a.at == at; });
      if (released_ == nullptr || held == applied_.end() || held->entry != entry) out_of_order_ = true;
      return;
    }
    applied_.push_back(Applied{at, std::string(entry)});
    changed_->SignalAll();
  }

  bool SnapshotsMayRunConcurrently() const override { return released_ != nullptr; }

  void AbandonSnapshots() override {
    absl::MutexLock lock(mu_);
    abandoned_ = true;
    changed_->SignalAll();
  }

  absl::StatusOr<std::string> Snapshot() override {
    absl::MutexLock lock(mu_);
    if (released_ != nullptr) {
      ++snapshots_started_;
      changed_->SignalAll();
      while (!*released_ && !abandoned_) changed_->Wait(mu_);
      if (abandoned_) return absl::CancelledError("abandoned");
    }
    ++snapshots_taken_;
    std::string out;
    for (const Applied& a : applied_) {
      absl::StrAppend(&out, a.at.index, " ", a.at.term, " ", a.entry.size(), " ", a.entry);
    }
    return out;
  }

  absl::Status Restore(LogPosition at, absl::string_view snapshot) override {
    std::vector<Applied> state;
    while (!snapshot.empty()) {
      Applied a;
      unsigned long long index, term;
      std::size_t size;
      int consumed = 0;
      std::string head(snapshot.substr(0, 64));
      if (sscanf(head.c_str(), "%llu %llu %zu %n", &index, &term, &size, &consumed) != 3 ||
          consumed + size > snapshot.size()) {
        return absl::DataLossError("malformed snapshot");
      }
      a.at = {index, term};
      a.entry = std::string(snapshot.substr(consumed, size));
      snapshot.remove_prefix(consumed + size);
      state.push_back(std::move(a));
    }
    absl::MutexLock lock(mu_);
    if (released_ == nullptr && !state.empty() && state.back().at.index > at.index) {
      return absl::DataLossError("snapshot beyond its position");
    }
    applied_ = std::move(state);
    ++restores_;
    changed_->SignalAll();
    return absl::OkStatus();
  }

  void OnStatusChange(const LogStatus& status) override {
    absl::MutexLock lock(mu_);
    status_ = status;
    changed_->SignalAll();
  }

  // With the group's mutex held.
  const std::vector<Applied>& applied() const { return applied_; }
  const LogStatus& status() const { return status_; }
  int restores() const { return restores_; }
  int snapshots_started() const { return snapshots_started_; }
  int snapshots_taken() const { return snapshots_taken_; }
  bool out_of_order() const { return out_of_order_; }

 private:
  absl::Mutex* mu_;
  absl::CondVar* changed_;
  const bool* const released_;
  bool abandoned_ = false;
  int snapshots_started_ = 0;
  int snapshots_taken_ = 0;
  std::vector<Applied> applied_;
  LogStatus status_;
  int restores_ = 0;
  bool out_of_order_ = false;
};

class RaftLogTest : public ::testing::Test {
 protected:
  static constexpr int kMembers = 3;

  void SetUp() override {
    for (int i = 0; i < kMembers; ++i) {
      members_.push_back(Member{static_cast<std::uint64_t>(i + 1), absl::StrCat("127.0.0.1:", FreePort())});
      dirs_.push_back(TempDir());
    }
    machines_.resize(kMembers);
    logs_.resize(kMembers);
  }

  void TearDown() override {
    ReleaseSnapshots();
    for (auto& log : logs_) {
      if (log) log->Stop();
    }
  }

  RaftLogOptions Options(int i) {
    RaftLogOptions options = options_;
    options.self = members_[i];
    options.members = members_;
    for (auto& [j, address] : reached_at_) {
      if (j != i) options.members[j].address = address;
    }
    options.dir = dirs_[i];
    return options;
  }

  // Starts member i from its dir with a fresh (empty) state machine, as a restarted
  // process would.
  void StartMember(int i) {
    machines_[i] = std::make_unique<RecordingMachine>(&mu_, &changed_,
                                                      concurrent_snapshots_ ? &snapshots_released_ : nullptr);
    absl::StatusOr<std::unique_ptr<RaftLog>> log = RaftLog::Start(Options(i), machines_[i].get());
    ASSERT_TRUE(log.ok()) << log.status();
    logs_[i] = std::move(*log);
  }

  void StartAll() {
    for (int i = 0; i < kMembers; ++i) StartMember(i);
  }

  void StopMember(int i) {
    logs_[i]->Stop();
    logs_[i].reset();
  }

  // Waits until pred (called with mu_ held) holds; false after `timeout`.
  bool WaitUntil(absl::FunctionRef<bool()> pred, absl::Duration timeout = absl::Seconds(10)) {
    absl::Time deadline = absl::Now() + timeout;
    absl::MutexLock lock(&mu_);
    while (!pred()) {
      if (changed_.WaitWithDeadline(&mu_, deadline) && !pred()) return false;
    }
    return true;
  }

  // The running member that leads in the highest term, per its own reports, or -1.
  int LeaderLocked() {
    int leader = -1;
    for (int i = 0; i < kMembers; ++i) {
      if (!logs_[i]) continue;
      const LogStatus& s = machines_[i]->status();
      if (s.role == Role::kLeader && (leader < 0 || s.term > machines_[leader]->status().term)) leader = i;
    }
    return leader;
  }

  int WaitForLeader(std::uint64_t above_term = 0, absl::Duration timeout = absl::Seconds(10)) {
    int leader = -1;
    bool found = WaitUntil([&] {
      leader = LeaderLocked();
      return leader >= 0 && machines_[leader]->status().term > above_term;
    }, timeout);
    return found ? leader : -1;
  }

  // Starts the group sharing kSecret, its handshakes given `timeout`: the index of a
  // follower for a raw client to reach, or -1 if no leader was elected.
  int StartAuthenticated(absl::Duration timeout) {
    options_.peer_secret = kSecret;
    options_.peer_handshake_timeout = timeout;
    StartAll();
    const int leader = WaitForLeader();
    return leader < 0 ? -1 : (leader + 1) % kMembers;
  }

  std::uint64_t TermOf(int i) {
    absl::MutexLock lock(&mu_);
    return machines_[i]->status().term;
  }

  absl::StatusOr<LogPosition> Propose(int i, std::string entry) {
    return runtime::RunUntilComplete(loop_, logs_[i]->Propose(std::move(entry)));
  }

  // Proposes at whoever leads, following NOT_LEADER (nothing appended) until one
  // commits it.
  LogPosition ProposeAtLeader(std::string entry) {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    absl::Status last;
    while (absl::Now() < deadline) {
      int leader = WaitForLeader();
      if (leader < 0) break;
      absl::StatusOr<LogPosition> at = Propose(leader, entry);
      if (at.ok()) return *at;
      last = at.status();
      if (!LeaderHint(last) && last.code() != absl::StatusCode::kUnavailable) break;
    }
    ADD_FAILURE() << "no leader committed " << entry << ": " << last;
    return {};
  }

  // Proposes prefix0 .. prefix<count-1> in turn at whoever leads, appending each with its
  // position to `acked`.
  void ProposeMany(absl::string_view prefix, int count, std::vector<Applied>& acked) {
    for (int n = 0; n < count; ++n) {
      std::string entry = absl::StrCat(prefix, n);
      acked.push_back(Applied{ProposeAtLeader(entry), entry});
    }
  }

  // The invariant every test ends with: every running member applied `count` entries,
  // the same ones at the same positions, in increasing index order.
  void ExpectIdenticalReplicas(std::size_t count) {
    bool converged = WaitUntil([&] {
      for (int i = 0; i < kMembers; ++i) {
        if (logs_[i] && machines_[i]->applied().size() != count) return false;
      }
      return true;
    });
    absl::MutexLock lock(&mu_);
    const RecordingMachine* reference = nullptr;
    for (int i = 0; i < kMembers; ++i) {
      if (!logs_[i]) continue;
      if (reference == nullptr) reference = machines_[i].get();
      EXPECT_EQ(machines_[i]->applied().size(), count) << "member " << i + 1 << (converged ? "" : " (timed out)");
      EXPECT_FALSE(machines_[i]->out_of_order()) << "member " << i + 1;
      EXPECT_THAT(machines_[i]->applied(), ElementsAreArray(reference->applied())) << "member " << i + 1;
    }
  }

  // The acknowledged entries appear, in acknowledgement order, at their positions.
  void ExpectAcknowledged(int member, const std::vector<Applied>& acked) {
    absl::MutexLock lock(&mu_);
    const std::vector<Applied>& applied = machines_[member]->applied();
    for (const Applied& a : acked) {
      EXPECT_THAT(applied, ::testing::Contains(a)) << "acknowledged entry " << a.entry << " lost";
    }
  }

  std::unique_ptr<cohort::testing::FaultProxy> StartWithTheThirdMemberBehindARecorder(std::vector<Applied>& acked);

  RaftLogOptions options_;
  // Member j as the others reach it, when not at its own address (a proxy in between).
  absl::flat_hash_map<int, std::string> reached_at_;
  // Whether members start with concurrent machines, whose snapshots wait for
  // ReleaseSnapshots.
  bool concurrent_snapshots_ = false;
  bool snapshots_released_ ABSL_GUARDED_BY(mu_) = false;

  void ReleaseSnapshots() {
    absl::MutexLock lock(&mu_);
    snapshots_released_ = true;
    changed_.SignalAll();
  }
  std::vector<Member> members_;
  std::vector<std::string> dirs_;
  absl::Mutex mu_;
  absl::CondVar changed_;
  std::vector<std::unique_ptr<RecordingMachine>> machines_;
  std::vector<std::unique_ptr<RaftLog>> logs_;
  runtime::EventLoop loop_;
};

TEST_F(RaftLogTest, ProposalsCommitInOrderAndApplyIdenticallyOnEveryReplica) {
  StartAll();
  int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  std::uint64_t term = TermOf(leader);
  std::vector<Applied> acked;
  for (int n = 0; n < 20; ++n) {
    std::string entry = absl::StrCat("sequential-", n);
    absl::StatusOr<LogPosition> at = Propose(leader, entry);
    ASSERT_TRUE(at.ok()) << at.status();
    EXPECT_EQ(at->term, term);
    if (!acked.empty()) {
      EXPECT_GT(at->index, acked.back().at.index);
    }
    acked.push_back(Applied{*at, entry});
  }
  // Concurrent proposals from one loop are pipelined and each learns its own slot.
  std::vector<runtime::TaskHandle<absl::StatusOr<LogPosition>>> inflight;
  for (int n = 0; n < 20; ++n) {
    inflight.push_back(runtime::Spawn(loop_, logs_[leader]->Propose(absl::StrCat("concurrent-", n))));
  }
  loop_.RunUntil([&] { return AllDone(inflight); });
  for (int n = 0; n < 20; ++n) {
    absl::StatusOr<LogPosition> at = inflight[n].TakeResult();
    ASSERT_TRUE(at.ok()) << at.status();
    acked.push_back(Applied{*at, absl::StrCat("concurrent-", n)});
  }
  {
    // Propose completes only after the proposer applied the entry.
    absl::MutexLock lock(&mu_);
    EXPECT_THAT(machines_[leader]->applied(), ElementsAreArray(acked));
  }
  ExpectIdenticalReplicas(acked.size());
}

// Kubernetes peers are DNS names: "localhost" stands in for them (it resolves to
// 127.0.0.1 through /etc/hosts); each member listens on 0.0.0.0:PORT and resolves its
// peers' names when it connects.
TEST_F(RaftLogTest, MembersAddressedByHostNameElectALeaderAndCommitOnEveryReplica) {
  options_.peer_secret = kSecret;  // names resolved, then streams authenticated
  for (Member& m : members_) m.address = absl::StrReplaceAll(m.address, {{"127.0.0.1", "localhost"}});
  StartAll();
  int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  std::vector<Applied> acked;
  ProposeMany("named-", 3, acked);
  int follower = (leader + 1) % kMembers;
  ASSERT_TRUE(WaitUntil([&] { return machines_[follower]->status().leader == members_[leader]; }));
  ExpectIdenticalReplicas(acked.size());
  for (int i = 0; i < kMembers; ++i) ExpectAcknowledged(i, acked);
}

TEST_F(RaftLogTest, AddressesThatAreNotHostPortAreRefused) {
  RecordingMachine machine(&mu_, &changed_);
  for (const std::string& bad : std::vector<std::string>{
           "localhost", "localhost:0", "localhost:65536", "localhost:+80", "-bad-.svc:7071", "under_score.svc:7071",
           "300.1.1.1:7071", "[::1]:7071", "a..b:7071", std::string(64, 'a') + ".svc:7071",
           std::string(300, 'a') + ":7071"}) {
    RaftLogOptions options = Options(0);
    options.members[1].address = bad;
    absl::StatusOr<std::unique_ptr<RaftLog>> log = RaftLog::Start(options, &machine);
    EXPECT_EQ(log.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_LE(log.status().message().size(), 512u) << bad;
  }
  absl::StatusOr<RaftAddress> name = ParseRaftAddress("cohort-broker-0.cohort-broker-peers.ns.svc:7071");
  ASSERT_TRUE(name.ok()) << name.status();
  EXPECT_EQ(name->host, "cohort-broker-0.cohort-broker-peers.ns.svc");
  EXPECT_EQ(name->port, 7071);
  EXPECT_FALSE(name->is_ip);
  absl::StatusOr<RaftAddress> ip = ParseRaftAddress("10.0.0.7:65535");
  ASSERT_TRUE(ip.ok()) << ip.status();
  EXPECT_TRUE(ip->is_ip);
  EXPECT_EQ(ip->port, 65535);
  EXPECT_TRUE(ParseRaftAddress("broker-0.svc.cluster.local:1").ok());
  EXPECT_TRUE(ParseRaftAddress(std::string(63, 'a') + ".svc:7071").ok());
}

TEST_F(RaftLogTest, AProposalToAFollowerFailsWithNotLeaderNamingTheLeader) {
  StartAll();
  int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  ProposeAtLeader("first");
  int follower = (leader + 1) % kMembers;
  // The follower learns who leads from the leader's heartbeats.
  ASSERT_TRUE(WaitUntil([&] { return machines_[follower]->status().leader == members_[leader]; }));
  absl::StatusOr<LogPosition> at = Propose(follower, "refused");
  EXPECT_EQ(at.status().code(), absl::StatusCode::kUnavailable);
  std::optional<Member> hint = LeaderHint(at.status());
  ASSERT_TRUE(hint.has_value()) << at.status();
  EXPECT_EQ(*hint, members_[leader]);
  ExpectIdenticalReplicas(1);
}

TEST_F(RaftLogTest, InvalidEntriesAndProposalsAfterStopAreRefused) {
  options_.max_entry_bytes = 1024;
  StartAll();
  int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  EXPECT_EQ(Propose(leader, "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Propose(leader, std::string(1025, 'x')).status().code(), absl::StatusCode::kInvalidArgument);
  ProposeAtLeader(std::string(1024, 'x'));
  logs_[leader]->Stop();
  EXPECT_EQ(logs_[leader]->status().role, Role::kStopped);
  EXPECT_EQ(Propose(leader, "late").status().code(), absl::StatusCode::kCancelled);
  logs_[leader].reset();
  ExpectIdenticalReplicas(1);
}

TEST_F(RaftLogTest, StoppingTheLeaderElectsANewOneWithinFiveSecondsAndLosesNothing) {
  StartAll();  // default timings: heartbeat 100 ms, election timeout 1 s
  int old_leader = WaitForLeader();
  ASSERT_GE(old_leader, 0);
  std::vector<Applied> acked;
  ProposeMany("before-", 10, acked);
  std::uint64_t old_term = TermOf(old_leader);
  absl::Time stopped = absl::Now();
  StopMember(old_leader);
  int new_leader = WaitForLeader(old_term, absl::Seconds(5));
  absl::Duration failover = absl::Now() - stopped;
  ASSERT_GE(new_leader, 0) << "no new leader within 5 s";
  EXPECT_NE(new_leader, old_leader);
  EXPECT_GT(TermOf(new_leader), old_term);
  RecordProperty("failover_ms", static_cast<int>(absl::ToInt64Milliseconds(failover)));
  for (int n = 0; n < 10; ++n) {
    std::string entry = absl::StrCat("after-", n);
    LogPosition at = ProposeAtLeader(entry);
    EXPECT_GT(at.term, old_term);
    acked.push_back(Applied{at, entry});
  }
  ExpectAcknowledged(new_leader, acked);
  // The old leader comes back as a follower and converges.
  StartMember(old_leader);
  ExpectIdenticalReplicas(acked.size());
  ExpectAcknowledged(old_leader, acked);
}

TEST_F(RaftLogTest, StoppingTheLeaderCompletesEveryProposalInFlight) {
  StartAll();
  int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  std::vector<runtime::TaskHandle<absl::StatusOr<LogPosition>>> inflight;
  for (int n = 0; n < 50; ++n) {
    inflight.push_back(runtime::Spawn(loop_, logs_[leader]->Propose(absl::StrCat("inflight-", n))));
  }
  loop_.RunUntil([&] { return inflight.front().Done(); });
  StopMember(leader);
  loop_.RunUntil([&] { return AllDone(inflight); });
  std::vector<Applied> acked;
  for (int n = 0; n < 50; ++n) {
    absl::StatusOr<LogPosition> at = inflight[n].TakeResult();
    if (at.ok()) {
      acked.push_back(Applied{*at, absl::StrCat("inflight-", n)});
    } else {
      // Appended but not known to be committed: the log decides.
      EXPECT_THAT(at.status().code(), ::testing::AnyOf(absl::StatusCode::kCancelled, absl::StatusCode::kAborted))
          << at.status();
    }
  }
  EXPECT_FALSE(acked.empty());
  StartMember(leader);
  // Once the new leader commits an entry of its own, everything before it is settled.
  LogPosition last = ProposeAtLeader("after");
  std::size_t count;
  {
    absl::MutexLock lock(&mu_);
    count = machines_[LeaderLocked()]->applied().size();
    EXPECT_EQ(machines_[LeaderLocked()]->applied().back().at, last);
  }
  ExpectIdenticalReplicas(count);
  for (int i = 0; i < kMembers; ++i) ExpectAcknowledged(i, acked);
}

TEST_F(RaftLogTest, AStoppedFollowerRestartsAndCatchesUpFromTheLog) {
  StartAll();
  int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  ProposeAtLeader("while-all-up");
  int follower = (leader + 1) % kMembers;
  ExpectIdenticalReplicas(1);
  StopMember(follower);
  std::vector<Applied> acked;
  ProposeMany("while-down-", 10, acked);
  StartMember(follower);  // an empty state machine: everything replays from disk and the leader
  ExpectIdenticalReplicas(11);
  ExpectAcknowledged(follower, acked);
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(machines_[follower]->restores(), 0);
}

TEST_F(RaftLogTest, AFollowerBehindTheLeadersLogCatchesUpFromASnapshot) {
  options_.snapshot_threshold = 8;
  options_.snapshot_trailing = 2;
  // The leader may send its first snapshot while the follower is still down.
  options_.snapshot_send_timeout = absl::Seconds(1);
  StartAll();
  int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  ProposeAtLeader("while-all-up");
  int follower = (leader + 1) % kMembers;
  ExpectIdenticalReplicas(1);
  StopMember(follower);
  std::vector<Applied> acked;
  ProposeMany("while-down-", 40, acked);
  StartMember(follower);
  ExpectIdenticalReplicas(41);
  ExpectAcknowledged(follower, acked);
  const ReplicationProgress at_leader = logs_[leader]->progress();
  EXPECT_GE(at_leader.snapshots_sent, 1u);
  // The leader's log keeps the 2 entries behind its last snapshot and no earlier one.
  EXPECT_GE(at_leader.snapshot_index, 8u);
  EXPECT_EQ(at_leader.first_index, at_leader.snapshot_index - 1);
  absl::MutexLock lock(&mu_);
  EXPECT_GE(machines_[follower]->restores(), 1) << "the follower was expected to install the leader's snapshot";
}

TEST_F(RaftLogTest, ASlowSnapshotRunsOffTheLogsThreadWhileProposalsCommitAndIsRestoredLater) {
  options_.snapshot_threshold = 8;
  options_.snapshot_trailing = 2;
  options_.snapshot_send_timeout = absl::Seconds(1);
  options_.snapshot_max_log_bytes = 0;  // every 8 entries: the leader's log soon passes the follower
  concurrent_snapshots_ = true;
  StartAll();
  int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  const std::uint64_t term = TermOf(leader);
  for (int n = 0; n < 8; ++n) ProposeAtLeader(absl::StrCat("before-", n));
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& m : machines_) {
      if (m->snapshots_started() == 0) return false;
    }
    return true;
  })) << "every member should be taking its first snapshot";
  // Every member's snapshot is held: the group still commits, and keeps its leader.
  std::vector<Applied> acked;
  ProposeMany("during-", 20, acked);
  EXPECT_EQ(WaitForLeader(), leader);
  EXPECT_EQ(TermOf(leader), term) << "a held snapshot cost the leader its leadership";
  ReleaseSnapshots();
  ExpectIdenticalReplicas(28);
  // The snapshot (whose state may be later than its position) brings a follower that
  // missed the log back.
  int follower = (leader + 1) % kMembers;
  StopMember(follower);
  ProposeMany("while-down-", 40, acked);
  StartMember(follower);
  ExpectIdenticalReplicas(68);
  ExpectAcknowledged(follower, acked);
  absl::MutexLock lock(&mu_);
  EXPECT_GE(machines_[follower]->restores(), 1) << "the follower was expected to install the leader's snapshot";
}

TEST_F(RaftLogTest, StoppingAMemberAbandonsTheSnapshotItIsExporting) {
  options_.snapshot_threshold = 8;
  concurrent_snapshots_ = true;
  StartAll();
  for (int n = 0; n < 8; ++n) ProposeAtLeader(absl::StrCat("entry-", n));
  const int member = 0;
  ASSERT_TRUE(WaitUntil([&] { return machines_[member]->snapshots_started() > 0; }));
  // Its export is held (and never released): Stop must not wait for it.
  const absl::Time start = absl::Now();
  StopMember(member);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(RaftLogTest, ASnapshotWaitsForAsManyLogBytesAsTheLastOneHeld) {
  // Each member's state is every entry it applied, so it grows with the log: by count,
  // 64 entries make 16 snapshots; by size each one waits for the log to hold as much
  // as the last snapshot, so the state doubles between snapshots (4, 8, 16, 32, 64).
  options_.snapshot_threshold = 4;
  options_.snapshot_trailing = 2;
  StartAll();
  const std::string kilobyte(1000, 'x');
  for (int n = 0; n < 64; ++n) ProposeAtLeader(absl::StrCat(n, kilobyte));
  ExpectIdenticalReplicas(64);
  absl::MutexLock lock(&mu_);
  for (int i = 0; i < kMembers; ++i) {
    EXPECT_GE(machines_[i]->snapshots_taken(), 3) << "member " << i + 1;
    EXPECT_LE(machines_[i]->snapshots_taken(), 7) << "member " << i + 1;
  }
}

// The leader's last index minus what follower i is known to hold (nullopt: the leader
// does not list it), from the leader's published progress.
std::optional<std::uint64_t> LagOf(const ReplicationProgress& p, std::uint64_t id) {
  for (const MemberProgress& m : p.members) {
    if (m.member.id == id && m.match_index.has_value()) return p.last_index - *m.match_index;
  }
  return std::nullopt;
}

TEST_F(RaftLogTest, TheLeaderPublishesEachFollowersLagWhichGrowsWhileAFollowerIsStopped) {
  StartAll();
  int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  for (int n = 0; n < 10; ++n) ProposeAtLeader(absl::StrCat("all-up-", n));
  const int stopped = (leader + 1) % kMembers, running = (leader + 2) % kMembers;
  // Progress is published at every turn of the leader's loop: poll it.
  auto poll = [&](absl::FunctionRef<bool(const ReplicationProgress&)> pred) {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    ReplicationProgress p = logs_[leader]->progress();
    while (!pred(p) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
      p = logs_[leader]->progress();
    }
    return p;
  };
  ReplicationProgress p = poll([&](const ReplicationProgress& p) {
    return LagOf(p, members_[stopped].id) == 0u && LagOf(p, members_[running].id) == 0u &&
           p.commit_index == p.last_index;
  });
  EXPECT_EQ(LagOf(p, members_[stopped].id), 0u);
  EXPECT_EQ(LagOf(p, members_[running].id), 0u);
  EXPECT_EQ(p.role, Role::kLeader);
  EXPECT_EQ(p.voters(), 3u);
  EXPECT_GE(p.commit_index, 10u);
  EXPECT_EQ(p.commit_index, p.last_index);
  // A follower knows the configuration but not the others' progress.
  ReplicationProgress at_follower = logs_[running]->progress();
  EXPECT_EQ(at_follower.voters(), 3u);
  EXPECT_EQ(LagOf(at_follower, members_[leader].id), std::nullopt);

  StopMember(stopped);
  std::vector<Applied> acked;
  ProposeMany("one-down-", 10, acked);
  p = poll([&](const ReplicationProgress& p) {
    return LagOf(p, members_[running].id) == 0u && p.commit_index == p.last_index;
  });
  EXPECT_GE(LagOf(p, members_[stopped].id).value_or(0), 10u);
  EXPECT_EQ(LagOf(p, members_[running].id), 0u);
  EXPECT_EQ(p.commit_index, p.last_index);

  StartMember(stopped);
  ExpectIdenticalReplicas(20);
  ExpectAcknowledged(stopped, acked);
  p = poll([&](const ReplicationProgress& p) { return LagOf(p, members_[stopped].id) == 0u; });
  EXPECT_EQ(LagOf(p, members_[stopped].id), 0u);
}

}  // namespace
}  // namespace cohort::replication

namespace cohort::replication {
namespace {

// The members of `p`'s configuration that vote, by id.
std::vector<std::uint64_t> VoterIds(const ReplicationProgress& p) {
  std::vector<std::uint64_t> ids;
  for (const MemberProgress& m : p.members) {
    if (m.role == MemberRole::kVoter) ids.push_back(m.member.id);
  }
  return ids;
}

TEST_F(RaftLogTest, AJoiningMemberIsAddedCatchesUpAndVotesAndARemovedOneLeavesTheConfiguration) {
  options_.snapshot_threshold = 8;  // the newcomer needs the snapshot and the log after it
  options_.snapshot_trailing = 2;
  options_.peer_secret = kSecret;  // the snapshot and the catch-up over authenticated streams
  StartAll();
  int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  std::vector<Applied> acked;
  ProposeMany("before-join-", 20, acked);
  // Member 4 starts empty with join: it must not bootstrap a configuration of its own.
  Member newcomer{4, absl::StrCat("127.0.0.1:", FreePort())};
  RecordingMachine machine(&mu_, &changed_);
  RaftLogOptions options = options_;
  options.self = newcomer;
  options.members = {newcomer};
  options.dir = TempDir();
  options.join = true;
  absl::StatusOr<std::unique_ptr<RaftLog>> joined = RaftLog::Start(options, &machine);
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_TRUE((*joined)->progress().members.empty());

  absl::Status added = runtime::RunUntilComplete(loop_, logs_[leader]->AddMember(newcomer));
  ASSERT_TRUE(added.ok()) << added;
  ReplicationProgress p = logs_[leader]->progress();
  EXPECT_THAT(VoterIds(p), ::testing::UnorderedElementsAre(1, 2, 3, 4));
  // Adding it again is a no-op; at another address it is refused.
  EXPECT_TRUE(runtime::RunUntilComplete(loop_, logs_[leader]->AddMember(newcomer)).ok());
  EXPECT_EQ(runtime::RunUntilComplete(loop_, logs_[leader]->AddMember(Member{4, "127.0.0.1:1"})).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(runtime::RunUntilComplete(loop_, logs_[leader]->AddMember(Member{9, newcomer.address})).code(),
            absl::StatusCode::kAlreadyExists);

  // Back to three voters, the newcomer one of them: with the removed member stopped,
  // every commit below needs the newcomer's or the other follower's vote.
  const int removed = (leader + 1) % kMembers;
  absl::Status gone = runtime::RunUntilComplete(loop_, logs_[leader]->RemoveMember(members_[removed].id));
  ASSERT_TRUE(gone.ok()) << gone;
  EXPECT_EQ(VoterIds(logs_[leader]->progress()).size(), 3u);
  StopMember(removed);
  ProposeMany("after-change-", 5, acked);
  // The newcomer holds everything acknowledged, in the same positions as the leader.
  ASSERT_TRUE(WaitUntil([&] { return machine.applied().size() == machines_[leader]->applied().size(); }));
  {
    absl::MutexLock lock(&mu_);
    EXPECT_THAT(machine.applied(), ElementsAreArray(machines_[leader]->applied()));
  }
  ExpectIdenticalReplicas(acked.size());
  EXPECT_EQ(VoterIds((*joined)->progress()).size(), 3u);
  EXPECT_GE(logs_[leader]->progress().snapshots_sent, 1u) << "the newcomer was expected to need a snapshot";
  (*joined)->Stop();
}

TEST_F(RaftLogTest, MembershipChangesAreRefusedWithClearErrors) {
  options_.catch_up_round_timeout = absl::Milliseconds(500);
  StartAll();
  int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  ProposeAtLeader("first");
  const int follower = (leader + 1) % kMembers;
  ASSERT_TRUE(WaitUntil([&] { return machines_[follower]->status().leader == members_[leader]; }));
  auto add = [&](int at, Member m) { return runtime::RunUntilComplete(loop_, logs_[at]->AddMember(std::move(m))); };
  auto remove = [&](int at, std::uint64_t id) { return runtime::RunUntilComplete(loop_, logs_[at]->RemoveMember(id)); };

  absl::Status at_follower = add(follower, Member{5, "127.0.0.1:7071"});
  EXPECT_EQ(at_follower.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(LeaderHint(at_follower), members_[leader]);
  EXPECT_EQ(LeaderHint(remove(follower, 5)), members_[leader]);
  EXPECT_EQ(add(leader, Member{0, "127.0.0.1:7071"}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(add(leader, Member{2'000'000, "127.0.0.1:7071"}).code(), absl::StatusCode::kInvalidArgument);
  absl::Status bad_address = add(leader, Member{5, std::string(300, 'a') + ":7071"});
  EXPECT_EQ(bad_address.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LE(bad_address.message().size(), 512u);
  EXPECT_EQ(add(leader, Member{5, "127.0.0.1:0"}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(remove(leader, 0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(remove(leader, 7).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(remove(leader, members_[leader].id).code(), absl::StatusCode::kFailedPrecondition);

  // Nobody listens at the new member's address: the promotion gives up, the member
  // stays a spare without a vote, and the group goes on committing.
  Member absent{5, absl::StrCat("127.0.0.1:", FreePort())};
  EXPECT_EQ(add(leader, absent).code(), absl::StatusCode::kDeadlineExceeded);
  ReplicationProgress p = logs_[leader]->progress();
  EXPECT_EQ(VoterIds(p).size(), 3u);
  EXPECT_EQ(p.members.size(), 4u);
  ProposeAtLeader("after-failed-add");
  // The spare is removed like any member.
  absl::Status removed = remove(leader, absent.id);
  EXPECT_TRUE(removed.ok()) << removed;
  EXPECT_EQ(logs_[leader]->progress().members.size(), 3u);
  ExpectIdenticalReplicas(2);
}

TEST_F(RaftLogTest, AFollowerKnowsTheLeadersCommitIndexAndWhenItLastHeardALeader) {
  StartAll();
  int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  LogPosition last;
  for (int n = 0; n < 5; ++n) last = ProposeAtLeader(absl::StrCat("entry-", n));
  const int follower = (leader + 1) % kMembers;
  // The follower learns it from the leader's next AppendEntries (a heartbeat at most).
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  ReplicationProgress p = logs_[follower]->progress();
  while (p.leader_commit < last.index && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));  // polling: progress is published at every turn of the follower's loop
    p = logs_[follower]->progress();
  }
  EXPECT_GE(p.leader_commit, last.index);
  ASSERT_TRUE(p.leader_contact.has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - *p.leader_contact, std::chrono::seconds(1));
  EXPECT_GE(logs_[leader]->progress().leader_commit, last.index);
  // The leader hears each follower (their answers to its heartbeats).
  for (const MemberProgress& m : logs_[leader]->progress().members) {
    if (m.member == members_[leader]) {
      EXPECT_FALSE(m.last_heard.has_value());
      continue;
    }
    ASSERT_TRUE(m.last_heard.has_value()) << "member " << m.member.id;
    EXPECT_LT(std::chrono::steady_clock::now() - *m.last_heard, std::chrono::seconds(1)) << "member " << m.member.id;
  }

  // Alone, the follower hears no leader any more: its last contact stays where it was.
  StopMember(leader);
  StopMember((leader + 2) % kMembers);
  const auto heard = logs_[follower]->progress().leader_contact;
  ASSERT_TRUE(heard.has_value());
  ASSERT_TRUE(WaitUntil([&] { return machines_[follower]->status().role != Role::kFollower ||
                                     !machines_[follower]->status().leader.has_value(); }));
  EXPECT_EQ(logs_[follower]->progress().leader_contact, heard);
  EXPECT_GE(logs_[follower]->progress().leader_commit, last.index);
}

TEST_F(RaftLogTest, LeadershipMovesToTheNamedVoterWithoutAnElectionTimeoutAndLosesNothing) {
  // An election timeout this long would show: a transfer needs none.
  options_.election_timeout = absl::Seconds(5);
  StartAll();
  const int leader = WaitForLeader(0, absl::Seconds(15));
  ASSERT_GE(leader, 0);
  const std::uint64_t term = TermOf(leader);
  std::vector<Applied> acked;
  ProposeMany("before-", 5, acked);
  const int target = (leader + 1) % kMembers;

  // Proposals in flight while leadership moves: each acknowledged one is kept, the
  // others fail (UNAVAILABLE: not appended; ABORTED: may have committed).
  std::vector<runtime::TaskHandle<absl::StatusOr<LogPosition>>> inflight;
  for (int n = 0; n < 20; ++n) {
    inflight.push_back(runtime::Spawn(loop_, logs_[leader]->Propose(absl::StrCat("during-", n))));
  }
  const absl::Time asked = absl::Now();
  absl::Status moved = runtime::RunUntilComplete(loop_, logs_[leader]->TransferLeadership(members_[target].id));
  ASSERT_TRUE(moved.ok()) << moved;
  ASSERT_EQ(WaitForLeader(term, absl::Seconds(5)), target);
  const absl::Duration took = absl::Now() - asked;
  std::cout << "leadership moved to member " << target + 1 << " in " << took << std::endl;
  EXPECT_LT(took, absl::Seconds(3)) << "no faster than an election timeout";
  EXPECT_EQ(TermOf(target), term + 1);
  loop_.RunUntil([&] { return AllDone(inflight); });
  for (int n = 0; n < 20; ++n) {
    absl::StatusOr<LogPosition> at = inflight[n].TakeResult();
    if (at.ok()) {
      acked.push_back(Applied{*at, absl::StrCat("during-", n)});
    } else {
      EXPECT_TRUE(at.status().code() == absl::StatusCode::kUnavailable ||
                  at.status().code() == absl::StatusCode::kAborted)
          << at.status();
    }
  }
  // The old leader follows; the new one commits.
  absl::StatusOr<LogPosition> refused = Propose(leader, "at-the-old-leader");
  EXPECT_EQ(LeaderHint(refused.status()), members_[target]);
  const LogPosition last = ProposeAtLeader("after");
  EXPECT_EQ(last.term, term + 1);
  acked.push_back(Applied{last, "after"});
  std::size_t count;
  {
    absl::MutexLock lock(&mu_);
    count = machines_[target]->applied().size();
  }
  ExpectIdenticalReplicas(count);
  for (int i = 0; i < kMembers; ++i) ExpectAcknowledged(i, acked);
}

TEST_F(RaftLogTest, LeadershipTransfersAreRefusedWithClearErrors) {
  StartAll();
  const int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  const int follower = (leader + 1) % kMembers;
  auto transfer = [&](int at, std::uint64_t to) {
    return runtime::RunUntilComplete(loop_, logs_[at]->TransferLeadership(to));
  };
  EXPECT_EQ(LeaderHint(transfer(follower, members_[leader].id)), members_[leader]);
  EXPECT_EQ(transfer(leader, 99).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(transfer(leader, 1'000'001).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(transfer(leader, members_[leader].id).ok()) << "it leads already";
  // A target that is down does not take over: the leader keeps leading, and what was
  // proposed while it tried is committed, not refused.
  StopMember(follower);
  runtime::TaskHandle<absl::Status> late =
      runtime::Spawn(loop_, logs_[leader]->TransferLeadership(members_[follower].id));
  std::vector<runtime::TaskHandle<absl::StatusOr<LogPosition>>> during;
  for (int n = 0; n < 10; ++n) during.push_back(runtime::Spawn(loop_, logs_[leader]->Propose(absl::StrCat("held-", n))));
  loop_.RunUntil([&] { return late.Done() && AllDone(during); });
  EXPECT_EQ(late.TakeResult().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(WaitForLeader(), leader);
  std::vector<Applied> acked;
  for (int n = 0; n < 10; ++n) {
    absl::StatusOr<LogPosition> at = during[n].TakeResult();
    ASSERT_TRUE(at.ok()) << "proposal " << n << " during the failed transfer: " << at.status();
    acked.push_back(Applied{*at, absl::StrCat("held-", n)});
  }
  absl::StatusOr<LogPosition> at = Propose(leader, "still-leading");
  ASSERT_TRUE(at.ok()) << at.status();
  acked.push_back(Applied{*at, "still-leading"});
  ExpectIdenticalReplicas(acked.size());
  for (int i = 0; i < kMembers; ++i) {
    if (i != follower) ExpectAcknowledged(i, acked);
  }
}

// Peer authentication (RaftLogOptions::peer_secret). Progress is published at every
// turn of a member's loop: these poll it, with a generous bound.
ReplicationProgress PollProgress(const RaftLog& log, absl::FunctionRef<bool(const ReplicationProgress&)> pred) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  ReplicationProgress p = log.progress();
  while (!pred(p) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
    p = log.progress();
  }
  return p;
}

// A blocking TCP client of a member's raft port, as an attacker without the secret.
class RawClient {
 public:
  explicit RawClient(const Member& member) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(member.address.substr(member.address.rfind(':') + 1))));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval timeout{30, 0};  // a bound on every read: far beyond any deadline tested
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~RawClient() { close(fd_); }

  bool connected() const { return connected_; }
  void Send(const std::string& bytes) { EXPECT_EQ(send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size())); }

  // The next `n` bytes the member sent (fewer if it closed the stream first).
  std::string ReadExactly(std::size_t n) {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
      const ssize_t r = recv(fd_, out.data() + got, n - got, 0);
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
    out.resize(got);
    return out;
  }

  // Reads until the member closes the stream: the bytes it sent, or nullopt if the read
  // timed out (the stream stayed open).
  std::optional<std::string> ReadUntilClosed() {
    std::string out;
    char buffer[4096];
    for (;;) {
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n > 0) {
        out.append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno == ECONNRESET) {
        return out;
      } else {
        return std::nullopt;
      }
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

TEST_F(RaftLogTest, MembersSharingASecretAuthenticateEveryStreamAndCommit) {
  options_.peer_secret = kSecret;
  StartAll();
  ASSERT_GE(WaitForLeader(), 0);
  std::vector<Applied> acked;
  ProposeMany("authenticated-", 10, acked);
  ExpectIdenticalReplicas(acked.size());
  for (int i = 0; i < kMembers; ++i) {
    const ReplicationProgress p = logs_[i]->progress();
    EXPECT_EQ(p.peer_auth_refused_accept, 0u) << "member " << i + 1;
    EXPECT_EQ(p.peer_auth_refused_connect, 0u) << "member " << i + 1;
  }
}

TEST_F(RaftLogTest, AMemberWithAnotherSecretIsNeverAdmittedWhileTheMajorityCommits) {
  options_.peer_secret = kSecret;
  StartMember(0);
  StartMember(1);
  // Member 3 has the group's configuration, but not its secret.
  machines_[2] = std::make_unique<RecordingMachine>(&mu_, &changed_);
  RaftLogOptions intruder = Options(2);
  intruder.peer_secret = "another-secret-of-32-bytes-or-more-bbbbbbb";
  absl::StatusOr<std::unique_ptr<RaftLog>> log = RaftLog::Start(intruder, machines_[2].get());
  ASSERT_TRUE(log.ok()) << log.status();
  logs_[2] = std::move(*log);

  const int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  ASSERT_NE(leader, 2);
  std::vector<Applied> acked;
  ProposeMany("majority-", 10, acked);
  // The leader's connections to member 3 are refused by member 3's check of its proof
  // (counted there on accept) and by the leader's check of member 3's (on connect);
  // member 3's own connects (its pre-votes) are refused by the others.
  const ReplicationProgress at_leader =
      PollProgress(*logs_[leader], [](const ReplicationProgress& p) { return p.peer_auth_refused_connect > 0; });
  EXPECT_GT(at_leader.peer_auth_refused_connect, 0u);
  const ReplicationProgress at_intruder = PollProgress(*logs_[2], [](const ReplicationProgress& p) {
    return p.peer_auth_refused_accept > 0 && p.peer_auth_refused_connect > 0;
  });
  EXPECT_GT(at_intruder.peer_auth_refused_accept, 0u);
  EXPECT_GT(at_intruder.peer_auth_refused_connect, 0u);
  {
    absl::MutexLock lock(&mu_);
    EXPECT_TRUE(machines_[2]->applied().empty()) << "member 3 received entries without the secret";
    EXPECT_NE(machines_[2]->status().role, Role::kLeader);
    EXPECT_EQ(machines_[2]->status().leader, std::nullopt) << "member 3 heard a leader without the secret";
  }
  StopMember(2);
  ExpectIdenticalReplicas(acked.size());
}

TEST_F(RaftLogTest, ARawClientThatSendsGarbageOrNothingIsDisconnectedAndTheGroupCommits) {
  const int target = StartAuthenticated(absl::Seconds(1));
  ASSERT_GE(target, 0);

  // Silent: the member sends its 32-byte nonce, then closes the stream at the deadline.
  RawClient silent(members_[target]);
  ASSERT_TRUE(silent.connected());
  const absl::Time start = absl::Now();
  std::optional<std::string> sent = silent.ReadUntilClosed();
  const absl::Duration open_for = absl::Now() - start;
  ASSERT_TRUE(sent.has_value()) << "the silent stream was still open after 30 s";
  EXPECT_EQ(sent->size(), 32u);
  EXPECT_GE(open_for, absl::Milliseconds(900));
  EXPECT_LT(open_for, absl::Seconds(10));

  // Garbage (libraft's own preamble is garbage too: the proof comes first): closed once
  // the 64 bytes of the proof are in, before any raft byte is read or answered.
  RawClient garbage(members_[target]);
  ASSERT_TRUE(garbage.connected());
  EXPECT_EQ(garbage.ReadExactly(32).size(), 32u);
  garbage.Send(std::string(4096, '\x01'));
  sent = garbage.ReadUntilClosed();
  ASSERT_TRUE(sent.has_value()) << "the garbage stream was still open after 30 s";
  EXPECT_EQ(*sent, "") << "no reply to a wrong proof";

  const ReplicationProgress p =
      PollProgress(*logs_[target], [](const ReplicationProgress& p) { return p.peer_auth_refused_accept >= 2; });
  EXPECT_EQ(p.peer_auth_refused_accept, 2u);
  std::vector<Applied> acked;
  ProposeMany("after-garbage-", 5, acked);
  ExpectIdenticalReplicas(acked.size());

  // Stopping a member while a handshake is in flight cancels it and closes cleanly.
  RawClient pending(members_[target]);
  ASSERT_TRUE(pending.connected());
  StopMember(target);
  sent = pending.ReadUntilClosed();
  ASSERT_TRUE(sent.has_value());
  ProposeMany("one-stopped-", 3, acked);
  ExpectIdenticalReplicas(acked.size());
}

std::string MacBytes(const Sha256Mac& mac) { return std::string(reinterpret_cast<const char*>(mac.data()), mac.size()); }

// The connector's side of the handshake (raft_dns_transport.h) with the group's secret,
// its proof split over three writes (the member must assemble it from partial reads);
// fails the test unless the member answers with its own proof.
// Returns nonceA (the member's), for the stream's keys.
std::string ProveTheSecret(RawClient& client) {
  const std::string nonce_a = client.ReadExactly(32);
  EXPECT_EQ(nonce_a.size(), 32u) << "the member closed the stream before its nonce";
  const std::string nonce_c(32, 'c');
  const std::string proof = MacBytes(HmacSha256(kSecret, {"cohort-raft-v2 connector", nonce_a, nonce_c})) + nonce_c;
  client.Send(proof.substr(0, 1));
  client.Send(proof.substr(1, 40));
  client.Send(proof.substr(41));
  EXPECT_EQ(client.ReadExactly(32), MacBytes(HmacSha256(kSecret, {"cohort-raft-v2 acceptor", nonce_c, nonce_a})))
      << "the member's proof";
  return nonce_a;
}

// A peer holding the secret that goes away, or stalls, once the member has verified its
// proof is not a refusal: only a proof judged wrong, or silence before any proof, is.
TEST_F(RaftLogTest, AProvenPeerThatGoesAwayOrStallsMidHandshakeIsNotCountedAsARefusal) {
  const int target = StartAuthenticated(absl::Seconds(1));
  ASSERT_GE(target, 0);

  {
    RawClient gone(members_[target]);  // proves the secret, then closes the stream
    ASSERT_TRUE(gone.connected());
    ProveTheSecret(gone);
  }
  RawClient stalled(members_[target]);  // proves the secret, then sends no preamble
  ASSERT_TRUE(stalled.connected());
  ProveTheSecret(stalled);
  std::optional<std::string> sent = stalled.ReadUntilClosed();
  ASSERT_TRUE(sent.has_value()) << "the stalled stream was still open after 30 s";
  EXPECT_EQ(*sent, "");

  // One refusal, counted after the two streams above were closed.
  RawClient garbage(members_[target]);
  ASSERT_TRUE(garbage.connected());
  EXPECT_EQ(garbage.ReadExactly(32).size(), 32u);
  garbage.Send(std::string(64, '\x01'));
  sent = garbage.ReadUntilClosed();
  ASSERT_TRUE(sent.has_value());
  const ReplicationProgress p =
      PollProgress(*logs_[target], [](const ReplicationProgress& p) { return p.peer_auth_refused_accept >= 1; });
  EXPECT_EQ(p.peer_auth_refused_accept, 1u) << "only the wrong proof is a refusal";
}

// libraft's TCP preamble (uv_tcp_connect.c): protocol 1, the server id, the padded
// address length, the NUL-terminated address padded to 8 bytes, little-endian.
std::string RaftPreamble(std::uint64_t id, const std::string& address) {
  std::string out;
  const std::uint64_t padded = (address.size() + 1 + 7) / 8 * 8;
  for (std::uint64_t v : {std::uint64_t{1}, id, padded}) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  out += address;
  out.resize(24 + padded, '\0');
  return out;
}

// Once the handshake is through, the stream is libraft's, through its encryption, with
// every byte the connector sealed after the preamble still unread, however TCP split it:
// here libraft itself closes the stream on the raft message right behind the preamble
// (its header length is 0), long before the handshake's deadline. The same message in
// plaintext is a record that does not verify: the stream is closed too, and counted. A
// handshake stopped halfway by the member stopping closes cleanly.
TEST_F(RaftLogTest, AfterTheHandshakeLibraftReadsTheBytesRightBehindThePreamble) {
  const int target = StartAuthenticated(absl::Minutes(1));
  ASSERT_GE(target, 0);
  const std::string preamble = RaftPreamble(99, "127.0.0.1:9");
  ASSERT_EQ(preamble.size(), 40u);

  RawClient client(members_[target]);
  ASSERT_TRUE(client.connected());
  const std::string nonce_a = ProveTheSecret(client);
  ASSERT_FALSE(::testing::Test::HasFailure());
  client.Send(preamble.substr(0, 10));
  client.Send(preamble.substr(10, 20));
  std::string sealed;
  RecordSealer(DeriveStreamKeys(kSecret, nonce_a, std::string(32, 'c'), preamble).connector_to_acceptor)
      .Seal(std::string(16, '\0'), sealed);  // a message preamble
  client.Send(preamble.substr(30) + sealed.substr(0, 7));  // the address's end, then part of the record
  client.Send(sealed.substr(7));
  const absl::Time start = absl::Now();
  std::optional<std::string> sent = client.ReadUntilClosed();
  ASSERT_TRUE(sent.has_value()) << "libraft never read the message behind the preamble";
  EXPECT_EQ(*sent, "");
  EXPECT_LT(absl::Now() - start, absl::Seconds(20)) << "closed by the deadline, not by libraft";
  EXPECT_EQ(logs_[target]->progress().peer_auth_refused_accept, 0u);

  RawClient plaintext(members_[target]);
  ASSERT_TRUE(plaintext.connected());
  ProveTheSecret(plaintext);
  plaintext.Send(preamble + std::string(32, '\0'));
  sent = plaintext.ReadUntilClosed();
  ASSERT_TRUE(sent.has_value()) << "a stream sending plaintext after the handshake stayed open";
  EXPECT_EQ(*sent, "");
  const ReplicationProgress p =
      PollProgress(*logs_[target], [](const ReplicationProgress& p) { return p.peer_records_rejected >= 1; });
  EXPECT_EQ(p.peer_records_rejected, 1u);
  EXPECT_EQ(p.peer_auth_refused_accept, 0u);

  RawClient halfway(members_[target]);
  ASSERT_TRUE(halfway.connected());
  ProveTheSecret(halfway);
  halfway.Send(preamble.substr(0, 28));  // the acceptor waits for the rest of the address
  StopMember(target);
  ASSERT_TRUE(halfway.ReadUntilClosed().has_value());
}

// Starts the group with members 1 and 2 reaching member 3 through a proxy that records
// what they send it, and commits `acked` ("confidential-entry-N") on every member. Member
// 3 starts once one of the others leads, so that the leader sends it the log through the
// proxy (libraft answers a message at the address its sender announced, not through it).
std::unique_ptr<cohort::testing::FaultProxy> RaftLogTest::StartWithTheThirdMemberBehindARecorder(
    std::vector<Applied>& acked) {
  absl::StatusOr<std::unique_ptr<cohort::testing::FaultProxy>> proxy =
      cohort::testing::FaultProxy::Start(members_[2].address);
  EXPECT_TRUE(proxy.ok()) << proxy.status();
  if (!proxy.ok()) return nullptr;
  (*proxy)->Record();
  reached_at_[2] = (*proxy)->address();
  StartMember(0);
  StartMember(1);
  EXPECT_GE(WaitForLeader(), 0);
  StartMember(2);
  ProposeMany("confidential-entry-", 5, acked);
  ExpectIdenticalReplicas(acked.size());
  EXPECT_GT((*proxy)->Recorded().size(), 0u) << "nothing went through the proxy";
  return *std::move(proxy);
}

// What members send each other travels encrypted: no entry shows on the wire. Bytes
// lost on the way (the proxy drops them for a while) make the next record fail: the
// stream is closed and counted, libraft reconnects, and the member catches up.
TEST_F(RaftLogTest, TheLogTravelsBetweenMembersEncrypted) {
  options_.peer_secret = kSecret;
  std::vector<Applied> acked;
  std::unique_ptr<cohort::testing::FaultProxy> proxy = StartWithTheThirdMemberBehindARecorder(acked);
  ASSERT_NE(proxy, nullptr);
  EXPECT_EQ(proxy->Recorded().find("confidential-entry-"), std::string::npos) << "an entry travelled in plaintext";

  proxy->Drop();
  ProposeMany("while-dropped-", 3, acked);  // committed by members 1 and 2
  proxy->Heal();
  ProposeMany("after-heal-", 3, acked);
  const ReplicationProgress p =
      PollProgress(*logs_[2], [](const ReplicationProgress& p) { return p.peer_records_rejected >= 1; });
  EXPECT_GE(p.peer_records_rejected, 1u) << "a stream with records missing went on";
  ExpectIdenticalReplicas(acked.size());
}

// ... where, without a secret, the same recording shows the entries.
TEST_F(RaftLogTest, WithoutASecretTheLogTravelsInPlaintext) {
  std::vector<Applied> acked;
  std::unique_ptr<cohort::testing::FaultProxy> proxy = StartWithTheThirdMemberBehindARecorder(acked);
  ASSERT_NE(proxy, nullptr);
  EXPECT_NE(proxy->Recorded().find("confidential-entry-"), std::string::npos);
}

// Silent connections holding every handshake slot do not keep a peer out: the oldest
// one still waiting for its proof gives way to a new stream.
TEST_F(RaftLogTest, SilentConnectionsHoldingEveryHandshakeSlotDoNotKeepAPeerOut) {
  options_.peer_secret = kSecret;
  options_.peer_handshake_timeout = absl::Minutes(1);  // the slots stay taken throughout
  StartAll();
  const int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  const int target = (leader + 1) % kMembers;
  constexpr int kSlots = 64;
  std::vector<std::unique_ptr<RawClient>> silent;
  for (int i = 0; i < kSlots; ++i) {
    silent.push_back(std::make_unique<RawClient>(members_[target]));
    ASSERT_TRUE(silent.back()->connected());
    ASSERT_EQ(silent.back()->ReadExactly(32).size(), 32u) << "silent stream " << i << " holds a slot";
  }
  RawClient peer(members_[target]);
  ASSERT_TRUE(peer.connected());
  ASSERT_NO_FATAL_FAILURE(ProveTheSecret(peer));
  const std::optional<std::string> oldest = silent.front()->ReadUntilClosed();
  ASSERT_TRUE(oldest.has_value()) << "the oldest silent stream was still open after 30 s";
  EXPECT_EQ(*oldest, "");
  std::vector<Applied> acked;
  ProposeMany("under-flood-", 3, acked);
  ExpectIdenticalReplicas(acked.size());
}

TEST_F(RaftLogTest, AShortSecretOrHandshakeTimeoutOutOfRangeIsRefused) {
  RecordingMachine machine(&mu_, &changed_);
  RaftLogOptions options = Options(0);
  options.peer_secret = "too-short";
  EXPECT_EQ(RaftLog::Start(options, &machine).status().code(), absl::StatusCode::kInvalidArgument);
  options = Options(0);
  options.peer_handshake_timeout = absl::ZeroDuration();
  EXPECT_EQ(RaftLog::Start(options, &machine).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cohort::replication
