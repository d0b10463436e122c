#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/replication/replicated_log.h"
#include "libs/runtime/task.h"

namespace cohort::replication {

// How one member of a RaftLog group runs.
struct RaftLogOptions {
  Member self;
  // The group's voters, self included. Used to bootstrap an empty `dir`; a dir that
  // already holds a log keeps the configuration it recorded.
  std::vector<Member> members;
  // A member joining a running group (RaftLog::AddMember at its leader): it never
  // bootstraps, even with an empty `dir`; it waits for the leader, which sends it the
  // configuration with the log or a snapshot. `members` is then not used.
  bool join = false;
  // An existing directory of this member's own: the segmented log, its metadata and
  // snapshots (libraft's on-disk format). Never shared between members.
  std::string dir;
  // A leader sends heartbeats this often when idle.
  absl::Duration heartbeat_interval = absl::Milliseconds(100);
  // A follower that hears no leader for this long (randomised to 1x-2x) starts an
  // election; a leader that cannot reach a majority for this long steps down.
  absl::Duration election_timeout = absl::Seconds(1);
  // A snapshot is taken every `snapshot_threshold` applied entries; the log keeps
  // `snapshot_trailing` entries behind it, so a follower less far behind than that
  // catches up from the log and one further behind receives the snapshot.
  unsigned snapshot_threshold = 1024;
  unsigned snapshot_trailing = 128;
  // A snapshot also waits until the entries applied since the last one hold as many
  // bytes as that snapshot did, up to this (0: count entries only), or until
  // kSnapshotThresholdFactor x snapshot_threshold entries were applied: writing
  // snapshots then costs no more than writing the log, however large the state. The log
  // keeps those entries in memory meanwhile.
  std::size_t snapshot_max_log_bytes = 64 << 20;
  static constexpr unsigned kSnapshotThresholdFactor = 64;
  // A snapshot sent to a follower that has not confirmed it within this time is sent
  // again (e.g. the follower was down when the first one went out).
  absl::Duration snapshot_send_timeout = absl::Seconds(10);
  // AddMember: how long one catch-up round of a member being promoted to voter may
  // take before the promotion fails (libraft's max_catch_up_round_duration; it runs up
  // to 10 rounds, each until the member holds the leader's last index of the round).
  absl::Duration catch_up_round_timeout = absl::Seconds(10);
  // The group's shared secret (ReadPeerSecretFile, at least kMinPeerSecretBytes): every
  // raft stream between members then starts with a mutual challenge-response proving
  // it, and a peer that fails it is disconnected before libraft reads a byte from it
  // (RaftPeerAuth in raft_dns_transport.h). Empty: peers are not authenticated (anyone
  // reaching self.address can speak raft to this member).
  std::string peer_secret;
  // A raft stream not authenticated within this time is closed (1 ms to 1 min).
  absl::Duration peer_handshake_timeout = absl::Seconds(5);
  // Largest entry Propose accepts (INVALID_ARGUMENT beyond). libraft itself has no
  // limit; a store's group commit is capped at 32 MiB (BatchLimits).
  std::size_t max_entry_bytes = 64 << 20;
};

// A member's part in the group's configuration (libraft's roles).
enum class MemberRole {
  kVoter,    // replicates the log and counts towards a majority
  kStandby,  // replicates the log, does not vote
  kSpare,    // neither (a member being added, before its promotion)
};

// One member of the configuration as a member sees it.
struct MemberProgress {
  Member member;
  MemberRole role = MemberRole::kVoter;
  // On the leader only: the highest log index this member is known to hold (for the
  // leader itself, its own last index); nullopt on any other member.
  std::optional<std::uint64_t> match_index;
  // When this member last received a message from it (steady clock; a follower answers
  // every heartbeat of its leader); nullopt for itself or if none came since Start.
  std::optional<std::chrono::steady_clock::time_point> last_heard;
};

// A member's view of replication, published by its own thread (see RaftLog::progress).
struct ReplicationProgress {
  Role role = Role::kStopped;
  std::uint64_t commit_index = 0;    // the highest index known committed
  std::uint64_t last_index = 0;      // this member's last log index
  // The first index this member's log holds: the entries before it are only in its
  // snapshot (libraft drops them, but for snapshot_trailing ones, once a snapshot is
  // written), so a follower that lacks one of them is sent the snapshot.
  std::uint64_t first_index = 0;
  // The index of this member's last snapshot (taken, installed from the leader or
  // loaded at start), 0 if it has none.
  std::uint64_t snapshot_index = 0;
  std::uint64_t snapshots_sent = 0;  // InstallSnapshot messages sent since Start
  // Raft streams refused since Start because the peer did not prove the group's secret
  // (a wrong proof, the deadline, EOF mid-handshake; RaftLogOptions::peer_secret): ones
  // this member accepted and ones it opened. Always 0 without a secret.
  std::uint64_t peer_auth_refused_accept = 0;
  std::uint64_t peer_auth_refused_connect = 0;
  // Authenticated raft streams closed since Start on a record that did not verify (its
  // bytes altered or injected on the way; raft_dns_transport.h), either direction.
  std::uint64_t peer_records_rejected = 0;
  // The highest index a leader told this member is committed (AppendEntries'
  // leader_commit, an InstallSnapshot's last index), even when this member does not
  // hold that entry yet (its own commit_index never passes what it holds); on the
  // leader, its commit_index. How far behind a follower is: leader_commit minus
  // LogStatus::last_applied. 0 until a leader was heard.
  std::uint64_t leader_commit = 0;
  // When this member last heard a leader of its current term or a later one (steady
  // clock; on the leader, the last turn of its loop); nullopt until a leader was heard.
  std::optional<std::chrono::steady_clock::time_point> leader_contact;
  // The current configuration (the latest appended, possibly not yet committed), in
  // libraft's order. Empty on a member that joined and has not heard from a leader.
  std::vector<MemberProgress> members;

