// Queues on the engine (manual clock, in-memory store): created explicitly or by the
// first Submit, never by pause or limits; deleted empty or with their jobs; capped in
// number; their metric labels bounded.
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/broker/broker_engine.h"
#include "services/broker/engine_test_util.h"

namespace cohort::broker {
namespace {

using cohort::v1::JobSpec;
using runtime::Task;
using testing::Batch;
using testing::Credit;
using testing::FakeChannel;
using testing::Hello;
using testing::Spec;
using ::testing::HasSubstr;

using QueueAdminTest = testing::EngineTest;

std::vector<std::string> QueueNames(const BrokerEngine& e) {
  std::vector<std::string> names;
  const cohort::v1::ListQueuesResponse listed = e.ListQueues();
  for (const auto& q : listed.queues()) names.push_back(q.name());
  return names;
}

cohort::v1::CreateQueueRequest Create(std::string name) {
  cohort::v1::CreateQueueRequest r;
  r.set_queue(std::move(name));
  return r;
}

TEST_F(QueueAdminTest, PauseResumeAndLimitsOfAnUnknownQueueAreNotFoundAndCreateNothing) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    absl::Status paused = co_await e.PauseQueue("nosuchqueue", true);
    EXPECT_EQ(paused.code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(std::string(paused.message()), HasSubstr("queue \"nosuchqueue\" does not exist"));
    EXPECT_EQ((co_await e.PauseQueue("nosuchqueue", false)).code(), absl::StatusCode::kNotFound);
    cohort::v1::QueueLimits limits;
    limits.set_max_concurrency(1);
    EXPECT_EQ((co_await e.SetQueueLimits("nosuchqueue", limits)).status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ((co_await e.SetQueueLimits("nosuchqueue", cohort::v1::QueueLimits())).status().code(),
              absl::StatusCode::kNotFound);
    // A malformed name or limit is still INVALID_ARGUMENT, checked first.
    EXPECT_EQ((co_await e.PauseQueue("Not Valid", true)).code(), absl::StatusCode::kInvalidArgument);
    limits.set_max_concurrency(-1);
    EXPECT_EQ((co_await e.SetQueueLimits("nosuchqueue", limits)).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(QueueNames(e).empty());
  });
  engine_.reset();
  WithEngine([](BrokerEngine& e) -> Task<void> {
    EXPECT_TRUE(QueueNames(e).empty());  // nothing was written either
    co_return;
  });
}

TEST_F(QueueAdminTest, CreateQueueStartsPausedWithItsLimitsIsIdempotentAndDurable) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    cohort::v1::CreateQueueRequest req = Create("reports");
    req.set_paused(true);
    req.mutable_limits()->set_max_concurrency(3);
    absl::StatusOr<cohort::v1::CreateQueueResponse> created = co_await e.CreateQueue(req);
    EXPECT_TRUE(created.ok()) << created.status();
    EXPECT_FALSE(created->already_existed());
    absl::StatusOr<cohort::v1::CreateQueueResponse> again = co_await e.CreateQueue(Create("reports"));
    EXPECT_TRUE(again->already_existed());
    cohort::v1::QueueInfo info = e.ListQueues().queues(0);
    EXPECT_TRUE(info.paused());  // left as it was
    EXPECT_EQ(info.limits().max_concurrency(), 3);
    EXPECT_EQ(info.limits().weight(), 1);
    // A paused queue does not dispatch until resumed.
    co_await e.Submit(Batch(Spec("reports")), false);
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1)).ok());
    co_await Settle();
    EXPECT_TRUE(exec.Assigns().empty());
    EXPECT_TRUE((co_await e.PauseQueue("reports", false)).ok());
    co_await Settle();
    EXPECT_EQ(exec.Assigns().size(), 1u);
    EXPECT_EQ((co_await e.CreateQueue(Create("Bad Name"))).status().code(), absl::StatusCode::kInvalidArgument);
    cohort::v1::CreateQueueRequest bad_limits = Create("fine");
    bad_limits.mutable_limits()->set_weight(5000);
    EXPECT_EQ((co_await e.CreateQueue(bad_limits)).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(QueueNames(e), std::vector<std::string>{"reports"});
    EXPECT_TRUE((co_await e.CreateQueue(Create("empty"))).ok());
  });
  engine_.reset();
  WithEngine([](BrokerEngine& e) -> Task<void> {
    EXPECT_EQ(QueueNames(e), (std::vector<std::string>{"empty", "reports"}));
    co_return;
  });
}

