#include "services/broker/replica.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"
#include "libs/runtime/runtime.h"
#include "libs/runtime/sleep.h"
#include "libs/store/rocks_job_store.h"

namespace cohort::broker {
namespace {

const log::Logger kLog("broker");

const char* RoleName(replication::Role role) {
  switch (role) {
    case replication::Role::kFollower:
      return "follower";
    case replication::Role::kCandidate:
      return "candidate";
    case replication::Role::kLeader:
      return "leader";
    case replication::Role::kStopped:
      return "stopped";
  }
  return "unknown";
}

// Crash-only: the in-memory engine of a past term must not serve a single call more.
// What was acknowledged is committed on a majority; the supervisor restarts us.
// `planned`: a leadership transfer asked for it (logged at info, not as an error).
[[noreturn]] void ExitLostLeadership(const std::string& reason, bool planned = false) {
  kLog.Log(planned ? log::Level::kInfo : log::Level::kError,
           planned ? "leadership handed over: exiting to restart as a follower"
                   : "leadership lost while serving: exiting to restart as a follower",
           {{"reason", reason}, {"exit_code", absl::StrCat(kExitLostLeadership)}}, log::CallSite::Here());
  std::fflush(nullptr);
  std::_Exit(kExitLostLeadership);
}

// A stopping replica whose last commits cannot be made (see Replica::RequestStop).
[[noreturn]] void ExitStopping(const std::string& reason) {
  kLog.Warn("stopping without the last commits, which were not acknowledged: the group's majority is gone",
            {{"reason", reason}, {"exit_code", "0"}});
  std::fflush(nullptr);
  std::_Exit(0);
}

std::int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

absl::Status MakeDirectory(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) return absl::UnavailableError(absl::StrCat("cannot create ", path, ": ", error.message()));
  return absl::OkStatus();
}

// How often a commit refused during a leadership transfer looks whether it has ended.
constexpr runtime::Duration kHandoverPoll = std::chrono::milliseconds(10);

}  // namespace

// The engine's store while this replica serves: the replicated store, except that a
// commit that failed because leadership moved ends the process (see Replica); during
// a TransferLeadership it first waits for FinishHandover, so that the transfer's
// TimeoutNow goes out and its caller hears the outcome.
class LeaderStore final : public store::JobStore {
 public:
  explicit LeaderStore(Replica& replica) : replica_(replica), store_(*replica.store_) {}

  runtime::Task<absl::StatusOr<std::unique_ptr<store::JobRecovery>>> Recover(store::RecoverOptions options) override {
    return store_.Recover(options);
  }
  runtime::Task<absl::Status> Commit(store::JobBatch batch) override {
    replica_.commits_in_flight_.fetch_add(1);
    absl::Status status = co_await store_.Commit(std::move(batch));
    replica_.last_progress_ns_.store(SteadyNanos());
    replica_.commits_in_flight_.fetch_sub(1);
    if (status.code() == absl::StatusCode::kUnavailable || status.code() == absl::StatusCode::kAborted ||
        status.code() == absl::StatusCode::kCancelled) {
      if (replica_.stop_requested_.load()) ExitStopping(absl::StrCat("commit failed: ", status.ToString()));
      if (replica_.handing_over_.load()) {
        replica_.commit_failed_.store(true);
        // Polling: the transfer ends on another task (FinishHandover, at gRPC's OnDone).
        while (replica_.handing_over_.load()) co_await runtime::Sleep(kHandoverPoll);
      }
      ExitLostLeadership(absl::StrCat("commit failed: ", status.ToString()));
    }
    co_return status;
  }
  runtime::Task<absl::StatusOr<cohort::v1::Job>> GetJob(std::string id) override {
    return store_.GetJob(std::move(id));
  }
  runtime::Task<absl::StatusOr<std::vector<cohort::v1::JobEvent>>> ReadEvents(std::int64_t from_sequence,
                                                                              std::size_t max_count,
                                                                              std::size_t max_bytes) override {
    return store_.ReadEvents(from_sequence, max_count, max_bytes);
  }
  store::JobStoreStats stats() const override { return store_.stats(); }
  store::BatchLimits limits() const override { return store_.limits(); }

 private:
  Replica& replica_;
  replication::ReplicatedJobStore& store_;
};

