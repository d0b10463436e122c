#include "services/console/http_server.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/strings/strip.h"
#include "civetweb.h"
#include "libs/common/quote.h"
#include "services/console/api_input.h"
#include "services/console/api_route.h"
#include "services/console/json.h"

namespace cohort::console {
namespace {

constexpr std::size_t kMaxQueryBytes = 1024;
constexpr absl::Duration kKeepAliveEvery = absl::Seconds(15);
constexpr absl::Duration kProgressEvery = absl::Milliseconds(500);
constexpr char kCommonHeaders[] =
    "Cache-Control: no-store\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Connection: close\r\n";

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
  }
}

void Send(mg_connection* conn, const HttpReply& reply) {
  std::string head = absl::StrCat("HTTP/1.1 ", reply.status, " ", ReasonPhrase(reply.status), "\r\n", kCommonHeaders,
                                  "Content-Type: ", reply.content_type, "\r\nContent-Length: ", reply.body.size(),
                                  "\r\n");
  if (!reply.disposition.empty()) absl::StrAppend(&head, "Content-Disposition: ", reply.disposition, "\r\n");
  head += "\r\n";
  mg_write(conn, head.data(), head.size());
  if (!reply.body.empty()) mg_write(conn, reply.body.data(), reply.body.size());
}

std::string Decode(absl::string_view text) {
  std::string in(text);
  std::string out(in.size() + 1, '\0');
  const int n = mg_url_decode(in.c_str(), static_cast<int>(in.size()), out.data(), static_cast<int>(out.size()), 1);
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

bool HasHeader(const mg_request_info* info, const char* name) {
  for (int i = 0; i < info->num_headers; ++i) {
    if (strcasecmp(info->http_headers[i].name, name) == 0) return true;
  }
  return false;
}

// The bearer token of the Authorization header: empty without one; INVALID_ARGUMENT
// (never quoting it) for another scheme, an empty, overlong or non-printable token.
absl::StatusOr<std::string> BearerToken(const mg_request_info* info) {
  for (int i = 0; i < info->num_headers; ++i) {
    if (strcasecmp(info->http_headers[i].name, "Authorization") != 0) continue;
    absl::string_view value = info->http_headers[i].value;
    if (!absl::ConsumePrefix(&value, "Bearer ") && !absl::ConsumePrefix(&value, "bearer ")) {
      return absl::InvalidArgumentError("the Authorization header must be \"Bearer <token>\"");
    }
    bool printable = !value.empty() && value.size() <= kMaxTokenBytes;
    for (char c : value) printable = printable && c > ' ' && c < 0x7f;
    if (!printable) {
      return absl::InvalidArgumentError(
          absl::StrCat("the bearer token is invalid: 1..", kMaxTokenBytes, " printable ASCII characters"));
    }
    return std::string(value);
  }
  return std::string();
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options, LoopBridge& bridge,
                                                              ConsoleApi& api, WatchHub& hub,
                                                              ConsoleMetrics& metrics) {
  std::unique_ptr<HttpServer> server(new HttpServer(std::move(options), bridge, api, hub, metrics));
  const HttpServerOptions& o = server->options_;
  if (o.listen.kind == common::HostPort::Kind::kIPv6) {
    return absl::InvalidArgumentError(absl::StrCat("cannot serve the console on ", o.listen.ToString(),
                                                   ": the HTTP server (civetweb) was built without IPv6"));
  }
  const bool tls = !o.tls_cert.empty();
  if (tls != !o.tls_key.empty()) {
    return absl::InvalidArgumentError("HTTPS needs both --tls-cert and --tls-key");
  }
  // With TLS, civetweb serves plain HTTP on a loopback port behind the TLS front.
  const std::string ports = tls ? std::string("127.0.0.1:0") : o.listen.ToString();
  const std::string threads = absl::StrCat(o.threads);
  std::vector<const char*> config = {
      "listening_ports", ports.c_str(),
      "num_threads", threads.c_str(),
      "enable_keep_alive", "no",
      "request_timeout_ms", "10000",
      "enable_directory_listing", "no",
      "additional_header",
      "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
      "Content-Security-Policy: default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
  };
  if (!o.assets_dir.empty()) {
    config.push_back("document_root");
    config.push_back(o.assets_dir.c_str());
  }
  config.push_back(nullptr);
  mg_callbacks callbacks{};
  // Civetweb prints its own errors to stderr only when asked; the bind failure below
  // is reported with the address instead.
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };
  mg_init_library(0);
  server->ctx_ = mg_start(&callbacks, nullptr, config.data());
  if (server->ctx_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot serve the console on ", ports,
                                               ": the address is in use or not an address of this machine"));
  }
  mg_server_port bound[4];
  const int n = mg_get_server_ports(server->ctx_, 4, bound);
  if (n != 1 || bound[0].port <= 0) {
    server->Stop();
    return absl::InternalError(absl::StrCat("cannot serve the console on ", ports, ": civetweb reports ", n, " ports"));
  }
  common::HostPort http = tls ? common::HostPort{} : o.listen;
  if (tls) {
    http.host = "127.0.0.1";
    http.kind = common::HostPort::Kind::kIPv4;
  }
  http.port = static_cast<std::uint16_t>(bound[0].port);
  server->address_ = http;
  mg_set_request_handler(server->ctx_, "/api", &HttpServer::HandleApi, server.get());
  if (tls) {
    absl::StatusOr<std::unique_ptr<TlsFront>> front =
        TlsFront::Start(o.listen, o.tls_cert, o.tls_key, http, o.threads, o.tls_reload_interval);
    if (!front.ok()) {
      server->Stop();
      return front.status();
    }
    server->front_ = *std::move(front);
    server->address_ = server->front_->address();
  }
  return server;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Stop() {
  stopping_ = true;
  if (front_ != nullptr) front_->Stop();
  if (ctx_ != nullptr) mg_stop(ctx_);
  ctx_ = nullptr;
}

