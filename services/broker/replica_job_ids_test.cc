// A new leader's job ids sort after every stored id, even when its clock is behind the
// clock of the replica that made them: ids are k-sortable, and bulk operations and
// ListJobs paging walk them in order (BrokerApp floors its id generator at the largest
// recovered id).
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "libs/common/ids.h"
#include "libs/runtime/runtime.h"
#include "libs/store/mem_job_store.h"
#include "prometheus/registry.h"
#include "services/broker/broker_app.h"
#include "services/broker/broker_engine.h"

namespace cohort::broker {
namespace {

TEST(ReplicaJobIds, ANewLeaderIssuesIdsAboveTheLargestStoredOneWhateverItsClock) {
  runtime::EventLoop loop;
  auto store = std::make_unique<store::MemJobStore>();
  // Made by a replica whose clock was an hour ahead of this one.
  common::JobIdGenerator ahead(7, [] { return absl::Now() + absl::Hours(1); });
  cohort::v1::Job stored;
  stored.set_id(ahead.Next());
  stored.mutable_spec()->set_queue("q");
  stored.mutable_spec()->set_kind("builtin.echo");
  stored.set_state(cohort::v1::JOB_STATE_SUCCEEDED);
  stored.set_result("done");
  stored.mutable_create_time()->set_seconds(absl::ToUnixSeconds(absl::Now()));
  stored.mutable_end_time()->set_seconds(absl::ToUnixSeconds(absl::Now()));
  store::JobBatch batch;
  batch.PutJob(stored, nullptr);
  ASSERT_TRUE(runtime::RunUntilComplete(loop, store->Commit(std::move(batch))).ok());

  BrokerAppOptions options;
  options.data_dir = ::testing::TempDir();
  options.min_free_disk = 0;
  prometheus::Registry registry;
  absl::StatusOr<std::unique_ptr<BrokerApp>> app = BrokerApp::Create(loop, registry, options, std::move(store));
  ASSERT_TRUE(app.ok()) << app.status();

  std::vector<cohort::v1::JobSpec> specs(3);
  for (cohort::v1::JobSpec& spec : specs) {
    spec.set_queue("q");
    spec.set_kind("builtin.echo");
  }
  absl::StatusOr<std::vector<std::string>> ids =
      runtime::RunUntilComplete(loop, (*app)->engine().Submit(std::move(specs), false));
  ASSERT_TRUE(ids.ok()) << ids.status();
  for (const std::string& id : *ids) EXPECT_GT(id, stored.id());
  EXPECT_LT((*ids)[0], (*ids)[1]);
  EXPECT_LT((*ids)[1], (*ids)[2]);

  runtime::Event stop;
  stop.Set();
  runtime::RunUntilComplete(loop, (*app)->Run(stop, [] {}));
}

}  // namespace
}  // namespace cohort::broker
