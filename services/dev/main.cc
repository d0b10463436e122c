// cohort-dev: the broker, the scheduler, an executor and the web console in one process,
// for a laptop, a demo or a test. See README.md ("cohort-dev") and design.md.
//
// Each part runs on its own event loop and thread (PartThread) and they talk over real
// gRPC: one server serves the Broker and Scheduler services on --listen and on an
// abstract Unix socket of this process. The scheduler reaches the broker through that
// socket (its channel must exist before the server starts, when a --listen port of 0
// is not yet known); the executor dials the bound --listen address, as a separate
// cohort-executor would, with TLS and the token from the environment (COHORT_TLS_CA,
// COHORT_TOKEN_FILE, ...: under --auth-tokens it needs a token with scope execute). The console (--console-listen) follows the broker's events
// through the socket and makes every call for a browser on the --listen address with
// the browser's token, so the broker authorizes the signed-in principal.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "libs/auth/channel_credentials.h"
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
#include "services/console/console_app.h"
#include "services/dev/part_thread.h"
#include "services/executor/executor_app.h"
#include "services/scheduler/scheduler_app.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070",
          "gRPC address of the Broker and Scheduler services, HOST:PORT (port 0 picks a free port)");
ABSL_FLAG(std::string, data_dir, "cohort-data", "data directory: the broker's store in broker/, the scheduler's in scheduler/");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9473",
          "/metrics address for all three parts, HOST:PORT (port 0 picks a free port)");
ABSL_FLAG(int, capacity, 8, "executor: most jobs running at once (1..10000)");
ABSL_FLAG(std::vector<std::string>, queues, {},
          "executor: comma-separated queues it serves (default: all), leaving the others to your own workers");
ABSL_FLAG(std::vector<std::string>, allow_exec,
          std::vector<std::string>({"/bin/echo", "/usr/bin/echo", "/bin/true", "/usr/bin/true", "/bin/false",
                                    "/usr/bin/false", "/bin/sleep", "/usr/bin/sleep"}),
          "executor: programs kind \"exec\" may run, absolute paths or globs like /usr/bin/* (repeatable or "
          "comma-separated; replaces the default, which allows only echo, true, false and sleep; "
          "--allow-exec= allows none)");
ABSL_FLAG(std::string, console_listen, "127.0.0.1:7080",
          "the web console's HTTP address, HOST:PORT (port 0 picks a free port; HTTPS with --tls-cert/--tls-key; "
          "empty: no console; not given while --listen's port is 0: no console, so that scripts reading the ready "
          "line see the two addresses they expect)");
ABSL_FLAG(std::string, console_assets_dir, "",
          "the console's built front end (console/web: npm ci && npm run build, then its dist/); empty: "
          "/usr/share/cohort/console when it exists, else the console's API only");
ABSL_FLAG(absl::Duration, drain_grace, absl::Seconds(5),
          "executor: on Ctrl-C/SIGTERM, how long running jobs may finish before they are cancelled");

namespace cohort::dev {
namespace {

constexpr char kProgram[] = "cohort-dev";
const log::Logger kLog("dev");

[[noreturn]] void Die(const std::string& reason) { common::Die(kProgram, reason); }

template <typename T>
T OrDie(absl::StatusOr<T> value) {
  return common::OrDie(kProgram, std::move(value));
}


// --allow-exec as given: every occurrence (absl keeps only the last one), each split at
// commas; the default when the flag is absent; empty for a lone `--allow-exec=`.
std::vector<std::string> AllowExecPatterns(int argc, char** argv) {
  std::vector<std::string> patterns;
  bool given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    constexpr std::string_view kFlag = "--allow_exec";
    constexpr std::string_view kFlagEquals = "--allow_exec=";
    std::string_view value;
    if (arg.substr(0, kFlagEquals.size()) == kFlagEquals) {
      value = arg.substr(kFlagEquals.size());
    } else if (arg == kFlag && i + 1 < argc) {
      value = argv[++i];
    } else {
      continue;
    }
    given = true;
    for (absl::string_view p : absl::StrSplit(absl::string_view(value.data(), value.size()), ',', absl::SkipEmpty())) {
      patterns.emplace_back(p);
    }
  }
  return given ? patterns : absl::GetFlag(FLAGS_allow_exec);
}

// Whether `flag` ("--name", underscores: the arguments after DashedArgs) is among the
// arguments, as --name=value or --name value.
bool FlagGiven(int argc, char** argv, std::string_view flag) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg == flag || (arg.substr(0, flag.size()) == flag && arg.size() > flag.size() && arg[flag.size()] == '=')) {
      return true;
    }
  }
  return false;
}