TEST_F(QueueAdminTest, TheFirstSubmitCreatesTheQueueEvenForPendingJobsAndItOutlivesThem) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    JobSpec later = Spec("later");
    later.mutable_delay()->set_seconds(3600);
    co_await e.Submit(Batch(later), false);
    EXPECT_EQ(QueueNames(e), std::vector<std::string>{"later"});
    EXPECT_TRUE((co_await e.PauseQueue("later", true)).ok());
    co_return;
  });
  engine_.reset();
  WithEngine([](BrokerEngine& e) -> Task<void> {
    EXPECT_EQ(QueueNames(e), std::vector<std::string>{"later"});
    EXPECT_TRUE(e.ListQueues().queues(0).paused());
    co_return;
  });
}

TEST_F(QueueAdminTest, DeleteQueueRefusesAQueueWithJobsUnlessAskedToDeleteThemAndNeverARunningOne) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    EXPECT_EQ((co_await e.DeleteQueue("nosuchqueue", false)).status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ((co_await e.DeleteQueue("Bad Name", false)).status().code(), absl::StatusCode::kInvalidArgument);
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q"), Spec("q"), Spec("q")), false);
    absl::StatusOr<cohort::v1::DeleteQueueResponse> held = co_await e.DeleteQueue("q", false);
    EXPECT_EQ(held.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(held.status().message()), HasSubstr("holds 3 jobs"));
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1)).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob(ids[0])->state(), cohort::v1::JOB_STATE_RUNNING);
    absl::StatusOr<cohort::v1::DeleteQueueResponse> running = co_await e.DeleteQueue("q", true);
    EXPECT_EQ(running.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(running.status().message()), HasSubstr("RUNNING"));
    EXPECT_TRUE(e.GetJob(ids[1]).ok());  // nothing deleted
    EXPECT_TRUE(e.OnExecutorMessage(s, testing::Complete(ids[0], 1, "done")).ok());
    co_await Settle();
    const std::int64_t sequence = e.committed_sequence();
    absl::StatusOr<cohort::v1::DeleteQueueResponse> deleted = co_await e.DeleteQueue("q", true);
    EXPECT_TRUE(deleted.ok()) << deleted.status();
    EXPECT_EQ(deleted->deleted_jobs(), 3);
    EXPECT_EQ(e.committed_sequence(), sequence + 3);  // one DELETED event per job
    for (const std::string& id : ids) EXPECT_EQ(e.GetJob(id).status().code(), absl::StatusCode::kNotFound);
    EXPECT_TRUE(QueueNames(e).empty());
    EXPECT_EQ((co_await e.PauseQueue("q", true)).code(), absl::StatusCode::kNotFound);
    EXPECT_TRUE((co_await e.CreateQueue(Create("empty"))).ok());
    EXPECT_EQ((co_await e.DeleteQueue("empty", false))->deleted_jobs(), 0);
  });
  engine_.reset();
  WithEngine([](BrokerEngine& e) -> Task<void> {
    EXPECT_TRUE(QueueNames(e).empty());
    EXPECT_EQ((co_await e.ListJobs(cohort::v1::ListJobsRequest()))->jobs_size(), 0);
    co_return;
  });
}

