// kill -9 of the broker while clients submit and an executor holds leases: after a
// restart on the same data directory every acknowledged job is there, and runs to
// exactly one terminal state (attempts that were running come back as attempt 2).
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/broker_fixture.h"

namespace cohort::testing {
namespace {

TEST_F(BrokerTest, EveryAcknowledgedSubmitSurvivesKill9) {
  constexpr int kAcksBeforeKill = 400;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> acknowledged;
  std::atomic<bool> stop{false};

  // An executor holds a few leases when the broker dies.
  auto exec = std::make_unique<TestExecutor>(stub(), "before-crash", 4);
  exec->Grant(4);

  std::thread client([&] {
    while (!stop) {
      cohort::v1::SubmitRequest req;
      for (int i = 0; i < 4; ++i) {
        cohort::v1::JobSpec s = Spec();
        s.set_max_attempts(2);
        *req.add_jobs() = s;
      }
      cohort::v1::SubmitResponse resp;
      auto ctx = Context(std::chrono::seconds(5));
      if (!stub().Submit(ctx.get(), req, &resp).ok()) return;  // the broker is gone
      std::lock_guard<std::mutex> lock(mu);
      acknowledged.insert(acknowledged.end(), resp.job_ids().begin(), resp.job_ids().end());
      cv.notify_all();
    }
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return acknowledged.size() >= kAcksBeforeKill; }));
  }
  std::vector<std::string> leased;
  for (int i = 0; i < 4; ++i) leased.push_back(exec->NextAssign()->job().id());

  ASSERT_TRUE(broker_->Kill9().ok());
  stop = true;
  client.join();
  exec->Drop();
  exec.reset();

  StartBroker();
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(mu);
    ids = acknowledged;
  }
  ASSERT_GE(ids.size(), static_cast<std::size_t>(kAcksBeforeKill));
  for (const std::string& id : ids) {
    cohort::v1::Job job = Get(id);
    ASSERT_EQ(job.id(), id) << "acknowledged job " << id << " was lost";
  }
  for (const std::string& id : leased) {
    cohort::v1::Job job = Get(id);
    EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_QUEUED);
    EXPECT_EQ(job.attempts(0).error().code(), "lease_expired");
  }

  // Run every job that exists to completion: each is assigned exactly once now.
  cohort::v1::ListJobsRequest list;
  list.set_page_size(1000);
  std::set<std::string> all;
  while (true) {
    cohort::v1::ListJobsResponse page;
    auto ctx = Context();
    ASSERT_TRUE(stub().ListJobs(ctx.get(), list, &page).ok());
    for (const auto& j : page.jobs()) all.insert(j.id());
    if (page.next_page_token().empty()) break;
    list.set_page_token(page.next_page_token());
  }
  TestExecutor after(stub(), "after-crash", 64);
  after.Grant(64);
  std::set<std::string> seen;
  while (seen.size() < all.size()) {
    auto assign = after.NextAssign();
    ASSERT_TRUE(assign.has_value());
    ASSERT_TRUE(seen.insert(assign->job().id()).second) << "assigned twice: " << assign->job().id();
    after.Complete(assign->job().id(), assign->attempt(), "ok");
    after.Grant(1);
  }
  cohort::v1::GatherRequest gather;
  for (const std::string& id : ids) gather.add_job_ids(id);
  cohort::v1::GatherResponse gathered;
  auto ctx = Context();
  grpc::Status s = stub().Gather(ctx.get(), gather, &gathered);
  ASSERT_TRUE(s.ok()) << s.error_message();
  for (const auto& o : gathered.outcomes()) EXPECT_EQ(o.state(), cohort::v1::JOB_STATE_SUCCEEDED);
}

}  // namespace
}  // namespace cohort::testing
