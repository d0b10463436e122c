#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "libs/rpc/bidi_client.h"
#include "libs/rpc/message_sequence.h"
#include "libs/runtime/runtime.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "services/executor/executor_metrics.h"
#include "services/executor/job_runner.h"
#include "services/executor/prefetch_window.h"

namespace cohort::executor {

// Everything an operator may tune; each field is a flag of cohort-executor.
struct ExecutorOptions {
  std::string executor_id;
  std::map<std::string, std::string> labels;
  std::vector<std::string> queues;  // empty: every queue
  // Announced in Hello.kinds: the broker assigns only jobs of these kinds. Empty: every
  // kind (the broker then also sends kinds this executor fails as "unknown_kind").
  std::vector<std::string> kinds;
  int capacity = 4;
  // Hello.prefetch, 0 or more (capacity + prefetch within the broker's capacity limit,
  // 10000): the most assigned attempts held unstarted beyond `capacity`, so that a slot
  // that frees starts its next job without waiting for the broker.
  int prefetch = 0;
  // true: hold a window of 0..prefetch attempts that follows the durations of finished
  // attempts (PrefetchWindow); false: always `prefetch`.
  bool adaptive_prefetch = false;
  // Adaptive: the work, in time, the window holds (PrefetchWindowOptions::horizon).
  runtime::Duration prefetch_horizon = PrefetchWindowOptions{}.horizon;
  // Adaptive: when no attempt has finished for this long (checked once per period, so
  // after 1-2 periods), the window forgets what it learned and closes, withdrawing its
  // unused credit, so that an executor that sat idle, or whose slots all run long
  // jobs, does not take a deep batch of what comes next before it knows how long that
  // takes. An open window means attempts finish every few ms (mean / capacity is under
  // the horizon), so 100 ms without one is a change of workload, not noise.
  runtime::Duration prefetch_forget_after = std::chrono::milliseconds(100);
  runtime::Duration reconnect_initial = std::chrono::milliseconds(100);
  runtime::Duration reconnect_max = std::chrono::seconds(10);
  runtime::Duration drain_grace = std::chrono::seconds(30);
  // Called on the loop each time the broker welcomes a session (may be empty).
  std::function<void()> on_welcome;
};

// An executor's life on its loop: one Connect stream to the broker at a time
// (reconnecting with exponential backoff), up to `capacity` attempts running as tasks,
// credits returned as attempts finish, heartbeats that keep their leases, and the
// broker's Cancel cancelling the attempt's task. Attempts outlive a broken stream:
// their completions are sent on the next stream (the broker fences them if it has
// given the job to someone else meanwhile). A broker's Drain ends the stream once
// the running attempts are reported, and the engine reconnects.
//
// Pipelining (executor.proto): with options.prefetch > 0 the engine asks for up to
// capacity + window attempts (the window: options.prefetch, or with
// options.adaptive_prefetch a PrefetchWindow within 0..prefetch that follows the
// durations of finished attempts) and keeps those beyond `capacity` unstarted, in
// Assign order, starting the next one in the same loop turn as a slot frees. Credit
// tops the attempts it holds plus the credit it has granted and not yet seen used
// (`outstanding_`) up to capacity + window: each completion carries what that takes
// (more than 1 while the window grows, 0 or less when it shrinks: a negative credit
// withdraws unused credit, never an assignment), and an adaptive window that closes
// because nothing finished for options.prefetch_forget_after withdraws its credit.
// Attempts already held when the window shrinks stay held (the protocol has no way
// to hand one back but a drain). Held attempts are listed in heartbeats and
// Hello.running (their leases run); a Cancel drops one unstarted, reported as
// "cancelled". Once draining (its own Drain or the broker's) it starts
// none and half-closes holding them: the broker takes them back without using an
// attempt, and the engine forgets them when that stream ends cleanly. Completions
// waiting in the outbox together go out as one CompleteBatch to a broker that takes
// it; an AssignBatch is read as its Assigns in order.
//
// Watchdog (executor.proto, LeaseExtended): the broker answers every heartbeat, so a
// stream on which no message of any kind has arrived for kStallIntervals heartbeat
// intervals is wedged even if its transport looks healthy (bytes lost or
// desynchronised). The engine then cancels it, counts it in
// cohort_executor_stream_stalls_total, logs it and reconnects with the usual backoff,
// keeping its running attempts and listing them in the next Hello. The interval is
// the one the broker's Welcome asked for (before any Welcome: 5 s), so the first
// Welcome must also come within that bound.
//
// Time: every deadline, timer and logged instant comes from the loop's Clock
// (monotonic Now, wall SystemNow), so a ManualClock drives all of it in tests.
//
// Progress: each attempt's latest report waits in the engine until the stream takes
// it, so reports made faster than they can be sent replace one another (at most one
// per job is queued), and a report made before the attempt's completion is sent
// before it. Loop thread only.
class ExecutorEngine {
 public:
  ExecutorEngine(runtime::EventLoop& loop, cohort::v1::Broker::Stub& stub, ExecutorMetrics& metrics,
                 ExecutorOptions options, JobRunner& builtins, JobRunner* exec);