int HttpServer::HandleApi(mg_connection* conn, void* self) { return static_cast<HttpServer*>(self)->ServeApi(conn); }

int HttpServer::ServeApi(mg_connection* conn) {
  const absl::Time started = absl::Now();
  const mg_request_info* info = mg_get_request_info(conn);
  std::string route_name = "unmatched";
  auto answer = [&](const HttpReply& reply) {
    Send(conn, reply);
    metrics_.Request(route_name, reply.status, absl::Now() - started);
    return reply.status;
  };
  const char* raw_path = info->local_uri != nullptr ? info->local_uri : "";
  absl::StatusOr<Route> route = MatchRoute(info->request_method, raw_path);
  if (!route.ok()) {
    return answer(ErrorReply(route.status().code() == absl::StatusCode::kNotFound ? 404 : 405,
                             route.status().message()));
  }
  route_name = route->name;
  if (route->mutates) {
    if (options_.read_only) return answer(ErrorReply(403, "the console is read-only (--read-only): no action is allowed"));
    if (!HasHeader(info, "X-Cohort-Console")) {
      return answer(ErrorReply(403, "actions need the X-Cohort-Console header (sent by the console's own page)"));
    }
  }

  absl::StatusOr<std::string> token = BearerToken(info);
  if (!token.ok()) return answer(ErrorReply(400, token.status().message()));

  HttpRequest request;
  request.token = *std::move(token);
  request.method = info->request_method;
  request.path = raw_path;
  const char* query = info->query_string != nullptr ? info->query_string : "";
  if (std::strlen(query) > kMaxQueryBytes) {
    return answer(ErrorReply(400, absl::StrCat("the query string is over ", kMaxQueryBytes, " bytes")));
  }
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    request.query[Decode(kv.first)] = Decode(kv.second);
  }
  if (info->content_length > static_cast<long long>(kMaxBodyBytes)) {
    return answer(ErrorReply(413, absl::StrCat("the request body is over ", kMaxBodyBytes, " bytes")));
  }
  char buffer[1024];
  while (true) {
    const int n = mg_read(conn, buffer, sizeof buffer);
    if (n <= 0) break;
    request.body.append(buffer, static_cast<std::size_t>(n));
    if (request.body.size() > kMaxBodyBytes) {
      return answer(ErrorReply(413, absl::StrCat("the request body is over ", kMaxBodyBytes, " bytes")));
    }
  }

  if (route->kind == RouteKind::kEvents) {
    std::string job_id;
    if (auto it = request.query.find("job"); it != request.query.end() && !it->second.empty()) {
      if (absl::Status s = CheckJobId(it->second); !s.ok()) return answer(ErrorReply(400, s.message()));
      job_id = it->second;
    }
    StreamView view = StreamView::kAllEvents;
    if (auto it = request.query.find("view"); it != request.query.end() && !it->second.empty()) {
      if (it->second != "counts" && it->second != "events") {
        return answer(ErrorReply(400, "view must be \"events\" or \"counts\""));
      }
      if (it->second == "counts" && !job_id.empty()) return answer(ErrorReply(400, "view=counts goes without job"));
      if (it->second == "counts") view = StreamView::kCounts;
    }
    HttpReply may_read = bridge_.Run([this, token = request.token]() -> runtime::Task<HttpReply> {
      return api_.CheckRead(token);
    });
    if (may_read.status != 200) return answer(may_read);
    metrics_.Request(route_name, 200, absl::Now() - started);
    return ServeEvents(conn, job_id, view, request.token);
  }
  Route matched = *std::move(route);
  return answer(bridge_.Run([this, matched, request = std::move(request)]() mutable {
    return api_.Handle(std::move(matched), std::move(request));
  }));
}

