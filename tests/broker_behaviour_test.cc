// Promises of broker.proto, job.proto and executor.proto that no other test proved,
// each through the real cohort-broker binary: dispatch order across queues (weighted
// round robin, max_concurrency, the starvation bound), result TTL, idempotency keys,
// the configurable limits and DAG validation, and the Connect protocol's edges (a
// result after a cancel request, a non-Hello first message, a second stream for the
// same executor id, negative credit grants). docs/contract.md lists what each proves.
#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "tests/broker_fixture.h"

namespace cohort::testing {
namespace {

using namespace std::chrono_literals;
using cohort::v1::BrokerMessage;
using cohort::v1::ExecutorMessage;

class BrokerBehaviourTest : public BrokerTest {
 protected:
  grpc::Status TrySubmit(const std::vector<cohort::v1::JobSpec>& specs, cohort::v1::SubmitResponse* resp = nullptr) {
    cohort::v1::SubmitRequest req;
    for (const auto& s : specs) *req.add_jobs() = s;
    cohort::v1::SubmitResponse ignored;
    auto ctx = Context();
    return stub().Submit(ctx.get(), req, resp != nullptr ? resp : &ignored);
  }

  grpc::Status TryGet(const std::string& id, cohort::v1::Job* job = nullptr) {
    cohort::v1::GetJobRequest req;
    req.set_job_id(id);
    cohort::v1::GetJobResponse resp;
    auto ctx = Context();
    grpc::Status status = stub().GetJob(ctx.get(), req, &resp);
    if (job != nullptr) *job = resp.job();
    return status;
  }