  // Serves until Drain() has finished: returns once every attempt has been reported.
  runtime::Task<void> Run();
  // Takes no new work; running attempts get drain_grace to finish, then are cancelled
  // and reported as failed with code "interrupted". Idempotent.
  void Drain();

  // Attempts started and not yet reported; prefetched ones are not counted.
  int running() const { return static_cast<int>(attempts_.size()); }
  // Attempts assigned and held unstarted (at most options.prefetch while the broker
  // keeps to the credit).
  int prefetched() const { return static_cast<int>(prefetched_.size()); }
  // The prefetch window now: how many unstarted attempts the engine asks to hold.
  int prefetch_window() const { return window_.size(); }
  bool connected() const { return connected_; }
  // When a message from the broker was last read (or the current stream was opened),
  // on the loop's clock: what the watchdog measures silence from.
  runtime::TimePoint last_heard() const { return heard_at_; }

  // Silence, in heartbeat intervals, after which a stream counts as wedged.
  static constexpr int kStallIntervals = 3;

 private:
  // An attempt is two tasks, both spawned on Assign: `work` runs the job and is what a
  // Cancel, a timeout or a drain cancels (even before it has started); `report`
  // awaits it and always sends the completion, then removes the attempt from
  // attempts_. Owned by attempts_, not by a TaskGroup: they outlive the session that
  // started them, a TaskGroup keeps every child it ever spawned until it is destroyed
  // (one per attempt for the process's life), and one attempt's failure must not
  // cancel the others. Run() joins them all: SettleAttempts waits for idle_.
  struct Attempt {
    runtime::TaskHandle<Outcome> work;
    runtime::TaskHandle<void> report;
  };
  // In the outbox: the attempt's entry in unsent_progress_, read when it is written.
  struct ProgressDue {
    std::string job_id;
    int attempt;
  };
  using Outgoing = std::variant<cohort::v1::ExecutorMessage, ProgressDue>;
  // Forwards an attempt's reports to OnProgress; lives in the attempt's Work frame.
  class AttemptProgress;

  using Stream = rpc::ClientBidiStream<cohort::v1::ExecutorMessage, cohort::v1::BrokerMessage>;

