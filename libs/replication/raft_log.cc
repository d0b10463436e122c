#include "libs/replication/raft_log.h"

#include <uv.h>

// Debian's raft.h (0.15) has no extern "C" block of its own.
extern "C" {
#include <raft.h>
#include <raft/uv.h>
}

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "libs/replication/peer_secret.h"
#include "libs/replication/raft_dns_transport.h"
#include "libs/runtime/check.h"
#include "libs/runtime/external_completion.h"

namespace cohort::replication {
namespace {

using ProposeResult = absl::StatusOr<LogPosition>;
using ProposeDone = runtime::Completer<ProposeResult>;
using ChangeDone = runtime::Completer<absl::Status>;

// One membership change asked of the log's thread.
struct ChangeOrder {
  enum Kind { kAdd, kRemove, kTransfer } kind;
  Member member;  // kRemove, kTransfer: only the id (kTransfer: 0 for any voter)
};

// Every entry is the proposing leader's term and the payload's length (8 bytes each,
// little-endian), the payload, and zeros up to a multiple of 8 bytes: libraft 0.15's
// on-disk segments need 8-byte aligned entries, or a restarted member cannot load its
// log (canonical/raft#189, #304). Every snapshot is the position it covers (index,
// term), the payload's length and the payload, padded the same way.
constexpr std::size_t kEntryHeader = 16;
constexpr std::size_t kSnapshotHeader = 24;

constexpr std::size_t Padded(std::size_t n) { return (n + 7) & ~std::size_t{7}; }

void PutU64(char* out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint64_t GetU64(const char* in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return v;
}

unsigned Millis(absl::Duration d) { return static_cast<unsigned>(absl::ToInt64Milliseconds(d)); }

absl::Status RaftError(absl::string_view what, int rv, const char* detail) {
  return absl::UnavailableError(absl::StrCat("raft ", what, ": ", raft_strerror(rv),
                                             detail && *detail ? absl::StrCat(" (", detail, ")") : ""));
}

}  // namespace

// Everything below runs on the member's own thread (loop_), except Submit, status()
// and Stop's hand-off, which take mu_.
class RaftLog::Impl {
 public:
  Impl(RaftLogOptions options, StateMachine* machine) : options_(std::move(options)), machine_(machine) {}

  ~Impl() { Stop(); }

  // Runs Init on the new thread and waits for its outcome; on success the thread goes
  // on running the loop.
  absl::Status Start() {
    absl::Status init;
    absl::Notification ready;
    thread_ = std::thread([this, &init, &ready] {
      // libuv writes to sockets without MSG_NOSIGNAL: a peer that went away would
      // raise SIGPIPE and kill the process. Blocked on this thread (the only one that
      // writes to raft's sockets), the write fails with EPIPE instead and the other
      // threads' handling of SIGPIPE is left alone.
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
      init = Init();
      bool ok = init.ok();
      ready.Notify();
      if (ok) uv_run(&loop_, UV_RUN_DEFAULT);
      // Closing handles finish on the loop; uv_loop_close refuses until they have.
      while (loop_open_ && uv_loop_close(&loop_) == UV_EBUSY) uv_run(&loop_, UV_RUN_ONCE);
      absl::MutexLock lock(&mu_);
      status_.role = Role::kStopped;
      progress_.role = Role::kStopped;
      for (MemberProgress& m : progress_.members) m.match_index.reset();
    });
    ready.WaitForNotification();
    if (!init.ok()) {
      thread_.join();
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    return init;
  }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      if (!stopping_) {
        stopping_ = true;
        uv_async_send(&wake_);
      }
    }
    // libuv's close waits for a snapshot exporting on its pool.
    machine_->AbandonSnapshots();
    if (thread_.joinable()) {
      COHORT_CHECK(thread_.get_id() != std::this_thread::get_id(), "RaftLog::Stop on the log's own thread");
      thread_.join();
    }
  }

  // Any thread: hands the proposal to the loop, or completes `done` with CANCELLED if the
  // log is stopping (the loop may be gone).
  void Submit(std::string entry, ProposeDone done) {
    {
      absl::MutexLock lock(&mu_);
      if (!stopping_) {
        inbox_.push_back(Proposal{std::move(entry), done});
        uv_async_send(&wake_);
        return;
      }
    }
    done(absl::CancelledError("the replicated log is stopped"));
  }

  // Any thread: hands a membership change to the loop, as Submit does a proposal.
  void SubmitChange(ChangeOrder order, ChangeDone done) {
    {
      absl::MutexLock lock(&mu_);
      if (!stopping_) {
        changes_.push_back(PendingChange{std::move(order), done});
        uv_async_send(&wake_);
        return;
      }
    }
    done(absl::CancelledError("the replicated log is stopped"));
  }

  LogStatus status() const {
    absl::MutexLock lock(&mu_);
    return status_;
  }

  ReplicationProgress progress() const {
    absl::MutexLock lock(&mu_);
    return progress_;
  }

  const RaftLogOptions& options() const { return options_; }

 private:
  struct Proposal {
    std::string entry;
    ProposeDone done;
  };

  struct PendingChange {
    ChangeOrder order;
    ChangeDone done;
  };

