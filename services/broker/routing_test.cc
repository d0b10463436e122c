// Routing by kind on the broker's engine (manual clock, in-memory store): an executor
// gets only jobs of the kinds it declared in Hello, and a queued job whose kind no
// connected executor of its queue runs is reported as unserved until one connects.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/common/message_limits.h"
#include "prometheus/registry.h"
#include "services/broker/broker_engine.h"
#include "services/broker/engine_test_util.h"

namespace cohort::broker {
namespace {

using cohort::v1::ExecutorMessage;
using cohort::v1::JobSpec;
using runtime::Task;
using testing::Batch;
using testing::Complete;
using testing::Credit;
using testing::FakeChannel;
using testing::Spec;

JobSpec KindSpec(std::string queue, std::string kind, int priority = 0) {
  JobSpec s = Spec(std::move(queue), priority);
  s.set_kind(std::move(kind));
  return s;
}

cohort::v1::ExecutorMessage::Hello HelloKinds(std::string id, int capacity, std::vector<std::string> kinds,
                                              std::vector<std::string> queues = {}) {
  ExecutorMessage m = testing::Hello(std::move(id), capacity);
  for (std::string& k : kinds) m.mutable_hello()->add_kinds(std::move(k));
  for (std::string& q : queues) m.mutable_hello()->add_queues(std::move(q));
  return m.hello();
}

// The ids of the jobs assigned on `channel`, in order.
std::vector<std::string> AssignedIds(const FakeChannel& channel) {
  std::vector<std::string> ids;
  for (const auto& m : channel.Assigns()) ids.push_back(m.assign().job().id());
  return ids;
}

// The value of cohort_broker_unserved_jobs{queue}, or -1 if it has no series.
double UnservedGauge(prometheus::Registry& registry, const std::string& queue) {
  for (const auto& family : registry.Collect()) {
    if (family.name != "cohort_broker_unserved_jobs") continue;
    for (const auto& metric : family.metric) {
      for (const auto& label : metric.label) {
        if (label.name == "queue" && label.value == queue) return metric.gauge.value;
      }
    }
  }
  return -1;
}

const cohort::v1::QueueInfo* FindQueue(const cohort::v1::ListQueuesResponse& r, const std::string& name) {
  for (const auto& q : r.queues()) {
    if (q.name() == name) return &q;
  }
  return nullptr;
}

using RoutingTest = testing::EngineTest;

TEST_F(RoutingTest, EachExecutorGetsOnlyTheKindsItDeclared) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    auto ids = co_await e.Submit(Batch(KindSpec("q", "python.upper"), KindSpec("q", "builtin.echo"),
                                       KindSpec("q", "python.upper"), KindSpec("q", "builtin.echo")),
                                 false);
    EXPECT_TRUE(ids.ok());
    FakeChannel builtins, python;
    std::uint64_t b = *e.Attach(HelloKinds("builtins", 8, {"builtin.echo", "builtin.noop"}), &builtins);
    std::uint64_t p = *e.Attach(HelloKinds("python", 8, {"python.upper"}), &python);
    EXPECT_TRUE(e.OnExecutorMessage(b, Credit(8)).ok());
    EXPECT_TRUE(e.OnExecutorMessage(p, Credit(8)).ok());
    co_await Settle();
    EXPECT_EQ(AssignedIds(builtins), (std::vector<std::string>{(*ids)[1], (*ids)[3]}));
    EXPECT_EQ(AssignedIds(python), (std::vector<std::string>{(*ids)[0], (*ids)[2]}));
  });
}

TEST_F(RoutingTest, AnExecutorWithoutKindsTakesEveryKind) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    auto ids = co_await e.Submit(Batch(KindSpec("q", "a"), KindSpec("q", "b")), false);
    EXPECT_TRUE(ids.ok());
    FakeChannel any;
    std::uint64_t s = *e.Attach(HelloKinds("any", 4, {}), &any);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(4)).ok());
    co_await Settle();
    EXPECT_EQ(AssignedIds(any), *ids);
  });
}

TEST_F(RoutingTest, PriorityAndFifoHoldAmongTheKindsAnExecutorRuns) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    auto ids = co_await e.Submit(Batch(KindSpec("q", "a", 0), KindSpec("q", "other", 9), KindSpec("q", "b", 5),
                                       KindSpec("q", "a", 5), KindSpec("q", "a", 0)),
                                 false);
    EXPECT_TRUE(ids.ok());
    FakeChannel exec;
    std::uint64_t s = *e.Attach(HelloKinds("ab", 10, {"a", "b"}), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(10)).ok());
    co_await Settle();
    // b/5 and a/5 by sequence, then a/0 twice by sequence; "other" is never offered.
    EXPECT_EQ(AssignedIds(exec), (std::vector<std::string>{(*ids)[2], (*ids)[3], (*ids)[0], (*ids)[4]}));
  });
}

