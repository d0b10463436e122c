#include "services/console/console_api.h"

#include <chrono>
#include <vector>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/rpc/unary_client.h"
#include "services/console/api_input.h"
#include "services/console/json.h"

namespace cohort::console {
namespace {

using cohort::v1::Broker;
using cohort::v1::Scheduler;

// The broker's page tokens are short; anything longer is not one of them.
constexpr std::size_t kMaxCursorBytes = 512;
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

void ConsoleApi::Prepare(grpc::ClientContext& ctx, const std::string& token) const {
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(options_.call_timeout));
  if (!token.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token));
}

template <typename Response, typename AsyncStub, typename Request>
runtime::Task<grpc::Status> ConsoleApi::Probe(AsyncStub* stub,
                                              void (AsyncStub::*method)(grpc::ClientContext*, const Request*,
                                                                        Response*, std::function<void(grpc::Status)>),
                                              Request req, std::string token) const {
  Response resp;
  grpc::ClientContext ctx;
  Prepare(ctx, token);
  co_return co_await rpc::Call(stub, method, &ctx, req, &resp);
}

std::string WhoamiJson(const Permissions& may, bool signed_in, bool read_only) {
  const auto flag = [](bool b) { return b ? "true" : "false"; };
  std::vector<std::string> scopes;
  if (may.read) scopes.push_back("\"read\"");
  if (may.cancel) scopes.push_back("\"cancel\"");
  if (may.queues || may.schedules) scopes.push_back("\"admin\"");
  const bool act = !read_only;
  return absl::StrCat("{\"signedIn\":", flag(signed_in), ",\"readOnly\":", flag(read_only), ",\"scopes\":[",
                      absl::StrJoin(scopes, ","), "],\"may\":{\"read\":", flag(may.read),
                      ",\"cancel\":", flag(act && may.cancel), ",\"retry\":", flag(act && may.retry),
                      ",\"delete\":", flag(act && may.remove), ",\"bulk\":", flag(act && may.bulk),
                      ",\"queues\":", flag(act && may.queues), ",\"schedules\":", flag(act && may.schedules), "}}");
}

runtime::Task<HttpReply> ConsoleApi::Handle(Route route, HttpRequest request) {
  if (route.mutates && options_.read_only) {
    co_return ErrorReply(403, "the console is read-only (--read-only): no action is allowed");
  }
  const std::string& token = request.token;
  switch (route.kind) {
    case RouteKind::kConfig:
      co_return Json(absl::StrCat("{\"readOnly\":", options_.read_only ? "true" : "false",
                                  ",\"tls\":", options_.tls ? "true" : "false",
                                  ",\"broker\":", JsonString(options_.broker_address),
                                  ",\"scheduler\":", JsonString(options_.scheduler_address), "}"));
    case RouteKind::kWhoami:
      co_return co_await Whoami(token);
    case RouteKind::kQueues:
      co_return co_await Queues(token);
    case RouteKind::kExecutors:
      co_return co_await Executors(token);
    case RouteKind::kJobs:
      co_return co_await Jobs(request);
    case RouteKind::kJob:
      co_return co_await Job(route.target, token);
    case RouteKind::kJobBytes:
      co_return co_await JobBytes(route.target, route.action, token);
    case RouteKind::kCancelJob:
    case RouteKind::kRetryJob:
    case RouteKind::kDeleteJob:
      co_return co_await JobAction(route.target, route.action, token);
    case RouteKind::kStartBulk:
      co_return co_await StartBulk(request);
    case RouteKind::kBulk:
      co_return co_await Bulk(route.target, token);
    case RouteKind::kQueueAction:
      co_return co_await QueueAction(route.target, route.action, token);
    case RouteKind::kQueueLimits:
      co_return co_await QueueLimits(route.target, request);
    case RouteKind::kSchedules:
      co_return co_await Schedules(token);
    case RouteKind::kScheduleAction:
      co_return co_await ScheduleAction(route.target, route.action, token);
    case RouteKind::kEvents:
      break;  // served by the HTTP layer as a stream
  }
  co_return ErrorReply(404, "no such API");
}

namespace {

// An id no job has (ids start with their creation time), well formed.
constexpr char kNoSuchJob[] = "000000000000000000000000";

// Whether a probe's status means the authorizer let the call through to its handler.
bool Allowed(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return false;
    default:
      return true;
  }
}

}  // namespace

