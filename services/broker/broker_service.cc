#include "services/broker/broker_service.h"

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/auth/principal.h"
#include "libs/common/log.h"
#include "libs/common/quote.h"
#include "libs/common/wire_time.h"
#include "libs/rpc/bidi_server.h"
#include "libs/rpc/message_sequence.h"
#include "libs/rpc/observed_unary.h"
#include "libs/rpc/server_stream.h"
#include "libs/rpc/status.h"
#include "libs/rpc/unary_server.h"
#include "services/broker/job_waits.h"

namespace cohort::broker {
namespace {

using cohort::v1::BrokerMessage;
using cohort::v1::ExecutorMessage;
using runtime::Task;

const log::Logger kLog("broker");

// When the gRPC deadline of `ctx` falls on the loop's clock; nullopt when there is none.
std::optional<runtime::TimePoint> GrpcDeadlineOf(const grpc::ServerContextBase& ctx, runtime::TimePoint now) {
  const auto deadline = ctx.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return std::nullopt;
  const auto left = std::chrono::duration_cast<runtime::Duration>(deadline - std::chrono::system_clock::now());
  return common::AddSaturated(now, left);
}

// The ids of a request, for the waits.
std::vector<std::string> IdsOf(const google::protobuf::RepeatedPtrField<std::string>& ids) {
  return std::vector<std::string>(ids.begin(), ids.end());
}

// Wait's return_when; INVALID_ARGUMENT for a value outside the enum.
absl::StatusOr<runtime::ReturnWhen> ReturnWhenOf(int value) {
  switch (value) {
    case cohort::v1::RETURN_WHEN_FIRST_COMPLETED:
      return runtime::ReturnWhen::kFirstCompleted;
    case cohort::v1::RETURN_WHEN_FIRST_EXCEPTION:
      return runtime::ReturnWhen::kFirstException;
    case cohort::v1::RETURN_WHEN_UNSPECIFIED:  // asyncio's default
    case cohort::v1::RETURN_WHEN_ALL_COMPLETED:
      return runtime::ReturnWhen::kAllCompleted;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "return_when ", value, " is unknown: use FIRST_COMPLETED, FIRST_EXCEPTION or ALL_COMPLETED"));
  }
}

// An executor's Connect stream as the engine sees it: messages queue on the loop and
// a writer task moves them into the stream. The queue is bounded by what the engine
// sends: one Assign per credit (credits <= capacity) plus cancels for leased jobs.
class SessionChannel final : public ExecutorChannel {
 public:
  explicit SessionChannel(rpc::ServerBidiStream<ExecutorMessage, BrokerMessage>& stream) : stream_(stream) {}
  void Send(BrokerMessage message) override { queue_.PutNowait(std::move(message)).IgnoreError(); }
  void End(absl::Status status) override {
    ended_ = std::move(status);
    stream_.EndReads();  // the handler sees it at its next read
  }
  runtime::Queue<BrokerMessage>& queue() { return queue_; }
  // The status the engine ended the stream with, if it did.
  const std::optional<absl::Status>& ended() const { return ended_; }

 private:
  rpc::ServerBidiStream<ExecutorMessage, BrokerMessage>& stream_;
  runtime::Queue<BrokerMessage> queue_;  // unbounded: bounded by credits, see above
  std::optional<absl::Status> ended_;
};

}  // namespace

template <typename Body>
grpc::ServerUnaryReactor* BrokerService::Unary(const char* method, Body body) {
  return rpc::ServeObservedUnary(
      loop_, method, recorder_, std::move(body));
}

void BrokerService::Record(const rpc::UnaryOutcome& outcome) {
  metrics_.Rpc(std::string(outcome.method), std::string(rpc::CodeName(outcome.code)),
               std::chrono::duration<double>(outcome.elapsed).count());
}

absl::StatusOr<std::optional<runtime::TimePoint>> BrokerService::DeadlineOf(
    const google::protobuf::Duration* timeout) const {
  if (timeout == nullptr) return std::optional<runtime::TimePoint>();
  absl::StatusOr<absl::Duration> d = common::DurationFromWire(*timeout, "timeout");
  if (!d.ok()) return d.status();
  return std::optional<runtime::TimePoint>(common::AddSaturated(loop_.Now(), *d));
}