  // One Connect stream, until it ends; true if the broker welcomed it. Its helpers
  // (WatchBroker from the start, WriteOutbox and CloseWhenDrained once greeted, then
  // SendHeartbeats and LeaveWhenIdle as the broker asks) live in one TaskGroup,
  // cancelled and joined before the stream is finished.
  runtime::Task<bool> Session();
  // Hello (listing the attempts still running) and the first credit; false if the
  // stream broke.
  runtime::Task<bool> Greet(Stream& stream);
  // Reads the broker's messages until the stream ends; true if it welcomed us.
  runtime::Task<bool> ServeBroker(Stream& stream, runtime::TaskGroup& helpers);
  // Every welcome calls on_welcome and sets the heartbeat interval; the first of a
  // stream also starts its heartbeats.
  void OnWelcome(const cohort::v1::BrokerMessage::Welcome& welcome, bool first, runtime::TaskGroup& helpers);
  // Starts the attempt if a slot is free, else holds it prefetched; takes its job
  // (moved out of `assign`, which the caller then discards).
  void OnAssign(cohort::v1::BrokerMessage::Assign& assign);
  // Starts prefetched attempts in Assign order while slots are free (never once
  // draining or leaving).
  void StartPrefetched();
  // Takes the job: its one copy on this side lives in the attempt's Work task.
  void Start(cohort::v1::Job job, int attempt);
  // A Cancel from the broker: cancels a running attempt's work, or drops a prefetched
  // one and reports it cancelled.
  void OnCancel(const cohort::v1::BrokerMessage::Cancel& cancel);
  // Queues an attempt's Complete, after the attempt has left attempts_ or prefetched_,
  // with the credit that tops the held attempts and outstanding credit up to capacity +
  // window (on the Complete when the broker takes it there, else as a CreditGrant of
  // its own when not 0; no credit once draining).
  void SendCompletion(const std::string& job_id, int attempt, Outcome outcome);
  // The credit to ask for now so that held attempts plus outstanding credit make
  // capacity + window: at least -outstanding_ (a withdrawal takes back only unused
  // credit). Counts it as granted.
  int TakeCreditToGrant();
  // Adaptive prefetch: every options.prefetch_forget_after, if no attempt finished
  // meanwhile, closes the window and withdraws its unused credit.
  runtime::Task<void> ForgetWhenQuiet();
  // Writes `messages` in order, merging runs of Completes into CompleteBatches when
  // the broker takes them; false if a write failed, in which case the failed message
  // and the rest are back in the outbox (a batch as its Completes).
  runtime::Task<bool> WriteAll(Stream& stream, std::vector<cohort::v1::ExecutorMessage> messages);
  // Puts a message that could not be written back for the next stream.
  void Requeue(cohort::v1::ExecutorMessage message);
  // The one writer of a stream: completions, credits, heartbeats and progress from
  // every task go through outbox_. Ends when a write fails, keeping that message.
  runtime::Task<void> WriteOutbox(Stream& stream);
  // Heartbeats, the first at `first` (fixed when the Welcome is read, not when this task
  // first runs), then every heartbeat interval.
  runtime::Task<void> SendHeartbeats(runtime::TimePoint first);
  // The watchdog: cancels `stream` once the broker has been silent for kStallIntervals
  // heartbeat intervals (rechecked when a Welcome changes the interval) and records
  // why in cancelled_because_; returns then.
  runtime::Task<void> WatchBroker(Stream& stream);
  // kStallIntervals heartbeat intervals, saturated far below TimePoint overflow.
  runtime::Duration StallAfter() const;
  // The executor's own drain: settles the attempts, lets the writer send their
  // completions, then half-closes.
  runtime::Task<void> CloseWhenDrained(Stream& stream);
  // The broker's Drain: it sends no more work on this stream. Once every attempt has
  // been reported, half-close; the broker then ends the stream and Run reconnects.
  runtime::Task<void> LeaveWhenIdle(Stream& stream);
  // Logs how a session ended (lost, stalled, unreachable) unless draining.
  void LogSessionEnd(bool welcomed, const grpc::Status& status);
  // Waits drain_grace for running attempts, then cancels the rest and waits for them.
  runtime::Task<void> SettleAttempts();
  runtime::Task<Outcome> Work(cohort::v1::Job job, int attempt);
  // Reports `work`'s outcome for attempt `attempt` of job `job_id` (of kind `kind`).
  runtime::Task<void> Report(std::string job_id, std::string kind, int attempt, runtime::TaskHandle<Outcome> work);
  runtime::Task<Outcome> Execute(const cohort::v1::Job& job, int attempt, ProgressSink& progress);
  void Send(cohort::v1::ExecutorMessage message);
  cohort::v1::ExecutorMessage Heartbeat() const;
  void OnProgress(const std::string& job_id, int attempt, cohort::v1::Progress progress);
  // The message to write for `item`; nullopt for progress that is no longer wanted.
  std::optional<cohort::v1::ExecutorMessage> TakeMessage(Outgoing item);
  // A progress message that could not be written: kept for the next stream unless a
  // newer report exists or the attempt has ended.
  void KeepUnsentProgress(const cohort::v1::ExecutorMessage::ProgressReport& report);

