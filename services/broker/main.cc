// cohort-broker: Cohort's source of truth. See README.md and design.md ("Broker").
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "libs/auth/server_flags.h"
#include "libs/common/flag_help.h"
#include "libs/common/flag_parse.h"
#include "libs/common/address.h"
#include "libs/common/fatal.h"
#include "libs/common/flag_names.h"
#include "libs/common/log.h"
#include "libs/common/log_flags.h"
#include "libs/common/metrics.h"
#include "libs/common/ready_line.h"
#include "libs/common/signals.h"
#include "libs/rpc/server.h"
#include "libs/runtime/runtime.h"
#include "services/broker/broker_app.h"
#include "services/broker/broker_flags.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070",
          "gRPC address, HOST:PORT (port 0 picks a free port; off loopback needs TLS or --insecure)");
ABSL_FLAG(std::string, data_dir, cohort::broker::BrokerAppOptions{}.data_dir, "RocksDB directory (created if missing)");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9470", "/metrics address, HOST:PORT (port 0 picks a free port)");

namespace cohort::broker {
namespace {

constexpr char kProgram[] = "cohort-broker";
const log::Logger kLog("broker");

[[noreturn]] void Die(const std::string& reason) { common::Die(kProgram, reason); }

template <typename T>
T OrDie(absl::StatusOr<T> value) {
  return common::OrDie(kProgram, std::move(value));
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("cohort-broker: durable priority queues, leases and asyncio-style waits over gRPC");
  common::ShowFlagsDefinedIn({"services/broker/", "libs/auth/server_flags", log::kLogFlagsFile});
  common::DashedArgs args(argc, argv);
  common::ParseFlagsOrExit(kProgram, args.argc(), args.argv());
  if (absl::Status s = log::ConfigureFromFlags(); !s.ok()) Die(std::string(s.message()));
  common::HostPort listen = OrDie(common::ParseHostPort("--listen", absl::GetFlag(FLAGS_listen)));
  common::HostPort metrics_listen =
      OrDie(common::ParseHostPort("--metrics-listen", absl::GetFlag(FLAGS_metrics_listen)));
  BrokerAppOptions options = BrokerOptionsFromFlags(absl::GetFlag(FLAGS_data_dir));
  if (absl::Status valid = BrokerApp::Validate(options); !valid.ok()) Die(std::string(valid.message()));

  runtime::EventLoop loop;
  runtime::Event stop;
  // Before any other thread exists: signals are then blocked in every thread.
  auto signals = OrDie(common::SignalWatcher::Install(loop, [&](int) { stop.Set(); }));

  auto metrics_server = OrDie(common::MetricsServer::Start(metrics_listen));
  auto credentials =
      OrDie(auth::ServerCredentialsFromFlags(kProgram, "--listen", listen, metrics_server->registry(), "broker"));
  std::unique_ptr<BrokerApp> app = OrDie(BrokerApp::Create(loop, metrics_server->registry(), options));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  app->AddTo(builder);
  rpc::StartedServer started = OrDie(rpc::StartServer(builder, listen, std::move(credentials)));
  std::unique_ptr<grpc::Server> server = std::move(started.server);
  if (absl::Status s = common::PrintReadyLine(started.bound, metrics_server->address()); !s.ok()) Die(s.ToString());

  kLog.Info("broker started", {{"grpc", started.bound.ToString()},
                               {"metrics", metrics_server->address().ToString()},
                               {"data_dir", options.data_dir}});

  // Run until SIGTERM/SIGINT, then stop at once (BrokerApp::Run: executors drained,
  // calls in flight end CANCELLED, commits in flight flushed) and exit 0. What was
  // acknowledged is durable; clients retry, with idempotency keys for Submit.
  runtime::RunUntilComplete(loop, app->Run(stop, [&server] { rpc::StopServer(*server); }));
  server->Wait();
  return 0;
}

}  // namespace
}  // namespace cohort::broker

int main(int argc, char** argv) { return cohort::broker::Main(argc, argv); }