absl::Status BrokerService::CheckIds(const google::protobuf::RepeatedPtrField<std::string>& ids) const {
  if (ids.empty()) return absl::InvalidArgumentError("job_ids is empty: name at least one job");
  if (static_cast<std::size_t>(ids.size()) > limits_.max_ids) {
    return absl::InvalidArgumentError(
        absl::StrCat("job_ids has ", ids.size(), " entries: the limit per call is ", limits_.max_ids));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* BrokerService::Submit(grpc::CallbackServerContext* ctx, const cohort::v1::SubmitRequest* req,
                                                cohort::v1::SubmitResponse* resp) {
  return Unary("Submit", [this, ctx, req, resp]() -> Task<grpc::Status> {
    // The authorizer admitted `submit`; the credential may be limited to some queues.
    const std::shared_ptr<const grpc::AuthContext> auth = ctx->auth_context();
    for (int i = 0; i < req->jobs_size(); ++i) {
      if (!auth::MayUseQueue(auth.get(), req->jobs(i).queue())) {
        metrics_.AuthDenied("/cohort.v1.Broker/Submit", "queue_not_allowed");
        co_return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                               absl::StrCat("jobs[", i, "].queue ", common::QuoteBounded(req->jobs(i).queue()),
                                            " is not among the queues this credential may submit to"));
      }
    }
    // Moved out, not copied. The request is this call's alone: gRPC's callback API
    // constructs it non-const (in the call's message holder) and hands it over const,
    // keeps it until OnDone, after Finish, and reads it no more; nor does this handler
    // read its jobs after this.
    const bool validate_only = req->validate_only();
    absl::StatusOr<std::vector<std::string>> ids =
        co_await engine_.Submit(std::move(*const_cast<cohort::v1::SubmitRequest*>(req)->mutable_jobs()), validate_only,
                                auth::CallerPrincipal(auth.get()));
    if (!ids.ok()) co_return rpc::ToGrpc(ids.status());
    for (std::string& id : *ids) resp->add_job_ids(std::move(id));
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* BrokerService::GetJob(grpc::CallbackServerContext*, const cohort::v1::GetJobRequest* req,
                                                cohort::v1::GetJobResponse* resp) {
  return Unary("GetJob", [this, req, resp]() -> Task<grpc::Status> {
    absl::StatusOr<cohort::v1::Job> job = co_await engine_.ReadJob(req->job_id());
    if (!job.ok()) co_return rpc::ToGrpc(job.status());
    resp->set_unserved(engine_.Unserved(*job));
    *resp->mutable_job() = std::move(*job);
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* BrokerService::ListJobs(grpc::CallbackServerContext*, const cohort::v1::ListJobsRequest* req,
                                                  cohort::v1::ListJobsResponse* resp) {
  return Unary("ListJobs", [this, req, resp]() -> Task<grpc::Status> {
    absl::StatusOr<cohort::v1::ListJobsResponse> page = co_await engine_.ListJobs(*req);
    if (!page.ok()) co_return rpc::ToGrpc(page.status());
    *resp = std::move(*page);
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* BrokerService::CancelJob(grpc::CallbackServerContext*, const cohort::v1::CancelJobRequest* req,
                                                   cohort::v1::CancelJobResponse* resp) {
  return Unary("CancelJob", [this, req, resp]() -> Task<grpc::Status> {
    absl::StatusOr<cohort::v1::CancelJobResponse> r = co_await engine_.CancelJob(req->job_id());
    if (!r.ok()) co_return rpc::ToGrpc(r.status());
    *resp = std::move(*r);
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* BrokerService::RetryJob(grpc::CallbackServerContext*, const cohort::v1::RetryJobRequest* req,
                                                  cohort::v1::RetryJobResponse* resp) {
  return Unary("RetryJob", [this, req, resp]() -> Task<grpc::Status> {
    absl::StatusOr<cohort::v1::RetryJobResponse> r = co_await engine_.RetryJob(req->job_id(), req->expected_attempt());
    if (!r.ok()) co_return rpc::ToGrpc(r.status());
    *resp = std::move(*r);
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* BrokerService::DeleteJob(grpc::CallbackServerContext*, const cohort::v1::DeleteJobRequest* req,
                                                   cohort::v1::DeleteJobResponse* resp) {
  return Unary("DeleteJob", [this, req, resp]() -> Task<grpc::Status> {
    absl::StatusOr<cohort::v1::DeleteJobResponse> r = co_await engine_.DeleteJob(req->job_id());
    if (!r.ok()) co_return rpc::ToGrpc(r.status());
    *resp = std::move(*r);
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* BrokerService::StartBulkOperation(grpc::CallbackServerContext* ctx,
                                                            const cohort::v1::StartBulkOperationRequest* req,
                                                            cohort::v1::StartBulkOperationResponse* resp) {
  return Unary("StartBulkOperation", [this, ctx, req, resp]() -> Task<grpc::Status> {
    absl::StatusOr<cohort::v1::BulkOperation> op = co_await engine_.bulk_operations().Start(
        *req, auth::CallerPrincipal(ctx->auth_context().get()));
    if (!op.ok()) co_return rpc::ToGrpc(op.status());
    *resp->mutable_operation() = std::move(*op);
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* BrokerService::GetBulkOperation(grpc::CallbackServerContext*,
                                                          const cohort::v1::GetBulkOperationRequest* req,
                                                          cohort::v1::GetBulkOperationResponse* resp) {
  return Unary("GetBulkOperation", [this, req, resp]() -> Task<grpc::Status> {
    absl::StatusOr<cohort::v1::BulkOperation> op = engine_.bulk_operations().Get(req->id());
    if (!op.ok()) co_return rpc::ToGrpc(op.status());
    *resp->mutable_operation() = std::move(*op);
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* BrokerService::ListBulkOperations(grpc::CallbackServerContext*,
                                                            const cohort::v1::ListBulkOperationsRequest*,
                                                            cohort::v1::ListBulkOperationsResponse* resp) {
  return Unary("ListBulkOperations", [this, resp]() -> Task<grpc::Status> {
    *resp = engine_.bulk_operations().List();
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* BrokerService::Gather(grpc::CallbackServerContext*, const cohort::v1::GatherRequest* req,
                                                cohort::v1::GatherResponse* resp) {
  return Unary("Gather", [this, req, resp]() -> Task<grpc::Status> {
    if (absl::Status s = CheckIds(req->job_ids()); !s.ok()) co_return rpc::ToGrpc(s);
    auto deadline = DeadlineOf(req->has_timeout() ? &req->timeout() : nullptr);
    if (!deadline.ok()) co_return rpc::ToGrpc(deadline.status());
    absl::StatusOr<std::vector<cohort::v1::JobOutcome>> outcomes =
        co_await waits_.Gather(IdsOf(req->job_ids()), req->return_exceptions(), *deadline);
    if (!outcomes.ok()) co_return rpc::ToGrpc(outcomes.status());
    for (cohort::v1::JobOutcome& o : *outcomes) *resp->add_outcomes() = std::move(o);
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* BrokerService::Wait(grpc::CallbackServerContext*, const cohort::v1::WaitRequest* req,
                                              cohort::v1::WaitResponse* resp) {
  return Unary("Wait", [this, req, resp]() -> Task<grpc::Status> {
    if (absl::Status s = CheckIds(req->job_ids()); !s.ok()) co_return rpc::ToGrpc(s);
    absl::StatusOr<runtime::ReturnWhen> when = ReturnWhenOf(req->return_when());
    if (!when.ok()) co_return rpc::ToGrpc(when.status());
    auto deadline = DeadlineOf(req->has_timeout() ? &req->timeout() : nullptr);
    if (!deadline.ok()) co_return rpc::ToGrpc(deadline.status());
    absl::StatusOr<JobWaits::WaitResult> result = co_await waits_.Wait(IdsOf(req->job_ids()), *when, *deadline);
    if (!result.ok()) co_return rpc::ToGrpc(result.status());
    for (cohort::v1::JobOutcome& o : result->done) *resp->add_done() = std::move(o);
    for (std::string& id : result->pending) resp->add_pending(std::move(id));
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* BrokerService::WaitFor(grpc::CallbackServerContext* ctx, const cohort::v1::WaitForRequest* req,
                                                 cohort::v1::WaitForResponse* resp) {
  return Unary("WaitFor", [this, ctx, req, resp]() -> Task<grpc::Status> {
    auto timeout = DeadlineOf(req->has_timeout() ? &req->timeout() : nullptr);
    if (!timeout.ok()) co_return rpc::ToGrpc(timeout.status());
    JobWaits::WaitForRequest request{.job_id = req->job_id(),
                                     .timeout = *timeout,
                                     .call_deadline = GrpcDeadlineOf(*ctx, loop_.Now()),
                                     .shield = req->shield(),
                                     .cancel_on_disconnect = req->cancel_on_disconnect(),
                                     .server_stopping = [this] { return stopping_.load(); }};
    absl::StatusOr<std::string> result = co_await waits_.WaitFor(std::move(request));
    if (!result.ok()) co_return rpc::ToGrpc(result.status());
    resp->set_result(std::move(*result));
    co_return grpc::Status::OK;
  });
}

grpc::ServerWriteReactor<cohort::v1::AsCompletedResponse>* BrokerService::AsCompleted(
    grpc::CallbackServerContext* ctx, const cohort::v1::AsCompletedRequest* req) {
  return rpc::ServeStream<cohort::v1::AsCompletedResponse>(
      loop_, ctx, [this, req](rpc::ServerWriteStream<cohort::v1::AsCompletedResponse>& stream) -> Task<grpc::Status> {
        return rpc::Observed(loop_, "AsCompleted", &recorder_, [](BrokerService* self, const cohort::v1::AsCompletedRequest* req,
                                          rpc::ServerWriteStream<cohort::v1::AsCompletedResponse>* stream)
                                           -> Task<grpc::Status> {
          if (absl::Status s = self->CheckIds(req->job_ids()); !s.ok()) co_return rpc::ToGrpc(s);
          auto deadline = self->DeadlineOf(req->has_timeout() ? &req->timeout() : nullptr);
          if (!deadline.ok()) co_return rpc::ToGrpc(deadline.status());
          AsCompletedJobs jobs(self->engine_, self->metrics_);
          if (absl::Status s = co_await jobs.Start(IdsOf(req->job_ids()), *deadline); !s.ok()) co_return rpc::ToGrpc(s);
          while (true) {
            absl::StatusOr<std::optional<cohort::v1::JobOutcome>> next = co_await jobs.Next();
            if (!next.ok()) co_return rpc::ToGrpc(next.status());
            if (!next->has_value()) co_return grpc::Status::OK;
            cohort::v1::AsCompletedResponse msg;
            *msg.mutable_outcome() = std::move(**next);
            const bool written = co_await stream->Write(std::move(msg));
            if (!written) co_return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
          }
        }(this, req, &stream));
      });
}

// Messages a Watch stream queues behind the one being written: Write() waits while
// this many are queued, so a client that stops reading stops the reads too, and the
// stream holds at most kWatchOutbox + 2 messages (EventLog::Cursor bounds each one;
// every event's job fits in a message, as Submit caps the spec).
constexpr std::size_t kWatchOutbox = 1;

grpc::ServerWriteReactor<cohort::v1::WatchResponse>* BrokerService::Watch(grpc::CallbackServerContext* ctx,
                                                                          const cohort::v1::WatchRequest* req) {
  return rpc::ServeStream<cohort::v1::WatchResponse>(
      loop_, ctx,
      [this, req](rpc::ServerWriteStream<cohort::v1::WatchResponse>& stream) -> Task<grpc::Status> {
        if (absl::Status s = engine_.events().CheckStart(req->after_sequence()); !s.ok()) co_return rpc::ToGrpc(s);
        EventLog::Cursor cursor(engine_.events(), req->after_sequence());
        while (true) {
          absl::StatusOr<cohort::v1::WatchResponse> batch = co_await cursor.Next();
          if (!batch.ok()) co_return rpc::ToGrpc(batch.status());
          const bool written = co_await stream.Write(std::move(*batch));
          if (!written) co_return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
        }
      },
      kWatchOutbox);
}

grpc::ServerUnaryReactor* BrokerService::ListQueues(grpc::CallbackServerContext*, const cohort::v1::ListQueuesRequest*,
                                                    cohort::v1::ListQueuesResponse* resp) {
  return Unary("ListQueues", [this, resp]() -> Task<grpc::Status> {
    *resp = engine_.ListQueues();
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* BrokerService::CreateQueue(grpc::CallbackServerContext*,
                                                     const cohort::v1::CreateQueueRequest* req,
                                                     cohort::v1::CreateQueueResponse* resp) {
  return Unary("CreateQueue", [this, req, resp]() -> Task<grpc::Status> {
    absl::StatusOr<cohort::v1::CreateQueueResponse> r = co_await engine_.CreateQueue(*req);
    if (!r.ok()) co_return rpc::ToGrpc(r.status());
    *resp = std::move(*r);
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* BrokerService::DeleteQueue(grpc::CallbackServerContext*,
                                                     const cohort::v1::DeleteQueueRequest* req,
                                                     cohort::v1::DeleteQueueResponse* resp) {
  return Unary("DeleteQueue", [this, req, resp]() -> Task<grpc::Status> {
    absl::StatusOr<cohort::v1::DeleteQueueResponse> r = co_await engine_.DeleteQueue(req->queue(), req->delete_jobs());
    if (!r.ok()) co_return rpc::ToGrpc(r.status());
    *resp = std::move(*r);
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* BrokerService::PauseQueue(grpc::CallbackServerContext*, const cohort::v1::PauseQueueRequest* req,
                                                    cohort::v1::PauseQueueResponse*) {
  return Unary("PauseQueue", [this, req]() -> Task<grpc::Status> {
    co_return rpc::ToGrpc(co_await engine_.PauseQueue(req->queue(), true));
  });
}

grpc::ServerUnaryReactor* BrokerService::ResumeQueue(grpc::CallbackServerContext*,
                                                     const cohort::v1::ResumeQueueRequest* req,
                                                     cohort::v1::ResumeQueueResponse*) {
  return Unary("ResumeQueue", [this, req]() -> Task<grpc::Status> {
    co_return rpc::ToGrpc(co_await engine_.PauseQueue(req->queue(), false));
  });
}

grpc::ServerUnaryReactor* BrokerService::SetQueueLimits(grpc::CallbackServerContext*,
                                                        const cohort::v1::SetQueueLimitsRequest* req,
                                                        cohort::v1::SetQueueLimitsResponse* resp) {
  return Unary("SetQueueLimits", [this, req, resp]() -> Task<grpc::Status> {
    absl::StatusOr<cohort::v1::QueueLimits> limits = co_await engine_.SetQueueLimits(req->queue(), req->limits());
    if (!limits.ok()) co_return rpc::ToGrpc(limits.status());
    *resp->mutable_limits() = *limits;
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* BrokerService::ListExecutors(grpc::CallbackServerContext*,
                                                       const cohort::v1::ListExecutorsRequest*,
                                                       cohort::v1::ListExecutorsResponse* resp) {
  return Unary("ListExecutors", [this, resp]() -> Task<grpc::Status> {
    *resp = engine_.ListExecutors();
    co_return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* BrokerService::ReleaseJobs(grpc::CallbackServerContext*,
                                                     const cohort::v1::ReleaseJobsRequest* req,
                                                     cohort::v1::ReleaseJobsResponse* resp) {
  return Unary("ReleaseJobs", [this, req, resp]() -> Task<grpc::Status> {
    absl::StatusOr<std::vector<std::string>> changed = co_await engine_.ReleaseJobs(*req);
    if (!changed.ok()) co_return rpc::ToGrpc(changed.status());
    for (std::string& id : *changed) resp->add_changed_job_ids(std::move(id));
    co_return grpc::Status::OK;
  });
}

grpc::ServerBidiReactor<ExecutorMessage, BrokerMessage>* BrokerService::Connect(grpc::CallbackServerContext* ctx) {
  return rpc::ServeBidi<ExecutorMessage, BrokerMessage>(
      loop_, ctx, [this, ctx](rpc::ServerBidiStream<ExecutorMessage, BrokerMessage>& stream) -> Task<grpc::Status> {
        std::optional<ExecutorMessage> first = co_await stream.Read();
        // gRPC reports a first message that does not parse as the end of the stream.
        if (!first) {
          co_return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "no hello: the stream ended or its first message did not parse");
        }
        if (!first->has_hello()) {
          co_return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "the first message must be hello");
        }
        // The authorizer admitted the credential for `execute`; the id must be one it may use.
        if (!auth::MayActAsExecutor(ctx->auth_context().get(), first->hello().executor_id())) {
          metrics_.AuthDenied("/cohort.v1.Broker/Connect", "executor_not_allowed");
          co_return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                 "this credential may not connect as executor_id " +
                                     common::QuoteBounded(first->hello().executor_id()) +
                                     " (it does not match the principal's executor pattern)");
        }
        // Both ways numbered (executor.proto, seq): whole messages lost on a live
        // connection end the stream instead of leaving credit and leases disagreeing.
        rpc::MessageSequence sequence;
        if (absl::Status first_seq = sequence.Receive(first->seq()); !first_seq.ok()) co_return rpc::ToGrpc(first_seq);
        SessionChannel channel(stream);
        absl::StatusOr<std::uint64_t> session =
            engine_.Attach(first->hello(), &channel, auth::CallerPrincipal(ctx->auth_context().get()));
        if (!session.ok()) {
          if (absl::IsPermissionDenied(session.status())) {
            metrics_.AuthDenied("/cohort.v1.Broker/Connect", "executor_not_allowed");
          }
          co_return rpc::ToGrpc(session.status());
        }
        ++executor_streams_;
        executors_gone_.Clear();
        grpc::Status status = grpc::Status::OK;
        // The writer moves the engine's messages into the stream; it belongs to
        // `helpers`, which cancels and joins it once the reads end.
        auto writer = [](SessionChannel* ch, rpc::ServerBidiStream<ExecutorMessage, BrokerMessage>* s,
                         rpc::MessageSequence* seq) -> Task<void> {
          while (true) {
            BrokerMessage m = co_await ch->queue().Get();
            m.set_seq(seq->Next());
            bool written = co_await s->Write(std::move(m));
            if (!written) co_return;
          }
        };
        runtime::TaskGroup helpers;
        runtime::TaskHandle<void> writing = helpers.Spawn(writer(&channel, &stream, &sequence));
        // Read() is not a cancellation point, but a client that goes away ends it, and
        // so does the engine ending the stream (channel.End: a newer stream replaced it).
        while (!channel.ended()) {
          std::optional<ExecutorMessage> m = co_await stream.Read();
          if (!m || channel.ended()) break;
          absl::Status s = sequence.Receive(m->seq());
          if (!s.ok()) {
            kLog.Warn("executor stream lost messages, ending it (the executor reconnects)",
                      {{"executor_id", first->hello().executor_id()}, {"error", std::string(s.message())}});
          } else {
            s = engine_.OnExecutorMessage(*session, *m);
          }
          if (!s.ok()) {
            status = rpc::ToGrpc(s);
            break;
          }
        }
        if (channel.ended()) status = rpc::ToGrpc(*channel.ended());
        // A half-close (Read ended, call not cancelled) is a drain; anything else broke.
        engine_.Detach(*session, /*graceful=*/status.ok() && !stream.context()->IsCancelled());
        if (--executor_streams_ == 0) executors_gone_.Set();
        writing.Cancel();
        co_await helpers.Join();  // a cancelled writer is no failure: Join raises nothing
        co_return status;
      });
}

runtime::Task<void> BrokerService::DrainExecutors(runtime::Duration grace) {
  engine_.DrainExecutors();
  if (executor_streams_ > 0) co_await executors_gone_.WaitUntil(common::AddSaturated(loop_.Now(), grace));
}

}  // namespace cohort::broker