  // One membership change in flight: freed by its last callback, which libraft always
  // calls (LEADERSHIPLOST when the member steps down or closes). An add takes two
  // steps: raft_add (a spare), then raft_assign(RAFT_VOTER).
  struct ChangeRequest {
    struct raft_change req;
    Impl* impl;
    ChangeOrder order;
    ChangeDone done;
    bool promoting = false;
  };

  // One raft_transfer in flight. Kept (in last_transfer_) after its callback until the
  // next transfer starts or the log closes: libraft's TimeoutNow send lives in it.
  struct TransferRequest {
    struct raft_transfer req;
    Impl* impl;
    std::uint64_t to;
    std::uint64_t term;  // the leader's term when asked
    ChangeDone done;
  };

  // One raft_apply in flight: freed by its callback, which libraft always calls
  // (LEADERSHIPLOST when the member steps down or closes).
  struct ApplyRequest {
    struct raft_apply req;
    Impl* impl;
    std::uint64_t term;
    ProposeDone done;
  };

  absl::Status Init() {
    int rv = uv_loop_init(&loop_);
    if (rv != 0) return absl::InternalError(absl::StrCat("uv_loop_init: ", uv_strerror(rv)));
    loop_open_ = true;
    uv_async_init(&loop_, &wake_, &Impl::OnWake);
    wake_.data = this;
    uv_check_init(&loop_, &check_);
    check_.data = this;
    uv_check_start(&check_, &Impl::OnCheck);
    handles_open_ = true;

    if ((rv = RaftDnsTransportInit(&transport_, &loop_,
                                   RaftPeerAuth{options_.peer_secret, options_.peer_handshake_timeout},
                                   &peer_auth_counters_)) != 0) {
      CloseHandles();
      return RaftError("tcp init", rv, nullptr);
    }
    if ((rv = raft_uv_init(&io_, &loop_, options_.dir.c_str(), &transport_)) != 0) {
      absl::Status s = RaftError("uv init", rv, io_.errmsg);
      RaftDnsTransportClose(&transport_);
      CloseHandles();
      return s;
    }
    // libraft 0.15's uv I/O implements async_work but says it is version 1, which
    // raft_init then refuses with an fsm that snapshots asynchronously (fixed upstream
    // in canonical/raft 269e541, "uv: set io version to 2").
    io_.version = 2;
    // fsm version 3: the buffers of a snapshot are ours until snapshot_finalize; a
    // machine that may export concurrently does so in snapshot_async, on libuv's
    // thread pool, while this loop goes on applying, replicating and heartbeating.
    fsm_ = {};
    fsm_.version = 3;
    fsm_.data = this;
    fsm_.apply = &Impl::FsmApply;
    fsm_.snapshot = &Impl::FsmSnapshot;
    fsm_.restore = &Impl::FsmRestore;
    fsm_.snapshot_finalize = &Impl::FsmSnapshotFinalize;
    if (machine_->SnapshotsMayRunConcurrently()) fsm_.snapshot_async = &Impl::FsmSnapshotAsync;
    if ((rv = raft_init(&raft_, &io_, &fsm_, options_.self.id, options_.self.address.c_str())) != 0) {
      absl::Status s = RaftError("init", rv, raft_errmsg(&raft_));
      raft_uv_close(&io_);
      RaftDnsTransportClose(&transport_);
      CloseHandles();
      return s;
    }
    raft_.data = this;
    // Every message libraft sends goes through io_.send: counting InstallSnapshot
    // there counts the snapshots actually handed to the transport (libraft has no
    // callback of its own for it).
    uv_send_ = io_.send;
    io_.send = &Impl::CountingSend;
    // raft_start hands libraft's receive callback to io_.start: wrapped, every message
    // is seen first (a follower learns the leader's commit index there, see
    // ReplicationProgress::leader_commit).
    uv_start_ = io_.start;
    io_.start = &Impl::SpyingStart;
    raft_set_heartbeat_timeout(&raft_, Millis(options_.heartbeat_interval));
    raft_set_election_timeout(&raft_, Millis(options_.election_timeout));
    raft_set_snapshot_threshold(&raft_, options_.snapshot_threshold);
    raft_set_snapshot_trailing(&raft_, options_.snapshot_trailing);
    raft_set_install_snapshot_timeout(&raft_, Millis(options_.snapshot_send_timeout));
    raft_set_max_catch_up_round_duration(&raft_, Millis(options_.catch_up_round_timeout));
    // A member cut off from the others must not disrupt the group when it returns
    // with a higher term (Raft thesis 9.6).
    raft_set_pre_vote(&raft_, true);

    raft_configuration conf;
    raft_configuration_init(&conf);
    for (const Member& m : options_.members) {
      if ((rv = raft_configuration_add(&conf, m.id, m.address.c_str(), RAFT_VOTER)) != 0) break;
    }
    if (rv == 0 && !options_.join) rv = raft_bootstrap(&raft_, &conf);
    raft_configuration_close(&conf);
    if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {  // CANTBOOTSTRAP: the dir holds a log already
      absl::Status s = RaftError("bootstrap", rv, raft_errmsg(&raft_));
      CloseRaft();
      uv_run(&loop_, UV_RUN_DEFAULT);
      return s;
    }
    if ((rv = raft_start(&raft_)) != 0) {
      absl::Status s = RaftError("start", rv, raft_errmsg(&raft_));
      CloseRaft();
      uv_run(&loop_, UV_RUN_DEFAULT);
      return s;
    }
    raft_started_ = true;
    ReportStatus();
    return absl::OkStatus();
  }

