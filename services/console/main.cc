// cohort-console: the web console. Serves the front end (--assets-dir) and a JSON +
// Server-Sent-Events API over the broker's and scheduler's gRPC APIs, over HTTPS with
// --tls-cert/--tls-key. See README.md ("The web console").
//
// Credentials: the console's own (--broker-token-file or a client certificate, else
// COHORT_TOKEN/COHORT_TOKEN_FILE) is used only for the one Watch all pages share;
// every other call carries the signed-in browser's token instead (ConsoleApi).
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
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "libs/auth/broker_client_flags.h"
#include "libs/auth/channel_credentials.h"
#include "libs/common/address.h"
#include "libs/common/fatal.h"
#include "libs/common/flag_help.h"
#include "libs/common/flag_parse.h"
#include "libs/common/flag_names.h"
#include "libs/common/log_flags.h"
#include "libs/common/metrics.h"
#include "libs/common/signals.h"
#include "libs/runtime/runtime.h"
#include "services/console/console_app.h"

ABSL_FLAG(std::string, broker, "127.0.0.1:7070", "the broker's gRPC address, HOST:PORT");
ABSL_FLAG(std::string, scheduler, "127.0.0.1:7071",
          "the scheduler's gRPC address, HOST:PORT (cohort-dev serves both on one port; empty: no schedules page)");
ABSL_FLAG(std::string, listen, "127.0.0.1:7080",
          "HTTP address of the console, HOST:PORT (port 0 picks a free port; IPv4 only)");
ABSL_FLAG(std::string, metrics_listen, "0.0.0.0:9474", "/metrics address, HOST:PORT (port 0 picks a free port)");
ABSL_FLAG(std::string, assets_dir, "",
          "directory of the built front end (console/web: npm ci && npm run build, then its dist/); empty: API only");
ABSL_FLAG(bool, read_only, false, "show everything, change nothing: every action is hidden and refused (403)");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain: serve the console over HTTPS (with --tls-key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert");
ABSL_FLAG(absl::Duration, tls_reload_interval, absl::Seconds(10),
          "how often --tls-cert and --tls-key are re-read: a rotated pair reaches new connections, open ones go on "
          "(at least 1s)");
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

// A channel with `security` (TLS from the --broker-tls-* flags or the environment;
// the token, if any, on every call).
std::shared_ptr<grpc::Channel> Channel(const common::HostPort& address, const auth::ClientSecurityOptions& security) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  return OrDie(auth::MakeChannel(address.ToString(), security, args));
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("cohort-console: the web console for Cohort's queues, jobs, executors and schedules");
  common::ShowFlagsDefinedIn({"services/console/", "libs/auth/broker_client_flags", log::kLogFlagsFile});
  common::DashedArgs args(argc, argv);
  common::ParseFlagsOrExit(kProgram, args.argc(), args.argv());
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

  auth::ClientSecurityOptions security = OrDie(auth::BrokerClientSecurityFromFlags());
  auth::FillFromEnvironment(security);
  const std::string tls_cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string tls_key = absl::GetFlag(FLAGS_tls_key);
  if (tls_cert.empty() != tls_key.empty()) common::Die(kProgram, "HTTPS needs both --tls-cert and --tls-key");
  if (absl::GetFlag(FLAGS_tls_reload_interval) < absl::Seconds(1) ||
      absl::GetFlag(FLAGS_tls_reload_interval) > absl::Hours(24)) {
    common::Die(kProgram, "--tls-reload-interval must be in 1s..24h");
  }

  runtime::EventLoop loop;
  runtime::Event stop;
  // Before any other thread exists: signals are then blocked in every thread.
  auto signals = OrDie(common::SignalWatcher::Install(loop, [&](int) { stop.Set(); }));
  auto metrics_server = OrDie(common::MetricsServer::Start(metrics_listen));

  ConsoleAppOptions options;
  auth::ClientSecurityOptions for_callers = security;
  for_callers.token.clear();
  options.broker = Channel(broker, security);
  options.broker_for_callers = [broker, for_callers] { return Channel(broker, for_callers); };
  if (scheduler) {
    options.scheduler_for_callers = [address = *scheduler, for_callers] { return Channel(address, for_callers); };
  }
  options.api.read_only = absl::GetFlag(FLAGS_read_only);
  options.api.broker_address = broker.ToString();
  options.api.scheduler_address = scheduler ? scheduler->ToString() : "";
  options.http.listen = listen;
  options.http.threads = threads;
  options.http.assets_dir = assets;
  options.http.tls_cert = tls_cert;
  options.http.tls_key = tls_key;
  options.http.tls_reload_interval = absl::GetFlag(FLAGS_tls_reload_interval);
  std::unique_ptr<ConsoleApp> app = OrDie(ConsoleApp::Start(loop, metrics_server->registry(), std::move(options)));

  std::printf("listening http=%s metrics=%s\n", app->address().ToString().c_str(),
              metrics_server->address().ToString().c_str());
  std::fflush(stdout);

  // Until SIGTERM/SIGINT.
  runtime::RunUntilComplete(loop, app->Run(stop));
  return 0;
}
}  // namespace
}  // namespace cohort::console

int main(int argc, char** argv) { return cohort::console::Main(argc, argv); }