runtime::Task<absl::StatusOr<Permissions>> ConsoleApi::Probe(std::string token) {
  const std::shared_ptr<CallerStub> caller = callers_.For(token);  // held across the calls
  Permissions may;
  {
    cohort::v1::GetJobRequest req;
    req.set_job_id(kNoSuchJob);
    cohort::v1::GetJobResponse resp;
    grpc::ClientContext ctx;
    Prepare(ctx, token);
    grpc::Status s = co_await rpc::Call(caller->broker->async(), &Broker::Stub::async::GetJob, &ctx, req, &resp);
    if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED) co_return absl::UnauthenticatedError(s.error_message());
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE || s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      co_return absl::UnavailableError(absl::StrCat("the broker is unreachable: ", s.error_message()));
    }
    may.read = Allowed(s);
  }
  cohort::v1::CancelJobRequest cancel;
  cancel.set_job_id(kNoSuchJob);
  may.cancel = Allowed(co_await Probe<cohort::v1::CancelJobResponse>(caller->broker->async(),
                                                                     &Broker::Stub::async::CancelJob, cancel, token));
  cohort::v1::RetryJobRequest retry;
  retry.set_job_id(kNoSuchJob);
  may.retry = Allowed(
      co_await Probe<cohort::v1::RetryJobResponse>(caller->broker->async(), &Broker::Stub::async::RetryJob, retry,
                                                   token));
  cohort::v1::DeleteJobRequest remove;
  remove.set_job_id(kNoSuchJob);
  may.remove = Allowed(
      co_await Probe<cohort::v1::DeleteJobResponse>(caller->broker->async(), &Broker::Stub::async::DeleteJob, remove,
                                                    token));
  cohort::v1::StartBulkOperationRequest bulk;  // no action: INVALID_ARGUMENT once authorized
  bulk.set_dry_run(true);
  may.bulk = Allowed(co_await Probe<cohort::v1::StartBulkOperationResponse>(
      caller->broker->async(), &Broker::Stub::async::StartBulkOperation, bulk, token));
  // No queue name, no schedule id: INVALID_ARGUMENT once authorized.
  may.queues = Allowed(co_await Probe<cohort::v1::PauseQueueResponse>(
      caller->broker->async(), &Broker::Stub::async::PauseQueue, cohort::v1::PauseQueueRequest(), token));
  if (callers_.has_scheduler()) {
    may.schedules = Allowed(co_await Probe<cohort::v1::PauseScheduleResponse>(
        caller->scheduler->async(), &Scheduler::Stub::async::PauseSchedule, cohort::v1::PauseScheduleRequest(), token));
  }
  co_return may;
}

runtime::Task<HttpReply> ConsoleApi::CheckRead(std::string token) {
  const std::shared_ptr<CallerStub> caller = callers_.For(token);  // held across the calls
  cohort::v1::GetJobRequest req;
  req.set_job_id(kNoSuchJob);
  cohort::v1::GetJobResponse resp;
  grpc::ClientContext ctx;
  Prepare(ctx, token);
  grpc::Status s = co_await rpc::Call(caller->broker->async(), &Broker::Stub::async::GetJob, &ctx, req, &resp);
  if (!Allowed(s)) co_return FromGrpc(s);
  co_return Json("{}");
}

runtime::Task<HttpReply> ConsoleApi::Whoami(const std::string& token) {
  absl::StatusOr<Permissions> may = co_await Probe(token);
  if (!may.ok()) {
    co_return ErrorReply(may.status().code() == absl::StatusCode::kUnauthenticated ? 401 : 503,
                         may.status().message());
  }
  co_return Json(WhoamiJson(*may, !token.empty(), options_.read_only));
}

runtime::Task<HttpReply> ConsoleApi::Queues(const std::string& token) {
  const std::shared_ptr<CallerStub> caller = callers_.For(token);  // held across the calls
  cohort::v1::ListQueuesRequest req;
  cohort::v1::ListQueuesResponse resp;
  grpc::ClientContext ctx;
  Prepare(ctx, token);
  grpc::Status s = co_await rpc::Call(caller->broker->async(), &Broker::Stub::async::ListQueues, &ctx, req, &resp);
  if (!s.ok()) co_return FromGrpc(s);
  co_return Json(ProtoJson(resp));
}

