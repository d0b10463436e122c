#include "services/broker/bulk_operations.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/log.h"
#include "libs/common/proto_time.h"
#include "libs/common/quote.h"
#include "services/broker/broker_engine.h"

namespace cohort::broker {
namespace {

using cohort::v1::BulkOperation;
using common::ToProto;

const log::Logger kLog("broker");

// The action's name as metrics label it.
std::string ActionLabel(cohort::v1::BulkAction action) {
  switch (action) {
    case cohort::v1::BULK_ACTION_CANCEL: return "cancel";
    case cohort::v1::BULK_ACTION_RETRY: return "retry";
    case cohort::v1::BULK_ACTION_DELETE: return "delete";
    default: return "unspecified";
  }
}

// `op` after `step` at `now`: its counts, cursor and, at the end of its scope, DONE.
BulkOperation Advanced(BulkOperation op, const BulkStep& step, absl::Time now) {
  op.set_matched(op.matched() + step.matched);
  op.set_changed(op.changed() + step.changed);
  op.set_skipped(op.skipped() + step.skipped);
  op.set_cursor_job_id(step.cursor);
  *op.mutable_update_time() = ToProto(now);
  if (step.done) {
    op.set_state(BulkOperation::STATE_DONE);
    *op.mutable_end_time() = ToProto(now);
  }
  return op;
}

}  // namespace

BulkOperations::BulkOperations(BrokerEngine& engine, BrokerMetrics& metrics, BulkOptions options,
                               std::function<std::string()> new_id)
    : engine_(engine), metrics_(metrics), options_(options), new_id_(std::move(new_id)) {}

BulkOperations::~BulkOperations() = default;

runtime::Task<void> BulkOperations::Recover(std::vector<BulkOperation> records) {
  std::vector<BulkOperation> resumed;
  for (BulkOperation& op : records) {
    if (op.state() == BulkOperation::STATE_RUNNING) {
      op.set_resumed(op.resumed() + 1);
      resumed.push_back(op);
    }
    if (!op.request_id().empty()) by_request_id_[op.request_id()] = op.id();
    std::string id = op.id();
    records_[id] = std::move(op);
  }
  if (resumed.empty()) co_return;
  co_await engine_.PersistBulkRecords(resumed, std::vector<std::string>());
  for (const BulkOperation& op : resumed) {
    kLog.Info("resuming a bulk operation", {{"id", op.id()},
                                            {"action", ActionLabel(op.action())},
                                            {"cursor_job_id", op.cursor_job_id()},
                                            {"resumed", op.resumed()}});
    runners_.Spawn(Run(op.id()));
  }
}

runtime::Task<absl::StatusOr<BulkOperation>> BulkOperations::Start(cohort::v1::StartBulkOperationRequest request,
                                                                   std::string principal) {
  const cohort::v1::BulkAction action = request.action();
  if (action != cohort::v1::BULK_ACTION_CANCEL && action != cohort::v1::BULK_ACTION_RETRY &&
      action != cohort::v1::BULK_ACTION_DELETE) {
    co_return absl::InvalidArgumentError(absl::StrCat("action ", static_cast<int>(action),
                                                      " is not an action: use BULK_ACTION_CANCEL, BULK_ACTION_RETRY "
                                                      "or BULK_ACTION_DELETE"));
  }
  if (request.request_id().size() > kMaxRequestIdBytes) {
    co_return absl::InvalidArgumentError(absl::StrCat("request_id has ", request.request_id().size(),
                                                      " bytes: at most ", kMaxRequestIdBytes));
  }
  absl::StatusOr<JobMatcher> matcher = JobMatcher::Compile(request.filter(), "filter");
  if (!matcher.ok()) co_return matcher.status();
  if (matcher->matches_all() && !request.match_all()) {
    co_return absl::InvalidArgumentError(
        "filter is empty, so it matches every job: set match_all to act on every job, or narrow the filter");
  }
  if (request.dry_run()) {
    BulkOperation counted;
    counted.set_action(action);
    *counted.mutable_filter() = request.filter();
    counted.set_state(BulkOperation::STATE_DONE);
    counted.set_matched(co_await CountMatching(*std::move(matcher)));
    co_return counted;
  }
  if (!request.request_id().empty()) {
    if (auto it = by_request_id_.find(request.request_id()); it != by_request_id_.end()) {
      co_return records_.at(it->second);
    }
  }
  if (stopping_) co_return absl::UnavailableError("the broker is shutting down: start the operation again later");
  if (absl::Status admitted = engine_.AdmitWrite(); !admitted.ok()) co_return admitted;

  const absl::Time now = engine_.Now();
  BulkOperation op;
  op.set_id(new_id_());
  op.set_action(action);
  *op.mutable_filter() = request.filter();
  op.set_state(BulkOperation::STATE_RUNNING);
  op.set_last_job_id(engine_.LastJobId());
  op.set_started_by(std::move(principal));
  op.set_request_id(request.request_id());
  *op.mutable_create_time() = ToProto(now);
  *op.mutable_update_time() = ToProto(now);
  if (op.last_job_id().empty()) {  // no job at all: nothing in scope
    op.set_state(BulkOperation::STATE_DONE);
    *op.mutable_end_time() = ToProto(now);
  }
  // Keep the latest `kept`: the oldest finished records go (running ones stay).
  std::vector<std::string> trimmed;
  std::size_t count = records_.size() + 1;
  for (auto it = records_.begin(); it != records_.end() && count > options_.kept; ++it) {
    if (it->second.state() != BulkOperation::STATE_DONE) continue;
    trimmed.push_back(it->first);
    --count;
  }
  for (const std::string& id : trimmed) {
    auto it = records_.find(id);
    by_request_id_.erase(it->second.request_id());
    records_.erase(it);
  }
  // Known before the commit below, so that a concurrent Start with the same request_id
  // finds it instead of starting a second operation.
  records_[op.id()] = op;
  if (!op.request_id().empty()) by_request_id_[op.request_id()] = op.id();
  // Stored before it is answered or run, with the trimming in the same commit.
  std::vector<BulkOperation> put(1, op);
  co_await engine_.PersistBulkRecords(std::move(put), std::move(trimmed));
  metrics_.BulkStarted(ActionLabel(action));
  kLog.Info("bulk operation started", {{"id", op.id()},
                                       {"action", ActionLabel(action)},
                                       {"last_job_id", op.last_job_id()},
                                       {"started_by", op.started_by()}});
  if (op.state() == BulkOperation::STATE_RUNNING) runners_.Spawn(Run(op.id()));
  co_return op;
}

absl::StatusOr<BulkOperation> BulkOperations::Get(const std::string& id) const {
  auto it = records_.find(id);
  if (it == records_.end()) {
    return absl::NotFoundError(absl::StrCat("bulk operation ", common::QuoteBounded(id),
                                            " not found (the broker keeps the latest ", options_.kept, ")"));
  }
  return it->second;
}

cohort::v1::ListBulkOperationsResponse BulkOperations::List() const {
  cohort::v1::ListBulkOperationsResponse response;
  for (auto it = records_.rbegin(); it != records_.rend(); ++it) *response.add_operations() = it->second;
  return response;
}

runtime::Task<void> BulkOperations::Stop() {
  stopping_ = true;
  co_await runners_.CancelAndJoin();
}

runtime::Task<void> BulkOperations::Run(std::string id) {
  // The filter was checked when the operation started (or by the broker that stored it).
  absl::StatusOr<JobMatcher> matcher = JobMatcher::Compile(records_.at(id).filter(), "filter");
  const cohort::v1::BulkAction action = records_.at(id).action();
  const std::string label = ActionLabel(action);
  while (true) {
    const BulkOperation& op = records_.at(id);
    BulkStep step;
    if (!matcher.ok()) {
      step.done = true;  // a record no broker could have written: finish it, touching nothing
      step.cursor = op.cursor_job_id();
      std::vector<BulkOperation> put(1, Advanced(op, step, engine_.Now()));
      co_await engine_.PersistBulkRecords(std::move(put), std::vector<std::string>());
    } else {
      step = co_await engine_.ApplyBulkStep(
          action, *matcher, op.cursor_job_id(), op.last_job_id(),
          [&](const BulkStep& s) { return Advanced(records_.at(id), s, engine_.Now()); });
    }
    // Durable now (or nothing needed to be): the record in memory follows.
    BulkOperation& current = records_.at(id);
    current = Advanced(std::move(current), step, engine_.Now());
    metrics_.BulkJobs(label, "changed", step.changed);
    metrics_.BulkJobs(label, "skipped", step.skipped);
    if (step.done) {
      kLog.Info("bulk operation finished", {{"id", id},
                                            {"action", label},
                                            {"matched", current.matched()},
                                            {"changed", current.changed()},
                                            {"skipped", current.skipped()}});
      co_return;
    }
    co_await runtime::Yield();  // other work between batches
  }
}

runtime::Task<std::int64_t> BulkOperations::CountMatching(JobMatcher matcher) {
  std::int64_t matched = 0;
  std::string cursor;
  while (true) {
    BulkStep step = co_await engine_.CountMatching(matcher, cursor, options_.scan_jobs);
    matched += step.matched;
    if (step.done) co_return matched;
    cursor = std::move(step.cursor);
    co_await runtime::Yield();
  }
}

}  // namespace cohort::broker