  void CloseHandles() {
    if (!handles_open_) return;
    handles_open_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&wake_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
  }

  // raft_close fails every pending apply (LEADERSHIPLOST), then closes its I/O; once
  // that is done the loop has nothing left and uv_run returns.
  void CloseRaft() {
    closing_ = true;
    raft_close(&raft_, [](struct raft* r) {
      Impl* self = static_cast<Impl*>(r->data);
      raft_uv_close(&self->io_);
      RaftDnsTransportClose(&self->transport_);
      self->CloseHandles();
      // libraft calls a pending transfer's callback while closing; if it did not, the
      // caller still gets its one answer.
      if (self->transfer_ != nullptr) {
        self->transfer_->done(absl::CancelledError("the replicated log stopped during the leadership transfer"));
        self->transfer_ = nullptr;
      }
      self->ReleaseHeld();  // closing: each is answered CANCELLED
    });
  }

  static void OnWake(uv_async_t* handle) {
    Impl* self = static_cast<Impl*>(handle->data);
    std::vector<Proposal> inbox;
    std::vector<PendingChange> changes;
    bool stop;
    {
      absl::MutexLock lock(&self->mu_);
      inbox.swap(self->inbox_);
      changes.swap(self->changes_);
      stop = self->stopping_;
    }
    for (Proposal& p : inbox) self->ProposeOnLoop(std::move(p.entry), p.done);
    for (PendingChange& c : changes) {
      if (c.order.kind == ChangeOrder::kTransfer) {
        self->TransferOnLoop(c.order.member.id, c.done);
      } else {
        self->ChangeOnLoop(std::move(c.order), c.done);
      }
    }
    if (stop && !self->closing_) self->CloseRaft();
  }

  static void OnCheck(uv_check_t* handle) { static_cast<Impl*>(handle->data)->ReportStatus(); }

  // raft_init pointed io->data at the raft instance, whose data is this Impl.
  static int CountingSend(raft_io* io, raft_io_send* req, const raft_message* message, raft_io_send_cb cb) {
    Impl* self = static_cast<Impl*>(static_cast<struct raft*>(io->data)->data);
    if (message->type == RAFT_IO_INSTALL_SNAPSHOT) ++self->snapshots_sent_;
    return self->uv_send_(io, req, message, cb);
  }

  static int SpyingStart(raft_io* io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv) {
    Impl* self = static_cast<Impl*>(static_cast<struct raft*>(io->data)->data);
    self->raft_recv_ = recv;
    return self->uv_start_(io, msecs, tick, &Impl::SpyingRecv);
  }

  // Notes what a leader of this member's term (or a later one: it is about to follow
  // it) announces, then hands the message to libraft.
  static void SpyingRecv(raft_io* io, raft_message* message) {
    Impl* self = static_cast<Impl*>(static_cast<struct raft*>(io->data)->data);
    self->heard_from_[message->server_id] = std::chrono::steady_clock::now();
    std::optional<std::uint64_t> committed;
    if (message->type == RAFT_IO_APPEND_ENTRIES && message->append_entries.term >= self->raft_.current_term) {
      committed = message->append_entries.leader_commit;
    } else if (message->type == RAFT_IO_INSTALL_SNAPSHOT &&
               message->install_snapshot.term >= self->raft_.current_term) {
      committed = message->install_snapshot.last_index;
    }
    if (committed.has_value()) {
      self->leader_commit_heard_ = std::max(self->leader_commit_heard_, *committed);
      self->leader_contact_ = std::chrono::steady_clock::now();
    }
    self->raft_recv_(io, message);
  }

  static MemberRole RoleOf(int role) {
    switch (role) {
      case RAFT_STANDBY: return MemberRole::kStandby;
      case RAFT_SPARE: return MemberRole::kSpare;
      default: return MemberRole::kVoter;
    }
  }

  // Copies libraft's configuration and, on the leader, its progress array into
  // `out`, reusing its storage (this runs at every turn of the loop).
  void FillProgress(ReplicationProgress& out) {
    out.commit_index = raft_.commit_index;
    out.last_index = raft_last_index(&raft_);
    out.first_index = raft_.log.offset + 1;
    out.snapshot_index = raft_.log.snapshot.last_index;
    out.snapshots_sent = snapshots_sent_;
    out.peer_auth_refused_accept = peer_auth_counters_.accept_refused;
    out.peer_auth_refused_connect = peer_auth_counters_.connect_refused;
    out.peer_records_rejected = peer_auth_counters_.records_rejected;
    const bool leading = raft_state(&raft_) == RAFT_LEADER && raft_.leader_state.progress != nullptr;
    if (leading) {
      leader_commit_heard_ = std::max(leader_commit_heard_, std::uint64_t{raft_.commit_index});
      leader_contact_ = std::chrono::steady_clock::now();
    }
    out.leader_commit = leader_commit_heard_;
    out.leader_contact = leader_contact_;
    out.members.resize(raft_.configuration.n);
    for (unsigned i = 0; i < raft_.configuration.n; ++i) {
      const raft_server& server = raft_.configuration.servers[i];
      MemberProgress& m = out.members[i];
      m.member.id = server.id;
      if (m.member.address != server.address) m.member.address = server.address;
      m.role = RoleOf(server.role);
      const auto heard = heard_from_.find(server.id);
      if (heard != heard_from_.end() && server.id != raft_.id) {
        m.last_heard = heard->second;
      } else {
        m.last_heard.reset();
      }
      if (!leading) {
        m.match_index.reset();
      } else if (server.id == raft_.id) {
        m.match_index = out.last_index;
      } else {
        m.match_index = raft_.leader_state.progress[i].match_index;
      }
    }
  }