runtime::Task<HttpReply> ConsoleApi::Executors(const std::string& token) {
  const std::shared_ptr<CallerStub> caller = callers_.For(token);  // held across the calls
  cohort::v1::ListExecutorsRequest req;
  cohort::v1::ListExecutorsResponse resp;
  grpc::ClientContext ctx;
  Prepare(ctx, token);
  grpc::Status s = co_await rpc::Call(caller->broker->async(), &Broker::Stub::async::ListExecutors, &ctx, req, &resp);
  if (!s.ok()) co_return FromGrpc(s);
  co_return Json(ProtoJson(resp));
}

runtime::Task<HttpReply> ConsoleApi::Jobs(const HttpRequest& request) {
  const std::shared_ptr<CallerStub> caller = callers_.For(request.token);  // held across the calls
  absl::StatusOr<cohort::v1::JobFilter> filter = ParseJobFilter(request.query);
  if (!filter.ok()) co_return ErrorReply(400, filter.status().message());
  absl::StatusOr<std::int64_t> limit = ParseIntParam(request.query, "limit", 1, 200, 50);
  if (!limit.ok()) co_return ErrorReply(400, limit.status().message());
  cohort::v1::ListJobsRequest list;
  *list.mutable_filter() = *std::move(filter);
  list.set_newest_first(true);
  list.set_page_size(static_cast<std::int32_t>(*limit));
  if (auto it = request.query.find("cursor"); it != request.query.end() && !it->second.empty()) {
    if (it->second.size() > kMaxCursorBytes) {
      co_return ErrorReply(400, absl::StrCat("cursor is invalid: at most ", kMaxCursorBytes, " bytes"));
    }
    list.set_page_token(it->second);
  }
  cohort::v1::ListJobsResponse page;
  grpc::ClientContext ctx;
  Prepare(ctx, request.token);
  grpc::Status s = co_await rpc::Call(caller->broker->async(), &Broker::Stub::async::ListJobs, &ctx, list, &page);
  if (!s.ok()) co_return FromGrpc(s);
  std::string body = "{\"jobs\":[";
  for (int i = 0; i < page.jobs_size(); ++i) absl::StrAppend(&body, i == 0 ? "" : ",", ProtoJson(page.jobs(i)));
  absl::StrAppend(&body, "],\"sequence\":", page.sequence());
  if (!page.next_page_token().empty()) absl::StrAppend(&body, ",\"nextCursor\":", JsonString(page.next_page_token()));
  body += "}";
  co_return Json(std::move(body));
}

runtime::Task<HttpReply> ConsoleApi::Job(const std::string& id, const std::string& token) {
  const std::shared_ptr<CallerStub> caller = callers_.For(token);  // held across the calls
  cohort::v1::GetJobRequest req;
  req.set_job_id(id);
  cohort::v1::GetJobResponse resp;
  grpc::ClientContext ctx;
  Prepare(ctx, token);
  grpc::Status s = co_await rpc::Call(caller->broker->async(), &Broker::Stub::async::GetJob, &ctx, req, &resp);
  if (!s.ok()) co_return FromGrpc(s);
  cohort::v1::Job& job = *resp.mutable_job();
  const std::string payload = BytesPreviewJson(job.spec().payload());
  const std::string result = job.has_result() ? BytesPreviewJson(job.result()) : "null";
  job.mutable_spec()->clear_payload();
  if (job.has_result()) job.clear_result();
  co_return Json(absl::StrCat("{\"job\":", ProtoJson(job), ",\"payload\":", payload, ",\"result\":", result, "}"));
}

runtime::Task<HttpReply> ConsoleApi::Progress(std::string id, std::string token) {
  const std::shared_ptr<CallerStub> caller = callers_.For(token);  // held across the calls
  cohort::v1::GetJobRequest req;
  req.set_job_id(id);
  cohort::v1::GetJobResponse resp;
  grpc::ClientContext ctx;
  Prepare(ctx, token);
  grpc::Status s = co_await rpc::Call(caller->broker->async(), &Broker::Stub::async::GetJob, &ctx, req, &resp);
  if (!s.ok()) co_return FromGrpc(s);
  HttpReply reply;
  if (resp.job().state() != cohort::v1::JOB_STATE_RUNNING) {
    reply.status = 204;
    co_return reply;
  }
  reply.body = absl::StrCat("{\"jobId\":", JsonString(id), ",\"progress\":", ProtoJson(resp.job().progress()), "}");
  co_return reply;
}

