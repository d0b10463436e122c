// cohort-executor: runs jobs for a Cohort broker. See README.md and design.md ("Executor").
// The executor itself is ExecutorApp; this file is its flags, signals, /metrics and the
// gRPC health service.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "libs/auth/broker_client_flags.h"
#include "libs/auth/server_flags.h"
#include "libs/common/flag_help.h"
#include "libs/common/flag_parse.h"
#include "libs/common/address.h"
#include "libs/common/fatal.h"
#include "libs/common/flag_names.h"
#include "libs/common/log_flags.h"
#include "libs/common/metrics.h"
#include "libs/common/ready_line.h"
#include "libs/common/signals.h"
#include "libs/rpc/server.h"
#include "libs/runtime/runtime.h"
#include "services/executor/executor_app.h"

// Each tunable's default is the one ExecutorAppOptions declares; the flag's help is its doc.
namespace {
const cohort::executor::ExecutorAppOptions kDefaults;
}  // namespace

ABSL_FLAG(std::string, broker, kDefaults.broker,
          "the broker's gRPC address, HOST:PORT, or a replicated group's IP:PORT,IP:PORT,... (its leader is used)");
ABSL_FLAG(std::string, listen, "127.0.0.1:7072",
          "gRPC health service address, HOST:PORT (port 0 picks a free port; off loopback needs TLS or --insecure)");
ABSL_FLAG(int, capacity, kDefaults.capacity, "most attempts running at once (1..10000)");
ABSL_FLAG(int, prefetch, kDefaults.prefetch,
          "most assigned attempts held unstarted beyond --capacity, so a freed slot starts its next job at once "
          "(0..10000-capacity; -1: with --adaptive-prefetch 128-capacity, at least 64, else as capacity, at most 64)");
ABSL_FLAG(bool, adaptive_prefetch, kDefaults.adaptive_prefetch,
          "hold as many unstarted attempts as the slots finish in ~5 ms at the measured job durations, within "
          "0..--prefetch (none for jobs longer than capacity x 5 ms); false: always --prefetch");
ABSL_FLAG(std::string, executor_id, "", "this executor's id (default: hostname-pid)");
ABSL_FLAG(std::string, queues, "", "comma-separated queues to serve (default: all)");
ABSL_FLAG(std::string, labels, "", "comma-separated KEY=VALUE labels, shown by the broker's ListExecutors");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9472", "/metrics address, HOST:PORT (port 0 picks a free port)");
ABSL_FLAG(absl::Duration, drain_grace, kDefaults.drain_grace, "on SIGTERM, how long running attempts may finish");
ABSL_FLAG(std::vector<std::string>, allow_exec, {},
          "commands kind \"exec\" may run: absolute paths or patterns like /usr/bin/* (repeatable or "
          "comma-separated; default: none, so only built-ins run)");
ABSL_FLAG(absl::Duration, kill_grace, kDefaults.kill_grace, "exec: time between SIGTERM and SIGKILL on timeout or cancel");
ABSL_FLAG(int64_t, max_output_bytes, kDefaults.max_output_bytes, "exec: stdout kept as the result; the rest is truncated and said so");
ABSL_FLAG(int64_t, max_stderr_bytes, kDefaults.max_stderr_bytes, "exec: stderr kept with the error");
ABSL_FLAG(bool, inherit_env, kDefaults.inherit_env, "exec: children start from the executor's environment");

