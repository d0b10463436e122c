#include "services/executor/executor_app.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/support/channel_arguments.h"
#include "grpcpp/security/credentials.h"
#include "libs/common/log.h"
#include "libs/common/message_limits.h"
#include "libs/common/names.h"
#include "services/executor/process_runner.h"

namespace cohort::executor {
namespace {

const log::Logger kLog("executor");

constexpr int kMaxCapacity = ExecutorAppOptions::kMaxHeld;
constexpr std::size_t kMaxExecutorIdBytes = 128;  // the broker's limit
constexpr std::int64_t kMaxCapturedBytes = std::int64_t{1} << 30;

std::string DefaultExecutorId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) return absl::StrCat("executor-", getpid());
  return absl::StrCat(host, "-", getpid());
}

ExecOptions ExecOptionsOf(const ExecutorAppOptions& options) {
  ExecOptions exec;
  exec.kill_grace = absl::ToChronoNanoseconds(options.kill_grace);
  exec.max_stdout_bytes = static_cast<std::size_t>(options.max_output_bytes);
  exec.max_stderr_bytes = static_cast<std::size_t>(options.max_stderr_bytes);
  exec.inherit_env = options.inherit_env;
  return exec;
}

// The allowlist of options that passed Validate.
CommandAllowlist ValidAllowlist(const ExecutorAppOptions& options) {
  if (absl::Status s = ExecutorApp::Validate(options); !s.ok()) {
    kLog.Error("invalid options (call ExecutorApp::Validate first)", {{"error", std::string(s.message())}});
    std::abort();
  }
  return *CommandAllowlist::Create(options.allow_exec);
}

// The channel to the broker accepts any message the broker may send: an Assign
// carries a whole job, up to the broker's --max-spec-bytes plus its attempts.
// Validate has checked the security options, so the channel can be made.
std::shared_ptr<grpc::Channel> BrokerChannel(const ExecutorAppOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(common::kMaxMessageBytes);
  return *auth::MakeChannel(options.broker, options.broker_security, args);
}

// What the executor runs: the built-ins, and "exec" when the allowlist admits some
// program (with an empty one every exec job would fail "not_allowed", so it is left to
// an executor that can run it).
std::vector<std::string> DeclaredKinds(const ExecutorAppOptions& options) {
  std::vector<std::string> kinds = BuiltinRunner::Kinds();
  if (!options.allow_exec.empty()) kinds.push_back("exec");
  return kinds;
}

}  // namespace

