#include "services/executor/executor_engine.h"

#include <algorithm>
#include <exception>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "libs/common/log.h"
#include "libs/common/wire_time.h"

namespace cohort::executor {

using cohort::v1::BrokerMessage;
using cohort::v1::ExecutorMessage;
using runtime::Task;

namespace {

const log::Logger kLog("executor");

// A Duration from the broker as a timer delay: negative or malformed values count as
// zero and anything past kMaxWireDuration as kMaxWireDuration, so that `Now() + d`
// never overflows (a hand conversion of seconds to nanoseconds wrapped around and made
// a timeout of 2,777,778 h fire at once).
runtime::Duration TimerDelay(const google::protobuf::Duration& d) {
  return common::ToChronoSaturated(common::ClampedFromProto(d));
}

// The low-cardinality outcome label of cohort_executor_attempts_total.
std::string OutcomeLabel(const Outcome& o) {
  if (o.ok) return "succeeded";
  const std::string& code = o.error.code();
  if (code == "timeout" || code == "cancelled" || code == "interrupted") return code;
  return "failed";
}

}  // namespace

class ExecutorEngine::AttemptProgress final : public ProgressSink {
 public:
  AttemptProgress(ExecutorEngine& engine, std::string job_id, int attempt)
      : engine_(engine), job_id_(std::move(job_id)), attempt_(attempt) {}
  void Report(double fraction, std::string message) override {
    cohort::v1::Progress p;
    p.set_fraction(std::clamp(fraction, 0.0, 1.0));
    p.set_message(std::move(message));
    engine_.OnProgress(job_id_, attempt_, std::move(p));
  }

