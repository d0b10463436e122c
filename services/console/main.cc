// cohort-console: the web console. Serves the front end (--assets-dir) and a JSON +
// Server-Sent-Events API over the broker's and scheduler's gRPC APIs. See README.md
// ("The web console").
//
// Threads: the event loop (this thread) owns the gRPC clients, the API and the one
// Watch stream; civetweb's worker threads serve HTTP and hand API work to the loop
// (LoopBridge); prometheus-cpp serves /metrics on threads of its own.
#include <cstdio>
#include <filesystem>
#include <optional>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "libs/auth/channel_credentials.h"
#include "libs/common/address.h"
#include "libs/common/fatal.h"
#include "libs/common/flag_help.h"
#include "libs/common/flag_names.h"
#include "libs/common/log_flags.h"
#include "libs/common/metrics.h"
#include "libs/common/signals.h"
#include "libs/runtime/runtime.h"
#include "services/console/console_api.h"
#include "services/console/console_metrics.h"
#include "services/console/http_server.h"
#include "services/console/loop_bridge.h"
#include "services/console/watch_hub.h"

ABSL_FLAG(std::string, broker, "127.0.0.1:7070", "the broker's gRPC address, HOST:PORT");
ABSL_FLAG(std::string, scheduler, "127.0.0.1:7071",
          "the scheduler's gRPC address, HOST:PORT (cohort-dev serves both on one port; empty: no schedules page)");
ABSL_FLAG(std::string, listen, "127.0.0.1:7080",
          "HTTP address of the console, HOST:PORT (port 0 picks a free port; IPv4 only)");
ABSL_FLAG(std::string, metrics_listen, "0.0.0.0:9474", "/metrics address, HOST:PORT (port 0 picks a free port)");
ABSL_FLAG(std::string, assets_dir, "",
          "directory of the built front end (console/web: npm ci && npm run build, then its dist/); empty: API only");
ABSL_FLAG(bool, read_only, false, "show everything, change nothing: every action is hidden and refused (403)");
ABSL_FLAG(int, http_threads, 32, "HTTP worker threads: requests and open live pages served at once (4..1024)");

namespace cohort::console {
namespace {

constexpr char kProgram[] = "cohort-console";
// Job listings can be large; the broker's own cap is 64 MiB by default.
constexpr int kMaxMessageBytes = 64 << 20;

template <typename T>
T OrDie(absl::StatusOr<T> value) {
  return common::OrDie(kProgram, std::move(value));
}

// TLS and the bearer token come from the environment (COHORT_TLS_CA, COHORT_TOKEN_FILE, ...).
std::shared_ptr<grpc::Channel> Channel(const common::HostPort& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  auth::ClientSecurityOptions security;
  auth::FillFromEnvironment(security);
  return OrDie(auth::MakeChannel(address.ToString(), security, args));
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("cohort-console: the web console for Cohort's queues, jobs, executors and schedules");
  common::ShowFlagsDefinedIn({"services/console/", log::kLogFlagsFile});
  common::DashedArgs args(argc, argv);
  absl::ParseCommandLine(args.argc(), args.argv());
  if (absl::Status s = log::ConfigureFromFlags(); !s.ok()) common::Die(kProgram, std::string(s.message()));
  const common::HostPort broker =
      OrDie(common::ParseHostPort("--broker", absl::GetFlag(FLAGS_broker), common::PortZero::kRejected));
  std::optional<common::HostPort> scheduler;
  if (!absl::GetFlag(FLAGS_scheduler).empty()) {
    scheduler = OrDie(common::ParseHostPort("--scheduler", absl::GetFlag(FLAGS_scheduler), common::PortZero::kRejected));
  }
  const common::HostPort listen = OrDie(common::ParseHostPort("--listen", absl::GetFlag(FLAGS_listen)));
  const common::HostPort metrics_listen =
      OrDie(common::ParseHostPort("--metrics-listen", absl::GetFlag(FLAGS_metrics_listen)));
  const int threads = absl::GetFlag(FLAGS_http_threads);
  if (threads < 4 || threads > 1024) common::Die(kProgram, "--http-threads must be in 4..1024");
  const std::string assets = absl::GetFlag(FLAGS_assets_dir);
  if (!assets.empty() && !std::filesystem::exists(std::filesystem::path(assets) / "index.html")) {
    common::Die(kProgram, absl::StrCat("--assets-dir \"", assets.substr(0, 200), "\" has no index.html"));
  }

  runtime::EventLoop loop;
  runtime::Event stop;
  // Before any other thread exists: signals are then blocked in every thread.
  auto signals = OrDie(common::SignalWatcher::Install(loop, [&](int) { stop.Set(); }));
  auto metrics_server = OrDie(common::MetricsServer::Start(metrics_listen));
  ConsoleMetrics metrics(metrics_server->registry());

  std::unique_ptr<cohort::v1::Broker::Stub> broker_stub = cohort::v1::Broker::NewStub(Channel(broker));
  std::unique_ptr<cohort::v1::Scheduler::Stub> scheduler_stub;
  if (scheduler) scheduler_stub = cohort::v1::Scheduler::NewStub(Channel(*scheduler));

  ConsoleApiOptions api_options;
  api_options.read_only = absl::GetFlag(FLAGS_read_only);
  api_options.broker_address = broker.ToString();
  api_options.scheduler_address = scheduler ? scheduler->ToString() : "";
  ConsoleApi api(*broker_stub, scheduler_stub.get(), api_options);
  WatchHub hub(*broker_stub, metrics);
  LoopBridge bridge(loop);

  HttpServerOptions http_options;
  http_options.listen = listen;
  http_options.threads = threads;
  http_options.assets_dir = assets;
  http_options.read_only = api_options.read_only;
  std::unique_ptr<HttpServer> http = OrDie(HttpServer::Start(http_options, bridge, api, hub, metrics));

  std::printf("listening http=%s metrics=%s\n", http->address().ToString().c_str(),
              metrics_server->address().ToString().c_str());
  std::fflush(stdout);

  // Until SIGTERM/SIGINT: end the live streams, stop HTTP (its threads may still be
  // waiting on this loop, so from another thread), then wait for API work in flight.
  runtime::RunUntilComplete(loop, [](WatchHub* hub, HttpServer* http, LoopBridge* bridge,
                                     runtime::Event* stop) -> runtime::Task<void> {
    co_await hub->Run(*stop);
    co_await runtime::ToThread([http] { http->Stop(); });
    co_await bridge->Close();
  }(&hub, http.get(), &bridge, &stop));
  return 0;
}

}  // namespace
}  // namespace cohort::console

int main(int argc, char** argv) { return cohort::console::Main(argc, argv); }
