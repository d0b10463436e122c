#include "services/executor/executor_engine.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "libs/rpc/bidi_client.h"

namespace cohort::executor {

using cohort::v1::BrokerMessage;
using cohort::v1::ExecutorMessage;
using runtime::Task;

namespace {

// The low-cardinality outcome label of cohort_executor_attempts_total.
std::string OutcomeLabel(const Outcome& o) {
  if (o.ok) return "succeeded";
  const std::string& code = o.error.code();
  if (code == "timeout" || code == "cancelled" || code == "interrupted") return code;
  return "failed";
}

}  // namespace

ExecutorEngine::ExecutorEngine(runtime::EventLoop& loop, cohort::v1::Broker::Stub& stub, ExecutorMetrics& metrics,
                               ExecutorOptions options, JobRunner& builtins, JobRunner* exec)
    : loop_(loop), stub_(stub), metrics_(metrics), options_(std::move(options)), builtins_(builtins), exec_(exec) {
  idle_.Set();
  metrics_.capacity().Set(options_.capacity);
}

void ExecutorEngine::Send(ExecutorMessage message) { outbox_.PutNowait(std::move(message)).IgnoreError(); }

ExecutorMessage ExecutorEngine::Heartbeat() const {
  ExecutorMessage m;
  for (const auto& [id, a] : attempts_) {
    cohort::v1::AttemptRef* ref = m.mutable_heartbeat()->add_running();
    ref->set_job_id(id);
    ref->set_attempt(a.number);
  }
  return m;
}

Task<void> ExecutorEngine::Run() {
  runtime::Duration backoff = options_.reconnect_initial;
  while (!draining_.IsSet()) {
    co_await Session();
    if (draining_.IsSet()) break;
    metrics_.reconnects().Increment();
    // The broker went away: retry with exponential backoff, or stop if draining.
    co_await draining_.WaitUntil(loop_.Now() + backoff);
    backoff = std::min(options_.reconnect_max, backoff * 2);
  }
  co_await SettleAttempts();
  // Report what finished while disconnected on one last stream, best effort.
  if (!outbox_.Empty()) co_await Session();
  drained_.Set();
}

void ExecutorEngine::Drain() { draining_.Set(); }

Task<void> ExecutorEngine::SettleAttempts() {
  bool idle = co_await idle_.WaitUntil(loop_.Now() + options_.drain_grace);
  if (idle) co_return;
  for (auto& [id, a] : attempts_) a.work.Cancel();
  co_await idle_.Wait();
}

Task<void> ExecutorEngine::Session() {
  rpc::ClientBidiStream<ExecutorMessage, BrokerMessage> stream(loop_);
  stub_.async()->Connect(stream.context(), &stream);
  stream.Start();
  ExecutorMessage hello;
  auto* h = hello.mutable_hello();
  h->set_executor_id(options_.executor_id);
  h->set_capacity(options_.capacity);
  for (const auto& [k, v] : options_.labels) (*h->mutable_labels())[k] = v;
  for (const std::string& q : options_.queues) h->add_queues(q);
  *h->mutable_running() = Heartbeat().heartbeat().running();
  bool ok = co_await stream.Write(std::move(hello));
  if (ok && !draining_.IsSet()) {
    ExecutorMessage credit;
    credit.mutable_credit()->set_credits(options_.capacity - running());
    ok = co_await stream.Write(std::move(credit));
  }
  connected_ = ok;
  metrics_.connected().Set(ok ? 1 : 0);

  // One writer: completions, credits and heartbeats from every task go through outbox_.
  auto writer = [](ExecutorEngine* self, rpc::ClientBidiStream<ExecutorMessage, BrokerMessage>* s) -> Task<void> {
    while (true) {
      ExecutorMessage m = co_await self->outbox_.Get();
      bool written = co_await s->Write(m);
      if (!written) {
        self->outbox_.PutNowait(std::move(m)).IgnoreError();  // keep it for the next stream
        co_return;
      }
    }
  };
  auto heartbeats = [](ExecutorEngine* self) -> Task<void> {
    while (true) {
      co_await runtime::Sleep(self->heartbeat_interval_);
      self->Send(self->Heartbeat());
    }
  };
  runtime::TaskHandle<void> writing = runtime::Spawn(writer(this, &stream));
  runtime::TaskHandle<void> beating = runtime::Spawn(heartbeats(this));
  auto stop_on_drain = [](ExecutorEngine* self, rpc::ClientBidiStream<ExecutorMessage, BrokerMessage>* s) -> Task<void> {
    co_await self->draining_.Wait();
    co_await self->SettleAttempts();
    while (!self->outbox_.Empty()) co_await runtime::Yield();  // the writer takes the rest
    s->CloseWrites();  // half-closes once those are written
  };
  runtime::TaskHandle<void> closing = runtime::Spawn(stop_on_drain(this, &stream));

  while (ok) {
    std::optional<BrokerMessage> m = co_await stream.Read();
    if (!m) break;
    if (m->has_welcome() && m->welcome().has_heartbeat_interval()) {
      const auto& d = m->welcome().heartbeat_interval();
      heartbeat_interval_ = std::chrono::seconds(d.seconds()) + std::chrono::nanoseconds(d.nanos());
    } else if (m->has_assign()) {
      const auto& a = m->assign();
      const std::string id = a.job().id();
      if (attempts_.contains(id)) continue;  // a duplicate for an attempt already running
      // Draining: never start new work. The broker takes back what is still assigned
      // to us when we half-close, without using up an attempt.
      if (draining_.IsSet()) continue;
      idle_.Clear();
      Attempt& attempt = attempts_[id];
      attempt.job = a.job();
      attempt.number = a.attempt();
      attempt.work = runtime::Spawn(Work(a.job(), a.attempt()));
      attempt.report = runtime::Spawn(Report(a.job(), a.attempt(), attempt.work));
      metrics_.running().Set(running());
    } else if (m->has_cancel()) {
      auto it = attempts_.find(m->cancel().job_id());
      if (it != attempts_.end() && it->second.number == m->cancel().attempt()) it->second.work.Cancel();
    } else if (m->has_drain()) {
      Drain();
    }
  }
  connected_ = false;
  metrics_.connected().Set(0);
  for (runtime::TaskHandle<void>* t : {&writing, &beating, &closing}) t->Cancel();
  for (runtime::TaskHandle<void>* t : {&writing, &beating, &closing}) {
    try {
      co_await *t;
    } catch (const runtime::CancelledError&) {
    }
  }
  stream.Cancel();
  grpc::Status status = co_await stream.Finish();
  if (!draining_.IsSet()) {
    std::fprintf(stderr, "cohort-executor: stream to the broker ended (%s), reconnecting\n",
                 status.error_message().c_str());
  }
}

Task<Outcome> ExecutorEngine::Execute(const cohort::v1::Job& job, int attempt) {
  if (job.spec().kind() == "exec") {
    if (exec_ == nullptr) co_return Outcome::Failure("unknown_kind", "this executor does not run kind \"exec\"");
    co_return co_await exec_->Run(job, attempt);
  }
  co_return co_await builtins_.Run(job, attempt);
}

Task<Outcome> ExecutorEngine::Work(cohort::v1::Job job, int attempt) {
  if (!job.spec().has_timeout() || job.spec().kind() == "exec") {  // exec enforces its own, by signals
    co_return co_await Execute(job, attempt);
  }
  const auto& t = job.spec().timeout();
  auto timeout = std::chrono::seconds(t.seconds()) + std::chrono::nanoseconds(t.nanos());
  bool timed_out = false;
  Outcome outcome;
  try {
    outcome = co_await runtime::WaitFor(Execute(job, attempt), timeout);
  } catch (const runtime::TimeoutError&) {
    timed_out = true;
  }
  if (timed_out) co_return Outcome::Failure("timeout", "the attempt ran past its timeout");
  co_return outcome;
}

Task<void> ExecutorEngine::Report(cohort::v1::Job job, int attempt, runtime::TaskHandle<Outcome> work) {
  const runtime::TimePoint start = loop_.Now();
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
  metrics_.Ended(job.spec().kind(), OutcomeLabel(outcome), std::chrono::duration<double>(loop_.Now() - start).count());
  ExecutorMessage done;
  auto* c = done.mutable_complete();
  c->set_job_id(job.id());
  c->set_attempt(attempt);
  if (outcome.ok) {
    c->set_result(std::move(outcome.result));
  } else {
    *c->mutable_error() = std::move(outcome.error);
  }
  Send(std::move(done));
  if (!draining_.IsSet()) {
    ExecutorMessage credit;
    credit.mutable_credit()->set_credits(1);
    Send(std::move(credit));
  }
  attempts_.erase(job.id());
  metrics_.running().Set(running());
  if (attempts_.empty()) idle_.Set();
}

}  // namespace cohort::executor