 private:
  ExecutorEngine& engine_;
  const std::string job_id_;
  const int attempt_;
};

ExecutorEngine::ExecutorEngine(runtime::EventLoop& loop, cohort::v1::Broker::Stub& stub, ExecutorMetrics& metrics,
                               ExecutorOptions options, JobRunner& builtins, JobRunner* exec)
    : loop_(loop),
      clock_(loop.clock()),
      stub_(stub),
      metrics_(metrics),
      options_(std::move(options)),
      builtins_(builtins),
      exec_(exec),
      window_(PrefetchWindowOptions{.capacity = options_.capacity,
                                    .max = options_.prefetch,
                                    .adaptive = options_.adaptive_prefetch,
                                    .horizon = options_.prefetch_horizon}) {
  idle_.Set();
  metrics_.capacity().Set(options_.capacity);
  metrics_.prefetch_window().Set(window_.size());
}

void ExecutorEngine::Send(ExecutorMessage message) {
  outbox_.PutNowait(std::move(message)).IgnoreError();  // unbounded: cannot fail
}

void ExecutorEngine::OnProgress(const std::string& job_id, int attempt, cohort::v1::Progress progress) {
  AttemptKey key{job_id, attempt};
  if (!attempts_.contains(key)) return;
  auto [it, fresh] = unsent_progress_.try_emplace(std::move(key));
  if (fresh) {
    outbox_.PutNowait(ProgressDue{job_id, attempt}).IgnoreError();  // unbounded: cannot fail
  } else {
    metrics_.ProgressSuperseded();
  }
  it->second = std::move(progress);
}

std::optional<ExecutorMessage> ExecutorEngine::TakeMessage(Outgoing item) {
  if (auto* m = std::get_if<ExecutorMessage>(&item)) return std::move(*m);
  ProgressDue& due = std::get<ProgressDue>(item);
  auto it = unsent_progress_.find(AttemptKey{due.job_id, due.attempt});
  if (it == unsent_progress_.end()) return std::nullopt;  // cannot happen: one entry per ProgressDue
  ExecutorMessage m;
  auto* report = m.mutable_progress();
  report->set_job_id(std::move(due.job_id));
  report->set_attempt(due.attempt);
  *report->mutable_progress() = std::move(it->second);
  unsent_progress_.erase(it);
  return m;
}

void ExecutorEngine::KeepUnsentProgress(const ExecutorMessage::ProgressReport& report) {
  // OnProgress keeps it unless the attempt has ended; a newer report replaces it.
  AttemptKey key{report.job_id(), report.attempt()};
  if (unsent_progress_.contains(key) || !attempts_.contains(key)) {
    metrics_.ProgressSuperseded();
    return;
  }
  OnProgress(report.job_id(), report.attempt(), report.progress());
}

ExecutorMessage ExecutorEngine::Heartbeat() const {
  ExecutorMessage m;
  m.mutable_heartbeat();  // a heartbeat even with nothing running (else the message has no body)
  for (const auto& [key, a] : attempts_) {
    cohort::v1::AttemptRef* ref = m.mutable_heartbeat()->add_running();
    ref->set_job_id(key.first);
    ref->set_attempt(key.second);
  }
  for (const auto& [key, job] : prefetched_) {  // their leases run while they wait
    cohort::v1::AttemptRef* ref = m.mutable_heartbeat()->add_running();
    ref->set_job_id(key.first);
    ref->set_attempt(key.second);
  }
  return m;
}

Task<void> ExecutorEngine::Run() {
  runtime::Duration backoff = options_.reconnect_initial;
  while (!draining_.IsSet()) {
    bool welcomed = co_await Session();
    if (draining_.IsSet()) break;
    if (welcomed) backoff = options_.reconnect_initial;  // it was a working stream
    metrics_.reconnects().Increment();
    // The broker went away: retry with exponential backoff, or stop if draining.
    co_await draining_.WaitUntil(clock_.Now() + backoff);
    backoff = std::min(options_.reconnect_max, backoff * 2);
  }
  co_await SettleAttempts();
  // Report what finished while disconnected, and hand back what was prefetched, on one
  // last stream, best effort.
  if (!outbox_.Empty() || !prefetched_.empty()) co_await Session();
  drained_.Set();
}

void ExecutorEngine::Drain() { draining_.Set(); }

Task<void> ExecutorEngine::SettleAttempts() {
  bool idle = co_await idle_.WaitUntil(clock_.Now() + options_.drain_grace);
  if (idle) co_return;
  for (auto& [key, a] : attempts_) a.work.Cancel();
  co_await idle_.Wait();
}

Task<bool> ExecutorEngine::Session() {
  complete_carries_credit_ = false;  // until this stream's broker says otherwise
  complete_batches_ = false;
  leaving_ = false;
  closed_writes_ = false;
  sequence_ = rpc::MessageSequence();
  cancelled_because_.clear();
  outstanding_ = 0;  // credit belongs to a stream
  heard_at_ = clock_.Now();
  Stream stream(loop_);
  stub_.async()->Connect(stream.context(), &stream);
  stream.Start();
  runtime::TaskGroup helpers;
  // From the start: a stream wedged before its Welcome is as stuck as one wedged later.
  helpers.Spawn(WatchBroker(stream));
  const bool ok = co_await Greet(stream);
  connected_ = ok;
  metrics_.connected().Set(ok ? 1 : 0);
  bool welcomed = false;
  if (ok) {
    helpers.Spawn(WriteOutbox(stream));
    helpers.Spawn(CloseWhenDrained(stream));
    if (window_.adaptive()) helpers.Spawn(ForgetWhenQuiet());
    welcomed = co_await ServeBroker(stream, helpers);
  }
  co_await helpers.CancelAndJoin();
  connected_ = false;
  metrics_.connected().Set(0);
  stream.Cancel();
  grpc::Status status = co_await stream.Finish();
  if (closed_writes_ && status.ok()) {
    // A clean close after our half-close: the broker put the attempts we held
    // unstarted back in their queues.
    prefetched_.clear();
    prefetch_order_.clear();
  }
  LogSessionEnd(welcomed, status);
  co_return welcomed;
}

Task<bool> ExecutorEngine::Greet(Stream& stream) {
  ExecutorMessage hello;
  auto* h = hello.mutable_hello();
  h->set_executor_id(options_.executor_id);
  h->set_capacity(options_.capacity);
  h->set_prefetch(options_.prefetch);  // the bound: the window asks for less credit
  h->set_accepts_assign_batches(true);
  for (const auto& [k, v] : options_.labels) (*h->mutable_labels())[k] = v;
  for (const std::string& q : options_.queues) h->add_queues(q);
  for (const std::string& k : options_.kinds) h->add_kinds(k);
  *h->mutable_running() = Heartbeat().heartbeat().running();
  hello.set_seq(sequence_.Next());
  bool ok = co_await stream.Write(std::move(hello));
  if (ok && !draining_.IsSet()) {
    ExecutorMessage credit;
    credit.mutable_credit()->set_credits(TakeCreditToGrant());
    credit.set_seq(sequence_.Next());
    ok = co_await stream.Write(std::move(credit));
  }
  co_return ok;
}

Task<bool> ExecutorEngine::ServeBroker(Stream& stream, runtime::TaskGroup& helpers) {
  bool welcomed = false;
  while (true) {
    std::optional<BrokerMessage> m = co_await stream.Read();
    if (!m) break;
    heard_at_ = clock_.Now();  // any message proves the stream alive, LeaseExtended included
    if (absl::Status numbered = sequence_.Receive(m->seq()); !numbered.ok()) {
      // An Assign or Cancel may be gone: reconnect, as for a stalled stream, and let
      // Hello settle which attempts are ours.
      cancelled_because_ = std::string(numbered.message());
      metrics_.StreamGap();
      kLog.Warn("broker stream lost messages, reconnecting",
                {{"executor_id", options_.executor_id}, {"error", cancelled_because_}, {"running", running()}});
      stream.Cancel();
      break;
    }
    if (m->has_welcome()) {
      OnWelcome(m->welcome(), /*first=*/!welcomed, helpers);
      welcomed = true;
    } else if (m->has_assign()) {
      OnAssign(*m->mutable_assign());
    } else if (m->has_assigns()) {
      for (BrokerMessage::Assign& a : *m->mutable_assigns()->mutable_assigns()) OnAssign(a);
    } else if (m->has_cancel()) {
      OnCancel(m->cancel());
    } else if (m->has_drain()) {
      if (!leaving_) helpers.Spawn(LeaveWhenIdle(stream));
      leaving_ = true;
    }
  }
  co_return welcomed;
}

void ExecutorEngine::OnWelcome(const BrokerMessage::Welcome& welcome, bool first, runtime::TaskGroup& helpers) {
  if (options_.on_welcome) options_.on_welcome();
  complete_carries_credit_ = welcome.complete_carries_credit();
  complete_batches_ = welcome.accepts_complete_batches();
  if (welcome.has_heartbeat_interval()) {
    // At least 10 ms: a zero interval from a broken broker must not spin the loop.
    heartbeat_interval_ =
        std::max<runtime::Duration>(TimerDelay(welcome.heartbeat_interval()), std::chrono::milliseconds(10));
    interval_changed_.Set();  // the watchdog's bound moves with it
  }
  if (!first) return;
  // Heartbeats start with the first welcome, which says how often (before it, leases
  // may be shorter than any default interval).
  helpers.Spawn(SendHeartbeats(common::AddSaturated(clock_.Now(), heartbeat_interval_)));
  if (!ever_welcomed_) {
    kLog.Info("connected to the broker", {{"executor_id", options_.executor_id}, {"capacity", options_.capacity}});
  } else {
    const runtime::Duration down = lost_at_ ? clock_.Now() - *lost_at_ : runtime::Duration::zero();
    kLog.Info("reconnected to the broker", {{"executor_id", options_.executor_id},
                                            {"running", running()},
                                            {"after", absl::FromChrono(down)}});
  }
  ever_welcomed_ = true;
  lost_at_.reset();
}

void ExecutorEngine::OnAssign(BrokerMessage::Assign& a) {
  outstanding_ = std::max(0, outstanding_ - 1);  // each Assign uses a credit, kept or not
  AttemptKey key{a.job().id(), a.attempt()};
  // A duplicate for an attempt already running or held.
  if (attempts_.contains(key) || prefetched_.contains(key)) return;
  // Draining: never start new work. The broker takes back what is still assigned to
  // us when we half-close, without using up an attempt.
  if (draining_.IsSet() || leaving_) return;
  if (running() < options_.capacity && prefetched_.empty()) {
    Start(std::move(*a.mutable_job()), a.attempt());
    return;
  }
  prefetched_.emplace(key, std::move(*a.mutable_job()));
  prefetch_order_.push_back(std::move(key));
  StartPrefetched();
}

void ExecutorEngine::StartPrefetched() {
  while (running() < options_.capacity && !prefetch_order_.empty() && !draining_.IsSet() && !leaving_) {
    AttemptKey key = std::move(prefetch_order_.front());
    prefetch_order_.pop_front();
    auto it = prefetched_.find(key);
    if (it == prefetched_.end()) continue;  // dropped by a Cancel
    cohort::v1::Job job = std::move(it->second);
    prefetched_.erase(it);
    Start(std::move(job), key.second);
  }
  if (prefetched_.empty()) prefetch_order_.clear();  // only dropped keys were left
}

void ExecutorEngine::Start(cohort::v1::Job job, int attempt) {
  idle_.Clear();
  Attempt& a = attempts_[AttemptKey{job.id(), attempt}];
  std::string id = job.id();
  std::string kind = job.spec().kind();
  a.work = runtime::Spawn(Work(std::move(job), attempt));
  a.report = runtime::Spawn(Report(std::move(id), std::move(kind), attempt, a.work));
  metrics_.running().Set(running());
}

void ExecutorEngine::OnCancel(const BrokerMessage::Cancel& cancel) {
  AttemptKey key{cancel.job_id(), cancel.attempt()};
  if (auto it = attempts_.find(key); it != attempts_.end()) {
    it->second.work.Cancel();
    return;
  }
  if (auto it = prefetched_.find(key); it != prefetched_.end()) {
    metrics_.Ended(it->second.spec().kind(), "cancelled", 0);
    prefetched_.erase(it);
    SendCompletion(key.first, key.second, Outcome::Failure("cancelled", "cancelled by the broker before it started"));
  }
}

void ExecutorEngine::SendCompletion(const std::string& job_id, int attempt, Outcome outcome) {
  ExecutorMessage done;
  auto* c = done.mutable_complete();
  c->set_job_id(job_id);
  c->set_attempt(attempt);
  if (outcome.ok) {
    c->set_result(std::move(outcome.result));
  } else {
    *c->mutable_error() = std::move(outcome.error);
  }
  // The slot asks for its next job (and the window for its growth): on the Complete
  // itself when the broker takes it there (its next Assigns then share the
  // completion's commit), else in a grant.
  if (draining_.IsSet()) {
    Send(std::move(done));
    return;
  }
  const int credit = TakeCreditToGrant();
  if (complete_carries_credit_) {
    c->set_credit(credit);
    Send(std::move(done));
    return;
  }
  Send(std::move(done));
  if (credit != 0) {
    ExecutorMessage grant;
    grant.mutable_credit()->set_credits(credit);
    Send(std::move(grant));
  }
}

int ExecutorEngine::TakeCreditToGrant() {
  const int wanted = options_.capacity + window_.size() - running() - prefetched() - outstanding_;
  const int credit = std::max(wanted, -outstanding_);
  outstanding_ += credit;
  return credit;
}

Task<void> ExecutorEngine::ForgetWhenQuiet() {
  std::uint64_t seen = finished_;
  while (true) {
    co_await runtime::SleepUntil(common::AddSaturated(clock_.Now(), options_.prefetch_forget_after));
    if (finished_ != seen || window_.size() == 0) {
      seen = finished_;
      continue;
    }
    window_.Forget();
    metrics_.prefetch_window().Set(window_.size());
    if (draining_.IsSet() || leaving_) continue;  // no credit is asked for anyway
    if (const int credit = TakeCreditToGrant(); credit < 0) {
      ExecutorMessage withdraw;
      withdraw.mutable_credit()->set_credits(credit);
      Send(std::move(withdraw));
    }
  }
}

void ExecutorEngine::Requeue(ExecutorMessage message) {
  if (message.has_progress()) {
    KeepUnsentProgress(message.progress());
  } else if (message.has_completes()) {  // the next broker may not take batches
    for (ExecutorMessage::Complete& c : *message.mutable_completes()->mutable_completes()) {
      ExecutorMessage one;
      *one.mutable_complete() = std::move(c);
      Send(std::move(one));
    }
  } else {
    Send(std::move(message));
  }
}

Task<bool> ExecutorEngine::WriteAll(Stream& stream, std::vector<ExecutorMessage> messages) {
  // Most Completes in one batch: bounds the message, far below the broker's limit.
  constexpr int kMaxBatch = 256;
  for (std::size_t i = 0; i < messages.size();) {
    ExecutorMessage m = std::move(messages[i++]);
    if (complete_batches_ && m.has_complete() && i < messages.size() && messages[i].has_complete()) {
      ExecutorMessage batch;
      auto* completes = batch.mutable_completes()->mutable_completes();
      *completes->Add() = std::move(*m.mutable_complete());
      while (i < messages.size() && messages[i].has_complete() && completes->size() < kMaxBatch) {
        *completes->Add() = std::move(*messages[i++].mutable_complete());
      }
      m = std::move(batch);
    }
    m.set_seq(sequence_.Next());  // renumbered if it is requeued for the next stream
    const bool written = co_await stream.Write(m);
    if (written) {
      if (m.has_progress()) metrics_.ProgressSent();
      continue;
    }
    // Keep it and the rest for the next stream.
    Requeue(std::move(m));
    for (; i < messages.size(); ++i) Requeue(std::move(messages[i]));
    co_return false;
  }
  co_return true;
}

Task<void> ExecutorEngine::WriteOutbox(Stream& stream) {
  // Takes everything waiting (what piled up during the last write) and writes it in
  // one go, so that completions that finished together travel together.
  constexpr std::size_t kMaxTake = 1024;
  // Turns the writer lets pass before writing while other work is ready on the loop.
  constexpr int kMaxDeferTurns = 16;
  while (true) {
    std::vector<ExecutorMessage> messages;
    Outgoing first = co_await outbox_.Get();
    // What the loop can run right now goes first (a few turns at most), so that
    // completions that end in the same burst (typically the prefetched attempts the
    // ones just reported started) travel in this one write and share one broker
    // commit. With nothing else ready it writes at once. Meanwhile `first` counts as
    // unsent (writer_holds_), and goes back to the outbox if the session ends.
    writer_holds_ = true;
    std::exception_ptr cancelled;
    try {
      for (int turns = 0; turns < kMaxDeferTurns && loop_.OthersReady(); ++turns) co_await runtime::Yield();
    } catch (const runtime::CancelledError&) {
      cancelled = std::current_exception();
    }
    writer_holds_ = false;
    if (cancelled) {
      outbox_.PutNowait(std::move(first)).IgnoreError();  // unbounded: cannot fail
      std::rethrow_exception(cancelled);
    }
    if (std::optional<ExecutorMessage> m = TakeMessage(std::move(first))) messages.push_back(*std::move(m));
    while (!outbox_.Empty() && messages.size() < kMaxTake) {
      absl::StatusOr<Outgoing> next = outbox_.GetNowait();
      if (!next.ok()) break;  // cannot happen: not empty
      if (std::optional<ExecutorMessage> m = TakeMessage(*std::move(next))) messages.push_back(*std::move(m));
    }
    if (!co_await WriteAll(stream, std::move(messages))) co_return;
  }
}

Task<void> ExecutorEngine::SendHeartbeats(runtime::TimePoint first) {
  runtime::TimePoint due = first;
  while (true) {
    co_await runtime::SleepUntil(due);
    Send(Heartbeat());
    due = common::AddSaturated(clock_.Now(), heartbeat_interval_);
  }
}

runtime::Duration ExecutorEngine::StallAfter() const {
  // heartbeat_interval_ is at most kMaxWireDuration (TimerDelay): the product cannot
  // overflow absl::Duration, and the cap keeps `heard_at_ + StallAfter()` representable.
  return common::ToChronoSaturated(
      std::min(absl::FromChrono(heartbeat_interval_) * kStallIntervals, common::kMaxWireDuration));
}

Task<void> ExecutorEngine::WatchBroker(Stream& stream) {
  while (true) {
    interval_changed_.Clear();
    const runtime::TimePoint deadline = common::AddSaturated(heard_at_, StallAfter());
    if (clock_.Now() >= deadline) break;
    // Returns at the deadline, or early when a Welcome changes the interval; either
    // way the next turn recomputes it from the latest message heard.
    co_await interval_changed_.WaitUntil(deadline);
  }
  const runtime::Duration silence = clock_.Now() - heard_at_;
  cancelled_because_ =
      absl::StrCat("stalled: nothing heard from the broker for ", absl::FormatDuration(absl::FromChrono(silence)));
  metrics_.StreamStalled();
  kLog.Warn("broker stream stalled: nothing heard for 3 heartbeat intervals, reconnecting",
            {{"executor_id", options_.executor_id},
             {"silent_for", absl::FromChrono(silence)},
             {"silent_since", absl::FormatTime(absl::RFC3339_full, clock_.SystemNow() - absl::FromChrono(silence),
                                               absl::UTCTimeZone())},
             {"heartbeat_interval", absl::FromChrono(heartbeat_interval_)},
             {"running", running()}});
  stream.Cancel();  // ServeBroker's Read then ends, and the session with it
}

Task<void> ExecutorEngine::CloseWhenDrained(Stream& stream) {
  co_await draining_.Wait();
  co_await SettleAttempts();
  while (!outbox_.Empty() || writer_holds_) co_await runtime::Yield();  // the writer takes the rest
  closed_writes_ = true;
  stream.CloseWrites();  // half-closes once those are written
}

Task<void> ExecutorEngine::LeaveWhenIdle(Stream& stream) {
  co_await idle_.Wait();
  while (!outbox_.Empty() || writer_holds_) co_await runtime::Yield();
  closed_writes_ = true;
  stream.CloseWrites();
}

void ExecutorEngine::LogSessionEnd(bool welcomed, const grpc::Status& status) {
  if (draining_.IsSet()) return;
  // The log bounds its length. A stream this executor cancelled (stalled, or numbers
  // missing): say why rather than gRPC's bare "Cancelled".
  const std::string reason = cancelled_because_.empty() ? status.error_message() : cancelled_because_;
  if (welcomed) {
    lost_at_ = clock_.Now();
    kLog.Warn("lost the broker, reconnecting", {{"executor_id", options_.executor_id},
                                                {"grpc_code", absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()))},
                                                {"error", reason},
                                                {"running", running()}});
  } else {
    if (!lost_at_) lost_at_ = clock_.Now();
    kLog.Warn("broker unreachable, retrying", {{"executor_id", options_.executor_id},
                                               {"grpc_code", absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()))},
                                               {"error", reason}});
  }
}

