// cohort-dev: the broker, the scheduler and an executor in one process, for a laptop, a
// demo or a test. See README.md ("cohort-dev") and design.md.
//
// Each part runs on its own event loop and thread (PartThread) and they talk over real
// gRPC: one server on --listen serves the Broker and Scheduler services, and the
// executor and the scheduler reach the broker through in-process channels to it.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
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
#include "services/broker/broker_app.h"
#include "services/dev/part_thread.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070",
          "gRPC address of the Broker and Scheduler services, HOST:PORT (port 0 picks a free port)");
ABSL_FLAG(std::string, data_dir, "cohort-data", "data directory: the broker's store in broker/, the scheduler's in scheduler/");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9473",
          "/metrics address for all three parts, HOST:PORT (port 0 picks a free port)");
// The broker's flags, as cohort-broker has them.
ABSL_FLAG(absl::Duration, lease, absl::Seconds(30), "broker: lease of an attempt, renewed by heartbeats");
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Seconds(5), "broker: heartbeat interval asked of executors");
ABSL_FLAG(int, max_submit_batch, 10'000, "broker: most jobs per Submit");
ABSL_FLAG(int, max_payload_bytes, 1 << 20, "broker: largest job payload accepted");
ABSL_FLAG(int, max_wait_ids, 10'000, "broker: most job ids per Gather, Wait or AsCompleted");
ABSL_FLAG(int, starvation_every, 16, "broker: every Nth dispatch from a queue takes its oldest job (0: strict priority)");
ABSL_FLAG(int, max_message_bytes, 64 << 20, "broker: largest gRPC message accepted");
ABSL_FLAG(absl::Duration, result_ttl, absl::Hours(24 * 7), "broker: how long an ended job is kept");
ABSL_FLAG(absl::Duration, event_retention, absl::Hours(24), "broker: how long events are kept for Watch");

namespace cohort::dev {
namespace {

constexpr char kProgram[] = "cohort-dev";

[[noreturn]] void Die(const std::string& reason) { common::Die(kProgram, reason); }

template <typename T>
T OrDie(absl::StatusOr<T> value) {
  return common::OrDie(kProgram, std::move(value));
}

broker::BrokerAppOptions BrokerOptionsFromFlags(const std::string& data_dir) {
  broker::BrokerAppOptions options;
  options.data_dir = (std::filesystem::path(data_dir) / "broker").string();
  options.lease = absl::GetFlag(FLAGS_lease);
  options.heartbeat_interval = absl::GetFlag(FLAGS_heartbeat_interval);
  options.max_submit_batch = absl::GetFlag(FLAGS_max_submit_batch);
  options.max_payload_bytes = absl::GetFlag(FLAGS_max_payload_bytes);
  options.max_wait_ids = absl::GetFlag(FLAGS_max_wait_ids);
  options.starvation_every = absl::GetFlag(FLAGS_starvation_every);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.result_ttl = absl::GetFlag(FLAGS_result_ttl);
  options.event_retention = absl::GetFlag(FLAGS_event_retention);
  return options;
}

// The broker's life on its loop: serve until stopped, then stop the engine. The gRPC
// server has been shut down by then (main does it), so no call is in flight.
runtime::Task<void> ServeBroker(std::unique_ptr<broker::BrokerApp> app, runtime::Event& stop) {
  co_await stop.Wait();
  co_await app->Stop();
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "cohort-dev: the Cohort broker, scheduler and an executor in one process, with a local data directory");
  common::DashedArgs args(argc, argv);
  absl::ParseCommandLine(args.argc(), args.argv());
  common::HostPort listen = OrDie(common::ParseHostPort("--listen", absl::GetFlag(FLAGS_listen)));
  common::HostPort metrics_listen =
      OrDie(common::ParseHostPort("--metrics-listen", absl::GetFlag(FLAGS_metrics_listen)));
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  if (data_dir.empty()) Die("--data-dir must not be empty");
  broker::BrokerAppOptions broker_options = BrokerOptionsFromFlags(data_dir);
  if (absl::Status valid = broker_options.Validate(); !valid.ok()) Die(std::string(valid.message()));

  runtime::Event stop;  // outlives the loop, which may run a late stop_all during teardown
  runtime::EventLoop loop;
  // Before any other thread exists: signals are then blocked in every thread.
  auto signals = OrDie(common::SignalWatcher::Install(loop, [&](int) { stop.Set(); }));
  // A part that ends on its own (it should not) stops the others too.
  auto stop_all = [&loop, &stop] { loop.Post([&stop] { stop.Set(); }); };

  std::error_code error;
  std::filesystem::create_directories(data_dir, error);
  if (error) Die(absl::StrCat("cannot create --data-dir ", data_dir, ": ", error.message()));
  auto metrics_server = OrDie(common::MetricsServer::Start(metrics_listen));
  prometheus::Registry& registry = metrics_server->registry();

  broker::BrokerApp* broker_app = nullptr;
  std::unique_ptr<PartThread> broker = OrDie(PartThread::Start(
      "broker",
      [&](runtime::EventLoop& part_loop, runtime::Event& part_stop) -> absl::StatusOr<runtime::Task<void>> {
        absl::StatusOr<std::unique_ptr<broker::BrokerApp>> app =
            broker::BrokerApp::Open(part_loop, registry, broker_options);
        if (!app.ok()) return app.status();
        broker_app = app->get();
        return ServeBroker(std::move(*app), part_stop);
      },
      stop_all));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen.ToString(), grpc::InsecureServerCredentials(), &port);
  broker_app->AddTo(builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) Die(absl::StrCat("cannot serve gRPC on ", listen.ToString()));
  common::HostPort bound = listen;
  bound.port = static_cast<std::uint16_t>(port);

  if (absl::Status s = common::PrintReadyLine(bound, metrics_server->address()); !s.ok()) Die(s.ToString());
  std::fprintf(stderr,
               "cohort-dev: broker ready on %s (gRPC), metrics at http://%s/metrics, data in %s\n"
               "cohort-dev: Ctrl-C stops it; restarting on the same --data-dir finds every job\n",
               bound.ToString().c_str(), metrics_server->address().ToString().c_str(), data_dir.c_str());

  runtime::RunUntilComplete(loop, [](runtime::Event* stop) -> runtime::Task<void> { co_await stop->Wait(); }(&stop));
  std::fprintf(stderr, "cohort-dev: stopping\n");
  // The broker last: until then the others can still report to it. Shutdown ends the
  // calls still in flight (CANCELLED) and waits for their handlers, which run on the
  // broker's loop, so that loop must still be running.
  server->Shutdown(std::chrono::system_clock::now());
  broker->RequestStop();
  broker->Join();
  server->Wait();
  std::fprintf(stderr, "cohort-dev: stopped\n");
  return 0;
}

}  // namespace
}  // namespace cohort::dev

int main(int argc, char** argv) { return cohort::dev::Main(argc, argv); }
