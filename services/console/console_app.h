#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "libs/common/address.h"
#include "libs/runtime/runtime.h"
#include "prometheus/registry.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "protos/cohort/v1/scheduler.grpc.pb.h"
#include "services/console/console_api.h"
#include "services/console/console_metrics.h"
#include "services/console/http_server.h"
#include "services/console/loop_bridge.h"
#include "services/console/watch_hub.h"

namespace cohort::console {

// Where the console's calls go, and with whose credential.
struct ConsoleAppOptions {
  // The console's own credential (its token or client certificate): the one Watch that
  // every open page shares. Needs scope read.
  std::shared_ptr<grpc::Channel> broker;
  // Channels to the same broker without a token of the console's own: every API call,
  // each carrying the signed-in browser's token (see ConsoleApi), on a channel of that
  // token's own (CallerStubs).
  ChannelFactory broker_for_callers;
  // The scheduler, likewise; null: no schedules page.
  ChannelFactory scheduler_for_callers;
  ConsoleApiOptions api;
  HttpServerOptions http;
};

// cohort-console as a part: the API, the shared Watch and the HTTP server, on one event
// loop. Used by cohort-console's main and by cohort-dev, which runs one on a thread of
// its own.
//
// Start() (on the thread that owns `loop`, before or while it runs) binds the HTTP
// address, so address() is final when it returns; Run() serves until `stop` is set,
// then ends the live streams, stops HTTP and waits for the API calls in flight. The
// registry must outlive the app.
class ConsoleApp {
 public:
  static absl::StatusOr<std::unique_ptr<ConsoleApp>> Start(runtime::EventLoop& loop, prometheus::Registry& registry,
                                                           ConsoleAppOptions options);

  // The HTTP(S) address bound (the real port when asked for 0).
  const common::HostPort& address() const { return http_->address(); }

  // Loop only; returns once everything has stopped.
  runtime::Task<void> Run(runtime::Event& stop);

 private:
  ConsoleApp(runtime::EventLoop& loop, prometheus::Registry& registry, ConsoleAppOptions options);

  ConsoleAppOptions options_;
  ConsoleMetrics metrics_;
  std::unique_ptr<cohort::v1::Broker::Stub> watch_stub_;
  CallerStubs callers_;
  ConsoleApi api_;
  WatchHub hub_;
  LoopBridge bridge_;
  std::unique_ptr<HttpServer> http_;
};

}  // namespace cohort::console
