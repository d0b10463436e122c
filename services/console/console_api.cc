#include "services/console/console_api.h"

#include <chrono>
#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/rpc/unary_client.h"
#include "services/console/api_input.h"
#include "services/console/json.h"

namespace cohort::console {
namespace {

using cohort::v1::Broker;
using cohort::v1::Scheduler;

constexpr int kListPage = 1000;
constexpr int kMaxSchedules = 1000;

HttpReply FromGrpc(const grpc::Status& status) {
  return ErrorReply(HttpStatusOf(status.error_code()), status.error_message());
}

HttpReply Json(std::string body) {
  HttpReply reply;
  reply.body = std::move(body);
  return reply;
}

}  // namespace

int HttpStatusOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::FAILED_PRECONDITION:
      return 409;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    default:
      return 502;
  }
}

void ConsoleApi::SetDeadline(grpc::ClientContext& ctx) const {
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(options_.call_timeout));
}

runtime::Task<HttpReply> ConsoleApi::Handle(Route route, HttpRequest request) {
  if (route.mutates && options_.read_only) {
    co_return ErrorReply(403, "the console is read-only (--read-only): no action is allowed");
  }
  switch (route.kind) {
    case RouteKind::kConfig:
      co_return Json(absl::StrCat("{\"readOnly\":", options_.read_only ? "true" : "false",
                                  ",\"broker\":", JsonString(options_.broker_address),
                                  ",\"scheduler\":", JsonString(options_.scheduler_address), "}"));
    case RouteKind::kQueues:
      co_return co_await Queues();
    case RouteKind::kExecutors:
      co_return co_await Executors();
    case RouteKind::kJobs:
      co_return co_await Jobs(request);
    case RouteKind::kJob:
      co_return co_await Job(route.target);
    case RouteKind::kJobBytes:
      co_return co_await JobBytes(route.target, route.action);
    case RouteKind::kCancelJob:
      co_return co_await CancelJob(route.target);
    case RouteKind::kQueueAction:
      co_return co_await QueueAction(route.target, route.action);
    case RouteKind::kQueueLimits:
      co_return co_await QueueLimits(route.target, request.body);
    case RouteKind::kSchedules:
      co_return co_await Schedules();
    case RouteKind::kScheduleAction:
      co_return co_await ScheduleAction(route.target, route.action);
    case RouteKind::kEvents:
      break;  // served by the HTTP layer as a stream
  }
  co_return ErrorReply(404, "no such API");
}

runtime::Task<HttpReply> ConsoleApi::Queues() {
  cohort::v1::ListQueuesRequest req;
  cohort::v1::ListQueuesResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status s = co_await rpc::Call(broker_.async(), &Broker::Stub::async::ListQueues, &ctx, req, &resp);
  if (!s.ok()) co_return FromGrpc(s);
  co_return Json(ProtoJson(resp));
}

runtime::Task<HttpReply> ConsoleApi::Executors() {
  cohort::v1::ListExecutorsRequest req;
  cohort::v1::ListExecutorsResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status s = co_await rpc::Call(broker_.async(), &Broker::Stub::async::ListExecutors, &ctx, req, &resp);
  if (!s.ok()) co_return FromGrpc(s);
  co_return Json(ProtoJson(resp));
}