  runtime::EventLoop& loop_;
  const runtime::Clock& clock_;  // loop_'s
  cohort::v1::Broker::Stub& stub_;
  ExecutorMetrics& metrics_;
  const ExecutorOptions options_;
  JobRunner& builtins_;
  JobRunner* exec_;
  // By (job id, attempt): a redelivered job's new attempt may arrive (after a
  // reconnect) while its stale one is still being stopped.
  using AttemptKey = std::pair<std::string, int>;
  std::map<AttemptKey, Attempt> attempts_;
  // Prefetched attempts, by key, and the order they came in. prefetch_order_ may still
  // name a key dropped by a Cancel (skipped when reached); it holds at most what was
  // assigned since the buffer was last emptied.
  std::map<AttemptKey, cohort::v1::Job> prefetched_;
  PrefetchWindow window_;
  // Credit granted on the current stream and not yet used by an Assign that arrived,
  // as far as the engine can tell: it counts its grants and withdrawals (clamped at 0,
  // as the broker clamps them) and every Assign read. Exact while the broker honours
  // capacity + Hello.prefetch in full, as cohort-broker does when that is within its
  // capacity limit (10000; ExecutorApp keeps to it). A broker that lowered the bound
  // would drop some credit unseen and this would over-count: the engine would then
  // ask for less, never more, than it means to.
  int outstanding_ = 0;
  // Attempts finished so far, for ForgetWhenQuiet.
  std::uint64_t finished_ = 0;
  // The outbox writer has taken a message it has not yet started writing (it lets
  // the loop's ready work run first): the outbox is not drained yet.
  bool writer_holds_ = false;
  std::deque<AttemptKey> prefetch_order_;
  // Bounded in practice: per attempt (running or prefetched), one completion, one
  // credit and one ProgressDue, plus a heartbeat per interval while a stream is up.
  runtime::Queue<Outgoing> outbox_;
  // An attempt's latest progress report, not yet taken by the writer. Each entry has
  // exactly one ProgressDue in outbox_. Survives the attempt's end, so a report made
  // before the completion goes out before it.
  std::map<AttemptKey, cohort::v1::Progress> unsent_progress_;
  runtime::Event idle_;                                 // set when no attempt runs
  runtime::Event draining_;
  runtime::Event drained_;
  runtime::Duration heartbeat_interval_ = std::chrono::seconds(5);
  // The watchdog's state for the current stream: when the broker was last heard, and a
  // wake-up when a Welcome changes the interval.
  runtime::TimePoint heard_at_;
  runtime::Event interval_changed_;
  // The current stream's message numbers (executor.proto, seq).
  rpc::MessageSequence sequence_;
  // Why this executor cancelled the current stream (a stall, or a gap in the broker's
  // message numbers), for the log line that ends it; empty if it did not.
  std::string cancelled_because_;
  // The current stream's broker said welcome.complete_carries_credit: a finished
  // attempt's credit rides on its Complete instead of a CreditGrant of its own.
  bool complete_carries_credit_ = false;
  // The current stream's broker said welcome.accepts_complete_batches.
  bool complete_batches_ = false;
  // The current stream's broker sent Drain: nothing more starts on its behalf.
  bool leaving_ = false;
  // This stream was half-closed by the engine (its own drain or the broker's): if it
  // then ends OK, the broker has taken back the prefetched attempts.
  bool closed_writes_ = false;
  bool connected_ = false;
  // For the log: whether a session was ever welcomed, and when the last one was lost.
  bool ever_welcomed_ = false;
  std::optional<runtime::TimePoint> lost_at_;
};

}  // namespace cohort::executor