// The address the executor dials: the bound --listen address, with a wildcard host
// replaced by loopback.
std::string DialAddress(common::HostPort bound) {
  if (bound.host == "0.0.0.0") bound.host = "127.0.0.1";
  if (bound.host == "::") bound.host = "::1";
  return bound.ToString();
}

// The broker's life on its loop (BrokerApp::Run): serve until stopped, drain the
// executors, shut the shared gRPC server down (the broker stops last, so the other
// parts' calls have ended by then), flush the commits in flight. `server` is read only
// at the stop, when it has long been set.
// Set once, when the shared gRPC server has stopped; a task on any loop may await it
// without holding a thread (ExternalCompletion), one waiter at a time.
class ServerDown {
 public:
  void Notify() {
    std::optional<runtime::Completer<void>> waiter;
    {
      absl::MutexLock lock(&mu_);
      down_ = true;
      waiter.swap(waiter_);
    }
    if (waiter) (*waiter)();
  }
  bool IsDown() {
    absl::MutexLock lock(&mu_);
    return down_;
  }
  runtime::ExternalCompletion<void> Wait() {
    return runtime::ExternalCompletion<void>([this](runtime::Completer<void> done) {
      {
        absl::MutexLock lock(&mu_);
        if (!down_) {
          waiter_.emplace(done);
          return;
        }
      }
      done();
    });
  }

 private:
  absl::Mutex mu_;
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<runtime::Completer<void>> waiter_ ABSL_GUARDED_BY(mu_);
};

runtime::Task<void> RunBroker(std::unique_ptr<broker::BrokerApp> app, runtime::Event& stop,
                              const std::unique_ptr<grpc::Server>& server, ServerDown& server_down) {
  co_await app->Run(stop, [&server, &server_down] {
    rpc::StopServer(*server);
    server_down.Notify();
  });
}

// The scheduler's life on its loop. Its service is registered on the shared server,
// which the broker's part stops last: so once Run has returned (`ran`), the app and its
// loop stay alive until the server is down, and a Scheduler call arriving meanwhile
// reaches a stopped app (as in cohort-scheduler, which stops its server after Run)
// rather than a destroyed one.
runtime::Task<void> RunScheduler(std::unique_ptr<scheduler::SchedulerApp> app, runtime::Event& stop,
                                 absl::Notification& ran, ServerDown& server_down) {
  {
    absl::Cleanup notify = [&ran] { ran.Notify(); };  // however Run ends
    co_await app->Run(stop);
  }
  co_await server_down.Wait();
}

// The console's front end: the flag, else the image's copy when there is one.
std::string ConsoleAssets() {
  std::string assets = absl::GetFlag(FLAGS_console_assets_dir);
  if (assets.empty() && std::filesystem::exists("/usr/share/cohort/console/index.html")) {
    assets = "/usr/share/cohort/console";
  }
  if (!assets.empty() && !std::filesystem::exists(std::filesystem::path(assets) / "index.html")) {
    Die(absl::StrCat("--console-assets-dir \"", assets.substr(0, 200), "\" has no index.html"));
  }
  return assets;
}

// How the executor and the console dial the public port: TLS when it serves TLS (the
// CA from COHORT_TLS_CA, else --tls-cert itself, which is right for a self-signed
// certificate; a client certificate from COHORT_TLS_CERT/KEY), and the token from
// COHORT_TOKEN or COHORT_TOKEN_FILE.
auth::ClientSecurityOptions ClientSecurity(const auth::ServerSecurityOptions& server) {
  auth::ClientSecurityOptions security;
  auth::FillFromEnvironment(security);
  if (!server.tls()) {
    security.tls_ca.clear();
    security.tls_cert.clear();
    security.tls_key.clear();
  } else if (security.tls_ca.empty()) {
    security.tls_ca = server.tls_cert;
  }
  return security;
}

