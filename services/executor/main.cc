// cohort-executor: runs jobs for a Cohort broker. See README.md and design.md ("Executor").
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "libs/common/address.h"
#include "libs/common/fatal.h"
#include "libs/common/flag_names.h"
#include "libs/common/metrics.h"
#include "libs/common/ready_line.h"
#include "libs/common/signals.h"
#include "libs/runtime/runtime.h"
#include "services/executor/allowlist.h"
#include "services/executor/builtin_runner.h"
#include "services/executor/exec_runner.h"
#include "services/executor/process_runner.h"
#include "services/executor/executor_engine.h"

ABSL_FLAG(std::string, broker, "127.0.0.1:7070", "the broker's gRPC address, HOST:PORT");
ABSL_FLAG(std::string, listen, "0.0.0.0:7072", "gRPC health service address, HOST:PORT (port 0 picks a free port)");
ABSL_FLAG(int, capacity, 4, "most attempts running at once");
ABSL_FLAG(std::string, executor_id, "", "this executor's id (default: hostname-pid)");
ABSL_FLAG(std::string, queues, "", "comma-separated queues to serve (default: all)");
ABSL_FLAG(std::string, metrics_listen, "0.0.0.0:9472", "/metrics address, HOST:PORT (port 0 picks a free port)");
ABSL_FLAG(absl::Duration, drain_grace, absl::Seconds(30), "on SIGTERM, how long running attempts may finish");
ABSL_FLAG(std::vector<std::string>, allow_exec, {},
          "commands kind \"exec\" may run: absolute paths or patterns like /usr/bin/* (repeatable or "
          "comma-separated; default: none, so only built-ins run)");
ABSL_FLAG(absl::Duration, kill_grace, absl::Seconds(5), "exec: time between SIGTERM and SIGKILL on timeout or cancel");
ABSL_FLAG(int, max_output_bytes, 1 << 20, "exec: stdout kept as the result; the rest is truncated and said so");
ABSL_FLAG(int, max_stderr_bytes, 64 << 10, "exec: stderr kept with the error");
ABSL_FLAG(bool, inherit_env, false, "exec: children start from the executor's environment");

namespace cohort::executor {
namespace {

constexpr char kProgram[] = "cohort-executor";

[[noreturn]] void Die(const std::string& reason) { common::Die(kProgram, reason); }

template <typename T>
T OrDie(absl::StatusOr<T> value) {
  return common::OrDie(kProgram, std::move(value));
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("cohort-executor: runs jobs for a Cohort broker");
  common::DashedArgs args(argc, argv);
  absl::ParseCommandLine(args.argc(), args.argv());
  common::HostPort broker =
      OrDie(common::ParseHostPort("--broker", absl::GetFlag(FLAGS_broker), common::PortZero::kRejected));
  common::HostPort listen = OrDie(common::ParseHostPort("--listen", absl::GetFlag(FLAGS_listen)));
  common::HostPort metrics_listen =
      OrDie(common::ParseHostPort("--metrics-listen", absl::GetFlag(FLAGS_metrics_listen)));
  if (absl::GetFlag(FLAGS_capacity) < 1 || absl::GetFlag(FLAGS_capacity) > 10'000) {
    Die("--capacity must be in 1..10000");
  }
  if (absl::GetFlag(FLAGS_drain_grace) < absl::ZeroDuration()) Die("--drain-grace must not be negative");
  if (absl::GetFlag(FLAGS_kill_grace) < absl::ZeroDuration()) Die("--kill-grace must not be negative");
  if (absl::GetFlag(FLAGS_max_output_bytes) < 0 || absl::GetFlag(FLAGS_max_stderr_bytes) < 0) {
    Die("--max-output-bytes and --max-stderr-bytes must not be negative");
  }
  // --allow-exec is repeatable: absl keeps only the last occurrence, so gather them all.
  std::vector<std::string> allowed;
  for (int i = 1; i < args.argc(); ++i) {
    std::string_view arg = args.argv()[i];
    constexpr std::string_view kFlag = "--allow_exec=";
    if (arg.substr(0, kFlag.size()) != kFlag) continue;
    for (absl::string_view p : absl::StrSplit(std::string(arg.substr(kFlag.size())), ',', absl::SkipEmpty())) {
      allowed.emplace_back(p);
    }
  }
  CommandAllowlist allowlist = OrDie(CommandAllowlist::Create(allowed));

  ExecutorOptions options;
  options.capacity = absl::GetFlag(FLAGS_capacity);
  options.drain_grace = absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_drain_grace));
  options.executor_id = absl::GetFlag(FLAGS_executor_id);
  if (options.executor_id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    options.executor_id = absl::StrCat(host, "-", getpid());
  }
  for (absl::string_view q : absl::StrSplit(absl::GetFlag(FLAGS_queues), ',', absl::SkipEmpty())) {
    options.queues.emplace_back(q);
  }

  runtime::EventLoop loop;
  ExecutorEngine* engine_ptr = nullptr;
  // Before any other thread exists: signals are then blocked in every thread.
  auto signals = OrDie(common::SignalWatcher::Install(loop, [&](int) {
    if (engine_ptr != nullptr) engine_ptr->Drain();
  }));
  auto metrics_server = OrDie(common::MetricsServer::Start(metrics_listen));
  auto channel = grpc::CreateChannel(broker.ToString(), grpc::InsecureChannelCredentials());
  auto stub = cohort::v1::Broker::NewStub(channel);
  // Killed grandchildren of exec jobs are reaped here at once, not by PID 1.
  if (absl::Status s = BecomeChildSubreaper(); !s.ok()) Die(s.ToString());
  BuiltinRunner builtins;
  ExecOptions exec_options;
  exec_options.kill_grace = absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_kill_grace));
  exec_options.max_stdout_bytes = absl::GetFlag(FLAGS_max_output_bytes);
  exec_options.max_stderr_bytes = absl::GetFlag(FLAGS_max_stderr_bytes);
  exec_options.inherit_env = absl::GetFlag(FLAGS_inherit_env);
  ExecRunner exec(loop, allowlist, exec_options);
  ExecutorMetrics metrics(metrics_server->registry());
  ExecutorEngine engine(loop, *stub, metrics, options, builtins, &exec);
  engine_ptr = &engine;
  // The gRPC health service, for liveness probes.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen.ToString(), grpc::InsecureServerCredentials(), &port);
  std::unique_ptr<grpc::Server> health = builder.BuildAndStart();
  if (health == nullptr || port == 0) Die(absl::StrCat("cannot serve gRPC on ", listen.ToString()));
  common::HostPort bound = listen;
  bound.port = static_cast<std::uint16_t>(port);
  if (absl::Status s = common::PrintReadyLine(bound, metrics_server->address()); !s.ok()) Die(s.ToString());
  runtime::RunUntilComplete(loop, engine.Run());
  health->Shutdown(std::chrono::system_clock::now());
  return 0;
}

}  // namespace
}  // namespace cohort::executor

int main(int argc, char** argv) { return cohort::executor::Main(argc, argv); }
