#include "libs/auth/scope_table.h"

#include <vector>

namespace cohort::auth {
namespace {

using S = Scope;

const std::vector<MethodRule>& Rules() {
  static const auto* rules = new std::vector<MethodRule>{
      {"/cohort.v1.Broker/Submit", ScopesOf({S::kSubmit})},
      {"/cohort.v1.Broker/GetJob", ScopesOf({S::kRead})},
      {"/cohort.v1.Broker/ListJobs", ScopesOf({S::kRead})},
      {"/cohort.v1.Broker/CancelJob", ScopesOf({S::kCancel})},
      // Operators' writes to jobs that exist.
      {"/cohort.v1.Broker/RetryJob", ScopesOf({S::kAdmin})},
      {"/cohort.v1.Broker/DeleteJob", ScopesOf({S::kAdmin})},
      {"/cohort.v1.Broker/StartBulkOperation", ScopesOf({S::kAdmin})},
      {"/cohort.v1.Broker/GetBulkOperation", ScopesOf({S::kRead})},
      {"/cohort.v1.Broker/ListBulkOperations", ScopesOf({S::kRead})},
      {"/cohort.v1.Broker/Gather", ScopesOf({S::kRead})},
      {"/cohort.v1.Broker/Wait", ScopesOf({S::kRead})},
      // WaitFor cancels its job when the wait times out (unless shielded).
      {"/cohort.v1.Broker/WaitFor", ScopesOf({S::kRead, S::kCancel})},
      {"/cohort.v1.Broker/AsCompleted", ScopesOf({S::kRead})},
      {"/cohort.v1.Broker/Watch", ScopesOf({S::kRead})},
      {"/cohort.v1.Broker/ListQueues", ScopesOf({S::kRead})},
      {"/cohort.v1.Broker/CreateQueue", ScopesOf({S::kAdmin})},
      {"/cohort.v1.Broker/DeleteQueue", ScopesOf({S::kAdmin})},
      {"/cohort.v1.Broker/PauseQueue", ScopesOf({S::kAdmin})},
      {"/cohort.v1.Broker/ResumeQueue", ScopesOf({S::kAdmin})},
      {"/cohort.v1.Broker/SetQueueLimits", ScopesOf({S::kAdmin})},
      {"/cohort.v1.Broker/ListExecutors", ScopesOf({S::kRead})},
      {"/cohort.v1.Broker/Connect", ScopesOf({S::kExecute})},
      {"/cohort.v1.Broker/ReleaseJobs", ScopesOf({S::kRelease})},
      // A replicated broker group's membership (replicas.proto).
      {"/cohort.v1.ReplicaAdmin/ListReplicas", ScopesOf({S::kAdmin})},
      {"/cohort.v1.ReplicaAdmin/AddReplica", ScopesOf({S::kAdmin})},
      {"/cohort.v1.ReplicaAdmin/RemoveReplica", ScopesOf({S::kAdmin})},
      {"/cohort.v1.ReplicaAdmin/TransferLeadership", ScopesOf({S::kAdmin})},
      {"/cohort.v1.Scheduler/CreateSchedule", ScopesOf({S::kAdmin})},
      {"/cohort.v1.Scheduler/GetSchedule", ScopesOf({S::kRead})},
      {"/cohort.v1.Scheduler/ListSchedules", ScopesOf({S::kRead})},
      {"/cohort.v1.Scheduler/UpdateSchedule", ScopesOf({S::kAdmin})},
      {"/cohort.v1.Scheduler/DeleteSchedule", ScopesOf({S::kAdmin})},
      {"/cohort.v1.Scheduler/PauseSchedule", ScopesOf({S::kAdmin})},
      {"/cohort.v1.Scheduler/ResumeSchedule", ScopesOf({S::kAdmin})},
      {"/cohort.v1.Scheduler/TriggerSchedule", ScopesOf({S::kAdmin})},
      {"/grpc.health.v1.Health/Check", ScopeSet()},
      {"/grpc.health.v1.Health/Watch", ScopeSet()},
      {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", ScopesOf({S::kRead})},
      {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", ScopesOf({S::kRead})},
  };
  return *rules;
}

}  // namespace

const MethodRule* FindMethodRule(absl::string_view path) {
  for (const MethodRule& rule : Rules()) {
    if (rule.path == path) return &rule;
  }
  return nullptr;
}

absl::Span<const MethodRule> AllMethodRules() { return absl::MakeConstSpan(Rules()); }

}  // namespace cohort::auth