// The console's options: the Watch through the process's own socket, calls for
// browsers on the public address (`bound`) as ClientSecurity says but without a token
// of their own (each carries its browser's).
console::ConsoleAppOptions ConsoleOptions(const common::HostPort& listen, const std::string& internal_address,
                                          const common::HostPort& bound, const auth::ServerSecurityOptions& server,
                                          const grpc::ChannelArguments& args) {
  console::ConsoleAppOptions options;
  options.broker = grpc::CreateCustomChannel(internal_address, grpc::InsecureChannelCredentials(), args);
  auth::ClientSecurityOptions security = ClientSecurity(server);
  security.token.clear();
  // The console makes one such channel per browser credential; the settings are
  // checked once here, so making one cannot fail.
  if (absl::Status s = auth::CheckClientSecurity(security); !s.ok()) Die(std::string(s.message()));
  options.broker_for_callers = [address = DialAddress(bound), security, args] {
    return *auth::MakeChannel(address, security, args);
  };
  options.scheduler_for_callers = options.broker_for_callers;
  options.api.broker_address = bound.ToString();
  options.api.scheduler_address = bound.ToString();
  options.http.listen = listen;
  options.http.assets_dir = ConsoleAssets();
  options.http.tls_cert = server.tls_cert;
  options.http.tls_key = server.tls_key;
  return options;
}

runtime::Task<void> RunConsole(std::unique_ptr<console::ConsoleApp> app, runtime::Event& stop) {
  co_await app->Run(stop);
}

runtime::Task<void> RunExecutor(std::unique_ptr<executor::ExecutorApp> app, runtime::Event& stop) {
  co_await app->Run(stop);
}