runtime::Task<HttpReply> ConsoleApi::JobBytes(const std::string& id, const std::string& which,
                                              const std::string& token) {
  const std::shared_ptr<CallerStub> caller = callers_.For(token);  // held across the calls
  cohort::v1::GetJobRequest req;
  req.set_job_id(id);
  cohort::v1::GetJobResponse resp;
  grpc::ClientContext ctx;
  Prepare(ctx, token);
  grpc::Status s = co_await rpc::Call(caller->broker->async(), &Broker::Stub::async::GetJob, &ctx, req, &resp);
  if (!s.ok()) co_return FromGrpc(s);
  if (which == "result" && !resp.job().has_result()) co_return ErrorReply(404, "the job has no result");
  HttpReply reply;
  reply.content_type = "application/octet-stream";
  reply.body = which == "result" ? resp.job().result() : resp.job().spec().payload();
  reply.disposition = absl::StrCat("attachment; filename=\"", id, ".", which, "\"");
  co_return reply;
}

runtime::Task<HttpReply> ConsoleApi::JobAction(const std::string& id, const std::string& action,
                                               const std::string& token) {
  const std::shared_ptr<CallerStub> caller = callers_.For(token);  // held across the calls
  grpc::ClientContext ctx;
  Prepare(ctx, token);
  if (action == "cancel") {
    cohort::v1::CancelJobRequest req;
    req.set_job_id(id);
    cohort::v1::CancelJobResponse resp;
    grpc::Status s = co_await rpc::Call(caller->broker->async(), &Broker::Stub::async::CancelJob, &ctx, req, &resp);
    co_return s.ok() ? Json(ProtoJson(resp)) : FromGrpc(s);
  }
  if (action == "retry") {
    cohort::v1::RetryJobRequest req;
    req.set_job_id(id);
    cohort::v1::RetryJobResponse resp;
    grpc::Status s = co_await rpc::Call(caller->broker->async(), &Broker::Stub::async::RetryJob, &ctx, req, &resp);
    co_return s.ok() ? Json(ProtoJson(resp)) : FromGrpc(s);
  }
  cohort::v1::DeleteJobRequest req;
  req.set_job_id(id);
  cohort::v1::DeleteJobResponse resp;
  grpc::Status s = co_await rpc::Call(caller->broker->async(), &Broker::Stub::async::DeleteJob, &ctx, req, &resp);
  co_return s.ok() ? Json(ProtoJson(resp)) : FromGrpc(s);
}

runtime::Task<HttpReply> ConsoleApi::StartBulk(const HttpRequest& request) {
  const std::shared_ptr<CallerStub> caller = callers_.For(request.token);  // held across the calls
  absl::StatusOr<cohort::v1::StartBulkOperationRequest> req = ParseBulkRequest(request.body);
  if (!req.ok()) co_return ErrorReply(400, req.status().message());
  cohort::v1::StartBulkOperationResponse resp;
  grpc::ClientContext ctx;
  Prepare(ctx, request.token);
  grpc::Status s =
      co_await rpc::Call(caller->broker->async(), &Broker::Stub::async::StartBulkOperation, &ctx, *req, &resp);
  if (!s.ok()) co_return FromGrpc(s);
  co_return Json(ProtoJson(resp));
}

runtime::Task<HttpReply> ConsoleApi::Bulk(const std::string& id, const std::string& token) {
  const std::shared_ptr<CallerStub> caller = callers_.For(token);  // held across the calls
  cohort::v1::GetBulkOperationRequest req;
  req.set_id(id);
  cohort::v1::GetBulkOperationResponse resp;
  grpc::ClientContext ctx;
  Prepare(ctx, token);
  grpc::Status s =
      co_await rpc::Call(caller->broker->async(), &Broker::Stub::async::GetBulkOperation, &ctx, req, &resp);
  if (!s.ok()) co_return FromGrpc(s);
  co_return Json(ProtoJson(resp));
}