int HttpServer::ServeEvents(mg_connection* conn, const std::string& job_id, StreamView view,
                            const std::string& token) {
  std::shared_ptr<EventSubscriber> subscriber = hub_.Subscribe(job_id, view);
  if (subscriber == nullptr) {
    Send(conn, ErrorReply(503, "the console is shutting down"));
    return 503;
  }
  const std::string head = absl::StrCat("HTTP/1.1 200 OK\r\n", kCommonHeaders,
                                        "Content-Type: text/event-stream\r\nX-Accel-Buffering: no\r\n\r\n",
                                        "retry: 2000\n\n");
  metrics_.streams().Increment();
  bool open = mg_write(conn, head.data(), head.size()) > 0;
  // Progress is read only for a job page, and only while the job runs: a `jobs` frame
  // (any change of the job) starts the reads again.
  bool read_progress = !job_id.empty();
  std::string last_progress;
  absl::Time last_write = absl::Now();
  std::vector<std::string> frames;
  while (open && !stopping_) {
    frames.clear();
    const EventSubscriber::Wake wake = subscriber->Take(read_progress ? kProgressEvery : kKeepAliveEvery, frames);
    if (wake == EventSubscriber::Wake::kClosed) break;
    for (const std::string& frame : frames) {
      if (!job_id.empty()) read_progress = true;
      if (absl::StartsWith(frame, "event: reset")) metrics_.stream_resets().Increment();
      open = open && mg_write(conn, frame.data(), frame.size()) > 0;
    }
    if (read_progress && open) {
      HttpReply progress = bridge_.Run([this, job_id, token] { return api_.Progress(job_id, token); });
      if (progress.status != 200) {
        read_progress = false;
      } else if (progress.body != last_progress) {
        last_progress = progress.body;
        const std::string frame = SseFrame("progress", progress.body);
        open = mg_write(conn, frame.data(), frame.size()) > 0;
        last_write = absl::Now();
      }
    }
    if (!frames.empty()) last_write = absl::Now();
    if (open && absl::Now() - last_write >= kKeepAliveEvery) {
      open = mg_write(conn, ": keep-alive\n\n", 14) > 0;
      last_write = absl::Now();
    }
  }
  hub_.Unsubscribe(subscriber);
  metrics_.streams().Decrement();
  return 200;
}

}  // namespace cohort::console