  std::optional<Member> KnownLeader() {
    raft_id id = 0;
    const char* address = nullptr;
    raft_leader(&raft_, &id, &address);
    if (id == 0 || address == nullptr) return std::nullopt;
    return Member{id, address};
  }

  // Publishes role, term and leader, and tells the StateMachine when they changed.
  void ReportStatus() {
    if (closing_ || !raft_started_) return;
    LogStatus now;
    switch (raft_state(&raft_)) {
      case RAFT_FOLLOWER: now.role = Role::kFollower; break;
      case RAFT_CANDIDATE: now.role = Role::kCandidate; break;
      case RAFT_LEADER: now.role = Role::kLeader; break;
      default: now.role = Role::kStopped; break;
    }
    now.term = raft_.current_term;
    now.leader = KnownLeader();
    now.last_applied = raft_last_applied(&raft_);
    bool changed = now.role != reported_.role || now.term != reported_.term || now.leader != reported_.leader;
    {
      absl::MutexLock lock(&mu_);
      status_ = now;
      progress_.role = now.role;
      FillProgress(progress_);
    }
    if (changed) {
      reported_ = now;
      machine_->OnStatusChange(now);
    }
  }

  // OK while this member leads and the log is not stopping; else what a request that
  // needs the leader is answered with (CANCELLED, or UNAVAILABLE naming the leader).
  absl::Status Leading() {
    if (closing_) return absl::CancelledError("the replicated log is stopping");
    if (raft_state(&raft_) != RAFT_LEADER) return NotLeaderError(KnownLeader());
    return absl::OkStatus();
  }

  void ProposeOnLoop(std::string entry, ProposeDone done) {
    if (absl::Status leading = Leading(); !leading.ok()) {
      done(std::move(leading));
      return;
    }
    if (transfer_ != nullptr) {  // libraft refuses entries meanwhile: hold them
      if (held_.size() >= kMaxHeldProposals) {
        done(absl::UnavailableError("a leadership transfer is in progress and too many proposals wait for it: retry"));
        return;
      }
      held_.push_back(Proposal{std::move(entry), done});
      return;
    }
    raft_buffer buf;
    buf.len = Padded(kEntryHeader + entry.size());
    buf.base = raft_calloc(1, buf.len);
    if (buf.base == nullptr) {
      done(absl::ResourceExhaustedError("out of memory for a log entry"));
      return;
    }
    auto* request = new ApplyRequest{{}, this, raft_.current_term, done};
    PutU64(static_cast<char*>(buf.base), request->term);
    PutU64(static_cast<char*>(buf.base) + 8, entry.size());
    std::memcpy(static_cast<char*>(buf.base) + kEntryHeader, entry.data(), entry.size());
    request->req.data = request;
    int rv = raft_apply(&raft_, &request->req, &buf, 1, &Impl::OnApplied);
    if (rv != 0) {
      raft_free(buf.base);
      delete request;
      done(ApplyError(rv));
    }
  }

  // Hands the proposals held during a transfer to ProposeOnLoop, in their order.
  void ReleaseHeld() {
    std::vector<Proposal> held;
    held.swap(held_);
    for (Proposal& p : held) ProposeOnLoop(std::move(p.entry), p.done);
  }

  // Starts `order` if this member leads and no other change is in flight.
  void ChangeOnLoop(ChangeOrder order, ChangeDone done) {
    if (absl::Status leading = Leading(); !leading.ok()) {
      done(std::move(leading));
      return;
    }
    if (change_in_flight_) {
      done(absl::FailedPreconditionError("another membership change is in progress: retry once it is done"));
      return;
    }
    const raft_server* same_id = nullptr;
    const raft_server* same_address = nullptr;
    for (unsigned i = 0; i < raft_.configuration.n; ++i) {
      const raft_server& server = raft_.configuration.servers[i];
      if (server.id == order.member.id) same_id = &server;
      if (order.kind == ChangeOrder::kAdd && order.member.address == server.address) same_address = &server;
    }
    auto* request = new ChangeRequest{{}, this, order, done};
    request->req.data = request;
    int rv = 0;
    if (order.kind == ChangeOrder::kRemove) {
      if (same_id == nullptr) {
        delete request;
        done(absl::NotFoundError(absl::StrCat("replica ", order.member.id, " is not a member")));
        return;
      }
      if (order.member.id == raft_.id) {
        delete request;
        done(absl::FailedPreconditionError(absl::StrCat(
            "replica ", order.member.id,
            " is the leader: transfer leadership first, then remove it at the new leader")));
        return;
      }
      rv = raft_remove(&raft_, &request->req, order.member.id, &Impl::OnChanged);
    } else if (same_id != nullptr || same_address != nullptr) {
      if (same_id == nullptr || same_address != same_id) {
        const raft_server* other = same_id != nullptr ? same_id : same_address;
        delete request;
        done(absl::AlreadyExistsError(absl::StrCat("replica ", other->id, " is a member at ", other->address)));
        return;
      }
      if (same_id->role == RAFT_VOTER) {
        delete request;
        done(absl::OkStatus());
        return;
      }
      request->promoting = true;  // left a spare or standby by an earlier AddMember
      rv = raft_assign(&raft_, &request->req, order.member.id, RAFT_VOTER, &Impl::OnChanged);
    } else {
      rv = raft_add(&raft_, &request->req, order.member.id, order.member.address.c_str(), &Impl::OnChanged);
    }
    if (rv != 0) {
      delete request;
      done(ChangeError(rv, order));
      return;
    }
    change_in_flight_ = true;
  }