int Main(int argc, char** argv) {
  // --help lists this binary's flags (absl matches files named after the program).
  common::ShowFlagsDefinedIn(
      {"services/dev/", "services/broker/broker_flags", "libs/auth/server_flags", log::kLogFlagsFile});
  absl::SetProgramUsageMessage(
      "cohort-dev: the Cohort broker, scheduler, an executor and the web console in one process, with a local data "
      "directory");
  common::DashedArgs args(argc, argv);
  common::ParseFlagsOrExit(kProgram, args.argc(), args.argv());
  if (absl::Status s = log::ConfigureFromFlags(); !s.ok()) Die(std::string(s.message()));
  common::HostPort listen = OrDie(common::ParseHostPort("--listen", absl::GetFlag(FLAGS_listen)));
  common::HostPort metrics_listen =
      OrDie(common::ParseHostPort("--metrics-listen", absl::GetFlag(FLAGS_metrics_listen)));
  std::optional<common::HostPort> console_listen;
  const bool console_given = FlagGiven(args.argc(), args.argv(), "--console_listen");
  if (!absl::GetFlag(FLAGS_console_listen).empty() && (console_given || listen.port != 0)) {
    console_listen = OrDie(common::ParseHostPort("--console-listen", absl::GetFlag(FLAGS_console_listen)));
  }
  const auth::ServerSecurityOptions server_security = auth::ServerSecurityFromFlags();
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  if (data_dir.empty()) Die("--data-dir must not be empty");
  broker::BrokerAppOptions broker_options =
      broker::BrokerOptionsFromFlags((std::filesystem::path(data_dir) / "broker").string());
  if (absl::Status valid = broker::BrokerApp::Validate(broker_options); !valid.ok()) Die(std::string(valid.message()));
  executor::ExecutorAppOptions executor_options;
  executor_options.capacity = absl::GetFlag(FLAGS_capacity);
  executor_options.queues = absl::GetFlag(FLAGS_queues);
  executor_options.allow_exec = AllowExecPatterns(args.argc(), args.argv());
  executor_options.drain_grace = absl::GetFlag(FLAGS_drain_grace);
  executor_options.broker = "127.0.0.1:1";  // the bound address replaces it once the server runs
  if (absl::Status valid = executor::ExecutorApp::Validate(executor_options); !valid.ok()) {
    Die(std::string(valid.message()));
  }
  // The Unix socket the scheduler reaches the broker through: abstract (no file), and
  // private to this process by name.
  const std::string internal_address =
      absl::StrCat("unix-abstract:cohort-dev-", getpid(), "-", absl::ToUnixNanos(absl::Now()));
  scheduler::SchedulerAppOptions scheduler_options;
  scheduler_options.data_dir = (std::filesystem::path(data_dir) / "scheduler").string();
  scheduler_options.release_batch =
      std::min<std::size_t>(scheduler_options.release_batch, static_cast<std::size_t>(broker_options.max_submit_batch));

  runtime::Event stop;  // outlives the loop, which may run a late stop_all during teardown
  runtime::EventLoop loop;
  // Before any other thread exists: signals are then blocked in every thread.
  auto signals = OrDie(common::SignalWatcher::Install(loop, [&](int) { stop.Set(); }));
  // A part that ends on its own (it should not) stops the others too, and the exit
  // code says so. Parts also end after a stop; that is read only before one.
  std::atomic<bool> part_ended{false};
  auto stop_all = [&loop, &stop, &part_ended] {
    part_ended = true;
    loop.Post([&stop] { stop.Set(); });
  };
  auto metrics_server = OrDie(common::MetricsServer::Start(metrics_listen));
  prometheus::Registry& registry = metrics_server->registry();
  // gRPC starts threads: only now.
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(broker_options.max_message_bytes);
  channel_args.SetMaxSendMessageSize(broker_options.max_message_bytes);
  scheduler_options.broker =
      grpc::CreateCustomChannel(internal_address, grpc::InsecureChannelCredentials(), channel_args);
  if (absl::Status valid = scheduler::SchedulerApp::Validate(scheduler_options); !valid.ok()) {
    Die(std::string(valid.message()));
  }

  std::error_code error;
  std::filesystem::create_directories(data_dir, error);
  if (error) Die(absl::StrCat("cannot create --data-dir ", data_dir, ": ", error.message()));

  // Set once the server starts, before any part is launched; the broker's part shuts it
  // down when it stops.
  std::unique_ptr<grpc::Server> server;
  ServerDown server_down;
  broker::BrokerApp* broker_app = nullptr;
  std::unique_ptr<PartThread> broker = OrDie(PartThread::Start(
      "broker",
      [&](runtime::EventLoop& part_loop, runtime::Event& part_stop) -> absl::StatusOr<runtime::Task<void>> {
        absl::StatusOr<std::unique_ptr<broker::BrokerApp>> app =
            broker::BrokerApp::Create(part_loop, registry, broker_options);
        if (!app.ok()) return app.status();
        broker_app = app->get();
        return RunBroker(std::move(*app), part_stop, server, server_down);
      },
      stop_all));

  scheduler::SchedulerApp* scheduler_app = nullptr;
  absl::Notification scheduler_ran;
  std::unique_ptr<PartThread> scheduler = OrDie(PartThread::Start(
      "scheduler",
      [&](runtime::EventLoop& part_loop, runtime::Event& part_stop) -> absl::StatusOr<runtime::Task<void>> {
        absl::StatusOr<std::unique_ptr<scheduler::SchedulerApp>> app =
            scheduler::SchedulerApp::Create(part_loop, registry, scheduler_options);
        if (!app.ok()) return app.status();
        scheduler_app = app->get();
        return RunScheduler(std::move(*app), part_stop, scheduler_ran, server_down);
      },
      stop_all));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(internal_address, grpc::InsecureServerCredentials());
  broker_app->AddTo(builder);
  builder.RegisterService(&scheduler_app->service());
  // The public port gets the security flags (loopback by default); the internal one is
  // this process talking to itself.
  rpc::StartedServer started = OrDie(rpc::StartServer(
      builder, listen, OrDie(auth::ServerCredentialsFromFlags(kProgram, "--listen", listen, registry, "dev"))));
  server = std::move(started.server);
  const common::HostPort bound = started.bound;
  broker->Launch();
  scheduler->Launch();

  executor_options.broker = DialAddress(bound);
  executor_options.broker_security = ClientSecurity(server_security);
  // The ready line means jobs run: it waits for the broker's welcome of the executor.
  // Declared before the executor, which may call it again on a reconnect until it ends.
  absl::Notification welcomed;
  executor_options.on_welcome = [&welcomed] {
    if (!welcomed.HasBeenNotified()) welcomed.Notify();  // only ever on the executor's loop
  };
  std::unique_ptr<PartThread> executor = OrDie(PartThread::Start(
      "executor",
      [&](runtime::EventLoop& part_loop, runtime::Event& part_stop) -> absl::StatusOr<runtime::Task<void>> {
        absl::StatusOr<std::unique_ptr<executor::ExecutorApp>> app =
            executor::ExecutorApp::Create(part_loop, registry, executor_options);
        if (!app.ok()) return app.status();
        return RunExecutor(std::move(*app), part_stop);
      },
      stop_all));
  executor->Launch();
  if (!welcomed.WaitForNotificationWithTimeout(absl::Seconds(10))) {
    Die("the executor did not connect to the broker within 10s");
  }

  std::unique_ptr<PartThread> console_part;
  common::HostPort console_bound;
  if (console_listen) {
    console_part = OrDie(PartThread::Start(
        "console",
        [&](runtime::EventLoop& part_loop, runtime::Event& part_stop) -> absl::StatusOr<runtime::Task<void>> {
          absl::StatusOr<std::unique_ptr<console::ConsoleApp>> app = console::ConsoleApp::Start(
              part_loop, registry,
              ConsoleOptions(*console_listen, internal_address, bound, server_security, channel_args));
          if (!app.ok()) return app.status();
          console_bound = (*app)->address();
          return RunConsole(std::move(*app), part_stop);
        },
        stop_all));
    console_part->Launch();
  }

  // The ready line, with the console's address when there is one.
  std::string ready = common::ReadyLine(bound, metrics_server->address());
  if (console_part != nullptr) absl::StrAppend(&ready, " console=", console_bound.ToString());
  if (std::printf("%s\n", ready.c_str()) < 0 || std::fflush(stdout) != 0) Die("cannot print the ready line");
  const std::string exec = executor_options.allow_exec.empty() ? std::string("none (built-in kinds only)")
                                                               : absl::StrJoin(executor_options.allow_exec, " ");
  const std::string console_url =
      console_part == nullptr
          ? std::string("off")
          : absl::StrCat(server_security.tls() ? "https://" : "http://", console_bound.ToString(), "/");
  kLog.Info("broker, scheduler, executor and console ready; Ctrl-C stops it, restarting on the same --data-dir finds "
            "every job",
            {{"grpc", bound.ToString()},
             {"console", console_url},
             {"metrics", absl::StrCat("http://", metrics_server->address().ToString(), "/metrics")},
             {"data_dir", data_dir},
             {"capacity", executor_options.capacity},
             {"exec", exec}});

  runtime::RunUntilComplete(loop, [](runtime::Event* stop) -> runtime::Task<void> { co_await stop->Wait(); }(&stop));
  const bool failed = part_ended;
  if (failed) kLog.Error("a part stopped on its own; stopping the others");
  kLog.Info("stopping", {{"drain_grace", executor_options.drain_grace}});
  // The console first (its pages' calls end), then the executor, so its jobs report to
  // a live broker; then the scheduler (its app kept until the server is down); the
  // broker last: its Run drains any other executor, shuts the server down (calls still
  // in flight end CANCELLED, and cancel no job) while its loop still runs their
  // handlers, and flushes its commits.
  if (console_part != nullptr) {
    console_part->RequestStop();
    console_part->Join();
  }
  executor->RequestStop();
  executor->Join();
  scheduler->RequestStop();
  scheduler_ran.WaitForNotification();
  broker->RequestStop();
  broker->Join();
  if (!server_down.IsDown()) {
    rpc::StopServer(*server);
    server_down.Notify();
  }
  scheduler->Join();
  server->Wait();
  kLog.Info("stopped");
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace cohort::dev

int main(int argc, char** argv) { return cohort::dev::Main(argc, argv); }