absl::StatusOr<std::string> StoreDigest(const std::string& store_dir) {
  if (!std::filesystem::is_directory(store_dir)) return absl::NotFoundError(absl::StrCat("no replica store in ", store_dir));
  absl::StatusOr<std::unique_ptr<store::RocksJobStore>> store = store::RocksJobStore::Open({.path = store_dir});
  if (!store.ok()) return store.status();
  absl::StatusOr<std::string> exported = (*store)->Export();
  if (!exported.ok()) return exported.status();
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a, 64 bits
  for (unsigned char byte : *exported) hash = (hash ^ byte) * 1099511628211ull;
  return absl::StrCat("applied_index=", (*store)->applied_index(), " digest=", absl::Hex(hash, absl::kZeroPad16));
}

Replica::Replica(ReplicaConfig config, prometheus::Registry& registry)
    : config_(std::move(config)), metrics_(registry) {}

absl::StatusOr<std::unique_ptr<Replica>> Replica::Open(const ReplicaConfig& config, prometheus::Registry& registry) {
  std::unique_ptr<Replica> replica(new Replica(config, registry));
  for (const std::string& dir : {config.store_dir, config.raft_dir}) {
    if (absl::Status s = MakeDirectory(dir); !s.ok()) return s;
  }
  replication::ReplicatedJobStoreOptions options;
  options.local.path = config.store_dir;
  options.raft.self = config.self;
  options.raft.members = config.members;
  options.raft.dir = config.raft_dir;
  options.raft.join = config.join;
  options.raft.peer_secret = config.peer_secret;
  if (config.peer_secret.empty()) {
    kLog.Warn("replica traffic is unauthenticated: anything that reaches the raft port can speak raft to this "
              "replica, and anything that reaches the health port can join the group; give every replica "
              "--replica-secret-file");
  }
  options.merge.max_entry_commits = config.max_entry_commits;
  absl::StatusOr<std::unique_ptr<replication::ReplicatedJobStore>> store =
      replication::ReplicatedJobStore::Open(std::move(options));
  if (!store.ok()) return store.status();
  replica->store_ = std::move(*store);
  Replica* self = replica.get();
  if (config.health_listen.has_value()) {
    replica->peers_ = std::make_unique<ReplicaPeersService>(
        [self] { return self->store_->status().role == replication::Role::kLeader; },
        [self](const replication::Member& member) {
          runtime::EventLoop loop;  // a gRPC thread, blocked until the change is decided
          return runtime::RunUntilComplete(loop, self->store_->AddMember(member));
        },
        replica->metrics_, config.peer_secret);
    absl::StatusOr<std::unique_ptr<ReplicaHealthServer>> health =
        ReplicaHealthServer::Start(*config.health_listen, replica->peers_.get());
    if (!health.ok()) return health.status();
    replica->health_ = std::move(*health);
  }
  replica->store_->SetStatusListener([self](const replication::LogStatus& status) { self->OnStatus(status); });
  replica->metrics_.Observe(replica->store_->status());
  replica->metrics_.ObserveProgress(replica->store_->progress(), config.self.id);
  replica->sampler_ = std::thread([self] { self->Sample(); });
  if (!config.join_through.empty()) {
    // Every replica that can reach the group's health ports asks to be a member. A
    // replica with a log asks too: one removed at a scale-down that returns with its
    // volume still lists itself as a voter in the configuration it last saw, which no
    // leader updates until it is added again. So does one of the starting group: one
    // removed and back with an empty volume has just bootstrapped the starting
    // configuration, which lists it as a voter. For these, only the leader's OK ends the
    // asking (a member of the group is answered OK at once, so a restart or the group's
    // first start costs one Join). A new replica (--join, empty log) is a voter once the
    // configuration the leader sent it lists it as one.
    // (A starting replica always has a log here: an empty one bootstraps at Open.)
    const bool had_log = !replica->store_->progress().members.empty();
    const bool until_leader_ok = had_log || !config.join;
    if (!config.join) {
      kLog.Info("asking the leader to confirm this starting replica's membership: it answers OK if it is a "
                "member, and adds back one removed from the group and started again, with its volume or an empty one");
    } else if (had_log) {
      kLog.Info("asking to rejoin with the log this replica holds (a restart, or a replica removed at a "
                "scale-down and started again): the leader answers OK if it is a voter already");
    }
    replica->joiner_ = std::make_unique<ReplicaJoiner>(
        config.self, config.join_through,
        [self, until_leader_ok] {
          if (until_leader_ok) return false;
          for (const replication::MemberProgress& m : self->store_->progress().members) {
            if (m.member == self->config_.self && m.role == replication::MemberRole::kVoter) return true;
          }
          return false;
        },
        replica->metrics_, config.peer_secret);
  }
  kLog.Info("replica joined its group", {{"id", absl::StrCat(config.self.id)},
                                         {"raft", config.self.address},
                                         {"members", absl::StrCat(config.members.size())},
                                         {"join", config.join ? "true" : "false"},
                                         {"health", replica->health_ ? replica->health_->bound().ToString() : "off"}});
  return replica;
}