  void TransferOnLoop(std::uint64_t to, ChangeDone done) {
    if (absl::Status leading = Leading(); !leading.ok()) {
      done(std::move(leading));
      return;
    }
    if (to == raft_.id) {
      done(absl::OkStatus());
      return;
    }
    if (transfer_ != nullptr || raft_.transfer != nullptr) {
      done(absl::FailedPreconditionError("a leadership transfer is in progress: retry once it is done"));
      return;
    }
    if (to != 0) {
      const raft_server* target = nullptr;
      for (unsigned i = 0; i < raft_.configuration.n; ++i) {
        if (raft_.configuration.servers[i].id == to) target = &raft_.configuration.servers[i];
      }
      if (target == nullptr) {
        done(absl::NotFoundError(absl::StrCat("replica ", to, " is not a member")));
        return;
      }
      if (target->role != RAFT_VOTER) {
        done(absl::FailedPreconditionError(absl::StrCat("replica ", to, " is not a voter: it cannot lead")));
        return;
      }
    }
    last_transfer_ = std::make_unique<TransferRequest>(TransferRequest{{}, this, to, raft_.current_term, done});
    last_transfer_->req.data = last_transfer_.get();
    int rv = raft_transfer(&raft_, &last_transfer_->req, to, &Impl::OnTransferred);
    if (rv != 0) {
      last_transfer_.reset();
      if (rv == RAFT_NOTFOUND) {
        done(absl::FailedPreconditionError("there is no other voter to hand leadership to"));
      } else if (rv == RAFT_NOTLEADER) {
        done(NotLeaderError(KnownLeader()));
      } else {
        done(RaftError("leadership transfer", rv, raft_errmsg(&raft_)));
      }
      return;
    }
    transfer_ = last_transfer_.get();
  }

  // libraft: the target leads, or the election timeout passed. Success is judged by
  // this member's own state: stepped down for a higher term (the target's election),
  // not merely stepped down (a leader that lost its majority does, in its own term).
  static void OnTransferred(struct raft_transfer* req) {
    auto* request = static_cast<TransferRequest*>(req->data);
    Impl* self = request->impl;
    if (self->transfer_ != request) return;  // answered already (CloseRaft)
    self->transfer_ = nullptr;
    // Proposals held during the transfer go in after its answer: appended if this member
    // still leads, else refused (UNAVAILABLE naming the new leader, CANCELLED if closing).
    struct ReleaseHeld {
      Impl* self;
      ~ReleaseHeld() { self->ReleaseHeld(); }
    } release{self};
    if (self->closing_) {
      request->done(absl::CancelledError("the replicated log stopped during the leadership transfer"));
    } else if (raft_state(&self->raft_) == RAFT_LEADER || self->raft_.current_term == request->term) {
      const std::uint64_t target = request->to != 0 ? request->to : std::uint64_t{req->id};
      request->done(absl::DeadlineExceededError(
          absl::StrCat("replica ", target, " did not take over within the election timeout (down, or far behind?); ",
                       "this replica still leads, or lost its majority meanwhile")));
    } else {
      request->done(absl::OkStatus());
    }
  }

  static void OnChanged(struct raft_change* req, int status) {
    auto* request = static_cast<ChangeRequest*>(req->data);
    Impl* self = request->impl;
    if (status == 0 && request->order.kind == ChangeOrder::kAdd && !request->promoting) {
      // The spare is in the committed configuration: promote it. libraft sends it the
      // log (or a snapshot) and appends the new configuration once it has caught up.
      request->promoting = true;
      int rv = self->closing_ ? RAFT_SHUTDOWN
                              : raft_assign(&self->raft_, &request->req, request->order.member.id, RAFT_VOTER,
                                            &Impl::OnChanged);
      if (rv == 0) return;
      status = rv;
    }
    self->change_in_flight_ = false;
    request->done(status == 0 ? absl::OkStatus() : self->ChangeError(status, request->order));
    delete request;
  }

  absl::Status ChangeError(int rv, const ChangeOrder& order) {
    switch (rv) {
      case RAFT_NOTLEADER:
        return NotLeaderError(KnownLeader());
      case RAFT_CANTCHANGE:
        return absl::FailedPreconditionError("another membership change is in progress: retry once it is done");
      case RAFT_NOCONNECTION:
        return absl::DeadlineExceededError(absl::StrCat(
            "replica ", order.member.id, " did not catch up with the leader's log (is it running, started with "
            "--join?); it stays a spare without a vote: add it again, or remove it"));
      case RAFT_LEADERSHIPLOST:
        if (closing_) return absl::CancelledError("the replicated log stopped before the change committed");
        return absl::AbortedError(
            "leadership was lost before the membership change committed; it may still commit: list the members at "
            "the new leader");
      case RAFT_SHUTDOWN:
        return absl::CancelledError("the replicated log is stopping");
      case RAFT_DUPLICATEID:
      case RAFT_DUPLICATEADDRESS:
        return absl::AlreadyExistsError(absl::StrCat("replica ", order.member.id, " or its address is a member already"));
      default:
        return RaftError("membership change", rv, raft_errmsg(&raft_));
    }
  }