TEST_F(QueueAdminTest, DeleteQueueWithJobsRefusesAParentOfAnUnfinishedJobElsewhere) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::string parent = (*co_await e.Submit(Batch(Spec("a")), false))[0];
    JobSpec child = Spec("b");
    child.add_depends_on(parent);
    co_await e.Submit(Batch(child), false);
    absl::StatusOr<cohort::v1::DeleteQueueResponse> r = co_await e.DeleteQueue("a", true);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("unfinished dependent in queue \"b\""));
    EXPECT_TRUE(e.GetJob(parent).ok());
    // Within one queue, parent and child go together.
    std::string p2 = (*co_await e.Submit(Batch(Spec("c")), false))[0];
    JobSpec c2 = Spec("c");
    c2.add_depends_on(p2);
    co_await e.Submit(Batch(c2), false);
    EXPECT_EQ((co_await e.DeleteQueue("c", true))->deleted_jobs(), 2);
  });
}

TEST_F(QueueAdminTest, MaxQueuesRefusesACreateQueueOrSubmitThatWouldAddOneMore) {
  options_.max_queues = 3;
  WithEngine([](BrokerEngine& e) -> Task<void> {
    EXPECT_TRUE((co_await e.CreateQueue(Create("a"))).ok());
    co_await e.Submit(Batch(Spec("b"), Spec("c")), false);
    absl::StatusOr<cohort::v1::CreateQueueResponse> over = co_await e.CreateQueue(Create("d"));
    EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(std::string(over.status().message()), HasSubstr("--max-queues of 3"));
    EXPECT_TRUE((co_await e.CreateQueue(Create("a")))->already_existed());  // not one more
    const std::int64_t sequence = e.committed_sequence();
    absl::StatusOr<std::vector<std::string>> submitted = co_await e.Submit(Batch(Spec("a"), Spec("e")), false);
    EXPECT_EQ(submitted.status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(e.committed_sequence(), sequence);  // all or nothing: not even the job for "a"
    EXPECT_TRUE((co_await e.Submit(Batch(Spec("a"), Spec("b")), false)).ok());
    EXPECT_TRUE((co_await e.DeleteQueue("a", true)).ok());
    EXPECT_TRUE((co_await e.CreateQueue(Create("d"))).ok());
    EXPECT_EQ(QueueNames(e), (std::vector<std::string>{"b", "c", "d"}));
  });
}

// The series of the queue-labelled families, counted by label value.
std::set<std::string> QueueLabels(prometheus::Registry& registry) {
  std::set<std::string> labels;
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    for (const prometheus::ClientMetric& metric : family.metric) {
      for (const prometheus::ClientMetric::Label& label : metric.label) {
        if (label.name == "queue") labels.insert(label.value);
      }
    }
  }
  return labels;
}

TEST_F(QueueAdminTest, MetricLabelsStayBoundedWhateverQueueNamesClientsUse) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    for (int i = 0; i < 300; ++i) co_await e.Submit(Batch(Spec(absl::StrCat("q", i))), false);
    co_await Settle();
    std::set<std::string> labels = QueueLabels(registry_);
    EXPECT_EQ(labels.size(), 101u);  // the first 100 names and "_other"
    EXPECT_TRUE(labels.contains("q0"));
    EXPECT_TRUE(labels.contains("_other"));
    EXPECT_FALSE(labels.contains("q100"));
    // "_other"'s depth is the sum over the queues beyond the cap.
    for (const prometheus::MetricFamily& family : registry_.Collect()) {
      if (family.name != "cohort_broker_queue_depth") continue;
      for (const prometheus::ClientMetric& metric : family.metric) {
        if (metric.label.at(0).value == "_other") EXPECT_EQ(metric.gauge.value, 200);
      }
    }
    // A deleted queue's gauges go.
    EXPECT_TRUE((co_await e.DeleteQueue("q0", true)).ok());
    co_await Settle();
    for (const prometheus::MetricFamily& family : registry_.Collect()) {
      if (family.name != "cohort_broker_queue_depth") continue;
      for (const prometheus::ClientMetric& metric : family.metric) EXPECT_NE(metric.label.at(0).value, "q0");
    }
  });
}

