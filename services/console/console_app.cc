#include "services/console/console_app.h"

#include <utility>

namespace cohort::console {

ConsoleApp::ConsoleApp(runtime::EventLoop& loop, prometheus::Registry& registry, ConsoleAppOptions options)
    : options_(std::move(options)),
      metrics_(registry),
      watch_stub_(cohort::v1::Broker::NewStub(options_.broker)),
      callers_(options_.broker_for_callers, options_.scheduler_for_callers),
      api_(callers_, options_.api),
      hub_(*watch_stub_, metrics_),
      bridge_(loop) {}

absl::StatusOr<std::unique_ptr<ConsoleApp>> ConsoleApp::Start(runtime::EventLoop& loop,
                                                              prometheus::Registry& registry,
                                                              ConsoleAppOptions options) {
  options.http.read_only = options.api.read_only;
  options.api.tls = !options.http.tls_cert.empty();
  std::unique_ptr<ConsoleApp> app(new ConsoleApp(loop, registry, std::move(options)));
  absl::StatusOr<std::unique_ptr<HttpServer>> http =
      HttpServer::Start(app->options_.http, app->bridge_, app->api_, app->hub_, app->metrics_);
  if (!http.ok()) return http.status();
  app->http_ = *std::move(http);
  return app;
}

runtime::Task<void> ConsoleApp::Run(runtime::Event& stop) {
  co_await hub_.Run(stop);
  // HTTP threads may be waiting on this loop: stop them from another thread.
  co_await runtime::ToThread([http = http_.get()] { http->Stop(); });
  co_await bridge_.Close();
}

}  // namespace cohort::console