  absl::Status ApplyError(int rv) {
    switch (rv) {
      case RAFT_NOTLEADER:
        return NotLeaderError(KnownLeader());
      case RAFT_LEADERSHIPLOST:
        if (closing_) return absl::CancelledError("the replicated log stopped before the entry committed");
        return absl::AbortedError("leadership was lost before the entry committed; it may still commit");
      case RAFT_SHUTDOWN:
        return absl::CancelledError("the replicated log is stopping");
      default:
        return RaftError("apply", rv, raft_errmsg(&raft_));
    }
  }

  static void OnApplied(struct raft_apply* req, int status, void* /*result*/) {
    auto* request = static_cast<ApplyRequest*>(req->data);
    ProposeDone done = request->done;
    if (status == 0) {
      done(LogPosition{req->index, request->term});
    } else {
      done(request->impl->ApplyError(status));
    }
    delete request;
  }

  static int FsmApply(raft_fsm* fsm, const raft_buffer* buf, void** result) {
    Impl* self = static_cast<Impl*>(fsm->data);
    *result = nullptr;
    const char* data = static_cast<const char*>(buf->base);
    COHORT_CHECK(buf->len >= kEntryHeader && GetU64(data + 8) <= buf->len - kEntryHeader,
                 "a raft entry without a valid header");
    // Role changes surface in the check phase; the StateMachine hears of a new term
    // before its first entry.
    self->ReportStatus();
    // libraft advances last_applied after each apply: this entry is the next one.
    LogPosition at{raft_last_applied(&self->raft_) + 1, GetU64(data)};
    self->machine_->Apply(at, absl::string_view(data + kEntryHeader, GetU64(data + 8)));
    self->last_applied_term_ = at.term;
    self->log_bytes_since_snapshot_ += buf->len;
    self->UpdateSnapshotThreshold();
    absl::MutexLock lock(&self->mu_);
    self->status_.last_applied = at.index;
    return 0;
  }

  // libraft calls this on the loop right after applying last_applied. The snapshot
  // covers that position; a concurrent machine exports later, in FsmSnapshotAsync, a
  // state at or after it (StateMachine::SnapshotsMayRunConcurrently), so it hands
  // libraft no buffers yet. libraft takes one snapshot at a time and refuses to install
  // a received one meanwhile.
  static int FsmSnapshot(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) {
    Impl* self = static_cast<Impl*>(fsm->data);
    self->snapshot_ = std::make_unique<SnapshotInProgress>();
    self->snapshot_->at = LogPosition{raft_last_applied(&self->raft_), self->last_applied_term_};
    self->log_bytes_since_snapshot_ = 0;
    *bufs = nullptr;
    *n_bufs = 0;
    if (fsm->snapshot_async != nullptr) return 0;
    int rv = self->ExportSnapshot(bufs, n_bufs);
    if (rv != 0) self->snapshot_.reset();  // libraft skips finalize when this fails
    return rv;
  }

  // The snapshot policy (RaftLogOptions::snapshot_max_log_bytes). libraft snapshots
  // once last_applied is `threshold` entries past its last snapshot: the threshold is
  // out of reach (the factor) until enough bytes were applied since the last one.
  void UpdateSnapshotThreshold() {
    if (options_.snapshot_max_log_bytes == 0) return;  // by count only, as set at Init
    const std::uint64_t due = std::min<std::uint64_t>(last_snapshot_bytes_, options_.snapshot_max_log_bytes);
    raft_set_snapshot_threshold(&raft_, log_bytes_since_snapshot_ >= due
                                            ? options_.snapshot_threshold
                                            : options_.snapshot_threshold * RaftLogOptions::kSnapshotThresholdFactor);
  }

  // On a thread of libuv's pool, between FsmSnapshot and FsmSnapshotFinalize.
  static int FsmSnapshotAsync(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) {
    return static_cast<Impl*>(fsm->data)->ExportSnapshot(bufs, n_bufs);
  }

  // On the loop, once libraft has written the snapshot (or given up on it).
  static int FsmSnapshotFinalize(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) {
    Impl* self = static_cast<Impl*>(fsm->data);
    // Written: libraft moved its log's snapshot to this one before finalizing. A failed
    // snapshot keeps the last size, and (as log_bytes_since_snapshot_ restarted at the
    // take) waits as long as a new one would before the next try.
    if (self->raft_.log.snapshot.last_index == self->snapshot_->at.index) {
      self->last_snapshot_bytes_ = self->snapshot_->state.size();
    }
    self->snapshot_.reset();
    self->UpdateSnapshotThreshold();
    *bufs = nullptr;
    *n_bufs = 0;
    return 0;
  }

