#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/runtime/task.h"

namespace cohort::replication {

// One member of a replication group: a positive id, unique in the group and stable
// across restarts, and the "host:port" its peers reach it at.
struct Member {
  std::uint64_t id = 0;
  std::string address;

  friend bool operator==(const Member&, const Member&) = default;
};

// Where a committed entry sits in the log. `term` is the leader's term when the entry
// was proposed: the fencing token (a lease granted in term T is void in any later
// term).
struct LogPosition {
  std::uint64_t index = 0;
  std::uint64_t term = 0;

  friend bool operator==(const LogPosition&, const LogPosition&) = default;
};

enum class Role { kFollower, kCandidate, kLeader, kStopped };

// A member's view of the group at one moment.
struct LogStatus {
  Role role = Role::kStopped;
  std::uint64_t term = 0;         // the highest term this member has seen
  std::optional<Member> leader;   // the leader it knows of, if any (itself when leading)
  std::uint64_t last_applied = 0; // the highest index handed to StateMachine::Apply
};

// The replicated state a log drives: every member owns one, and every member's
// StateMachine sees the same committed entries in the same order.
//
// Threading: every method is called from the log's own thread, one call at a time,
// never concurrently with another method of the same StateMachine. A method must not
// call back into the log except through its thread-safe methods (status()).
class StateMachine {
 public:
  virtual ~StateMachine() = default;

  // Applies the committed entry at `at` (indexes increase, with gaps where the log
  // holds entries of its own). Must not fail: a replica that cannot apply a committed
  // entry can no longer be a replica (abort; on restart it replays from its snapshot
  // and log). A member restarted from its own disk may be handed entries it applied
  // before the restart: a durable state machine skips indexes it already holds.
  virtual void Apply(LogPosition at, absl::string_view entry) = 0;

  // The whole state as of the last applied entry, as bytes that Restore accepts. An
  // error skips this snapshot (the log retries later) and changes nothing.
  virtual absl::StatusOr<std::string> Snapshot() = 0;

  // Replaces the whole state with `snapshot`, taken by some member's Snapshot() at
  // position `at`: on a start from disk, or when the leader sends a snapshot because
  // this member fell behind its log. Entries after `at` follow through Apply. An error
  // refuses the snapshot (the leader retries).
  virtual absl::Status Restore(LogPosition at, absl::string_view snapshot) = 0;

  // Whether the log may call Snapshot() on another thread while Apply goes on (so a
  // large state is not serialised on the log's own thread). Such a Snapshot returns
  // the state as of the last applied entry or of a later one, and such a Restore(at, s)
  // accepts a state later than `at`: the entries between, handed to Apply again, are
  // skipped. The default, false: Snapshot() runs between two Applies on the log's
  // thread and returns exactly the state of the last applied entry.
  virtual bool SnapshotsMayRunConcurrently() const { return false; }

  // Called by a stopping log, from another thread (while a concurrent Snapshot may be
  // running): that Snapshot and any later one may give up early with an error, so that
  // stopping does not wait for a whole export of a large state. The default ignores it.
  virtual void AbandonSnapshots() {}

  // This member's role or the known leader changed (term: the new term). Called
  // before any Apply of the new term. The default ignores it.
  virtual void OnStatusChange(const LogStatus& status) { (void)status; }
};

// A replicated, totally ordered log of opaque entries (typically one store's group
// commit each), agreed on by a majority of a fixed group of members.
//
// Guarantees: an entry whose Propose succeeded is durable on a majority and is never
// lost or reordered while a majority survives; every member applies committed entries
// in log order, exactly the same ones. A leader that lost its majority cannot commit.
//
// Threading: Propose and status() may be called from any thread; Propose's Task
// resumes on its caller's loop. The log must outlive every Propose in flight.
class ReplicatedLog {
 public:
  virtual ~ReplicatedLog() = default;

  // Appends `entry` and completes once it is committed (durable on a majority) and
  // applied by this member's StateMachine, with its position.
  //   UNAVAILABLE with a LeaderHint: this member does not lead; nothing was appended,
  //     so the caller may retry at the leader (or later, if the hint is empty).
  //   ABORTED: leadership was lost after the entry was appended: it may or may not
  //     commit (the StateMachine is the truth); retry only if the entry is idempotent.
  //   INVALID_ARGUMENT: entry is empty or larger than the log's limit.
  //   CANCELLED: the log stopped before the outcome was known (as ABORTED).
  // Not cancellable once started (a cancellation is raised at the caller's next
  // suspension point).
  virtual runtime::Task<absl::StatusOr<LogPosition>> Propose(std::string entry) = 0;

  // This member's current view. Any thread; O(1).
  virtual LogStatus status() const = 0;
};

// The UNAVAILABLE status Propose returns on a member that does not lead, carrying the
// leader it knows of (if any) for LeaderHint.
absl::Status NotLeaderError(const std::optional<Member>& leader);

// The leader named by a NotLeaderError, or nullopt for any other status or when the
// member knew of no leader.
std::optional<Member> LeaderHint(const absl::Status& status);

}  // namespace cohort::replication
