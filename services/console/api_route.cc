#include "services/console/api_route.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/quote.h"
#include "services/console/api_input.h"

namespace cohort::console {
namespace {

absl::Status WrongMethod(absl::string_view method, absl::string_view allowed) {
  return absl::FailedPreconditionError(
      absl::StrCat("method ", common::QuoteBounded(method, 16), " is not allowed here: use ", allowed));
}

absl::StatusOr<Route> Make(absl::string_view method, RouteKind kind, std::string name, bool mutates,
                           std::string target = "", std::string action = "") {
  const absl::string_view want = mutates ? "POST" : "GET";
  if (method != want) return WrongMethod(method, want);
  return Route{kind, std::move(name), std::move(target), std::move(action), mutates};
}

}  // namespace

absl::StatusOr<Route> MatchRoute(absl::string_view method, absl::string_view path) {
  constexpr absl::string_view kPrefix = "/api/";
  if (path.substr(0, kPrefix.size()) != kPrefix || path.size() > 256) {
    return absl::NotFoundError(absl::StrCat("no API at ", common::QuoteBounded(path)));
  }
  path.remove_prefix(kPrefix.size());
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  std::vector<absl::string_view> parts = absl::StrSplit(path, '/');
  const auto not_found = [&] { return absl::NotFoundError(absl::StrCat("no API at /api/", common::QuoteBounded(path))); };

  if (parts.size() == 1) {
    if (parts[0] == "config") return Make(method, RouteKind::kConfig, "config", false);
    if (parts[0] == "whoami") return Make(method, RouteKind::kWhoami, "whoami", false);
    if (parts[0] == "bulk") return Make(method, RouteKind::kStartBulk, "bulk", true, "", "bulk");
    if (parts[0] == "queues") return Make(method, RouteKind::kQueues, "queues", false);
    if (parts[0] == "executors") return Make(method, RouteKind::kExecutors, "executors", false);
    if (parts[0] == "jobs") return Make(method, RouteKind::kJobs, "jobs", false);
    if (parts[0] == "schedules") return Make(method, RouteKind::kSchedules, "schedules", false);
    if (parts[0] == "events") return Make(method, RouteKind::kEvents, "events", false);
    return not_found();
  }
  if (parts[0] == "jobs" && (parts.size() == 2 || parts.size() == 3)) {
    if (absl::Status s = CheckJobId(parts[1]); !s.ok()) return absl::NotFoundError(s.message());
    std::string id(parts[1]);
    if (parts.size() == 2) return Make(method, RouteKind::kJob, "jobs/{id}", false, id);
    if (parts[2] == "payload" || parts[2] == "result") {
      return Make(method, RouteKind::kJobBytes, absl::StrCat("jobs/{id}/", parts[2]), false, id,
                  std::string(parts[2]));
    }
    if (parts[2] == "cancel") return Make(method, RouteKind::kCancelJob, "jobs/{id}/cancel", true, id, "cancel");
    if (parts[2] == "retry") return Make(method, RouteKind::kRetryJob, "jobs/{id}/retry", true, id, "retry");
    if (parts[2] == "delete") return Make(method, RouteKind::kDeleteJob, "jobs/{id}/delete", true, id, "delete");
    return not_found();
  }
  if (parts[0] == "queues" && parts.size() == 3) {
    if (absl::Status s = CheckName("queue", parts[1]); !s.ok()) return absl::NotFoundError(s.message());
    std::string name(parts[1]);
    if (parts[2] == "pause" || parts[2] == "resume") {
      return Make(method, RouteKind::kQueueAction, absl::StrCat("queues/{name}/", parts[2]), true, name,
                  std::string(parts[2]));
    }
    if (parts[2] == "limits") return Make(method, RouteKind::kQueueLimits, "queues/{name}/limits", true, name, "limits");
    return not_found();
  }
  if (parts[0] == "bulk" && parts.size() == 2) {
    if (absl::Status s = CheckBulkId(parts[1]); !s.ok()) return absl::NotFoundError(s.message());
    return Make(method, RouteKind::kBulk, "bulk/{id}", false, std::string(parts[1]));
  }
  if (parts[0] == "schedules" && parts.size() == 3) {
    if (absl::Status s = CheckName("schedule", parts[1]); !s.ok()) return absl::NotFoundError(s.message());
    if (parts[2] == "pause" || parts[2] == "resume" || parts[2] == "trigger") {
      return Make(method, RouteKind::kScheduleAction, absl::StrCat("schedules/{id}/", parts[2]), true,
                  std::string(parts[1]), std::string(parts[2]));
    }
    return not_found();
  }
  return not_found();
}

}  // namespace cohort::console