  // Exports the machine's state into snapshot_ and points libraft at it: the header,
  // the state itself (not copied) and the zeros that pad it to a multiple of 8 bytes.
  int ExportSnapshot(raft_buffer* bufs[], unsigned* n_bufs) {
    absl::StatusOr<std::string> state = machine_->Snapshot();
    if (!state.ok()) return RAFT_BUSY;  // skipped; libraft retries at the next threshold
    SnapshotInProgress& s = *snapshot_;
    s.state = *std::move(state);
    PutU64(s.header, s.at.index);
    PutU64(s.header + 8, s.at.term);
    PutU64(s.header + 16, s.state.size());
    s.bufs[0] = raft_buffer{s.header, kSnapshotHeader};
    s.bufs[1] = raft_buffer{s.state.data(), s.state.size()};
    s.bufs[2] = raft_buffer{s.padding, Padded(s.state.size()) - s.state.size()};
    *bufs = s.bufs;
    *n_bufs = s.bufs[2].len > 0 ? 3 : 2;
    return 0;
  }

  // On success the buffer is ours to free (libraft hands it over).
  static int FsmRestore(raft_fsm* fsm, raft_buffer* buf) {
    Impl* self = static_cast<Impl*>(fsm->data);
    const char* data = static_cast<const char*>(buf->base);
    if (buf->len < kSnapshotHeader || GetU64(data + 16) > buf->len - kSnapshotHeader) return RAFT_MALFORMED;
    LogPosition at{GetU64(data), GetU64(data + 8)};
    absl::Status s = self->machine_->Restore(at, absl::string_view(data + kSnapshotHeader, GetU64(data + 16)));
    if (!s.ok()) return RAFT_IOERR;
    self->last_applied_term_ = at.term;
    self->last_snapshot_bytes_ = GetU64(data + 16);
    self->log_bytes_since_snapshot_ = 0;
    raft_free(buf->base);
    {
      absl::MutexLock lock(&self->mu_);
      self->status_.last_applied = at.index;
    }
    return 0;
  }

  const RaftLogOptions options_;
  StateMachine* const machine_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Proposal> inbox_ ABSL_GUARDED_BY(mu_);
  std::vector<PendingChange> changes_ ABSL_GUARDED_BY(mu_);
  LogStatus status_ ABSL_GUARDED_BY(mu_);
  ReplicationProgress progress_ ABSL_GUARDED_BY(mu_);

  // The loop thread's own state.
  uv_loop_t loop_;
  uv_async_t wake_;
  uv_check_t check_;
  raft_uv_transport transport_;
  raft_io io_;
  raft_fsm fsm_;
  struct raft raft_;
  bool loop_open_ = false;
  bool handles_open_ = false;
  bool raft_started_ = false;
  bool closing_ = false;
  LogStatus reported_;
  std::uint64_t last_applied_term_ = 0;
  std::uint64_t snapshots_sent_ = 0;
  RaftPeerAuthCounters peer_auth_counters_;  // written by the transport, on this loop
  // The snapshot libraft is taking (FsmSnapshot to FsmSnapshotFinalize): its buffers
  // point into it. Written on the loop, and by the pool thread while libraft waits.
  struct SnapshotInProgress {
    LogPosition at;
    char header[kSnapshotHeader] = {};
    std::string state;
    char padding[8] = {};
    raft_buffer bufs[3] = {};
  };
  std::unique_ptr<SnapshotInProgress> snapshot_;
  // The size of the last snapshot taken or restored, and the entry bytes applied since
  // the last one was taken (UpdateSnapshotThreshold).
  std::uint64_t last_snapshot_bytes_ = 0;
  std::uint64_t log_bytes_since_snapshot_ = 0;
  bool change_in_flight_ = false;  // a ChangeRequest's callbacks are pending
  std::unique_ptr<TransferRequest> last_transfer_;  // see TransferRequest
  TransferRequest* transfer_ = nullptr;             // the transfer awaiting its answer
  // Proposals that arrived during transfer_, proposed (or refused) once it is answered;
  // at most kMaxHeldProposals (more are refused UNAVAILABLE).
  static constexpr std::size_t kMaxHeldProposals = 4096;
  std::vector<Proposal> held_;
  int (*uv_send_)(raft_io*, raft_io_send*, const raft_message*, raft_io_send_cb) = nullptr;
  int (*uv_start_)(raft_io*, unsigned, raft_io_tick_cb, raft_io_recv_cb) = nullptr;
  raft_io_recv_cb raft_recv_ = nullptr;
  std::uint64_t leader_commit_heard_ = 0;  // see ReplicationProgress::leader_commit
  std::optional<std::chrono::steady_clock::time_point> leader_contact_;
  // When each peer's last message arrived (MemberProgress::last_heard); one entry per id
  // ever heard, bounded by the ids a group can hold.
  absl::flat_hash_map<std::uint64_t, std::chrono::steady_clock::time_point> heard_from_;
};

absl::StatusOr<std::unique_ptr<RaftLog>> RaftLog::Start(RaftLogOptions options, StateMachine* machine) {
  if (machine == nullptr) return absl::InvalidArgumentError("RaftLog needs a StateMachine");
  if (options.self.id == 0 || options.self.address.empty()) {
    return absl::InvalidArgumentError("RaftLog: self needs a positive id and an address");
  }
  if (options.dir.empty()) return absl::InvalidArgumentError("RaftLog: dir is empty");
  bool self_listed = false;
  for (const Member& m : options.members) {
    if (m.id == 0 || m.address.empty()) return absl::InvalidArgumentError("RaftLog: a member needs an id and an address");
    if (absl::StatusOr<RaftAddress> a = ParseRaftAddress(m.address); !a.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("RaftLog: member ", m.id, ": ", a.status().message()));
    }
    if (m == options.self) self_listed = true;
  }
  if (!self_listed && !options.join) return absl::InvalidArgumentError("RaftLog: members must include self");
  if (absl::StatusOr<RaftAddress> a = ParseRaftAddress(options.self.address); !a.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("RaftLog: self: ", a.status().message()));
  }
  if (options.heartbeat_interval < absl::Milliseconds(1) ||
      options.election_timeout < 2 * options.heartbeat_interval ||
      options.election_timeout > absl::Minutes(1)) {
    return absl::InvalidArgumentError(
        "RaftLog: heartbeat_interval must be >= 1ms and election_timeout within [2 * heartbeat_interval, 1m]");
  }
  if (!options.peer_secret.empty() && options.peer_secret.size() < kMinPeerSecretBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("RaftLog: peer_secret has ", options.peer_secret.size(), " bytes: use at least ", kMinPeerSecretBytes));
  }
  if (options.peer_handshake_timeout < absl::Milliseconds(1) || options.peer_handshake_timeout > absl::Minutes(1)) {
    return absl::InvalidArgumentError("RaftLog: peer_handshake_timeout must be within 1 ms .. 1 min");
  }
  if (options.snapshot_send_timeout < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError("RaftLog: snapshot_send_timeout must be >= 1ms");
  }
  if (options.catch_up_round_timeout < absl::Milliseconds(1) || options.catch_up_round_timeout > absl::Hours(1)) {
    return absl::InvalidArgumentError("RaftLog: catch_up_round_timeout must be within [1ms, 1h]");
  }
  if (options.snapshot_threshold == 0 || options.snapshot_threshold > (1u << 24)) {
    return absl::InvalidArgumentError("RaftLog: snapshot_threshold must be within [1, 2^24]");
  }
  auto impl = std::make_unique<Impl>(std::move(options), machine);
  absl::Status s = impl->Start();
  if (!s.ok()) return s;
  return std::unique_ptr<RaftLog>(new RaftLog(std::move(impl)));
}