  // Every job the broker holds, of any queue and state.
  int CountJobs() {
    cohort::v1::ListJobsRequest req;
    req.set_page_size(1000);
    cohort::v1::ListJobsResponse resp;
    auto ctx = Context();
    grpc::Status status = stub().ListJobs(ctx.get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(resp.next_page_token(), "");
    return resp.jobs_size();
  }

  // Creates the queue (if new) and sets its limits.
  void SetLimits(const std::string& queue, std::optional<int> max_concurrency, std::optional<int> weight) {
    cohort::v1::CreateQueueRequest create;
    create.set_queue(queue);
    cohort::v1::CreateQueueResponse created;
    auto create_ctx = Context();
    grpc::Status create_status = stub().CreateQueue(create_ctx.get(), create, &created);
    ASSERT_TRUE(create_status.ok()) << create_status.error_message();
    cohort::v1::SetQueueLimitsRequest req;
    req.set_queue(queue);
    if (max_concurrency) req.mutable_limits()->set_max_concurrency(*max_concurrency);
    if (weight) req.mutable_limits()->set_weight(*weight);
    cohort::v1::SetQueueLimitsResponse resp;
    auto ctx = Context();
    grpc::Status status = stub().SetQueueLimits(ctx.get(), req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  // The queue as ListQueues reports it; a default QueueInfo (after a test failure) if
  // it is not listed.
  cohort::v1::QueueInfo QueueNamed(const std::string& name) {
    cohort::v1::ListQueuesResponse resp;
    auto ctx = Context();
    grpc::Status status = stub().ListQueues(ctx.get(), {}, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    for (const auto& q : resp.queues()) {
      if (q.name() == name) return q;
    }
    ADD_FAILURE() << "queue " << name << " is not listed";
    return {};
  }

  void Cancel(const std::string& id, cohort::v1::CancelJobResponse* resp) {
    cohort::v1::CancelJobRequest req;
    req.set_job_id(id);
    auto ctx = Context();
    grpc::Status status = stub().CancelJob(ctx.get(), req, resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  // The next Assign's job id and attempt; "" (after a test failure) if the stream ended.
  static std::string NextJob(TestExecutor& exec) {
    std::optional<BrokerMessage::Assign> assign = exec.NextAssign();
    EXPECT_TRUE(assign.has_value()) << "the Connect stream ended before an Assign";
    return assign ? assign->job().id() : "";
  }

  // A raw Connect stream, for the protocol's edges the TestExecutor does not reach.
  struct RawStream {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReaderWriter<ExecutorMessage, BrokerMessage>> stream;
  };
  // Its deadline bounds how long a test waits for the broker to end it.
  std::unique_ptr<RawStream> OpenStream(std::chrono::seconds deadline = 10s) {
    auto raw = std::make_unique<RawStream>();
    raw->ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    raw->stream = stub().Connect(&raw->ctx);
    return raw;
  }
  static ExecutorMessage Hello(const std::string& id, int capacity) {
    ExecutorMessage m;
    m.mutable_hello()->set_executor_id(id);
    m.mutable_hello()->set_capacity(capacity);
    return m;
  }
  static ExecutorMessage Credit(int credits) {
    ExecutorMessage m;
    m.mutable_credit()->set_credits(credits);
    return m;
  }
  // Polls ListExecutors until `executor` has `credits` unused credits, for at most 10 s.
  bool AwaitCredits(const std::string& executor, int credits) {
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < give_up) {
      cohort::v1::ListExecutorsResponse resp;
      auto ctx = Context();
      if (!stub().ListExecutors(ctx.get(), {}, &resp).ok()) return false;
      for (const auto& e : resp.executors()) {
        if (e.executor_id() == executor && e.credits() == credits) return true;
      }
      std::this_thread::sleep_for(20ms);  // polling a condition with a bound
    }
    return false;
  }
  // Polls ListExecutors until `executor` is no longer listed, for at most 10 s.
  bool AwaitGone(const std::string& executor) {
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < give_up) {
      cohort::v1::ListExecutorsResponse resp;
      auto ctx = Context();
      if (!stub().ListExecutors(ctx.get(), {}, &resp).ok()) return false;
      if (std::none_of(resp.executors().begin(), resp.executors().end(),
                       [&](const auto& e) { return e.executor_id() == executor; })) {
        return true;
      }
      std::this_thread::sleep_for(20ms);  // polling a condition with a bound
    }
    return false;
  }
  // Reads until the broker ends the stream and returns how it ended.
  static grpc::Status Ended(RawStream& raw) {
    BrokerMessage m;
    while (raw.stream->Read(&m)) {
    }
    return raw.stream->Finish();
  }
};

// ---- dispatch order across queues ----

TEST_F(BrokerBehaviourTest, WeightedRoundRobinGivesEachQueueItsWeightOnEveryRound) {
  SetLimits("wrr-a", std::nullopt, 3);
  SetLimits("wrr-b", std::nullopt, 1);
  std::vector<cohort::v1::JobSpec> specs;
  for (int i = 0; i < 12; ++i) specs.push_back(Spec("wrr-a"));
  for (int i = 0; i < 12; ++i) specs.push_back(Spec("wrr-b"));
  const std::vector<std::string> ids = Submit(specs);
  ASSERT_EQ(ids.size(), 24u);
  TestExecutor exec(stub(), "wrr", 12);
  exec.Grant(12);
  std::string queues;
  for (int i = 0; i < 12; ++i) {
    const std::string id = NextJob(exec);
    ASSERT_FALSE(id.empty());
    queues += Get(id).spec().queue() == "wrr-a" ? "a" : "b";
  }
  // Three of a for each one of b, round after round (not only on the first).
  EXPECT_EQ(queues, "aaabaaabaaab");
}

TEST_F(BrokerBehaviourTest, MaxConcurrencyCapsTheQueuesRunningJobsWhateverTheCredit) {
  SetLimits("capped", 2, std::nullopt);
  const std::vector<std::string> capped = Submit({Spec("capped"), Spec("capped"), Spec("capped"), Spec("capped")});
  TestExecutor exec(stub(), "eager", 8);
  exec.Grant(8);
  const std::string first = NextJob(exec);
  const std::string second = NextJob(exec);
  ASSERT_FALSE(second.empty());
  // A job of another queue, submitted later, is dispatched next: the capped queue's two
  // remaining (older) jobs were passed over although the executor had credit.
  const std::string free = Submit({Spec("uncapped")})[0];
  EXPECT_EQ(NextJob(exec), free);
  cohort::v1::QueueInfo q = QueueNamed("capped");
  EXPECT_EQ(q.running(), 2);
  EXPECT_EQ(q.depth(), 2);
  EXPECT_EQ(q.limits().max_concurrency(), 2);
  // One ends, one more starts: never more than two at once.
  exec.Complete(first, 1, "done");
  const std::string third = NextJob(exec);
  EXPECT_EQ(Get(third).spec().queue(), "capped");
  q = QueueNamed("capped");
  EXPECT_EQ(q.running(), 2);
  EXPECT_EQ(q.depth(), 1);
}

TEST_F(BrokerBehaviourTest, StarvationEveryServesTheOldestJobOnEveryNthDispatch) {
  StartBroker({"--starvation-every=4"});
  std::vector<cohort::v1::JobSpec> specs = {Spec("flood", 0)};
  for (int i = 0; i < 10; ++i) specs.push_back(Spec("flood", 9));
  const std::vector<std::string> ids = Submit(specs);
  ASSERT_EQ(ids.size(), 11u);
  TestExecutor exec(stub(), "starve", 11);
  exec.Grant(11);
  std::vector<std::string> order;
  for (int i = 0; i < 11; ++i) order.push_back(NextJob(exec));
  // Three of the flood of priority 9, then the old priority-0 job.
  EXPECT_EQ(order[3], ids[0]);
}

TEST_F(BrokerBehaviourTest, StarvationEveryZeroIsStrictPriority) {
  StartBroker({"--starvation-every=0"});
  std::vector<cohort::v1::JobSpec> specs = {Spec("flood", 0)};
  for (int i = 0; i < 10; ++i) specs.push_back(Spec("flood", 9));
  const std::vector<std::string> ids = Submit(specs);
  ASSERT_EQ(ids.size(), 11u);
  TestExecutor exec(stub(), "strict", 11);
  exec.Grant(11);
  std::vector<std::string> order;
  for (int i = 0; i < 11; ++i) order.push_back(NextJob(exec));
  EXPECT_EQ(order[10], ids[0]);
}

// ---- result TTL and idempotency keys ----

TEST_F(BrokerBehaviourTest, AnEndedJobIsDeletedAfterItsResultTtlAndItsIdempotencyKeyIsFreed) {
  cohort::v1::JobSpec spec = Spec("ttl");
  spec.mutable_result_ttl()->set_seconds(1);
  spec.set_idempotency_key("ttl-key");
  const std::string id = Submit({spec})[0];
  TestExecutor exec(stub(), "ttl", 1);
  exec.Grant(1);
  ASSERT_EQ(NextJob(exec), id);
  exec.Complete(id, 1, "kept a while");
  ASSERT_TRUE(AwaitEnd(id).has_value());
  cohort::v1::Job job;
  ASSERT_TRUE(TryGet(id, &job).ok());
  ASSERT_TRUE(job.has_expire_time());
  EXPECT_EQ(job.expire_time().seconds() - job.end_time().seconds(), 1);
  EXPECT_EQ(job.result(), "kept a while");
  // While it exists the key still answers with it.
  EXPECT_EQ(Submit({spec})[0], id);

  // Deleted once expire_time passes (the broker sweeps every second).
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  grpc::Status status;
  while ((status = TryGet(id)).ok() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(50ms);  // polling a condition with a bound, not synchronising
  }
  ASSERT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  // The key is free: the same spec makes a new job.
  const std::string again = Submit({spec})[0];
  EXPECT_NE(again, id);
  EXPECT_EQ(Get(again).state(), cohort::v1::JOB_STATE_QUEUED);
}

TEST_F(BrokerBehaviourTest, AnIdempotencyKeySurvivesAKill9OfTheBroker) {
  cohort::v1::JobSpec spec = Spec("keys");
  spec.set_idempotency_key("survives");
  const std::string id = Submit({spec})[0];
  ASSERT_TRUE(broker_->Kill9().ok());
  StartBroker();
  cohort::v1::JobSpec other = Spec("keys");
  other.set_payload("a different spec");
  other.set_idempotency_key("survives");
  EXPECT_EQ(Submit({other})[0], id);
  EXPECT_EQ(Get(id).spec().payload(), "payload");
  EXPECT_EQ(CountJobs(), 1);
}

TEST_F(BrokerBehaviourTest, AnIdempotencyKeyRepeatedWithinOneBatchIsInvalidArgumentAndWritesNothing) {
  cohort::v1::JobSpec a = Spec("keys");
  a.set_idempotency_key("twice");
  cohort::v1::JobSpec b = Spec("keys");
  b.set_idempotency_key("twice");
  grpc::Status status = TrySubmit({Spec("keys"), a, b});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("idempotency_key"), std::string::npos) << status.error_message();
  EXPECT_EQ(CountJobs(), 0);
  // The key was not taken by the refused batch.
  const std::string id = Submit({a})[0];
  EXPECT_EQ(Get(id).spec().idempotency_key(), "twice");
}

// ---- configurable limits ----

TEST_F(BrokerBehaviourTest, MaxPayloadBytesIsTheLargestPayloadAccepted) {
  StartBroker({"--max-payload-bytes=100"});
  cohort::v1::JobSpec fits = Spec();
  fits.set_payload(std::string(100, 'p'));
  EXPECT_TRUE(TrySubmit({fits}).ok());
  cohort::v1::JobSpec over = Spec();
  over.set_payload(std::string(101, 'p'));
  grpc::Status status = TrySubmit({Spec(), over});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("jobs[1].payload"), std::string::npos) << status.error_message();
  EXPECT_EQ(CountJobs(), 1);
}

TEST_F(BrokerBehaviourTest, MaxWaitIdsBoundsEveryWaitingRpc) {
  StartBroker({"--max-wait-ids=3"});
  const std::string id = Submit({Spec()})[0];
  for (int n : {3, 4}) {
    cohort::v1::GatherRequest gather;
    cohort::v1::WaitRequest wait;
    cohort::v1::AsCompletedRequest as_completed;
    for (int i = 0; i < n; ++i) {
      gather.add_job_ids(id);
      wait.add_job_ids(id);
      as_completed.add_job_ids(id);
    }
    gather.mutable_timeout()->set_seconds(0);
    wait.mutable_timeout()->set_seconds(0);
    as_completed.mutable_timeout()->set_seconds(0);
    const grpc::StatusCode want = n == 3 ? grpc::StatusCode::DEADLINE_EXCEEDED : grpc::StatusCode::INVALID_ARGUMENT;
    cohort::v1::GatherResponse gathered;
    auto c1 = Context();
    EXPECT_EQ(stub().Gather(c1.get(), gather, &gathered).error_code(), want) << n << " ids";
    cohort::v1::WaitResponse waited;
    auto c2 = Context();
    EXPECT_EQ(stub().Wait(c2.get(), wait, &waited).error_code(),
              n == 3 ? grpc::StatusCode::OK : grpc::StatusCode::INVALID_ARGUMENT)
        << n << " ids";
    auto c3 = Context();
    auto reader = stub().AsCompleted(c3.get(), as_completed);
    cohort::v1::AsCompletedResponse ignored;
    while (reader->Read(&ignored)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), want) << n << " ids";
  }
}

TEST_F(BrokerBehaviourTest, LabelsAreCappedInCountAndSize) {
  cohort::v1::JobSpec many = Spec();
  for (int i = 0; i < 33; ++i) (*many.mutable_labels())["k" + std::to_string(i)] = "v";
  grpc::Status status = TrySubmit({many});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("jobs[0].labels"), std::string::npos) << status.error_message();

