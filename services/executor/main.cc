// cohort-executor: runs jobs for a Cohort broker. See README.md and design.md ("Executor").
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
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
#include "libs/common/flag_names.h"
#include "libs/common/metrics.h"
#include "libs/common/ready_line.h"
#include "libs/common/signals.h"
#include "libs/runtime/runtime.h"
#include "services/executor/builtin_runner.h"
#include "services/executor/executor_engine.h"

ABSL_FLAG(std::string, broker, "127.0.0.1:7070", "the broker's gRPC address, HOST:PORT");
ABSL_FLAG(std::string, listen, "0.0.0.0:7072", "gRPC health service address, HOST:PORT (port 0 picks a free port)");
ABSL_FLAG(int, capacity, 4, "most attempts running at once");
ABSL_FLAG(std::string, executor_id, "", "this executor's id (default: hostname-pid)");
ABSL_FLAG(std::string, queues, "", "comma-separated queues to serve (default: all)");
ABSL_FLAG(std::string, metrics_listen, "0.0.0.0:9472", "/metrics address, HOST:PORT (port 0 picks a free port)");
ABSL_FLAG(absl::Duration, drain_grace, absl::Seconds(30), "on SIGTERM, how long running attempts may finish");

namespace cohort::executor {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "cohort-executor: %s\n", message.c_str());
  std::exit(2);
}

template <typename T>
T OrDie(absl::StatusOr<T> value) {
  if (!value.ok()) Die(std::string(value.status().message()));
  return std::move(*value);
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
  BuiltinRunner builtins;
  ExecutorMetrics metrics(metrics_server->registry());
  ExecutorEngine engine(loop, *stub, metrics, options, builtins, /*exec=*/nullptr);
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