TEST_F(RoutingTest, UnservedJobIsReportedAndRunsOnceAnExecutorOfItsKindConnects) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    FakeChannel builtins;
    std::uint64_t b = *e.Attach(HelloKinds("builtins", 4, {"builtin.echo"}), &builtins);
    EXPECT_TRUE(e.OnExecutorMessage(b, Credit(4)).ok());
    auto ids = co_await e.Submit(Batch(KindSpec("q", "python.upper"), KindSpec("q", "python.upper"),
                                       KindSpec("q", "builtin.echo"), KindSpec("q", "zz.other")),
                                 false);
    EXPECT_TRUE(ids.ok());
    co_await Settle();
    EXPECT_EQ(AssignedIds(builtins), (std::vector<std::string>{(*ids)[2]}));

    const cohort::v1::ListQueuesResponse before = e.ListQueues();
    const cohort::v1::QueueInfo* q = FindQueue(before, "q");
    EXPECT_NE(q, nullptr);
    if (q == nullptr) co_return;
    EXPECT_EQ(q->executors(), 1);
    EXPECT_EQ(std::vector<std::string>(q->unserved_kinds().begin(), q->unserved_kinds().end()),
              (std::vector<std::string>{"python.upper", "zz.other"}));
    EXPECT_EQ(q->unserved(), 3);
    EXPECT_TRUE(e.Unserved(*e.GetJob((*ids)[0])));
    EXPECT_FALSE(e.Unserved(*e.GetJob((*ids)[2])));  // RUNNING: not waiting for anyone
    EXPECT_EQ(UnservedGauge(registry_, "q"), 3);

    FakeChannel python;
    std::uint64_t p = *e.Attach(HelloKinds("python", 4, {"python.upper"}), &python);
    EXPECT_EQ(UnservedGauge(registry_, "q"), 1);  // the gauge moves with the executors
    EXPECT_TRUE(e.OnExecutorMessage(p, Credit(4)).ok());
    co_await Settle();
    EXPECT_EQ(AssignedIds(python), (std::vector<std::string>{(*ids)[0], (*ids)[1]}));
    EXPECT_TRUE(e.OnExecutorMessage(p, Complete((*ids)[0], 1, "DONE")).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob((*ids)[0])->state(), cohort::v1::JOB_STATE_SUCCEEDED);

    const cohort::v1::ListQueuesResponse listed = e.ListQueues();
    const cohort::v1::QueueInfo* after = FindQueue(listed, "q");
    EXPECT_NE(after, nullptr);
    if (after == nullptr) co_return;
    EXPECT_EQ(after->executors(), 2);
    EXPECT_EQ(std::vector<std::string>(after->unserved_kinds().begin(), after->unserved_kinds().end()),
              (std::vector<std::string>{"zz.other"}));
    EXPECT_EQ(after->unserved(), 1);
    EXPECT_TRUE(e.Unserved(*e.GetJob((*ids)[3])));
    EXPECT_EQ(UnservedGauge(registry_, "q"), 1);

    e.Detach(p);  // broken stream: the python kind is unserved again for new jobs
    auto more = co_await e.Submit(Batch(KindSpec("q", "python.upper")), false);
    EXPECT_TRUE(more.ok());
    co_await Settle();
    EXPECT_TRUE(e.Unserved(*e.GetJob((*more)[0])));
    EXPECT_EQ(UnservedGauge(registry_, "q"), 2);
  });
}

TEST_F(RoutingTest, AnExecutorOfAnotherQueueDoesNotServeAKind) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    FakeChannel elsewhere;
    std::uint64_t s = *e.Attach(HelloKinds("elsewhere", 4, {"a"}, {"other"}), &elsewhere);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(4)).ok());
    auto ids = co_await e.Submit(Batch(KindSpec("q", "a")), false);
    EXPECT_TRUE(ids.ok());
    co_await Settle();
    EXPECT_TRUE(elsewhere.Assigns().empty());
    EXPECT_TRUE(e.Unserved(*e.GetJob((*ids)[0])));
    const cohort::v1::ListQueuesResponse listed = e.ListQueues();
    const cohort::v1::QueueInfo* q = FindQueue(listed, "q");
    EXPECT_NE(q, nullptr);
    if (q != nullptr) {
      EXPECT_EQ(q->executors(), 0);
    }
  });
}

TEST_F(RoutingTest, ListExecutorsReportsTheDeclaredKinds) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    FakeChannel a, b;
    EXPECT_TRUE(e.Attach(HelloKinds("a", 1, {"x.one", "x.two"}), &a).ok());
    EXPECT_TRUE(e.Attach(HelloKinds("b", 1, {}), &b).ok());
    const cohort::v1::ListExecutorsResponse list = e.ListExecutors();
    EXPECT_EQ(list.executors_size(), 2);
    if (list.executors_size() != 2) co_return;
    EXPECT_EQ(std::vector<std::string>(list.executors(0).kinds().begin(), list.executors(0).kinds().end()),
              (std::vector<std::string>{"x.one", "x.two"}));
    EXPECT_TRUE(list.executors(1).kinds().empty());
    co_return;
  });
}

TEST_F(RoutingTest, HelloWithABadKindListIsInvalidArgument) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    FakeChannel c;
    absl::StatusOr<std::uint64_t> spaced = e.Attach(HelloKinds("x", 1, {"Not A Kind"}), &c);
    EXPECT_EQ(spaced.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(spaced.status().message().find("hello.kinds: \"Not A Kind\" is invalid"), std::string::npos)
        << spaced.status();
    absl::StatusOr<std::uint64_t> builtin = e.Attach(HelloKinds("x", 1, {"builtin.nope"}), &c);
    EXPECT_EQ(builtin.status().code(), absl::StatusCode::kInvalidArgument);
    absl::StatusOr<std::uint64_t> empty = e.Attach(HelloKinds("x", 1, {""}), &c);
    EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
    std::vector<std::string> many;
    for (int i = 0; i <= common::kMaxExecutorKinds; ++i) many.push_back("k" + std::to_string(i));
    absl::StatusOr<std::uint64_t> too_many = e.Attach(HelloKinds("x", 1, many), &c);
    EXPECT_EQ(too_many.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(too_many.status().message().find("the limit is 256"), std::string::npos) << too_many.status();
    many.pop_back();  // exactly the limit is fine
    EXPECT_TRUE(e.Attach(HelloKinds("x", 1, many), &c).ok());
    co_return;
  });
}

}  // namespace
}  // namespace cohort::broker