runtime::Task<HttpReply> ConsoleApi::Jobs(const HttpRequest& request) {
  cohort::v1::ListJobsRequest list;
  if (auto it = request.query.find("queue"); it != request.query.end() && !it->second.empty()) {
    if (absl::Status s = CheckName("queue", it->second); !s.ok()) co_return ErrorReply(400, s.message());
    list.set_queue(it->second);
  }
  if (auto it = request.query.find("state"); it != request.query.end()) {
    absl::StatusOr<std::vector<cohort::v1::JobState>> states = ParseStates(it->second);
    if (!states.ok()) co_return ErrorReply(400, states.status().message());
    for (cohort::v1::JobState state : *states) list.add_states(state);
  }
  absl::StatusOr<std::int64_t> limit = ParseIntParam(request.query, "limit", 1, 200, 50);
  if (!limit.ok()) co_return ErrorReply(400, limit.status().message());
  std::string before;
  if (auto it = request.query.find("before"); it != request.query.end() && !it->second.empty()) {
    if (absl::Status s = CheckJobId(it->second); !s.ok()) co_return ErrorReply(400, s.message());
    before = it->second;
  }

  list.set_page_size(kListPage);
  std::deque<cohort::v1::Job> newest;  // the last `limit` matches before `before`, oldest first
  bool more = false;                   // matches older than the ones kept
  int scanned = 0;
  std::int64_t sequence = -1;
  bool complete = true;
  while (true) {
    cohort::v1::ListJobsResponse page;
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    grpc::Status s = co_await rpc::Call(broker_.async(), &Broker::Stub::async::ListJobs, &ctx, list, &page);
    if (!s.ok()) co_return FromGrpc(s);
    if (sequence < 0) sequence = page.sequence();
    bool past_before = false;
    for (cohort::v1::Job& job : *page.mutable_jobs()) {
      if (!before.empty() && job.id() >= before) {
        past_before = true;
        break;
      }
      newest.push_back(std::move(job));
      if (newest.size() > static_cast<std::size_t>(*limit)) {
        newest.pop_front();
        more = true;
      }
    }
    scanned += page.jobs_size();
    if (past_before || page.next_page_token().empty()) break;
    if (scanned >= options_.max_scan) {
      complete = false;
      break;
    }
    list.set_page_token(page.next_page_token());
  }
  std::string body = "{\"jobs\":[";
  for (auto it = newest.rbegin(); it != newest.rend(); ++it) {
    absl::StrAppend(&body, it == newest.rbegin() ? "" : ",", ProtoJson(*it));
  }
  absl::StrAppend(&body, "],\"sequence\":", sequence, ",\"scanned\":", scanned,
                  ",\"complete\":", complete ? "true" : "false");
  if (more && !newest.empty()) absl::StrAppend(&body, ",\"nextBefore\":", JsonString(newest.front().id()));
  body += "}";
  co_return Json(std::move(body));
}

runtime::Task<HttpReply> ConsoleApi::Job(const std::string& id) {
  cohort::v1::GetJobRequest req;
  req.set_job_id(id);
  cohort::v1::GetJobResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status s = co_await rpc::Call(broker_.async(), &Broker::Stub::async::GetJob, &ctx, req, &resp);
  if (!s.ok()) co_return FromGrpc(s);
  cohort::v1::Job& job = *resp.mutable_job();
  const std::string payload = BytesPreviewJson(job.spec().payload());
  const std::string result = job.has_result() ? BytesPreviewJson(job.result()) : "null";
  job.mutable_spec()->clear_payload();
  if (job.has_result()) job.clear_result();
  co_return Json(absl::StrCat("{\"job\":", ProtoJson(job), ",\"payload\":", payload, ",\"result\":", result, "}"));
}

runtime::Task<HttpReply> ConsoleApi::Progress(std::string id) {
  cohort::v1::GetJobRequest req;
  req.set_job_id(id);
  cohort::v1::GetJobResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status s = co_await rpc::Call(broker_.async(), &Broker::Stub::async::GetJob, &ctx, req, &resp);
  if (!s.ok()) co_return FromGrpc(s);
  HttpReply reply;
  if (resp.job().state() != cohort::v1::JOB_STATE_RUNNING) {
    reply.status = 204;
    co_return reply;
  }
  reply.body = absl::StrCat("{\"jobId\":", JsonString(id), ",\"progress\":", ProtoJson(resp.job().progress()), "}");
  co_return reply;
}

runtime::Task<HttpReply> ConsoleApi::JobBytes(const std::string& id, const std::string& which) {
  cohort::v1::GetJobRequest req;
  req.set_job_id(id);
  cohort::v1::GetJobResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status s = co_await rpc::Call(broker_.async(), &Broker::Stub::async::GetJob, &ctx, req, &resp);
  if (!s.ok()) co_return FromGrpc(s);
  if (which == "result" && !resp.job().has_result()) co_return ErrorReply(404, "the job has no result");
  HttpReply reply;
  reply.content_type = "application/octet-stream";
  reply.body = which == "result" ? resp.job().result() : resp.job().spec().payload();
  reply.disposition = absl::StrCat("attachment; filename=\"", id, ".", which, "\"");
  co_return reply;
}