Task<Outcome> ExecutorEngine::Execute(const cohort::v1::Job& job, int attempt, ProgressSink& progress) {
  if (job.spec().kind() == "exec") {
    if (exec_ == nullptr) co_return Outcome::Failure("unknown_kind", "this executor does not run kind \"exec\"");
    co_return co_await exec_->Run(job, attempt, progress);
  }
  co_return co_await builtins_.Run(job, attempt, progress);
}

Task<Outcome> ExecutorEngine::Work(cohort::v1::Job job, int attempt) {
  AttemptProgress progress(*this, job.id(), attempt);
  if (!job.spec().has_timeout() || job.spec().kind() == "exec") {  // exec enforces its own, by signals
    co_return co_await Execute(job, attempt, progress);
  }
  const runtime::Duration timeout = TimerDelay(job.spec().timeout());
  bool timed_out = false;
  Outcome outcome;
  try {
    outcome = co_await runtime::WaitFor(Execute(job, attempt, progress), timeout);
  } catch (const runtime::TimeoutError&) {
    timed_out = true;
  }
  if (timed_out) co_return Outcome::Failure("timeout", "the attempt ran past its timeout");
  co_return outcome;
}

Task<void> ExecutorEngine::Report(std::string job_id, std::string kind, int attempt,
                                  runtime::TaskHandle<Outcome> work) {
  const runtime::TimePoint start = clock_.Now();
  Outcome outcome;
  bool cancelled = false;
  try {
    outcome = co_await work;  // this task is never cancelled itself: it always reports
  } catch (const runtime::CancelledError&) {
    cancelled = true;
  } catch (const std::exception& e) {
    outcome = Outcome::Failure("internal", e.what());
  }
  if (cancelled) {
    outcome = draining_.IsSet() ? Outcome::Failure("interrupted", "the executor stopped the attempt while draining")
                                : Outcome::Failure("cancelled", "cancelled by the broker");
  }
  metrics_.Ended(kind, OutcomeLabel(outcome), std::chrono::duration<double>(clock_.Now() - start).count());
  if (!outcome.ok) {
    // The code only: an error's message may quote the job's output.
    kLog.Info("attempt failed", {{"executor_id", options_.executor_id},
                                 {"job_id", job_id},
                                 {"attempt", attempt},
                                 {"kind", kind},
                                 {"code", outcome.error.code()}});
  }
  ++finished_;
  window_.Finished(clock_.Now() - start);
  metrics_.prefetch_window().Set(window_.size());
  attempts_.erase(AttemptKey{job_id, attempt});  // frees the slot before its credit is counted
  SendCompletion(job_id, attempt, std::move(outcome));
  StartPrefetched();  // the freed slot takes the next held attempt in this same turn
  metrics_.running().Set(running());
  if (attempts_.empty()) idle_.Set();
}

}  // namespace cohort::executor
