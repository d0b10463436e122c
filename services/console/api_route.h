#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cohort::console {

// What an API path asks for, matched without touching the loop or the broker.
enum class RouteKind {
  kConfig,         // GET  /api/config
  kWhoami,         // GET  /api/whoami   (what the caller's credential may do)
  kQueues,         // GET  /api/queues
  kExecutors,      // GET  /api/executors
  kJobs,           // GET  /api/jobs?queue=&state=&limit=&before=
  kJob,            // GET  /api/jobs/{id}
  kJobBytes,       // GET  /api/jobs/{id}/payload | /result   (download)
  kCancelJob,      // POST /api/jobs/{id}/cancel
  kRetryJob,       // POST /api/jobs/{id}/retry
  kDeleteJob,      // POST /api/jobs/{id}/delete
  kStartBulk,      // POST /api/bulk        (StartBulkOperation; dryRun counts only)
  kBulk,           // GET  /api/bulk/{id}
  kQueueAction,    // POST /api/queues/{name}/pause | /resume
  kQueueLimits,    // POST /api/queues/{name}/limits
  kSchedules,      // GET  /api/schedules
  kScheduleAction, // POST /api/schedules/{id}/pause | /resume | /trigger
  kEvents,         // GET  /api/events[?job=ID]   (Server-Sent Events)
};

struct Route {
  RouteKind kind;
  // The route template, the `route` label of the console's metrics ("jobs/{id}").
  std::string name;
  // The {id} or {name} part, checked (job id, queue or schedule name); else empty.
  std::string target;
  // The last segment of action routes ("pause", "payload", ...); else empty.
  std::string action;
  // Whether the route changes anything (refused in read-only mode).
  bool mutates = false;
};

// Matches `method` and `path` (decoded, with the leading "/api/") against the API.
// Errors carry the HTTP status to answer, as an absl code:
//   NOT_FOUND          no such route, or a malformed id or name in it ("404")
//   FAILED_PRECONDITION the route exists but not for this method ("405")
// and a bounded message.
absl::StatusOr<Route> MatchRoute(absl::string_view method, absl::string_view path);

}  // namespace cohort::console
