#pragma once

#include <functional>
#include <string>

#include "libs/runtime/runtime.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "protos/cohort/v1/scheduler.grpc.pb.h"
#include "services/console/api_route.h"
#include "services/console/caller_stubs.h"
#include "services/console/http_types.h"

namespace cohort::console {

struct ConsoleApiOptions {
  bool read_only = false;
  // Whether the console serves HTTPS (shown on the sign-in page).
  bool tls = false;
  // Shown on the page (GET /api/config); never dialled from here.
  std::string broker_address;
  std::string scheduler_address;
  // Longest any one gRPC call may take.
  absl::Duration call_timeout = absl::Seconds(10);
};

// What a credential may do, as the services answered probes made with it (see
// ConsoleApi::Whoami). `false` for an RPC the service does not implement.
struct Permissions {
  bool read = false;       // GetJob, ListJobs, Watch, ListQueues, ...   (scope read)
  bool cancel = false;     // CancelJob                                  (scope cancel)
  bool retry = false;      // RetryJob
  bool remove = false;     // DeleteJob
  bool bulk = false;       // StartBulkOperation
  bool queues = false;     // PauseQueue, ResumeQueue, SetQueueLimits     (scope admin)
  bool schedules = false;  // PauseSchedule, ResumeSchedule, TriggerSchedule (scope admin)
};

// The console's JSON API over the broker's and scheduler's gRPC APIs, on the console's
// loop: each request validates, makes one or a few calls, and answers JSON. Nothing is
// cached: every answer is what the services said just then.
//
// gRPC errors map to HTTP: INVALID_ARGUMENT 400, NOT_FOUND 404, ALREADY_EXISTS and
// FAILED_PRECONDITION 409, RESOURCE_EXHAUSTED 429, DEADLINE_EXCEEDED 504, UNAVAILABLE
// 503, anything else 502; the body is {"error": "<the service's message, bounded>"}.
//
// Every call is made with the browser's credential: the request's bearer token goes on
// the call as `authorization: Bearer <token>` (none when the browser sent none), so
// the broker and the scheduler authorize the signed-in principal, not the console.
// The stubs must therefore be on channels that carry no token of their own (TLS and a
// client certificate are fine: see main.cc).
//
// Read-only mode is enforced by the HTTP layer before a mutating route gets here (see
// HttpServer); Handle() refuses one too, so that no caller can bypass it.
//
// Loop-only. The stubs must outlive every Handle() task; `scheduler` may be null (no
// --scheduler): schedule routes then answer 503.
class ConsoleApi {
 public:
  ConsoleApi(CallerStubs& callers, ConsoleApiOptions options) : callers_(callers), options_(std::move(options)) {}

  const ConsoleApiOptions& options() const { return options_; }

  runtime::Task<HttpReply> Handle(Route route, HttpRequest request);

  // A running job's progress, {"progress": {...}} with status 200; status 204 (no
  // body) once the job is not RUNNING. The broker keeps progress but records no event
  // for it, so a live job page asks for it while the job runs (see HttpServer).
  runtime::Task<HttpReply> Progress(std::string id, std::string token);

  // What `token` may do: one probe per action, each a call the service refuses as
  // invalid or unknown (an empty queue name, an all-zero job id, a dry run with no
  // action) so that nothing can change, whose status says whether the authorizer let it
  // through. The services decide every real call anyway; this only lets the page hide
  // what would be refused. 401 (with the broker's message) for a token the broker does
  // not know, or none where one is required; 503 when the broker is unreachable.
  runtime::Task<absl::StatusOr<Permissions>> Probe(std::string token);

  // Whether `token` may read (one probe): 200 with an empty object, else the broker's
  // refusal as 401/403, or 503.
  runtime::Task<HttpReply> CheckRead(std::string token);

 private:
  runtime::Task<HttpReply> Whoami(const std::string& token);
  runtime::Task<HttpReply> Queues(const std::string& token);
  runtime::Task<HttpReply> Executors(const std::string& token);
  // One page of ListJobs, newest first, with the operations API's filter (see
  // ParseJobFilter); `cursor` is the previous page's nextCursor.
  runtime::Task<HttpReply> Jobs(const HttpRequest& request);
  runtime::Task<HttpReply> Job(const std::string& id, const std::string& token);
  runtime::Task<HttpReply> JobBytes(const std::string& id, const std::string& which, const std::string& token);
  runtime::Task<HttpReply> JobAction(const std::string& id, const std::string& action, const std::string& token);
  runtime::Task<HttpReply> StartBulk(const HttpRequest& request);
  runtime::Task<HttpReply> Bulk(const std::string& id, const std::string& token);
  runtime::Task<HttpReply> QueueAction(const std::string& queue, const std::string& action, const std::string& token);
  runtime::Task<HttpReply> QueueLimits(const std::string& queue, const HttpRequest& request);
  runtime::Task<HttpReply> Schedules(const std::string& token);
  runtime::Task<HttpReply> ScheduleAction(const std::string& id, const std::string& action, const std::string& token);

  // The deadline and the caller's token on one call.
  void Prepare(grpc::ClientContext& ctx, const std::string& token) const;
  // One whoami probe: `req` sent with the caller's token; the call's status.
  template <typename Response, typename AsyncStub, typename Request>
  runtime::Task<grpc::Status> Probe(AsyncStub* stub,
                                    void (AsyncStub::*method)(grpc::ClientContext*, const Request*, Response*,
                                                              std::function<void(grpc::Status)>),
                                    Request req, std::string token) const;

  CallerStubs& callers_;
  const ConsoleApiOptions options_;
};

// The HTTP status for a gRPC status code (see ConsoleApi).
int HttpStatusOf(grpc::StatusCode code);

// The JSON of GET /api/whoami: {"signedIn": bool, "readOnly": bool, "scopes": [...],
// "may": {"read": bool, "cancel": ..., "retry", "delete", "bulk", "queues",
// "schedules"}}, every action false in read-only mode. `scopes` names the scopes of
// libs/auth that the probes showed ("read", "cancel", "admin").
std::string WhoamiJson(const Permissions& may, bool signed_in, bool read_only);

}  // namespace cohort::console