runtime::Task<HttpReply> ConsoleApi::QueueAction(const std::string& queue, const std::string& action,
                                                 const std::string& token) {
  const std::shared_ptr<CallerStub> caller = callers_.For(token);  // held across the calls
  grpc::ClientContext ctx;
  Prepare(ctx, token);
  grpc::Status s;
  if (action == "pause") {
    cohort::v1::PauseQueueRequest req;
    req.set_queue(queue);
    cohort::v1::PauseQueueResponse resp;
    s = co_await rpc::Call(caller->broker->async(), &Broker::Stub::async::PauseQueue, &ctx, req, &resp);
  } else {
    cohort::v1::ResumeQueueRequest req;
    req.set_queue(queue);
    cohort::v1::ResumeQueueResponse resp;
    s = co_await rpc::Call(caller->broker->async(), &Broker::Stub::async::ResumeQueue, &ctx, req, &resp);
  }
  if (!s.ok()) co_return FromGrpc(s);
  co_return Json("{}");
}

runtime::Task<HttpReply> ConsoleApi::QueueLimits(const std::string& queue, const HttpRequest& request) {
  const std::shared_ptr<CallerStub> caller = callers_.For(request.token);  // held across the calls
  absl::StatusOr<cohort::v1::QueueLimits> limits = ParseLimits(request.body);
  if (!limits.ok()) co_return ErrorReply(400, limits.status().message());
  cohort::v1::SetQueueLimitsRequest req;
  req.set_queue(queue);
  *req.mutable_limits() = *limits;
  cohort::v1::SetQueueLimitsResponse resp;
  grpc::ClientContext ctx;
  Prepare(ctx, request.token);
  grpc::Status s = co_await rpc::Call(caller->broker->async(), &Broker::Stub::async::SetQueueLimits, &ctx, req, &resp);
  if (!s.ok()) co_return FromGrpc(s);
  co_return Json(ProtoJson(resp));
}

runtime::Task<HttpReply> ConsoleApi::Schedules(const std::string& token) {
  const std::shared_ptr<CallerStub> caller = callers_.For(token);  // held across the calls
  if (!callers_.has_scheduler()) co_return ErrorReply(503, "no scheduler: start cohort-console with --scheduler");
  cohort::v1::ListSchedulesRequest req;
  req.set_page_size(100);
  std::string body = "{\"schedules\":[";
  int count = 0;
  while (count < kMaxSchedules) {
    cohort::v1::ListSchedulesResponse resp;
    grpc::ClientContext ctx;
    Prepare(ctx, token);
    grpc::Status s =
        co_await rpc::Call(caller->scheduler->async(), &Scheduler::Stub::async::ListSchedules, &ctx, req, &resp);
    if (!s.ok()) co_return FromGrpc(s);
    for (const cohort::v1::Schedule& schedule : resp.schedules()) {
      absl::StrAppend(&body, count++ == 0 ? "" : ",", ProtoJson(schedule));
    }
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  co_return Json(absl::StrCat(body, "]}"));
}

runtime::Task<HttpReply> ConsoleApi::ScheduleAction(const std::string& id, const std::string& action,
                                                    const std::string& token) {
  const std::shared_ptr<CallerStub> caller = callers_.For(token);  // held across the calls
  if (!callers_.has_scheduler()) co_return ErrorReply(503, "no scheduler: start cohort-console with --scheduler");
  grpc::ClientContext ctx;
  Prepare(ctx, token);
  grpc::Status s;
  std::string body = "{}";
  if (action == "pause") {
    cohort::v1::PauseScheduleRequest req;
    req.set_schedule_id(id);
    cohort::v1::PauseScheduleResponse resp;
    s = co_await rpc::Call(caller->scheduler->async(), &Scheduler::Stub::async::PauseSchedule, &ctx, req, &resp);
  } else if (action == "resume") {
    cohort::v1::ResumeScheduleRequest req;
    req.set_schedule_id(id);
    cohort::v1::ResumeScheduleResponse resp;
    s = co_await rpc::Call(caller->scheduler->async(), &Scheduler::Stub::async::ResumeSchedule, &ctx, req, &resp);
  } else {
    cohort::v1::TriggerScheduleRequest req;
    req.set_schedule_id(id);
    cohort::v1::TriggerScheduleResponse resp;
    s = co_await rpc::Call(caller->scheduler->async(), &Scheduler::Stub::async::TriggerSchedule, &ctx, req, &resp);
    if (s.ok()) body = ProtoJson(resp);
  }
  if (!s.ok()) co_return FromGrpc(s);
  co_return Json(std::move(body));
}

}  // namespace cohort::console