absl::Status ExecutorApp::Validate(const ExecutorAppOptions& options) {
  // One HOST:PORT, or every replica of a broker group (only its leader listens).
  if (absl::StatusOr<std::string> broker = auth::ChannelTarget("--broker", options.broker); !broker.ok()) {
    return broker.status();
  }
  if (absl::Status s = auth::CheckClientSecurity(options.broker_security); !s.ok()) return s;
  if (options.capacity < 1 || options.capacity > kMaxCapacity) {
    return absl::InvalidArgumentError(
        absl::StrCat("--capacity ", options.capacity, " is out of range: use 1..", kMaxCapacity));
  }
  if (options.prefetch < -1 || options.prefetch > ExecutorAppOptions::kMaxHeld - options.capacity) {
    return absl::InvalidArgumentError(absl::StrCat("--prefetch ", options.prefetch, " is out of range: use 0..",
                                                   ExecutorAppOptions::kMaxHeld - options.capacity, " (",
                                                   ExecutorAppOptions::kMaxHeld,
                                                   " - capacity), or -1 for the default"));
  }
  if (options.executor_id.size() > kMaxExecutorIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat("--executor-id is ", options.executor_id.size(),
                                                   " bytes long: use at most ", kMaxExecutorIdBytes));
  }
  for (const auto& [key, value] : options.labels) {
    if (key.empty()) return absl::InvalidArgumentError("--labels: a label has an empty key: use KEY=VALUE");
  }
  for (const std::string& queue : options.queues) {
    if (absl::Status valid = common::CheckName(queue, "--queues: "); !valid.ok()) return valid;
  }
  if (absl::StatusOr<CommandAllowlist> allow = CommandAllowlist::Create(options.allow_exec); !allow.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--allow-exec: ", allow.status().message()));
  }
  if (options.drain_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--drain-grace ", absl::FormatDuration(options.drain_grace), " is negative: use 0 or more"));
  }
  if (options.kill_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--kill-grace ", absl::FormatDuration(options.kill_grace), " is negative: use 0 or more"));
  }
  for (const auto& [name, value] :
       {std::pair{"--max-output-bytes", options.max_output_bytes},
        std::pair{"--max-stderr-bytes", options.max_stderr_bytes}}) {
    if (value < 0 || value > kMaxCapturedBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " ", value, " is out of range: use 0..", kMaxCapturedBytes, " (1 GiB)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ExecutorApp>> ExecutorApp::Create(runtime::EventLoop& loop,
                                                                 prometheus::Registry& registry,
                                                                 ExecutorAppOptions options) {
  if (absl::Status s = Validate(options); !s.ok()) return s;
  return std::make_unique<ExecutorApp>(loop, registry, std::move(options));
}

ExecutorOptions ExecutorApp::EngineOptions(const ExecutorAppOptions& options) {
  ExecutorOptions engine;
  engine.executor_id = options.executor_id.empty() ? DefaultExecutorId() : options.executor_id;
  engine.labels = options.labels;
  engine.queues = options.queues;
  engine.kinds = DeclaredKinds(options);
  engine.capacity = options.capacity;
  engine.adaptive_prefetch = options.adaptive_prefetch;
  if (options.prefetch >= 0) {
    engine.prefetch = options.prefetch;
  } else {
    // Within what the broker lets one executor hold (executor.proto, Hello.prefetch),
    // so that it never lowers the bound below what the engine counts on.
    engine.prefetch = std::min(
        options.adaptive_prefetch
            ? std::max(ExecutorAppOptions::kDefaultAdaptiveHeld - options.capacity,
                       ExecutorAppOptions::kDefaultFixedPrefetchCap)
            : std::min(options.capacity, ExecutorAppOptions::kDefaultFixedPrefetchCap),
        ExecutorAppOptions::kMaxHeld - options.capacity);
  }
  engine.drain_grace = absl::ToChronoNanoseconds(options.drain_grace);
  engine.on_welcome = options.on_welcome;
  return engine;
}

ExecutorApp::ExecutorApp(runtime::EventLoop& loop, prometheus::Registry& registry, ExecutorAppOptions options)
    : broker_(options.broker),
      engine_options_(EngineOptions(options)),
      allowlist_(ValidAllowlist(options)),
      channel_(BrokerChannel(options)),
      stub_(cohort::v1::Broker::NewStub(channel_)),
      metrics_(registry),
      exec_(loop, allowlist_, ExecOptionsOf(options), metrics_),
      engine_(std::make_unique<ExecutorEngine>(loop, *stub_, metrics_, engine_options_, builtins_, &exec_)) {}

ExecutorApp::~ExecutorApp() = default;

runtime::Task<void> ExecutorApp::DrainWhenSet(runtime::Event& stop) {
  co_await stop.Wait();
  engine_->Drain();
}

runtime::Task<void> ExecutorApp::Run(runtime::Event& stop) {
  // Killed grandchildren of exec jobs are then reaped here at once, not by PID 1. The
  // jobs run without it, so a failure is reported and not fatal.
  if (absl::Status s = BecomeChildSubreaper(); !s.ok()) {
    kLog.Warn("orphaned grandchildren are left to init", {{"error", s.ToString()}});
  }
  kLog.Info("executor starting", {{"executor_id", engine_options_.executor_id},
                                  {"broker", broker_},
                                  {"capacity", engine_options_.capacity},
                                  {"prefetch", engine_options_.prefetch},
                                  {"adaptive_prefetch", engine_options_.adaptive_prefetch}});
  runtime::TaskGroup helpers;
  helpers.Spawn(DrainWhenSet(stop));
  co_await engine_->Run();  // returns once a drain has finished
  co_await helpers.CancelAndJoin();
  kLog.Info("executor drained", {{"executor_id", engine_options_.executor_id}});
}

}  // namespace cohort::executor