Replica::~Replica() { Stop(); }

void Replica::OnStatus(const replication::LogStatus& status) {
  metrics_.Observe(status);
  kLog.Info("replica status", {{"role", RoleName(status.role)},
                               {"term", absl::StrCat(status.term)},
                               {"leader", status.leader ? absl::StrCat(status.leader->id) : std::string("none")}});
  if (serving_.load(std::memory_order_acquire) && status.role != replication::Role::kLeader) {
    if (stop_requested_.load()) return;  // stopping anyway: nothing more is served
    if (handing_over_.load()) {
      lost_during_handover_.store(true);  // FinishHandover ends the process
      return;
    }
    ExitLostLeadership(absl::StrCat("now ", RoleName(status.role), " in term ", status.term));
  }
}

runtime::Task<absl::Status> Replica::TransferLeadership(std::uint64_t to) {
  if (to == config_.self.id && store_->status().role == replication::Role::kLeader) co_return absl::OkStatus();
  if (handing_over_.exchange(true)) {
    co_return absl::FailedPreconditionError("a leadership transfer is in progress: retry once it is done");
  }
  const absl::Time start = absl::Now();
  absl::Status status = co_await store_->TransferLeadership(to);
  if (status.ok()) stepped_down_.store(true);
  metrics_.CountTransfer("command", status.ok() ? "ok" : "failed");
  const std::string target = to == 0 ? std::string("any") : absl::StrCat(to);
  const std::string took = absl::FormatDuration(absl::Now() - start);
  if (status.ok()) {
    kLog.Info("leadership transfer", {{"to", target}, {"status", "OK"}, {"took", took}});
  } else {
    // The commits that waited for it are appended once it ends (RaftLog holds them).
    kLog.Warn("leadership transfer failed: still leading", {{"to", target}, {"status", status.ToString()},
                                                            {"took", took}});
  }
  co_return status;
}

void Replica::FinishHandover() {
  if (!handing_over_.load()) return;
  if (stepped_down_.load() || lost_during_handover_.load() || commit_failed_.load()) {
    if (stepped_down_.load()) ExitLostLeadership("leadership transferred", /*planned=*/true);
    ExitLostLeadership(commit_failed_.load() ? "a commit failed during a leadership transfer"
                                             : "leadership lost during a transfer");
  }
  handing_over_.store(false);
}

runtime::Task<absl::Status> Replica::AwaitLeadership(runtime::EventLoop& loop, runtime::Event& stop) {
  while (true) {
    if (store_->status().role == replication::Role::kLeader) {
      absl::Status barrier = co_await store_->Barrier();
      if (barrier.ok()) co_return absl::OkStatus();
      kLog.Warn("leadership lost before serving; waiting again", {{"status", barrier.ToString()}});
    }
    if (co_await stop.WaitUntil(loop.Now() + absl::ToChronoNanoseconds(kLeadershipPoll))) {
      co_return absl::CancelledError("stopped before leading");
    }
  }
}

std::unique_ptr<store::JobStore> Replica::Serve() {
  serving_.store(true, std::memory_order_release);
  // A change after AwaitLeadership but before serving_ was set went unnoticed.
  if (const replication::LogStatus now = store_->status(); now.role != replication::Role::kLeader) {
    ExitLostLeadership(absl::StrCat("now ", RoleName(now.role), " in term ", now.term));
  }
  metrics_.SetServing(true);
  kLog.Info("replica serving as leader", {{"term", absl::StrCat(store_->status().term)}});
  return std::make_unique<LeaderStore>(*this);
}

void Replica::Stop() {
  if (joiner_ != nullptr) joiner_->Stop();
  serving_.store(false, std::memory_order_release);
  metrics_.SetServing(false);
  {
    std::lock_guard lock(sampler_mu_);
    sampler_stop_ = true;
  }
  sampler_wake_.notify_all();
  if (sampler_.joinable()) sampler_.join();
  metrics_.SetReady(false);
  if (health_ != nullptr) health_->Set(false);
  if (store_ != nullptr && store_->status().role == replication::Role::kLeader) HandOverBeforeStopping();
  if (store_ != nullptr) store_->Stop();
  health_.reset();
}

std::uint64_t Replica::LiveUpToDateVoter(std::chrono::steady_clock::time_point since) const {
  const replication::ReplicationProgress progress = store_->progress();
  if (progress.role != replication::Role::kLeader) return 0;
  for (const replication::MemberProgress& m : progress.members) {
    if (m.member.id != config_.self.id && m.role == replication::MemberRole::kVoter && m.last_heard.has_value() &&
        *m.last_heard > since && m.match_index.value_or(0) >= progress.last_index) {
      return m.member.id;
    }
  }
  return 0;
}

