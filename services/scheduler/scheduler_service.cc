#include "services/scheduler/scheduler_service.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "libs/auth/principal.h"
#include "libs/common/quote.h"
#include "libs/rpc/status.h"
#include "libs/rpc/observed_unary.h"

namespace cohort::scheduler {
namespace {

using runtime::Task;

// Fills `out` from a StatusOr<Schedule> and returns the call's status.
grpc::Status Reply(const absl::StatusOr<cohort::v1::Schedule>& schedule, cohort::v1::Schedule* out) {
  if (!schedule.ok()) return rpc::ToGrpc(schedule.status());
  *out = *schedule;
  return grpc::Status::OK;
}

}  // namespace

grpc::Status SchedulerService::CheckQueue(const grpc::CallbackServerContext* ctx, const char* method,
                                          const std::string& queue, absl::string_view what) {
  if (auth::MayUseQueue(ctx->auth_context().get(), queue)) return grpc::Status::OK;
  metrics_.AuthDenied(absl::StrCat("/cohort.v1.Scheduler/", method), "queue_not_allowed");
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      absl::StrCat(what, common::QuoteBounded(queue),
                                   " is not among the queues this credential may submit to"));
}

grpc::Status SchedulerService::CheckScheduleQueue(const grpc::CallbackServerContext* ctx, const char* method,
                                                  const std::string& id) {
  absl::StatusOr<cohort::v1::Schedule> existing = schedules_.Get(id);
  if (!existing.ok()) return grpc::Status::OK;  // the call itself reports NOT_FOUND
  return CheckQueue(ctx, method, existing->spec().job().queue(), "the schedule's queue ");
}

template <typename Body>
grpc::ServerUnaryReactor* SchedulerService::Unary(const char* method, Body body) {
  return rpc::ServeObservedUnary(
      loop_, method, [this](const rpc::UnaryOutcome& o) { metrics_.Rpc(o); }, std::move(body));
}

grpc::ServerUnaryReactor* SchedulerService::CreateSchedule(grpc::CallbackServerContext* ctx,
                                                           const cohort::v1::CreateScheduleRequest* req,
                                                           cohort::v1::CreateScheduleResponse* resp) {
  return Unary("CreateSchedule", [this, ctx, req, resp]() -> Task<grpc::Status> {
    grpc::Status denied = CheckQueue(ctx, "CreateSchedule", req->spec().job().queue(), "spec.job.queue ");
    if (!denied.ok()) co_return denied;
    absl::StatusOr<cohort::v1::Schedule> s = co_await schedules_.Create(req->schedule_id(), req->spec());
    co_return Reply(s, resp->mutable_schedule());
  });
}

grpc::ServerUnaryReactor* SchedulerService::GetSchedule(grpc::CallbackServerContext*,
                                                        const cohort::v1::GetScheduleRequest* req,
                                                        cohort::v1::GetScheduleResponse* resp) {
  return Unary("GetSchedule", [this, req, resp]() -> Task<grpc::Status> {
    co_return Reply(schedules_.Get(req->schedule_id()), resp->mutable_schedule());
  });
}

grpc::ServerUnaryReactor* SchedulerService::ListSchedules(grpc::CallbackServerContext*,
                                                          const cohort::v1::ListSchedulesRequest* req,
                                                          cohort::v1::ListSchedulesResponse* resp) {
  return Unary("ListSchedules", [this, req, resp]() -> Task<grpc::Status> {
    absl::StatusOr<cohort::v1::ListSchedulesResponse> page = schedules_.List(req->page_size(), req->page_token());
    if (!page.ok()) co_return rpc::ToGrpc(page.status());
    *resp = *std::move(page);
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* SchedulerService::UpdateSchedule(grpc::CallbackServerContext* ctx,
                                                           const cohort::v1::UpdateScheduleRequest* req,
                                                           cohort::v1::UpdateScheduleResponse* resp) {
  return Unary("UpdateSchedule", [this, ctx, req, resp]() -> Task<grpc::Status> {
    if (grpc::Status denied = CheckScheduleQueue(ctx, "UpdateSchedule", req->schedule_id()); !denied.ok()) co_return denied;
    grpc::Status denied = CheckQueue(ctx, "UpdateSchedule", req->spec().job().queue(), "spec.job.queue ");
    if (!denied.ok()) co_return denied;
    absl::StatusOr<cohort::v1::Schedule> s = co_await schedules_.Update(req->schedule_id(), req->spec());
    co_return Reply(s, resp->mutable_schedule());
  });
}

grpc::ServerUnaryReactor* SchedulerService::DeleteSchedule(grpc::CallbackServerContext* ctx,
                                                           const cohort::v1::DeleteScheduleRequest* req,
                                                           cohort::v1::DeleteScheduleResponse*) {
  return Unary("DeleteSchedule", [this, ctx, req]() -> Task<grpc::Status> {
    if (grpc::Status denied = CheckScheduleQueue(ctx, "DeleteSchedule", req->schedule_id()); !denied.ok()) co_return denied;
    absl::Status s = co_await schedules_.Delete(req->schedule_id());
    co_return rpc::ToGrpc(s);
  });
}

grpc::ServerUnaryReactor* SchedulerService::PauseSchedule(grpc::CallbackServerContext* ctx,
                                                          const cohort::v1::PauseScheduleRequest* req,
                                                          cohort::v1::PauseScheduleResponse* resp) {
  return Unary("PauseSchedule", [this, ctx, req, resp]() -> Task<grpc::Status> {
    if (grpc::Status denied = CheckScheduleQueue(ctx, "PauseSchedule", req->schedule_id()); !denied.ok()) co_return denied;
    absl::StatusOr<cohort::v1::Schedule> s = co_await schedules_.SetPaused(req->schedule_id(), true);
    co_return Reply(s, resp->mutable_schedule());
  });
}

grpc::ServerUnaryReactor* SchedulerService::ResumeSchedule(grpc::CallbackServerContext* ctx,
                                                           const cohort::v1::ResumeScheduleRequest* req,
                                                           cohort::v1::ResumeScheduleResponse* resp) {
  return Unary("ResumeSchedule", [this, ctx, req, resp]() -> Task<grpc::Status> {
    if (grpc::Status denied = CheckScheduleQueue(ctx, "ResumeSchedule", req->schedule_id()); !denied.ok()) co_return denied;
    absl::StatusOr<cohort::v1::Schedule> s = co_await schedules_.SetPaused(req->schedule_id(), false);
    co_return Reply(s, resp->mutable_schedule());
  });
}

grpc::ServerUnaryReactor* SchedulerService::TriggerSchedule(grpc::CallbackServerContext* ctx,
                                                            const cohort::v1::TriggerScheduleRequest* req,
                                                            cohort::v1::TriggerScheduleResponse* resp) {
  return Unary("TriggerSchedule", [this, ctx, req, resp]() -> Task<grpc::Status> {
    if (grpc::Status denied = CheckScheduleQueue(ctx, "TriggerSchedule", req->schedule_id()); !denied.ok()) co_return denied;
    absl::StatusOr<std::string> id = co_await schedules_.TriggerNow(req->schedule_id());
    if (!id.ok()) co_return rpc::ToGrpc(id.status());
    resp->set_job_id(*id);
    co_return grpc::Status::OK;
  });
}

}  // namespace cohort::scheduler