  // Voters in `members`.
  std::size_t voters() const;
};

// A ReplicatedLog on libraft 0.15 (canonical/raft, Debian's libraft-dev) with its libuv
// I/O: entries are fsync'ed to a segmented log on every member before they count
// towards a majority, peers talk raw TCP.
//
// Member addresses are HOST:PORT, HOST an IPv4 literal or a host name (e.g. a
// Kubernetes StatefulSet's `broker-0.broker-peers.ns.svc:7071`). A name is resolved
// again at every connection attempt, so a peer that restarts with a new IP is found;
// a member whose own address is a name listens on 0.0.0.0:PORT (RaftDnsTransport).
//
// Each RaftLog runs libraft on a thread of its own with its own libuv loop; the
// StateMachine is called there. Callers reach that thread through a locked inbox and
// a uv_async wake-up; Propose resumes its caller's loop through
// runtime::ExternalCompletion. Every Propose completes exactly once, also when the
// log stops (CANCELLED or ABORTED).
//
//   auto log = RaftLog::Start(options, &machine);   // joins or forms the group
//   absl::StatusOr<LogPosition> at = co_await (*log)->Propose(bytes);
//   if (auto leader = LeaderHint(at.status())) { /* retry at leader->address */ }
class RaftLog final : public ReplicatedLog {
 public:
  // Starts the member: loads its log and snapshot from options.dir (bootstrapping
  // an empty dir with options.members), replays its snapshot into `machine`, listens
  // on self.address and starts its thread. INVALID_ARGUMENT for bad options; the
  // error libraft reports otherwise. `machine` must outlive the RaftLog.
  static absl::StatusOr<std::unique_ptr<RaftLog>> Start(RaftLogOptions options, StateMachine* machine);

  // Stops (see Stop).
  ~RaftLog() override;

  // Leaves the group as a crash would, but cleanly: closes libraft (pending proposals
  // fail with CANCELLED; they may still commit through the others), its sockets and
  // files, and joins the thread. No more StateMachine calls after it returns.
  // Idempotent; not from the log's own thread. It blocks its caller: a loop that calls
  // it must not have more than EventLoop::kPostCapacity proposals awaiting (their
  // completions are posted to it while it is blocked).
  void Stop();

  runtime::Task<absl::StatusOr<LogPosition>> Propose(std::string entry) override;
  LogStatus status() const override;

  // A copy of this member's replication progress as its thread last published it
  // (at every turn of its loop, so at most a few milliseconds old). Any thread; O(members).
  ReplicationProgress progress() const;

  // Membership changes (Raft thesis ch. 4, one server at a time as libraft requires);
  // on the leader only. Each completes once the new configuration is committed. Errors:
  //   UNAVAILABLE with a LeaderHint: this member does not lead (nothing changed);
  //   FAILED_PRECONDITION: another change is still in progress, or the change would
  //     remove the leader itself (TransferLeadership first, then remove it at the new
  //     leader);
  //   INVALID_ARGUMENT: an id of 0 or an address that is not HOST:PORT (port 1..65535);
  //   ALREADY_EXISTS: the id is a member at another address, or the address is
  //     another member's; NOT_FOUND: RemoveMember of an id that is not a member;
  //   DEADLINE_EXCEEDED: AddMember's new member did not catch up (not running, or
  //     started without RaftLogOptions::join); it stays a spare (no vote): retry, or
  //     remove it;
  //   ABORTED: leadership was lost meanwhile; the change may still commit (read
  //     progress().members at the new leader); CANCELLED: the log stopped meanwhile.
  // Messages quote at most a bounded prefix of an address.
  //
  // AddMember adds `member` as a spare, then promotes it to voter once it has caught
  // up from the log or a snapshot (libraft's catch-up rounds, see
  // catch_up_round_timeout), so the group's majority never waits for a member that is
  // still copying. Adding a member that is already a voter at the same address is OK;
  // one left a spare by a failed AddMember is promoted. Resumes on the caller's loop.
  runtime::Task<absl::Status> AddMember(Member member);
  runtime::Task<absl::Status> RemoveMember(std::uint64_t id);

  // Hands leadership to voter `to` (Raft thesis 3.10; libraft's raft_transfer): the
  // leader stops appending, brings `to` up to date and tells it to start an election at
  // once, so the group changes leader without waiting for an election timeout.
  // Proposals made meanwhile wait for the outcome (at most 4096; more fail UNAVAILABLE):
  // if this member still leads afterwards (the transfer failed) they are appended as
  // usual; if it stepped down they fail UNAVAILABLE naming the new leader, with nothing
  // appended (retry there). `to` 0: libraft picks a voter that
  // is up to date. On the leader only; resumes on the caller's loop. OK once this member
  // has stepped down (normally `to` leads by then: read status() there). Errors:
  //   UNAVAILABLE with a LeaderHint: this member does not lead (nothing changed);
  //   OK at once if `to` is this member (it leads already);
  //   INVALID_ARGUMENT: an id outside 1..1000000; NOT_FOUND: `to` is not a member;
  //   FAILED_PRECONDITION: `to` is not a voter, there is no other voter, or a transfer
  //     is in progress already;
  //   DEADLINE_EXCEEDED: `to` did not take over within the election timeout (it is
  //     down or far behind): this member still leads, appends the proposals that waited
  //     and accepts new ones (or it lost its majority meanwhile, and refuses them);
  //   CANCELLED: the log stopped meanwhile.
  runtime::Task<absl::Status> TransferLeadership(std::uint64_t to);

  class Impl;

 private:
  explicit RaftLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cohort::replication
