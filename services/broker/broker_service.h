#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>

#include "grpcpp/server_context.h"
#include "libs/rpc/unary_outcome.h"
#include "libs/runtime/runtime.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "services/broker/broker_engine.h"
#include "services/broker/broker_metrics.h"
#include "services/broker/job_waits.h"

namespace cohort::broker {

// Caps of the waiting RPCs.
struct WaitLimits {
  std::size_t max_ids = 10'000;  // ids per Gather/Wait/AsCompleted
};

// The gRPC face of the broker: each call becomes a coroutine on the broker's loop
// that validates the request, calls the engine (the waits: JobWaits), replies, and
// records cohort_broker_rpcs_total{method,code} and its latency. Client cancellation, the gRPC
// deadline or the server's shutdown cancels the coroutine (and any wait in it); only
// WaitFor then cancels a job, as broker.proto says (never on shutdown: call
// BeginShutdown() before shutting the gRPC server down). Status messages quote at most
// a bounded prefix of anything the caller sent (common::QuoteBounded).
class BrokerService final : public cohort::v1::Broker::CallbackService {
 public:
  BrokerService(runtime::EventLoop& loop, BrokerEngine& engine, BrokerMetrics& metrics, WaitLimits limits)
      : loop_(loop), engine_(engine), metrics_(metrics), waits_(engine, metrics), limits_(limits) {}

  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* ctx, const cohort::v1::SubmitRequest* req,
                                   cohort::v1::SubmitResponse* resp) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* ctx, const cohort::v1::GetJobRequest* req,
                                   cohort::v1::GetJobResponse* resp) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx, const cohort::v1::ListJobsRequest* req,
                                     cohort::v1::ListJobsResponse* resp) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* ctx, const cohort::v1::CancelJobRequest* req,
                                      cohort::v1::CancelJobResponse* resp) override;
  grpc::ServerUnaryReactor* RetryJob(grpc::CallbackServerContext* ctx, const cohort::v1::RetryJobRequest* req,
                                     cohort::v1::RetryJobResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteJob(grpc::CallbackServerContext* ctx, const cohort::v1::DeleteJobRequest* req,
                                      cohort::v1::DeleteJobResponse* resp) override;
  grpc::ServerUnaryReactor* StartBulkOperation(grpc::CallbackServerContext* ctx,
                                               const cohort::v1::StartBulkOperationRequest* req,
                                               cohort::v1::StartBulkOperationResponse* resp) override;
  grpc::ServerUnaryReactor* GetBulkOperation(grpc::CallbackServerContext* ctx,
                                             const cohort::v1::GetBulkOperationRequest* req,
                                             cohort::v1::GetBulkOperationResponse* resp) override;
  grpc::ServerUnaryReactor* ListBulkOperations(grpc::CallbackServerContext* ctx,
                                               const cohort::v1::ListBulkOperationsRequest* req,
                                               cohort::v1::ListBulkOperationsResponse* resp) override;
  grpc::ServerUnaryReactor* Gather(grpc::CallbackServerContext* ctx, const cohort::v1::GatherRequest* req,
                                   cohort::v1::GatherResponse* resp) override;
  grpc::ServerUnaryReactor* Wait(grpc::CallbackServerContext* ctx, const cohort::v1::WaitRequest* req,
                                 cohort::v1::WaitResponse* resp) override;
  grpc::ServerUnaryReactor* WaitFor(grpc::CallbackServerContext* ctx, const cohort::v1::WaitForRequest* req,
                                    cohort::v1::WaitForResponse* resp) override;
  grpc::ServerWriteReactor<cohort::v1::AsCompletedResponse>* AsCompleted(
      grpc::CallbackServerContext* ctx, const cohort::v1::AsCompletedRequest* req) override;
  grpc::ServerWriteReactor<cohort::v1::WatchResponse>* Watch(grpc::CallbackServerContext* ctx,
                                                             const cohort::v1::WatchRequest* req) override;
  grpc::ServerUnaryReactor* ListQueues(grpc::CallbackServerContext* ctx, const cohort::v1::ListQueuesRequest* req,
                                       cohort::v1::ListQueuesResponse* resp) override;
  grpc::ServerUnaryReactor* CreateQueue(grpc::CallbackServerContext* ctx, const cohort::v1::CreateQueueRequest* req,
                                        cohort::v1::CreateQueueResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteQueue(grpc::CallbackServerContext* ctx, const cohort::v1::DeleteQueueRequest* req,
                                        cohort::v1::DeleteQueueResponse* resp) override;
  grpc::ServerUnaryReactor* PauseQueue(grpc::CallbackServerContext* ctx, const cohort::v1::PauseQueueRequest* req,
                                       cohort::v1::PauseQueueResponse* resp) override;
  grpc::ServerUnaryReactor* ResumeQueue(grpc::CallbackServerContext* ctx, const cohort::v1::ResumeQueueRequest* req,
                                        cohort::v1::ResumeQueueResponse* resp) override;
  grpc::ServerUnaryReactor* SetQueueLimits(grpc::CallbackServerContext* ctx,
                                           const cohort::v1::SetQueueLimitsRequest* req,
                                           cohort::v1::SetQueueLimitsResponse* resp) override;
  grpc::ServerUnaryReactor* ListExecutors(grpc::CallbackServerContext* ctx,
                                          const cohort::v1::ListExecutorsRequest* req,
                                          cohort::v1::ListExecutorsResponse* resp) override;
  grpc::ServerUnaryReactor* ReleaseJobs(grpc::CallbackServerContext* ctx, const cohort::v1::ReleaseJobsRequest* req,
                                        cohort::v1::ReleaseJobsResponse* resp) override;
  grpc::ServerBidiReactor<cohort::v1::ExecutorMessage, cohort::v1::BrokerMessage>* Connect(
      grpc::CallbackServerContext* ctx) override;

  // From now on, a call that is cancelled is taken to be cancelled by the server's
  // shutdown: it cancels no job. Any thread; call it before grpc::Server::Shutdown.
  void BeginShutdown() { stopping_.store(true); }
  // Sends Drain on every executor stream (and on any that connects later: no Assign
  // follows) and waits until every stream has closed or `grace` has passed, so that
  // the Drain is written before the server's shutdown cancels the streams. Loop
  // thread; after BeginShutdown, before grpc::Server::Shutdown.
  runtime::Task<void> DrainExecutors(runtime::Duration grace);

 private:
  // Records a call's outcome (rpc::Observed: its code, CANCELLED or INTERNAL) in
  // cohort_broker_rpcs_total and rpc_seconds.
  struct RpcRecorder {
    BrokerService* service;
    void operator()(const rpc::UnaryOutcome& outcome) const { service->Record(outcome); }
  };

  // Serves a unary call with body (a callable returning Task<grpc::Status>), recording
  // metrics through rpc::ServeObservedUnary.
  template <typename Body>
  grpc::ServerUnaryReactor* Unary(const char* method, Body body);
  void Record(const rpc::UnaryOutcome& outcome);
  // The wait deadline of a request: its timeout (if set) on the loop's clock, saturated.
  // INVALID_ARGUMENT for a malformed or negative timeout, or one over 100 years
  // (common::DurationFromWire).
  absl::StatusOr<std::optional<runtime::TimePoint>> DeadlineOf(const google::protobuf::Duration* timeout) const;
  absl::Status CheckIds(const google::protobuf::RepeatedPtrField<std::string>& ids) const;

  runtime::EventLoop& loop_;
  BrokerEngine& engine_;
  BrokerMetrics& metrics_;
  JobWaits waits_;
  const WaitLimits limits_;
  std::atomic<bool> stopping_{false};
  int executor_streams_ = 0;       // Connect streams attached to the engine now (loop thread)
  runtime::Event executors_gone_;  // set whenever executor_streams_ drops to 0
  RpcRecorder recorder_{this};     // for the server streams' rpc::Observed
};

}  // namespace cohort::broker
