// The engine never stages a batch the store would refuse (a refused commit stops the
// broker): multi-job transitions split into several commits, and a Submit that could
// not fit in one commit is refused before anything is staged.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/runtime/test_util.h"
#include "libs/store/mem_job_store.h"
#include "services/broker/batch_budget.h"
#include "services/broker/broker_engine.h"
#include "services/broker/engine_test_util.h"

namespace cohort::broker {
namespace {

using runtime::Task;
using testing::Batch;
using testing::Credit;
using testing::FakeChannel;
using testing::Hello;
using testing::Spec;

constexpr store::BatchLimits kSmallBatches{.max_bytes = 64 << 10, .max_records = 1000};
const std::string kBigPayload(20 << 10, 'x');  // one job fits a batch, three do not

class BatchBudgetTest : public testing::EngineTest {
 protected:
  BatchBudgetTest() : EngineTest(kSmallBatches) {}
};

TEST_F(BatchBudgetTest, DispatchOfManyLargeJobsCommitsInSeveralBatchesAndEveryAssignmentIsDurable) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids;
    for (int i = 0; i < 10; ++i) {
      auto submitted = co_await e.Submit(Batch(Spec("big", 0, kBigPayload)), false);
      EXPECT_TRUE(submitted.ok()) << submitted.status();
      if (submitted.ok()) ids.push_back((*submitted)[0]);
    }
    const std::uint64_t commits_before = store_.stats().commits;
    FakeChannel exec;
    std::uint64_t session = *e.Attach(Hello("x1", 10).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(10)).ok());  // one dispatch round assigns all ten
    co_await Settle();
    EXPECT_EQ(exec.Assigns().size(), 10u);
    EXPECT_GE(store_.stats().commits - commits_before, 4u);  // a few such jobs per batch at most
    for (const std::string& id : ids) {
      absl::StatusOr<cohort::v1::Job> stored = co_await store_.GetJob(id);
      EXPECT_TRUE(stored.ok()) << stored.status();
      if (stored.ok()) {
        EXPECT_EQ(stored->state(), cohort::v1::JOB_STATE_RUNNING) << id;
      }
    }
  });
}

TEST_F(BatchBudgetTest, SubmitThatCouldNotFitInOneCommitIsRefusedWithTheLimitAndCreatesNothing) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    auto refused = co_await e.Submit(Batch(Spec("big", 0, kBigPayload), Spec("big", 0, kBigPayload)), false);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(refused.status().message().find(std::to_string(kSmallBatches.max_bytes)), std::string::npos)
        << refused.status();
    EXPECT_LT(refused.status().message().size(), 1024u);
    cohort::v1::ListJobsRequest all;
    EXPECT_EQ((co_await e.ListJobs(all))->jobs_size(), 0);
    auto one = co_await e.Submit(Batch(Spec("big", 0, kBigPayload)), false);
    EXPECT_TRUE(one.ok()) << one.status();
  });
}

TEST(BatchBudget, TransitionEstimateBoundsWhatATransitionStages) {
  cohort::v1::Job job;
  job.set_id("job-1");
  job.set_state(cohort::v1::JOB_STATE_QUEUED);
  job.set_sequence(7);
  job.mutable_spec()->set_queue(std::string(256, 'q'));
  job.mutable_spec()->set_payload(kBigPayload);
  cohort::v1::Job previous = job;
  previous.set_state(cohort::v1::JOB_STATE_PENDING);
  *previous.mutable_not_before() = job.create_time();
  store::JobBatch batch;
  batch.PutJob(job, &previous);
  cohort::v1::JobEvent event;
  event.set_sequence(7);
  *event.mutable_job() = job;  // the engine's summary is never larger
  batch.AppendEvent(event);
  EXPECT_LE(batch.bytes(), TransitionBytes(previous));
  EXPECT_LE(batch.records(), kTransitionRecords);
}

}  // namespace
}  // namespace cohort::broker
