// cohort-scheduler: releases PENDING jobs and fires schedules. See README.md and
// design.md ("Scheduler").
#include <chrono>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "libs/auth/broker_client_flags.h"
#include "libs/auth/channel_credentials.h"
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
#include "services/scheduler/scheduler_app.h"

ABSL_FLAG(std::string, broker, "127.0.0.1:7070",
          "the broker's gRPC address, HOST:PORT, or a replicated group's IP:PORT,IP:PORT,... (its leader is used)");
ABSL_FLAG(std::string, listen, "127.0.0.1:7071",
          "gRPC address, HOST:PORT (port 0 picks a free port; off loopback needs TLS or --insecure)");
ABSL_FLAG(std::string, data_dir, "cohort-data/scheduler", "RocksDB directory for schedules (created if missing)");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9471", "/metrics address, HOST:PORT (port 0 picks a free port)");
// Each tunable's default is the one SchedulerAppOptions declares; the flag's help is its doc.
namespace {
const cohort::scheduler::SchedulerAppOptions kDefaults;
}  // namespace

ABSL_FLAG(absl::Duration, min_interval, kDefaults.limits.min_interval, "shortest interval a schedule may have");
ABSL_FLAG(int, max_schedules, static_cast<int>(kDefaults.limits.max_schedules), "most schedules stored");
ABSL_FLAG(int, release_batch, static_cast<int>(kDefaults.release_batch), "most releases per ReleaseJobs call");

namespace cohort::scheduler {
namespace {

constexpr char kProgram[] = "cohort-scheduler";

template <typename T>
T OrDie(absl::StatusOr<T> value) {
  return common::OrDie(kProgram, std::move(value));
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("cohort-scheduler: releases delayed, retried and dependent jobs; fires schedules");
  common::ShowFlagsDefinedIn(
      {"services/scheduler/", "libs/auth/server_flags", "libs/auth/broker_client_flags", log::kLogFlagsFile});
  common::DashedArgs args(argc, argv);
  common::ParseFlagsOrExit(kProgram, args.argc(), args.argv());
  if (absl::Status s = log::ConfigureFromFlags(); !s.ok()) common::Die(kProgram, std::string(s.message()));
  // One HOST:PORT, or every replica of a broker group (only its leader listens).
  const std::string broker = absl::GetFlag(FLAGS_broker);
  OrDie(auth::ChannelTarget("--broker", broker));
  common::HostPort listen = OrDie(common::ParseHostPort("--listen", absl::GetFlag(FLAGS_listen)));
  common::HostPort metrics_listen =
      OrDie(common::ParseHostPort("--metrics-listen", absl::GetFlag(FLAGS_metrics_listen)));
  if (absl::GetFlag(FLAGS_max_schedules) < 1) common::Die(kProgram, "--max-schedules must be positive");
  if (absl::GetFlag(FLAGS_release_batch) < 1) common::Die(kProgram, "--release-batch must be positive");

  runtime::EventLoop loop;
  runtime::Event stop;
  // Before any other thread exists: signals are then blocked in every thread.
  auto signals = OrDie(common::SignalWatcher::Install(loop, [&](int) { stop.Set(); }));
  auto metrics_server = OrDie(common::MetricsServer::Start(metrics_listen));
  auto credentials =
      OrDie(auth::ServerCredentialsFromFlags(kProgram, "--listen", listen, metrics_server->registry(), "scheduler"));
  auth::ClientSecurityOptions broker_security = OrDie(auth::BrokerClientSecurityFromFlags());

  SchedulerAppOptions options;
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.broker = OrDie(auth::MakeChannel(broker, broker_security));
  options.limits.min_interval = absl::GetFlag(FLAGS_min_interval);
  options.limits.max_schedules = static_cast<std::size_t>(absl::GetFlag(FLAGS_max_schedules));
  options.release_batch = static_cast<std::size_t>(absl::GetFlag(FLAGS_release_batch));
  std::unique_ptr<SchedulerApp> app = OrDie(SchedulerApp::Create(loop, metrics_server->registry(), std::move(options)));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.RegisterService(&app->service());
  rpc::StartedServer started = OrDie(rpc::StartServer(builder, listen, std::move(credentials)));
  std::unique_ptr<grpc::Server> server = std::move(started.server);
  if (absl::Status s = common::PrintReadyLine(started.bound, metrics_server->address()); !s.ok()) {
    common::Die(kProgram, s.ToString());
  }

  // Until SIGTERM/SIGINT: then stop firing and following, end calls in flight, exit 0.
  // Nothing is lost: schedules are durable, releases are re-derived from the broker.
  runtime::RunUntilComplete(loop, [](SchedulerApp* app, runtime::Event* stop, grpc::Server* server) -> runtime::Task<void> {
    co_await app->Run(*stop);
    // Shutdown blocks until handlers running on this loop end: call it from another thread.
    co_await runtime::ToThread([server] { rpc::StopServer(*server); });
  }(app.get(), &stop, server.get()));
  server->Wait();
  return 0;
}

}  // namespace
}  // namespace cohort::scheduler

int main(int argc, char** argv) { return cohort::scheduler::Main(argc, argv); }