runtime::Task<HttpReply> ConsoleApi::CancelJob(const std::string& id) {
  cohort::v1::CancelJobRequest req;
  req.set_job_id(id);
  cohort::v1::CancelJobResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status s = co_await rpc::Call(broker_.async(), &Broker::Stub::async::CancelJob, &ctx, req, &resp);
  if (!s.ok()) co_return FromGrpc(s);
  co_return Json(ProtoJson(resp));
}

runtime::Task<HttpReply> ConsoleApi::QueueAction(const std::string& queue, const std::string& action) {
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status s;
  if (action == "pause") {
    cohort::v1::PauseQueueRequest req;
    req.set_queue(queue);
    cohort::v1::PauseQueueResponse resp;
    s = co_await rpc::Call(broker_.async(), &Broker::Stub::async::PauseQueue, &ctx, req, &resp);
  } else {
    cohort::v1::ResumeQueueRequest req;
    req.set_queue(queue);
    cohort::v1::ResumeQueueResponse resp;
    s = co_await rpc::Call(broker_.async(), &Broker::Stub::async::ResumeQueue, &ctx, req, &resp);
  }
  if (!s.ok()) co_return FromGrpc(s);
  co_return Json("{}");
}

runtime::Task<HttpReply> ConsoleApi::QueueLimits(const std::string& queue, const std::string& body) {
  absl::StatusOr<cohort::v1::QueueLimits> limits = ParseLimits(body);
  if (!limits.ok()) co_return ErrorReply(400, limits.status().message());
  cohort::v1::SetQueueLimitsRequest req;
  req.set_queue(queue);
  *req.mutable_limits() = *limits;
  cohort::v1::SetQueueLimitsResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status s = co_await rpc::Call(broker_.async(), &Broker::Stub::async::SetQueueLimits, &ctx, req, &resp);
  if (!s.ok()) co_return FromGrpc(s);
  co_return Json(ProtoJson(resp));
}

runtime::Task<HttpReply> ConsoleApi::Schedules() {
  if (scheduler_ == nullptr) co_return ErrorReply(503, "no scheduler: start cohort-console with --scheduler");
  cohort::v1::ListSchedulesRequest req;
  req.set_page_size(100);
  std::string body = "{\"schedules\":[";
  int count = 0;
  while (count < kMaxSchedules) {
    cohort::v1::ListSchedulesResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    grpc::Status s = co_await rpc::Call(scheduler_->async(), &Scheduler::Stub::async::ListSchedules, &ctx, req, &resp);
    if (!s.ok()) co_return FromGrpc(s);
    for (const cohort::v1::Schedule& schedule : resp.schedules()) {
      absl::StrAppend(&body, count++ == 0 ? "" : ",", ProtoJson(schedule));
    }
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  co_return Json(absl::StrCat(body, "]}"));
}

runtime::Task<HttpReply> ConsoleApi::ScheduleAction(const std::string& id, const std::string& action) {
  if (scheduler_ == nullptr) co_return ErrorReply(503, "no scheduler: start cohort-console with --scheduler");
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status s;
  std::string body = "{}";
  if (action == "pause") {
    cohort::v1::PauseScheduleRequest req;
    req.set_schedule_id(id);
    cohort::v1::PauseScheduleResponse resp;
    s = co_await rpc::Call(scheduler_->async(), &Scheduler::Stub::async::PauseSchedule, &ctx, req, &resp);
  } else if (action == "resume") {
    cohort::v1::ResumeScheduleRequest req;
    req.set_schedule_id(id);
    cohort::v1::ResumeScheduleResponse resp;
    s = co_await rpc::Call(scheduler_->async(), &Scheduler::Stub::async::ResumeSchedule, &ctx, req, &resp);
  } else {
    cohort::v1::TriggerScheduleRequest req;
    req.set_schedule_id(id);
    cohort::v1::TriggerScheduleResponse resp;
    s = co_await rpc::Call(scheduler_->async(), &Scheduler::Stub::async::TriggerSchedule, &ctx, req, &resp);
    if (s.ok()) body = ProtoJson(resp);
  }
  if (!s.ok()) co_return FromGrpc(s);
  co_return Json(std::move(body));
}

}  // namespace cohort::console