  cohort::v1::JobSpec long_key = Spec();
  (*long_key.mutable_labels())[std::string(257, 'k')] = "v";
  EXPECT_EQ(TrySubmit({long_key}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  cohort::v1::JobSpec long_value = Spec();
  (*long_value.mutable_labels())["k"] = std::string(257, 'v');
  EXPECT_EQ(TrySubmit({long_value}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(CountJobs(), 0);

  // At the caps: accepted and returned as given.
  cohort::v1::JobSpec at_cap = Spec();
  for (int i = 0; i < 31; ++i) (*at_cap.mutable_labels())["k" + std::to_string(i)] = "v";
  (*at_cap.mutable_labels())[std::string(256, 'k')] = std::string(256, 'v');
  cohort::v1::SubmitResponse resp;
  ASSERT_TRUE(TrySubmit({at_cap}, &resp).ok());
  EXPECT_EQ(Get(resp.job_ids(0)).spec().labels().size(), 32u);
}

// ---- DAG validation ----

TEST_F(BrokerBehaviourTest, BadDependsOnIndexesAreInvalidArgumentAndWriteNothing) {
  struct Case {
    const char* name;
    std::vector<std::vector<int>> parents;  // depends_on_index of each spec
  };
  const std::vector<Case> cases = {
      {"self-reference", {{}, {1}}},
      {"repeat", {{}, {0, 0}}},
      {"out of range", {{}, {2}}},
      {"negative", {{}, {-1}}},
      {"cycle", {{1}, {0}}},
      {"long cycle", {{2}, {0}, {1}}},
  };
  for (const Case& c : cases) {
    std::vector<cohort::v1::JobSpec> specs;
    for (const auto& parents : c.parents) {
      cohort::v1::JobSpec s = Spec("dag");
      for (int p : parents) s.add_depends_on_index(p);
      specs.push_back(s);
    }
    grpc::Status status = TrySubmit(specs);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_NE(status.error_message().find("depends_on_index"), std::string::npos)
        << c.name << ": " << status.error_message();
  }
  EXPECT_EQ(CountJobs(), 0);

  // A repeated or unknown depends_on id.
  const std::string parent = Submit({Spec("dag")})[0];
  cohort::v1::JobSpec repeated = Spec("dag");
  repeated.add_depends_on(parent);
  repeated.add_depends_on(parent);
  EXPECT_EQ(TrySubmit({repeated}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  cohort::v1::JobSpec unknown = Spec("dag");
  unknown.add_depends_on("0123456789abcdef01234567");
  grpc::Status missing = TrySubmit({unknown});
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(missing.error_message().find("0123456789abcdef01234567"), std::string::npos) << missing.error_message();
  EXPECT_EQ(CountJobs(), 1);

  // A good DAG: indexes become ids, and the index list is left empty.
  cohort::v1::JobSpec child = Spec("dag");
  child.add_depends_on_index(0);
  child.add_depends_on(parent);
  const std::vector<std::string> ids = Submit({Spec("dag"), child});
  ASSERT_EQ(ids.size(), 2u);
  cohort::v1::Job stored = Get(ids[1]);
  EXPECT_EQ(stored.state(), cohort::v1::JOB_STATE_PENDING);
  EXPECT_EQ(stored.spec().depends_on_index_size(), 0);
  ASSERT_EQ(stored.spec().depends_on_size(), 2);
  EXPECT_EQ(stored.spec().depends_on(0), parent);
  EXPECT_EQ(stored.spec().depends_on(1), ids[0]);
}

// ---- the Connect protocol ----

TEST_F(BrokerBehaviourTest, AResultArrivingAfterACancelRequestStillSucceedsTheJob) {
  const std::vector<std::string> ids = Submit({Spec("cancel"), Spec("cancel")});
  TestExecutor exec(stub(), "late", 2);
  exec.Grant(2);
  ASSERT_EQ(NextJob(exec), ids[0]);
  ASSERT_EQ(NextJob(exec), ids[1]);
  for (const std::string& id : ids) {
    cohort::v1::CancelJobResponse resp;
    Cancel(id, &resp);
    EXPECT_EQ(resp.state(), cohort::v1::JOB_STATE_RUNNING);
    EXPECT_FALSE(resp.already_ended());
    std::optional<BrokerMessage::Cancel> cancel = exec.NextCancel();
    ASSERT_TRUE(cancel.has_value());
    EXPECT_EQ(cancel->job_id(), id);
    EXPECT_EQ(cancel->attempt(), 1);
    EXPECT_TRUE(Get(id).cancel_requested());
  }
  // The first finished before it saw the cancel: its result wins.
  exec.Complete(ids[0], 1, "finished first");
  // The second stopped: its error after the cancel request ends it CANCELLED.
  exec.Fail(ids[1], 1, "stopped");
  std::optional<cohort::v1::JobOutcome> first = AwaitEnd(ids[0]);
  std::optional<cohort::v1::JobOutcome> second = AwaitEnd(ids[1]);
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_EQ(first->state(), cohort::v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(first->result(), "finished first");
  EXPECT_EQ(second->state(), cohort::v1::JOB_STATE_CANCELLED);
}

TEST_F(BrokerBehaviourTest, AFirstMessageOtherThanHelloEndsTheStreamWithFailedPrecondition) {
  std::unique_ptr<RawStream> raw = OpenStream();
  ASSERT_TRUE(raw->stream->Write(Credit(5)));
  grpc::Status status = Ended(*raw);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  // It never became an executor: a job submitted now stays queued for a real one.
  cohort::v1::ListExecutorsResponse executors;
  auto ctx = Context();
  ASSERT_TRUE(stub().ListExecutors(ctx.get(), {}, &executors).ok());
  EXPECT_EQ(executors.executors_size(), 0);
}

TEST_F(BrokerBehaviourTest, ASecondHelloOnTheSameStreamIsRejected) {
  std::unique_ptr<RawStream> raw = OpenStream();
  ASSERT_TRUE(raw->stream->Write(Hello("twice", 1)));
  ASSERT_TRUE(raw->stream->Write(Hello("twice", 1)));
  grpc::Status status = Ended(*raw);
  // "Exactly once" (executor.proto Hello): the stream ends, naming the rule.
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find("hello"), std::string::npos) << status.error_message();
}

TEST_F(BrokerBehaviourTest, ASecondStreamWithTheSameExecutorIdEndsTheFirstAndKeepsItsLease) {
  const std::string id = Submit({Spec("twin")})[0];
  std::unique_ptr<RawStream> first = OpenStream();
  ASSERT_TRUE(first->stream->Write(Hello("twin", 1)));
  ASSERT_TRUE(first->stream->Write(Credit(1)));
  BrokerMessage m;
  std::optional<BrokerMessage::Assign> assign;
  while (!assign && first->stream->Read(&m)) {
    if (m.has_assign()) assign = m.assign();
  }
  ASSERT_TRUE(assign.has_value());
  ASSERT_EQ(assign->job().id(), id);

  TestExecutor second(stub(), "twin", 1);
  grpc::Status ended = Ended(*first);
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::ABORTED) << ended.error_message();
  // The attempt stayed leased to "twin": the new stream completes it, attempt 1.
  second.Complete(id, 1, "from the second stream");
  std::optional<cohort::v1::JobOutcome> outcome = AwaitEnd(id);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->state(), cohort::v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(outcome->result(), "from the second stream");
  cohort::v1::Job job = Get(id);
  EXPECT_EQ(job.attempt(), 1);
  EXPECT_EQ(job.attempts_size(), 1);
}

TEST_F(BrokerBehaviourTest, ANegativeCreditGrantWithdrawsUnusedCreditButNeverBelowZero) {
  TestExecutor exec(stub(), "withdraws", 4);
  exec.Grant(3);
  exec.Grant(-5);  // withdraws the 3, and the rest is not owed
  exec.Grant(1);
  // The grants are taken in order; wait until the last one is (or give up: then the
  // credit is not what the contract says).
  ASSERT_TRUE(AwaitCredits("withdraws", 1)) << "credits never settled at 3 - 5 + 1 = 1 (0 floor)";
  const std::vector<std::string> ids = Submit({Spec("credit"), Spec("credit"), Spec("credit")});
  // Exactly one credit is left: one Assign, the others stay queued.
  EXPECT_EQ(NextJob(exec), ids[0]);
  cohort::v1::QueueInfo q = QueueNamed("credit");
  EXPECT_EQ(q.running(), 1);
  EXPECT_EQ(q.depth(), 2);
  cohort::v1::ListExecutorsResponse executors;
  auto ctx = Context();
  ASSERT_TRUE(stub().ListExecutors(ctx.get(), {}, &executors).ok());
  ASSERT_EQ(executors.executors_size(), 1);
  EXPECT_EQ(executors.executors(0).credits(), 0);
  EXPECT_EQ(executors.executors(0).running(), 1);
}

// executor.proto, seq: the broker numbers every message from 1 and ends a stream whose
// numbered messages skip one (lost on a connection that stayed up) with DATA_LOSS,
// granting nothing the later message asked for; an executor that numbers nothing is
// not checked.
TEST_F(BrokerBehaviourTest, AMissingExecutorMessageNumberEndsTheStreamWithDataLoss) {
  std::unique_ptr<RawStream> raw = OpenStream();
  ExecutorMessage hello = Hello("gappy", 2);
  hello.set_seq(1);
  ASSERT_TRUE(raw->stream->Write(hello));
  BrokerMessage welcome;
  ASSERT_TRUE(raw->stream->Read(&welcome));
  EXPECT_TRUE(welcome.has_welcome());
  EXPECT_EQ(welcome.seq(), 1u);
  ExecutorMessage credit = Credit(2);
  credit.set_seq(3);  // 2 was lost
  ASSERT_TRUE(raw->stream->Write(credit));
  grpc::Status status = Ended(*raw);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS) << status.error_message();
  EXPECT_EQ(status.error_message(), "message 3 arrived after message 1: the stream lost, repeated or reordered messages");
  // The credit was never taken: a job submitted now waits for an executor.
  const std::vector<std::string> ids = Submit({Spec("gaps")});
  EXPECT_EQ(QueueNamed("gaps").depth(), 1);

  std::unique_ptr<RawStream> unnumbered = OpenStream();
  ASSERT_TRUE(unnumbered->stream->Write(Hello("unnumbered", 1)));
  ASSERT_TRUE(unnumbered->stream->Write(Credit(1)));
  BrokerMessage first;
  BrokerMessage second;
  ASSERT_TRUE(unnumbered->stream->Read(&first));
  ASSERT_TRUE(unnumbered->stream->Read(&second));
  EXPECT_EQ(first.seq(), 1u);
  ASSERT_TRUE(second.has_assign()) << second.ShortDebugString();
  EXPECT_EQ(second.seq(), 2u);
  EXPECT_EQ(second.assign().job().id(), ids[0]);
}

TEST_F(BrokerBehaviourTest, AHelloNumberedOtherThanOneEndsTheStreamWithDataLoss) {
  std::unique_ptr<RawStream> raw = OpenStream();
  ExecutorMessage hello = Hello("late-start", 1);
  hello.set_seq(2);
  ASSERT_TRUE(raw->stream->Write(hello));
  grpc::Status status = Ended(*raw);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS) << status.error_message();
  cohort::v1::ListExecutorsResponse executors;
  auto ctx = Context();
  ASSERT_TRUE(stub().ListExecutors(ctx.get(), {}, &executors).ok());
  EXPECT_EQ(executors.executors_size(), 0) << "it never became an executor";
}

// ---- RPCs with a promise no other test checked ----

TEST_F(BrokerBehaviourTest, SubmitValidateOnlyChecksEverySpecAndWritesNothing) {
  cohort::v1::SubmitRequest req;
  *req.add_jobs() = Spec("validate");
  req.set_validate_only(true);
  cohort::v1::SubmitResponse resp;
  auto ctx = Context();
  grpc::Status ok = stub().Submit(ctx.get(), req, &resp);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(resp.job_ids_size(), 0);
  req.add_jobs()->set_queue("Not A Queue");
  auto ctx2 = Context();
  grpc::Status bad = stub().Submit(ctx2.get(), req, &resp);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad.error_message().find("jobs[1].queue"), std::string::npos) << bad.error_message();
  EXPECT_EQ(CountJobs(), 0);
}

TEST_F(BrokerBehaviourTest, ARunAtInThePastQueuesTheJobAtOnce) {
  cohort::v1::JobSpec spec = Spec("past");
  spec.mutable_run_at()->set_seconds(1);  // 1970
  const std::string id = Submit({spec})[0];
  cohort::v1::Job job = Get(id);
  EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_QUEUED);
  EXPECT_FALSE(job.has_not_before());
}

TEST_F(BrokerBehaviourTest, ListJobsPagesWithTheSameFiltersAndRefusesATokenWithOthers) {
  Submit({Spec("pages"), Spec("pages"), Spec("pages"), Spec("other")});
  cohort::v1::ListJobsRequest req;
  req.set_queue("pages");
  req.set_page_size(2);
  cohort::v1::ListJobsResponse first;
  auto ctx = Context();
  ASSERT_TRUE(stub().ListJobs(ctx.get(), req, &first).ok());
  ASSERT_EQ(first.jobs_size(), 2);
  ASSERT_FALSE(first.next_page_token().empty());
  // The token with other filters: INVALID_ARGUMENT, not a page of something else.
  cohort::v1::ListJobsRequest other;
  other.set_queue("other");
  other.set_page_token(first.next_page_token());
  cohort::v1::ListJobsResponse ignored;
  auto ctx2 = Context();
  EXPECT_EQ(stub().ListJobs(ctx2.get(), other, &ignored).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // A page size over the maximum is capped, not refused.
  cohort::v1::ListJobsRequest huge;
  huge.set_page_size(1'000'000'000);
  cohort::v1::ListJobsResponse all;
  auto ctx3 = Context();
  ASSERT_TRUE(stub().ListJobs(ctx3.get(), huge, &all).ok());
  EXPECT_EQ(all.jobs_size(), 4);
}

TEST_F(BrokerBehaviourTest, QueuesAreListedInNameOrderAndCreateQueueMakesOneIdempotently) {
  Submit({Spec("zeta"), Spec("alpha")});
  cohort::v1::PauseQueueRequest pause;
  pause.set_queue("middle");  // no job, not created: pausing it creates nothing
  cohort::v1::PauseQueueResponse paused;
  auto pause_ctx = Context();
  EXPECT_EQ(stub().PauseQueue(pause_ctx.get(), pause, &paused).error_code(), grpc::StatusCode::NOT_FOUND);
  cohort::v1::CreateQueueRequest create;
  create.set_queue("middle");
  create.set_paused(true);
  for (int i = 0; i < 2; ++i) {
    cohort::v1::CreateQueueResponse created;
    auto ctx = Context();
    ASSERT_TRUE(stub().CreateQueue(ctx.get(), create, &created).ok());
    EXPECT_EQ(created.already_existed(), i == 1);
  }
  cohort::v1::ListQueuesResponse resp;
  auto ctx = Context();
  ASSERT_TRUE(stub().ListQueues(ctx.get(), {}, &resp).ok());
  std::vector<std::string> names;
  for (const auto& q : resp.queues()) names.push_back(q.name());
  EXPECT_EQ(names, (std::vector<std::string>{"alpha", "middle", "zeta"}));
  EXPECT_TRUE(QueueNamed("middle").paused());
  EXPECT_FALSE(QueueNamed("middle").has_oldest_queued_age());  // unset when empty
}

TEST_F(BrokerBehaviourTest, SetQueueLimitsKeepsTheLimitsNotSetAndRefusesNegativeOnes) {
  SetLimits("limits", 4, 7);
  cohort::v1::SetQueueLimitsRequest req;
  req.set_queue("limits");
  req.mutable_limits()->set_max_rate(2.5);
  cohort::v1::SetQueueLimitsResponse resp;
  auto ctx = Context();
  ASSERT_TRUE(stub().SetQueueLimits(ctx.get(), req, &resp).ok());
  EXPECT_EQ(resp.limits().max_concurrency(), 4);
  EXPECT_EQ(resp.limits().weight(), 7);
  EXPECT_EQ(resp.limits().max_rate(), 2.5);
  for (int field = 0; field < 3; ++field) {
    cohort::v1::SetQueueLimitsRequest bad;
    bad.set_queue("limits");
    if (field == 0) bad.mutable_limits()->set_max_concurrency(-1);
    if (field == 1) bad.mutable_limits()->set_weight(-1);
    if (field == 2) bad.mutable_limits()->set_max_rate(-1);
    auto c = Context();
    EXPECT_EQ(stub().SetQueueLimits(c.get(), bad, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field;
  }
  const cohort::v1::QueueInfo q = QueueNamed("limits");
  EXPECT_EQ(q.limits().max_concurrency(), 4);
  EXPECT_EQ(q.limits().weight(), 7);
  EXPECT_EQ(q.limits().max_rate(), 2.5);
}

TEST_F(BrokerBehaviourTest, CancelJobCancelsAShieldedJob) {
  cohort::v1::JobSpec shielded = Spec("shield");
  shielded.set_shield(true);
  const std::string id = Submit({shielded})[0];
  cohort::v1::CancelJobResponse resp;
  Cancel(id, &resp);
  EXPECT_EQ(resp.state(), cohort::v1::JOB_STATE_CANCELLED);
  std::optional<cohort::v1::JobOutcome> outcome = AwaitEnd(id);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->state(), cohort::v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(outcome->error().code(), "cancelled");
}

TEST_F(BrokerBehaviourTest, WaitFirstExceptionDoesNotCountACancelledJobAsAnException) {
  const std::vector<std::string> ids = Submit({Spec("fx"), Spec("fx"), Spec("fx")});
  cohort::v1::CancelJobResponse cancelled;
  Cancel(ids[0], &cancelled);
  ASSERT_EQ(cancelled.state(), cohort::v1::JOB_STATE_CANCELLED);
  TestExecutor exec(stub(), "fx", 2);
  exec.Grant(2);
  ASSERT_EQ(NextJob(exec), ids[1]);
  ASSERT_EQ(NextJob(exec), ids[2]);
  cohort::v1::WaitRequest req;
  for (const auto& id : ids) req.add_job_ids(id);
  req.set_return_when(cohort::v1::RETURN_WHEN_FIRST_EXCEPTION);
  cohort::v1::WaitResponse resp;
  grpc::Status status;
  std::thread waiter([&] {
    auto ctx = Context();
    status = stub().Wait(ctx.get(), req, &resp);
  });
  // The Wait is parked (a CANCELLED job is no exception), then a success, then a failure.
  const bool parked = AwaitMetric("cohort_broker_waiters", 1);
  exec.Complete(ids[1], 1, "fine");
  exec.Fail(ids[2], 1, "broken");
  waiter.join();
  ASSERT_TRUE(parked) << "the Wait returned before any job failed";
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.done_size(), 3);
  EXPECT_EQ(resp.pending_size(), 0);
}

TEST_F(BrokerBehaviourTest, ReleaseJobsIsValidatedAsAWholeAndFenced) {
  cohort::v1::JobSpec later = Spec("release");
  later.mutable_delay()->set_seconds(3600);
  const std::string id = Submit({later})[0];
  auto release = [&](const std::vector<std::tuple<std::string, int, cohort::v1::TransitionReason>>& rs,
                     cohort::v1::ReleaseJobsResponse* resp) {
    cohort::v1::ReleaseJobsRequest req;
    for (const auto& [job, attempt, reason] : rs) {
      auto* r = req.add_releases();
      r->set_job_id(job);
      r->set_attempt(attempt);
      r->set_reason(reason);
    }
    auto ctx = Context();
    return stub().ReleaseJobs(ctx.get(), req, resp);
  };
  cohort::v1::ReleaseJobsResponse resp;
  // A reason that is not a release, or an unknown id, refuses the whole batch.
  EXPECT_EQ(release({{id, 0, cohort::v1::TRANSITION_REASON_RUN_AT}, {id, 0, cohort::v1::TRANSITION_REASON_SUBMITTED}},
                    &resp)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status unknown = release(
      {{id, 0, cohort::v1::TRANSITION_REASON_RUN_AT}, {"0123456789abcdef01234567", 0, cohort::v1::TRANSITION_REASON_RUN_AT}},
      &resp);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND) << unknown.error_message();
  EXPECT_EQ(Get(id).state(), cohort::v1::JOB_STATE_PENDING);
  // A stale attempt is skipped without error; the right one applies, once.
  ASSERT_TRUE(release({{id, 3, cohort::v1::TRANSITION_REASON_RUN_AT}}, &resp).ok());
  EXPECT_EQ(resp.changed_job_ids_size(), 0);
  ASSERT_TRUE(release({{id, 0, cohort::v1::TRANSITION_REASON_RUN_AT}}, &resp).ok());
  EXPECT_EQ(resp.changed_job_ids_size(), 1);
  ASSERT_TRUE(release({{id, 0, cohort::v1::TRANSITION_REASON_RUN_AT}}, &resp).ok());
  EXPECT_EQ(resp.changed_job_ids_size(), 0);
  EXPECT_EQ(Get(id).state(), cohort::v1::JOB_STATE_QUEUED);
}

TEST_F(BrokerBehaviourTest, AnInvalidHelloEndsTheStreamWithInvalidArgument) {
  struct Case {
    const char* name;
    ExecutorMessage hello;
  };
  std::vector<Case> cases = {{"empty id", Hello("", 1)}, {"capacity 0", Hello("x", 0)}, {"bad queue", Hello("x", 1)}};
  cases[2].hello.mutable_hello()->add_queues("Not A Queue");
  for (const Case& c : cases) {
    std::unique_ptr<RawStream> raw = OpenStream();
    ASSERT_TRUE(raw->stream->Write(c.hello));
    grpc::Status status = Ended(*raw);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name << ": " << status.error_message();
  }
}

TEST_F(BrokerBehaviourTest, CreditAboveCapacityIsDroppedAndHelloQueuesFilterAssigns) {
  {
    TestExecutor exec(stub(), "greedy", 2);
    exec.Grant(10);
    ASSERT_TRUE(AwaitCredits("greedy", 2)) << "credit above the capacity was kept";
  }  // gone before any job exists
  // A worker that serves only queue "mine" never gets another queue's job.
  ExecutorMessage hello = Hello("mine-only", 1);
  hello.mutable_hello()->add_queues("mine");
  std::unique_ptr<RawStream> raw = OpenStream(30s);
  ASSERT_TRUE(raw->stream->Write(hello));
  ASSERT_TRUE(raw->stream->Write(Credit(1)));
  ASSERT_TRUE(AwaitCredits("mine-only", 1));
  ASSERT_TRUE(AwaitGone("greedy")) << "the closed executor is still attached";
  const std::vector<std::string> ids = Submit({Spec("theirs"), Spec("mine")});
  BrokerMessage m;
  std::optional<BrokerMessage::Assign> assign;
  while (!assign && raw->stream->Read(&m)) {
    if (m.has_assign()) assign = m.assign();
  }
  ASSERT_TRUE(assign.has_value());
  EXPECT_EQ(assign->job().id(), ids[1]);
  raw->ctx.TryCancel();
}

TEST_F(BrokerBehaviourTest, AStaleOrSecondCompleteIsIgnoredCountedAndTheStreamStaysOpen) {
  const std::vector<std::string> ids = Submit({Spec("stale"), Spec("stale")});
  TestExecutor exec(stub(), "twice", 1);
  exec.Grant(1);
  ASSERT_EQ(NextJob(exec), ids[0]);
  exec.Complete(ids[0], 1, "first");
  exec.Complete(ids[0], 1, "second");   // a second Complete
  exec.Complete(ids[0], 9, "stale");    // another attempt
  ASSERT_TRUE(AwaitMetric("cohort_broker_stale_completions_total", 2)) << "the ignored completions were not counted";
  std::optional<cohort::v1::JobOutcome> outcome = AwaitEnd(ids[0]);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->result(), "first");
  // Still connected: the next credit gets the next job.
  exec.Grant(1);
  EXPECT_EQ(NextJob(exec), ids[1]);
}

TEST_F(BrokerBehaviourTest, ProgressIsClampedToZeroToOne) {
  const std::string id = Submit({Spec("progress")})[0];
  std::unique_ptr<RawStream> raw = OpenStream(30s);
  ASSERT_TRUE(raw->stream->Write(Hello("progress", 1)));
  ASSERT_TRUE(raw->stream->Write(Credit(1)));
  BrokerMessage m;
  while (!m.has_assign() && raw->stream->Read(&m)) {
  }
  ASSERT_TRUE(m.has_assign());
  for (double fraction : {7.0, -3.0}) {
    ExecutorMessage progress;
    progress.mutable_progress()->set_job_id(id);
    progress.mutable_progress()->set_attempt(1);
    progress.mutable_progress()->mutable_progress()->set_fraction(fraction);
    ASSERT_TRUE(raw->stream->Write(progress));
    const double want = fraction > 1 ? 1.0 : 0.0;
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    double seen = Get(id).progress().fraction();
    while (seen != want && seen != fraction && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(20ms);  // polling a condition with a bound
      seen = Get(id).progress().fraction();
    }
    EXPECT_EQ(seen, want) << "reported " << fraction;
  }
  raw->ctx.TryCancel();
}

TEST_F(BrokerBehaviourTest, ACancelRequestedWhileTheExecutorWasAwayIsSentAgainOnItsReconnect) {
  const std::string id = Submit({Spec("away")})[0];
  std::unique_ptr<RawStream> first = OpenStream(30s);
  ASSERT_TRUE(first->stream->Write(Hello("away", 1)));
  ASSERT_TRUE(first->stream->Write(Credit(1)));
  BrokerMessage m;
  while (!m.has_assign() && first->stream->Read(&m)) {
  }
  ASSERT_TRUE(m.has_assign());
  first->ctx.TryCancel();  // the stream breaks; the attempt keeps its lease (30 s)
  first->stream->Finish().error_code();
  ASSERT_TRUE(AwaitGone("away"));
  cohort::v1::CancelJobResponse cancelled;
  Cancel(id, &cancelled);
  EXPECT_EQ(cancelled.state(), cohort::v1::JOB_STATE_RUNNING);

  ExecutorMessage hello = Hello("away", 1);
  auto* running = hello.mutable_hello()->add_running();
  running->set_job_id(id);
  running->set_attempt(1);
  std::unique_ptr<RawStream> second = OpenStream(30s);
  ASSERT_TRUE(second->stream->Write(hello));
  std::optional<BrokerMessage::Cancel> cancel;
  while (!cancel && second->stream->Read(&m)) {
    if (m.has_cancel()) cancel = m.cancel();
  }
  ASSERT_TRUE(cancel.has_value()) << "no Cancel for the attempt whose cancel was requested while away";
  EXPECT_EQ(cancel->job_id(), id);
  EXPECT_EQ(cancel->attempt(), 1);
  // The executor confirms: the job ends CANCELLED, same attempt.
  ExecutorMessage done;
  done.mutable_complete()->set_job_id(id);
  done.mutable_complete()->set_attempt(1);
  done.mutable_complete()->mutable_error()->set_code("cancelled");
  ASSERT_TRUE(second->stream->Write(done));
  std::optional<cohort::v1::JobOutcome> outcome = AwaitEnd(id);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->state(), cohort::v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(Get(id).attempts_size(), 1);
  second->ctx.TryCancel();
}

TEST_F(BrokerBehaviourTest, ProgressForAStaleAttemptIsIgnored) {
  const std::string id = Submit({Spec("progress")})[0];
  std::unique_ptr<RawStream> raw = OpenStream(30s);
  ASSERT_TRUE(raw->stream->Write(Hello("progress", 1)));
  ASSERT_TRUE(raw->stream->Write(Credit(1)));
  BrokerMessage m;
  while (!m.has_assign() && raw->stream->Read(&m)) {
  }
  ASSERT_TRUE(m.has_assign());
  auto progress = [&](int attempt, double fraction) {
    ExecutorMessage p;
    p.mutable_progress()->set_job_id(id);
    p.mutable_progress()->set_attempt(attempt);
    p.mutable_progress()->mutable_progress()->set_fraction(fraction);
    return p;
  };
  ASSERT_TRUE(raw->stream->Write(progress(1, 0.25)));
  ASSERT_TRUE(raw->stream->Write(progress(9, 0.5)));  // not the current attempt
  // A stale Complete behind them is counted once the broker has read all three.
  ExecutorMessage stale;
  stale.mutable_complete()->set_job_id(id);
  stale.mutable_complete()->set_attempt(9);
  stale.mutable_complete()->set_result("stale");
  ASSERT_TRUE(raw->stream->Write(stale));
  ASSERT_TRUE(AwaitMetric("cohort_broker_stale_completions_total", 1));
  EXPECT_EQ(Get(id).progress().fraction(), 0.25);
  raw->ctx.TryCancel();
}

TEST_F(BrokerBehaviourTest, ABrokerShuttingDownSendsDrainOnEveryExecutorStream) {
  std::unique_ptr<RawStream> raw = OpenStream(30s);
  ASSERT_TRUE(raw->stream->Write(Hello("drained", 1)));
  ASSERT_TRUE(AwaitCredits("drained", 0));
  std::thread stopper([&] { EXPECT_TRUE(broker_->Terminate().ok()); });
  bool drained = false;
  BrokerMessage m;
  while (raw->stream->Read(&m)) {
    if (m.has_drain()) drained = true;
  }
  raw->stream->Finish().error_code();
  stopper.join();
  EXPECT_TRUE(drained) << "the stream ended without a Drain";
}

TEST_F(BrokerBehaviourTest, WaitFirstExceptionReturnsAtTheFirstFailureWhileOthersRun) {
  const std::vector<std::string> ids = Submit({Spec("fx"), Spec("fx")});
  TestExecutor exec(stub(), "fx", 2);
  exec.Grant(2);
  ASSERT_EQ(NextJob(exec), ids[0]);
  ASSERT_EQ(NextJob(exec), ids[1]);
  cohort::v1::WaitRequest req;
  for (const auto& id : ids) req.add_job_ids(id);
  req.set_return_when(cohort::v1::RETURN_WHEN_FIRST_EXCEPTION);
  req.mutable_timeout()->set_seconds(60);  // far beyond the bound below
  cohort::v1::WaitResponse resp;
  grpc::Status status;
  const auto start = std::chrono::steady_clock::now();
  std::thread waiter([&] {
    auto ctx = Context(90s);
    status = stub().Wait(ctx.get(), req, &resp);
  });
  const bool parked = AwaitMetric("cohort_broker_waiters", 1);
  exec.Fail(ids[1], 1, "broken");
  waiter.join();
  ASSERT_TRUE(parked);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // Returned at the failure, not at the 60 s timeout (an ALL_COMPLETED would wait).
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
  ASSERT_EQ(resp.done_size(), 1);
  EXPECT_EQ(resp.done(0).job_id(), ids[1]);
  EXPECT_EQ(resp.done(0).state(), cohort::v1::JOB_STATE_FAILED);
  EXPECT_EQ(std::vector<std::string>(resp.pending().begin(), resp.pending().end()), std::vector<std::string>{ids[0]});
}

TEST_F(BrokerBehaviourTest, GatherRaisesTheFailureThatEndedEarliestWhenSeveralHave) {
  const std::vector<std::string> ids = Submit({Spec("gx"), Spec("gx"), Spec("gx")});
  TestExecutor exec(stub(), "gx", 3);
  exec.Grant(3);
  for (int i = 0; i < 3; ++i) ASSERT_FALSE(NextJob(exec).empty());
  exec.Fail(ids[2], 1, "first to fail");
  ASSERT_TRUE(AwaitEnd(ids[2]).has_value());
  exec.Fail(ids[1], 1, "second to fail");
  ASSERT_TRUE(AwaitEnd(ids[1]).has_value());
  cohort::v1::GatherRequest req;
  for (const auto& id : ids) req.add_job_ids(id);
  cohort::v1::GatherResponse resp;
  auto ctx = Context();
  grpc::Status status = stub().Gather(ctx.get(), req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);
  // Not the first failed job in request order (ids[1]): the earliest to end.
  EXPECT_NE(status.error_message().find(ids[2]), std::string::npos) << status.error_message();
  EXPECT_EQ(status.error_message().find(ids[1]), std::string::npos) << status.error_message();
  EXPECT_NE(status.error_message().find("first to fail"), std::string::npos) << status.error_message();
}

TEST_F(BrokerBehaviourTest, TheBrokersResultTtlAppliesToAJobWithoutItsOwn) {
  StartBroker({"--result-ttl=1s"});
  const std::string id = Submit({Spec("ttl")})[0];
  TestExecutor exec(stub(), "ttl", 1);
  exec.Grant(1);
  ASSERT_EQ(NextJob(exec), id);
  exec.Complete(id, 1, "short-lived");
  ASSERT_TRUE(AwaitEnd(id).has_value());
  cohort::v1::Job job;
  ASSERT_TRUE(TryGet(id, &job).ok());
  EXPECT_EQ(job.expire_time().seconds() - job.end_time().seconds(), 1);
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  grpc::Status status;
  while ((status = TryGet(id)).ok() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(50ms);  // polling a condition with a bound
  }
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(BrokerBehaviourTest, ListJobsAndWatchEventsCarryNeitherPayloadNorResult) {
  const std::string id = Submit({Spec("lean")})[0];
  TestExecutor exec(stub(), "lean", 1);
  exec.Grant(1);
  ASSERT_EQ(NextJob(exec), id);
  exec.Complete(id, 1, "the result");
  ASSERT_TRUE(AwaitEnd(id).has_value());
  cohort::v1::Job full = Get(id);
  ASSERT_EQ(full.spec().payload(), "payload");
  ASSERT_EQ(full.result(), "the result");

  cohort::v1::ListJobsRequest list;
  list.set_queue("lean");
  cohort::v1::ListJobsResponse listed;
  auto ctx = Context();
  ASSERT_TRUE(stub().ListJobs(ctx.get(), list, &listed).ok());
  ASSERT_EQ(listed.jobs_size(), 1);
  EXPECT_EQ(listed.jobs(0).spec().payload(), "");
  EXPECT_FALSE(listed.jobs(0).has_result());
  EXPECT_EQ(listed.jobs(0).state(), cohort::v1::JOB_STATE_SUCCEEDED);

  cohort::v1::WatchRequest watch;
  auto wctx = Context(10s);
  auto reader = stub().Watch(wctx.get(), watch);
  int seen = 0;
  cohort::v1::WatchResponse batch;
  while (seen < 3 && reader->Read(&batch)) {
    for (const auto& e : batch.events()) {
      if (e.job_id() != id) continue;
      ++seen;
      EXPECT_EQ(e.job().spec().payload(), "") << "event " << e.sequence();
      EXPECT_FALSE(e.job().has_result()) << "event " << e.sequence();
      EXPECT_EQ(e.job().state(), e.to_state());
    }
  }
  EXPECT_EQ(seen, 3);  // SUBMITTED (QUEUED), ASSIGNED, COMPLETED
  wctx->TryCancel();
  reader->Finish().error_code();
}

}  // namespace
}  // namespace cohort::testing