RaftLog::RaftLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RaftLog::~RaftLog() { Stop(); }

void RaftLog::Stop() { impl_->Stop(); }

runtime::Task<absl::StatusOr<LogPosition>> RaftLog::Propose(std::string entry) {
  if (entry.empty()) co_return absl::InvalidArgumentError("a log entry must not be empty");
  if (entry.size() > impl_->options().max_entry_bytes) {
    co_return absl::InvalidArgumentError(absl::StrCat("a log entry of ", entry.size(), " bytes is over the limit of ",
                                                      impl_->options().max_entry_bytes));
  }
  co_return co_await runtime::ExternalCompletion<ProposeResult>(
      [this, &entry](ProposeDone done) { impl_->Submit(std::move(entry), done); });
}

LogStatus RaftLog::status() const { return impl_->status(); }

ReplicationProgress RaftLog::progress() const { return impl_->progress(); }

// Ids as ReplicaConfig allows them; the cap keeps them printable and sane.
constexpr std::uint64_t kMaxMemberId = 1'000'000;

runtime::Task<absl::Status> RaftLog::AddMember(Member member) {
  if (member.id == 0 || member.id > kMaxMemberId) {
    co_return absl::InvalidArgumentError(absl::StrCat("replica id ", member.id, " is invalid: use 1..", kMaxMemberId));
  }
  if (absl::StatusOr<RaftAddress> a = ParseRaftAddress(member.address); !a.ok()) {
    co_return absl::InvalidArgumentError(absl::StrCat("replica ", member.id, ": ", a.status().message()));
  }
  co_return co_await runtime::ExternalCompletion<absl::Status>([this, &member](ChangeDone done) {
    impl_->SubmitChange(ChangeOrder{ChangeOrder::kAdd, std::move(member)}, done);
  });
}

runtime::Task<absl::Status> RaftLog::RemoveMember(std::uint64_t id) {
  if (id == 0 || id > kMaxMemberId) {
    co_return absl::InvalidArgumentError(absl::StrCat("replica id ", id, " is invalid: use 1..", kMaxMemberId));
  }
  co_return co_await runtime::ExternalCompletion<absl::Status>(
      [this, id](ChangeDone done) { impl_->SubmitChange(ChangeOrder{ChangeOrder::kRemove, Member{id, ""}}, done); });
}

runtime::Task<absl::Status> RaftLog::TransferLeadership(std::uint64_t to) {
  if (to > kMaxMemberId) {
    co_return absl::InvalidArgumentError(absl::StrCat("replica id ", to, " is invalid: use 1..", kMaxMemberId));
  }
  co_return co_await runtime::ExternalCompletion<absl::Status>([this, to](ChangeDone done) {
    impl_->SubmitChange(ChangeOrder{ChangeOrder::kTransfer, Member{to, ""}}, done);
  });
}

std::size_t ReplicationProgress::voters() const {
  std::size_t n = 0;
  for (const MemberProgress& m : members) n += m.role == MemberRole::kVoter ? 1 : 0;
  return n;
}

}  // namespace cohort::replication
