#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/auth/channel_credentials.h"
#include "libs/runtime/runtime.h"
#include "prometheus/registry.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "services/executor/allowlist.h"
#include "services/executor/builtin_runner.h"
#include "services/executor/exec_runner.h"
#include "services/executor/executor_engine.h"
#include "services/executor/executor_metrics.h"

namespace cohort::executor {

// What an executor is told; each field is a flag of cohort-executor (README.md,
// "Running an executor"), whose default is the one declared here (main.cc reads it
// from a default-constructed ExecutorAppOptions). ExecutorApp::Validate says what is
// allowed.
struct ExecutorAppOptions {
  // The broker's gRPC address, HOST:PORT (port 1..65535).
  std::string broker = "127.0.0.1:7070";
  // TLS and the bearer token for the broker (files checked by Validate).
  auth::ClientSecurityOptions broker_security;
  // Most attempts running at once, 1..10000.
  int capacity = 4;
  // The most assigned attempts held unstarted beyond `capacity` (Hello.prefetch), so
  // that a slot that frees starts its next job without a broker round trip (their
  // leases run while they wait, and another executor cannot take them). 0 (none)
  // ..kMaxHeld - capacity; -1: the default, when adaptive enough to hold
  // kDefaultAdaptiveHeld attempts in all but at least kDefaultFixedPrefetchCap, else as
  // capacity, at most kDefaultFixedPrefetchCap (either within kMaxHeld - capacity).
  int prefetch = -1;
  // true: how many it holds follows the durations of finished attempts within
  // 0..prefetch (PrefetchWindow: deep for short jobs, none for jobs longer than
  // capacity * 5 ms); false: always `prefetch`.
  bool adaptive_prefetch = true;
  // Deeper is not faster: no-op jobs through bench/peers on 2 cores cost about 1.5x
  // the CPU per job holding 260 attempts as holding 128 at capacity 4, and ran slower
  // end to end holding 320 than 128 at capacity 64.
  static constexpr int kDefaultAdaptiveHeld = 128;
  static constexpr int kDefaultFixedPrefetchCap = 64;
  // The broker's capacity limit, which bounds capacity + prefetch (executor.proto).
  static constexpr int kMaxHeld = 10'000;
  // Stable across reconnects (leases belong to it), at most 128 bytes; empty:
  // "<hostname>-<pid>".
  std::string executor_id;
  // Shown by the broker's ListExecutors; keys are non-empty.
  std::map<std::string, std::string> labels;
  // Queues to take jobs from ([a-z0-9._-]{1,64} each); empty: every queue.
  std::vector<std::string> queues;
  // Programs kind "exec" may run: absolute paths or globs (see allowlist.h). Empty:
  // only the built-in kinds run. The executor declares its kinds to the broker
  // (Hello.kinds): the built-ins, and "exec" only when this is not empty.
  std::vector<std::string> allow_exec;
  // After stop: how long running attempts may finish before they are cancelled.
  absl::Duration drain_grace = absl::Seconds(30);
  // exec: from SIGTERM to SIGKILL on a timeout or cancel.
  absl::Duration kill_grace = absl::Seconds(5);
  // exec: stdout kept as the result and stderr kept with the error, 0..1 GiB each.
  std::int64_t max_output_bytes = 1 << 20;
  std::int64_t max_stderr_bytes = 64 << 10;
  // exec: children start from this process's environment (else only the job's env).
  bool inherit_env = false;
  // Called on the executor's loop each time the broker welcomes its session, e.g. to
  // learn that it is connected (may be empty).
  std::function<void()> on_welcome;
};

// One executor, wired and ready to run on a loop: the Connect session with the broker
// (ExecutorEngine), the built-in kinds, `exec` child processes with their allowlist,
// and the cohort_executor_* metrics. This is all of cohort-executor but its flags,
// signals, /metrics and health servers, so that cohort-dev can host an executor on a
// loop thread of its own next to the broker and the scheduler.
//
// Lifetime: `loop` and `registry` outlive the app; the app is used and destroyed on
// the loop's thread, after Run() has returned (or before it started). One Run() per
// app.
//
//   absl::StatusOr<std::unique_ptr<ExecutorApp>> app = ExecutorApp::Create(loop, registry, options);
//   if (!app.ok()) ...;                            // the same message cohort-executor prints
//   runtime::Event stop;                           // set it to drain (e.g. on SIGTERM)
//   runtime::RunUntilComplete(loop, (*app)->Run(stop));
//
// Process-wide effect: Run() makes the process a child subreaper (see
// BecomeChildSubreaper), so killed grandchildren of exec jobs are reaped at once.
class ExecutorApp {
 public:
  // OK, or INVALID_ARGUMENT naming the option by its cohort-executor flag and saying
  // what is allowed, e.g.
  //   --capacity 0 is out of range: use 1..10000
  static absl::Status Validate(const ExecutorAppOptions& options);

  // Validate(), then the app.
  static absl::StatusOr<std::unique_ptr<ExecutorApp>> Create(runtime::EventLoop& loop, prometheus::Registry& registry,
                                                            ExecutorAppOptions options);

  // `options` must pass Validate(): invalid options are a programming error, and the
  // constructor aborts with Validate()'s message. Registers the metrics; connects to
  // nothing until Run().
  ExecutorApp(runtime::EventLoop& loop, prometheus::Registry& registry, ExecutorAppOptions options);
  ~ExecutorApp();
  ExecutorApp(const ExecutorApp&) = delete;
  ExecutorApp& operator=(const ExecutorApp&) = delete;

  // Serves the broker (reconnecting with backoff whenever the stream breaks) until
  // `stop` is set; then drains: takes no new work, gives running attempts drain_grace
  // to finish, cancels the rest (reported as "interrupted"), reports them and returns.
  // An Assign still in flight when the drain began goes back to its queue without
  // using up an attempt. Call on the loop's thread; not cancellable (the drain is
  // what stops it).
  runtime::Task<void> Run(runtime::Event& stop);

  // What the engine runs with: the defaults filled in (the executor id, and a prefetch
  // of -1 made its default, see ExecutorAppOptions::prefetch). `options` must pass
  // Validate().
  static ExecutorOptions EngineOptions(const ExecutorAppOptions& options);

  // The id announced to the broker (the default filled in).
  const std::string& executor_id() const { return engine_options_.executor_id; }
  // Attempts running now.
  int running() const { return engine_->running(); }

 private:
  runtime::Task<void> DrainWhenSet(runtime::Event& stop);

  const std::string broker_;
  const ExecutorOptions engine_options_;
  const CommandAllowlist allowlist_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<cohort::v1::Broker::Stub> stub_;
  ExecutorMetrics metrics_;
  BuiltinRunner builtins_;
  ExecRunner exec_;
  std::unique_ptr<ExecutorEngine> engine_;
};

}  // namespace cohort::executor