JobSpec OfKind(std::string queue, std::string kind) {
  JobSpec s = Spec(std::move(queue));
  s.set_kind(std::move(kind));
  return s;
}

TEST_F(QueueAdminTest, MaxKindsRefusesASubmitThatWouldBringOneMoreKindAndChangesNothing) {
  options_.max_kinds = 3;
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    EXPECT_TRUE((co_await e.Submit(Batch(OfKind("a", "k1"), OfKind("a", "k2")), false)).ok());
    EXPECT_TRUE((co_await e.Submit(Batch(OfKind("a", "k1"), OfKind("b", "k3")), false)).ok());
    const std::int64_t sequence = e.committed_sequence();
    const std::vector<std::string> queues = QueueNames(e);
    // A long kind name is quoted as a bounded prefix.
    const std::string long_kind(64, 'x');
    absl::StatusOr<std::vector<std::string>> over =
        co_await e.Submit(Batch(OfKind("a", "k1"), OfKind("c", long_kind)), false);
    EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(std::string(over.status().message()), HasSubstr("--max-kinds of 3 (3 in use)"));
    EXPECT_LT(over.status().message().size(), 400u);
    EXPECT_EQ(e.committed_sequence(), sequence);  // all or nothing: not the k1 job, nor queue "c"
    EXPECT_EQ(QueueNames(e), queues);
    // Kinds already held are always accepted; a kind goes with its last job.
    EXPECT_TRUE((co_await e.Submit(Batch(OfKind("b", "k2"), OfKind("b", "k3")), false)).ok());
    EXPECT_TRUE((co_await e.DeleteQueue("a", true)).ok());  // k1's last jobs
    EXPECT_TRUE((co_await e.Submit(Batch(OfKind("b", "k4")), false)).ok());
    EXPECT_EQ((co_await e.Submit(Batch(OfKind("b", "k1")), false)).status().code(),
              absl::StatusCode::kResourceExhausted);
    co_await Settle();
    // No broker series is labelled by kind, whatever kinds clients use.
    for (const prometheus::MetricFamily& family : registry_.Collect()) {
      for (const prometheus::ClientMetric& metric : family.metric) {
        for (const prometheus::ClientMetric::Label& label : metric.label) EXPECT_NE(label.name, "kind") << family.name;
      }
    }
  });
}

TEST_F(QueueAdminTest, ListQueuesNamesAtMostThirtyTwoUnservedKindsInOrderAndCountsThemAll) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> kinds;
    for (int i = 0; i < 40; ++i) {
      kinds.push_back(absl::StrCat("kind-", 100 + i));
      co_await e.Submit(Batch(OfKind("q", kinds.back()), OfKind("q", kinds.back())), false);
    }
    co_await e.Submit(Batch(OfKind("few", "k1")), false);
    const cohort::v1::ListQueuesResponse listed = e.ListQueues();
    EXPECT_EQ(listed.queues_size(), 2);
    if (listed.queues_size() != 2) co_return;
    const cohort::v1::QueueInfo& few = listed.queues(0);
    EXPECT_EQ(few.unserved_kind_count(), 1);
    EXPECT_EQ(std::vector<std::string>(few.unserved_kinds().begin(), few.unserved_kinds().end()),
              std::vector<std::string>{"k1"});
    const cohort::v1::QueueInfo& q = listed.queues(1);
    EXPECT_EQ(q.unserved_kind_count(), 40);
    EXPECT_EQ(q.unserved(), 80);
    EXPECT_EQ(std::vector<std::string>(q.unserved_kinds().begin(), q.unserved_kinds().end()),
              std::vector<std::string>(kinds.begin(), kinds.begin() + 32));
  });
}

}  // namespace
}  // namespace cohort::broker