namespace cohort::executor {
namespace {

constexpr char kProgram[] = "cohort-executor";

[[noreturn]] void Die(const std::string& reason) { common::Die(kProgram, reason); }

template <typename T>
T OrDie(absl::StatusOr<T> value) {
  return common::OrDie(kProgram, std::move(value));
}

// Every --allow-exec given: absl keeps only the last occurrence of a flag. Accepts
// --allow_exec=P, --allow_exec P (after DashedArgs) and the single-dash forms.
std::vector<std::string> AllowExecPatterns(int argc, char** argv) {
  std::vector<std::string> patterns;
  auto add = [&patterns](std::string_view list) {
    for (absl::string_view p : absl::StrSplit(std::string(list), ',', absl::SkipEmpty())) patterns.emplace_back(p);
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") break;  // the rest is positional
    for (std::string_view flag : {"--allow_exec", "-allow_exec"}) {
      if (arg.substr(0, flag.size()) != flag) continue;
      std::string_view rest = arg.substr(flag.size());
      if (rest.empty() && i + 1 < argc) {
        add(argv[++i]);
      } else if (!rest.empty() && rest[0] == '=') {
        add(rest.substr(1));
      }
      break;
    }
  }
  return patterns;
}

ExecutorAppOptions OptionsFromFlags(int argc, char** argv) {
  ExecutorAppOptions options;
  options.broker = absl::GetFlag(FLAGS_broker);
  options.capacity = absl::GetFlag(FLAGS_capacity);
  options.prefetch = absl::GetFlag(FLAGS_prefetch);
  options.adaptive_prefetch = absl::GetFlag(FLAGS_adaptive_prefetch);
  options.executor_id = absl::GetFlag(FLAGS_executor_id);
  for (absl::string_view q : absl::StrSplit(absl::GetFlag(FLAGS_queues), ',', absl::SkipEmpty())) {
    options.queues.emplace_back(q);
  }
  for (absl::string_view label : absl::StrSplit(absl::GetFlag(FLAGS_labels), ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(label, absl::MaxSplits('=', 1));
    if (label.find('=') == absl::string_view::npos) {
      Die(absl::StrCat("--labels \"", label, "\" is invalid: use KEY=VALUE[,KEY=VALUE...]"));
    }
    options.labels[kv.first] = kv.second;
  }
  options.allow_exec = AllowExecPatterns(argc, argv);
  options.drain_grace = absl::GetFlag(FLAGS_drain_grace);
  options.kill_grace = absl::GetFlag(FLAGS_kill_grace);
  options.max_output_bytes = absl::GetFlag(FLAGS_max_output_bytes);
  options.max_stderr_bytes = absl::GetFlag(FLAGS_max_stderr_bytes);
  options.inherit_env = absl::GetFlag(FLAGS_inherit_env);
  return options;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("cohort-executor: runs jobs for a Cohort broker");
  common::ShowFlagsDefinedIn(
      {"services/executor/", "libs/auth/server_flags", "libs/auth/broker_client_flags", log::kLogFlagsFile});
  common::DashedArgs args(argc, argv);
  common::ParseFlagsOrExit(kProgram, args.argc(), args.argv());
  if (absl::Status s = log::ConfigureFromFlags(); !s.ok()) Die(std::string(s.message()));
  common::HostPort listen = OrDie(common::ParseHostPort("--listen", absl::GetFlag(FLAGS_listen)));
  common::HostPort metrics_listen =
      OrDie(common::ParseHostPort("--metrics-listen", absl::GetFlag(FLAGS_metrics_listen)));
  ExecutorAppOptions options = OptionsFromFlags(args.argc(), args.argv());
  options.broker_security = OrDie(auth::BrokerClientSecurityFromFlags());
  if (absl::Status s = ExecutorApp::Validate(options); !s.ok()) Die(std::string(s.message()));

  runtime::EventLoop loop;
  runtime::Event stop;
  // Before any other thread exists: signals are then blocked in every thread.
  auto signals = OrDie(common::SignalWatcher::Install(loop, [&stop](int) { stop.Set(); }));
  auto metrics_server = OrDie(common::MetricsServer::Start(metrics_listen));
  auto credentials =
      OrDie(auth::ServerCredentialsFromFlags(kProgram, "--listen", listen, metrics_server->registry(), "executor"));
  std::unique_ptr<ExecutorApp> app = OrDie(ExecutorApp::Create(loop, metrics_server->registry(), std::move(options)));
  // The gRPC health service, for liveness probes.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  rpc::StartedServer health = OrDie(rpc::StartServer(builder, listen, std::move(credentials)));
  if (absl::Status s = common::PrintReadyLine(health.bound, metrics_server->address()); !s.ok()) Die(s.ToString());
  runtime::RunUntilComplete(loop, app->Run(stop));
  rpc::StopServer(*health.server);
  return 0;
}

}  // namespace
}  // namespace cohort::executor

int main(int argc, char** argv) { return cohort::executor::Main(argc, argv); }
