#pragma once

#include <string>

#include "libs/runtime/runtime.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "protos/cohort/v1/scheduler.grpc.pb.h"
#include "services/console/api_route.h"
#include "services/console/http_types.h"

namespace cohort::console {

struct ConsoleApiOptions {
  bool read_only = false;
  // Shown on the page (GET /api/config); never dialled from here.
  std::string broker_address;
  std::string scheduler_address;
  // Longest any one gRPC call may take.
  absl::Duration call_timeout = absl::Seconds(10);
  // Most jobs GET /api/jobs reads from the broker to find the newest ones (see Jobs).
  int max_scan = 50'000;
};

// The console's JSON API over the broker's and scheduler's gRPC APIs, on the console's
// loop: each request validates, makes one or a few calls, and answers JSON. Nothing is
// cached: every answer is what the services said just then.
//
// gRPC errors map to HTTP: INVALID_ARGUMENT 400, NOT_FOUND 404, ALREADY_EXISTS and
// FAILED_PRECONDITION 409, RESOURCE_EXHAUSTED 429, DEADLINE_EXCEEDED 504, UNAVAILABLE
// 503, anything else 502; the body is {"error": "<the service's message, bounded>"}.
//
// Read-only mode is enforced by the HTTP layer before a mutating route gets here (see
// HttpServer); Handle() refuses one too, so that no caller can bypass it.
//
// Loop-only. The stubs must outlive every Handle() task; `scheduler` may be null (no
// --scheduler): schedule routes then answer 503.
class ConsoleApi {
 public:
  ConsoleApi(cohort::v1::Broker::Stub& broker, cohort::v1::Scheduler::Stub* scheduler, ConsoleApiOptions options)
      : broker_(broker), scheduler_(scheduler), options_(std::move(options)) {}

  const ConsoleApiOptions& options() const { return options_; }

  runtime::Task<HttpReply> Handle(Route route, HttpRequest request);

  // A running job's progress, {"progress": {...}} with status 200; status 204 (no
  // body) once the job is not RUNNING. The broker keeps progress but records no event
  // for it, so a live job page asks for it while the job runs (see HttpServer).
  runtime::Task<HttpReply> Progress(std::string id);

 private:
  runtime::Task<HttpReply> Queues();
  runtime::Task<HttpReply> Executors();
  // Newest first: the broker lists in id order only, so this reads up to max_scan
  // matching jobs in pages and keeps the last `limit` before `before`.
  runtime::Task<HttpReply> Jobs(const HttpRequest& request);
  runtime::Task<HttpReply> Job(const std::string& id);
  runtime::Task<HttpReply> JobBytes(const std::string& id, const std::string& which);
  runtime::Task<HttpReply> CancelJob(const std::string& id);
  runtime::Task<HttpReply> QueueAction(const std::string& queue, const std::string& action);
  runtime::Task<HttpReply> QueueLimits(const std::string& queue, const std::string& body);
  runtime::Task<HttpReply> Schedules();
  runtime::Task<HttpReply> ScheduleAction(const std::string& id, const std::string& action);

  void SetDeadline(grpc::ClientContext& ctx) const;

  cohort::v1::Broker::Stub& broker_;
  cohort::v1::Scheduler::Stub* scheduler_;
  const ConsoleApiOptions options_;
};

// The HTTP status for a gRPC status code (see ConsoleApi).
int HttpStatusOf(grpc::StatusCode code);

}  // namespace cohort::console
