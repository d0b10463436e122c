#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/common/address.h"
#include "services/console/console_api.h"
#include "services/console/console_metrics.h"
#include "services/console/loop_bridge.h"
#include "services/console/tls_front.h"
#include "services/console/watch_hub.h"

struct mg_context;
struct mg_connection;

namespace cohort::console {

struct HttpServerOptions {
  common::HostPort listen;
  // HTTP worker threads: requests served at once, open event streams included.
  int threads = 32;
  // Built front-end assets (index.html and assets/), served as static files; empty:
  // the API only.
  std::string assets_dir;
  bool read_only = false;
  // HTTPS when both are set (see TlsFront): a PEM certificate chain and its private
  // key, re-read every `tls_reload_interval` and served to new connections when they
  // changed (see TlsCertificates).
  std::string tls_cert;
  std::string tls_key;
  absl::Duration tls_reload_interval = absl::Seconds(10);
};

// The console's HTTP server (civetweb, from Debian): static assets, the JSON API
// under /api/ and live event streams at /api/events.
//
// Every API request is bounded before anything else runs: path ≤ 256 bytes, body ≤
// 4 KiB (413), a known route (404) and method (405), an `Authorization: Bearer <token>`
// header of printable ASCII up to kMaxTokenBytes (400 otherwise); a mutating route
// (POST) is 403 in read-only mode and without the `X-Cohort-Console` header, which a
// cross-site form cannot send. The token is the signed-in principal's: it goes on every
// call the request makes (see ConsoleApi). Answers are JSON with Cache-Control:
// no-store; errors are {"error": "..."} with a bounded message.
//
// /api/events[?job=ID|?view=counts] is a Server-Sent-Events stream from the WatchHub
// (`reset` and `jobs` frames, a comment every 15 s to keep proxies from closing it);
// with ?view=counts it carries `counts` frames instead of events (see StreamView: what
// the overview, executors and jobs-list pages need at thousands of jobs a second); with
// ?job=ID it carries that job's events only, plus `progress` frames while it runs (read every
// 0.5 s with the caller's token: the broker has no event for progress). The hub's
// Watch uses the console's own credential, so a stream is opened only for a token the
// broker lets read (401/403 otherwise, checked when the stream opens).
//
// Civetweb's threads call into the loop through the LoopBridge. Stop() must not run
// on the loop's thread; stop the WatchHub first so that open streams end.
class HttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpServerOptions options, LoopBridge& bridge,
                                                           ConsoleApi& api, WatchHub& hub, ConsoleMetrics& metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The public address bound (the real port when asked for 0); HTTPS with TLS.
  const common::HostPort& address() const { return address_; }

  // Stops accepting and waits for the requests in flight. Idempotent. Not on the loop.
  void Stop();

 private:
  HttpServer(HttpServerOptions options, LoopBridge& bridge, ConsoleApi& api, WatchHub& hub, ConsoleMetrics& metrics)
      : options_(std::move(options)), bridge_(bridge), api_(api), hub_(hub), metrics_(metrics) {}

  static int HandleApi(mg_connection* conn, void* self);
  int ServeApi(mg_connection* conn);
  int ServeEvents(mg_connection* conn, const std::string& job_id, StreamView view, const std::string& token);

  const HttpServerOptions options_;
  LoopBridge& bridge_;
  ConsoleApi& api_;
  WatchHub& hub_;
  ConsoleMetrics& metrics_;
  mg_context* ctx_ = nullptr;
  std::unique_ptr<TlsFront> front_;  // with TLS: the public address, relaying to civetweb
  common::HostPort address_;
  std::atomic<bool> stopping_{false};
};

}  // namespace cohort::console
