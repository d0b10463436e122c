#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/task.h"
#include "protos/cohort/v1/scheduler.grpc.pb.h"
#include "services/scheduler/scheduler_metrics.h"
#include "services/scheduler/schedules.h"

namespace cohort::scheduler {

// cohort.v1.Scheduler over gRPC's callback API: every call runs as a task on the
// scheduler's loop, where Schedules lives, and is counted in cohort_scheduler_rpcs_total.
class SchedulerService final : public cohort::v1::Scheduler::CallbackService {
 public:
  SchedulerService(runtime::EventLoop& loop, Schedules& schedules, SchedulerMetrics& metrics)
      : loop_(loop), schedules_(schedules), metrics_(metrics) {}

  grpc::ServerUnaryReactor* CreateSchedule(grpc::CallbackServerContext*, const cohort::v1::CreateScheduleRequest*,
                                           cohort::v1::CreateScheduleResponse*) override;
  grpc::ServerUnaryReactor* GetSchedule(grpc::CallbackServerContext*, const cohort::v1::GetScheduleRequest*,
                                        cohort::v1::GetScheduleResponse*) override;
  grpc::ServerUnaryReactor* ListSchedules(grpc::CallbackServerContext*, const cohort::v1::ListSchedulesRequest*,
                                          cohort::v1::ListSchedulesResponse*) override;
  grpc::ServerUnaryReactor* UpdateSchedule(grpc::CallbackServerContext*, const cohort::v1::UpdateScheduleRequest*,
                                           cohort::v1::UpdateScheduleResponse*) override;
  grpc::ServerUnaryReactor* DeleteSchedule(grpc::CallbackServerContext*, const cohort::v1::DeleteScheduleRequest*,
                                           cohort::v1::DeleteScheduleResponse*) override;
  grpc::ServerUnaryReactor* PauseSchedule(grpc::CallbackServerContext*, const cohort::v1::PauseScheduleRequest*,
                                          cohort::v1::PauseScheduleResponse*) override;
  grpc::ServerUnaryReactor* ResumeSchedule(grpc::CallbackServerContext*, const cohort::v1::ResumeScheduleRequest*,
                                           cohort::v1::ResumeScheduleResponse*) override;
  grpc::ServerUnaryReactor* TriggerSchedule(grpc::CallbackServerContext*, const cohort::v1::TriggerScheduleRequest*,
                                            cohort::v1::TriggerScheduleResponse*) override;

 private:
  template <typename Body>
  grpc::ServerUnaryReactor* Unary(const char* method, Body body);
  // PERMISSION_DENIED unless the caller's credential may use `queue` (counted as
  // auth_denied{method, reason="queue_not_allowed"}). A schedule's jobs are submitted
  // by the scheduler with its own credential, so a caller limited to some queues must
  // not reach the others through a schedule.
  grpc::Status CheckQueue(const grpc::CallbackServerContext* ctx, const char* method, const std::string& queue,
                          absl::string_view what);
  // CheckQueue for the queue of schedule `id` when it exists; OK otherwise (an unknown
  // id is the call's own NOT_FOUND).
  grpc::Status CheckScheduleQueue(const grpc::CallbackServerContext* ctx, const char* method, const std::string& id);

  runtime::EventLoop& loop_;
  Schedules& schedules_;
  SchedulerMetrics& metrics_;
};

}  // namespace cohort::scheduler