void Replica::HandOverBeforeStopping() {
  // A voter that answers after this moment is alive and not stopping: a stopping one
  // has closed its log (the leader's heartbeats, every 100 ms, go unanswered). It must
  // also hold the whole log, or it could not win at once. Polling: the log publishes
  // its progress at every turn of its loop.
  const absl::Time start = absl::Now();
  const auto asked = std::chrono::steady_clock::now();
  std::uint64_t target = 0;
  while ((target = LiveUpToDateVoter(asked)) == 0 && absl::Now() - start < kHandoverProbe) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  if (target == 0) {
    metrics_.CountTransfer("stop", "skipped");
    kLog.Info("leadership not handed over before stopping: no other voter is alive and up to date (the group is "
              "stopping, or they are down); the others, if any stay, elect a leader after their election timeout",
              {{"waited", absl::FormatDuration(absl::Now() - start)}});
    return;
  }
  // On a thread of its own, so that it can be given up: the target may start stopping
  // right after it answered, and libraft would wait an election timeout for it.
  absl::Status status;
  absl::Notification answered;
  std::thread transfer([&] {
    runtime::EventLoop loop;  // the transfer's answer resumes it here
    status = runtime::RunUntilComplete(loop, store_->TransferLeadership(target));
    answered.Notify();
  });
  if (!answered.WaitForNotificationWithTimeout(kHandoverBound)) {
    store_->Stop();  // the engine has stopped: closing the log answers the transfer CANCELLED
  }
  transfer.join();
  const std::string took = absl::FormatDuration(absl::Now() - start);
  metrics_.CountTransfer("stop", status.ok() ? "ok" : "failed");
  if (status.ok()) {
    kLog.Info("leadership handed over before stopping", {{"to", absl::StrCat(target)}, {"took", took}});
  } else {
    kLog.Warn("leadership not handed over before stopping: the others elect a leader after their election timeout",
              {{"to", absl::StrCat(target)}, {"status", status.ToString()}, {"took", took}});
  }
}

std::optional<common::HostPort> Replica::health_address() const {
  if (health_ == nullptr) return std::nullopt;
  return health_->bound();
}

void Replica::RequestStop() {
  last_progress_ns_.store(SteadyNanos());
  stop_requested_.store(true);
  sampler_wake_.notify_all();  // it samples faster from now on
}

bool Replica::StuckWhileStopping() const {
  const std::int64_t since = SteadyNanos() - last_progress_ns_.load();
  return stop_requested_.load() && commits_in_flight_.load() > 0 &&
         since > std::chrono::duration_cast<std::chrono::nanoseconds>(kStuckWhileStopping).count();
}

void Replica::Sample() {
  std::unique_lock lock(sampler_mu_);
  // While stopping, often: a commit stuck for the majority that left ends the process.
  const auto period = [this] {
    return stop_requested_.load() ? std::chrono::milliseconds(20) : std::chrono::milliseconds(kSamplePeriod);
  };
  while (!sampler_wake_.wait_for(lock, period(), [this] { return sampler_stop_; })) {
    if (StuckWhileStopping()) {
      ExitStopping(absl::StrCat(commits_in_flight_.load(), " commit(s) unanswered for more than ",
                                kStuckWhileStopping.count(), " ms after the stop was asked"));
    }
    // The applied index is published before the readiness decided from it, so that a
    // scrape after a Ready answer shows at least the index it was decided on.
    const replication::LogStatus status = store_->status();
    const replication::ReplicationProgress progress = store_->progress();
    metrics_.Observe(status);
    metrics_.ObserveProgress(progress, config_.self.id);
    metrics_.ObserveCounters(store_->counters());
    UpdateReadiness(status, progress);
  }
}

void Replica::UpdateReadiness(const replication::LogStatus& status, const replication::ReplicationProgress& progress) {
  Readiness now = EvaluateReadiness(config_.readiness, status, progress, std::chrono::steady_clock::now());
  if (readiness_.has_value() && readiness_->ready == now.ready) return;
  metrics_.SetReady(now.ready);
  if (health_ != nullptr) health_->Set(now.ready);
  if (now.ready) {
    kLog.Info("replica ready", {{"reason", now.reason}});
  } else {
    kLog.Warn("replica not ready", {{"reason", now.reason}});
  }
  readiness_ = std::move(now);
}

}  // namespace cohort::broker
