// ListJobs on the engine (manual clock, in-memory store): every kind of filter, both
// orders, and stable paging while jobs come and change between pages.
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/proto_time.h"
#include "services/broker/broker_engine.h"
#include "services/broker/engine_test_util.h"

namespace cohort::broker {
namespace {

using cohort::v1::Job;
using cohort::v1::JobSpec;
using cohort::v1::ListJobsRequest;
using runtime::Task;
using testing::Batch;
using testing::Credit;
using testing::Fail;
using testing::FakeChannel;
using testing::Hello;
using testing::Spec;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

using JobListingTest = testing::EngineTest;

JobSpec Labelled(std::string queue, std::string kind, std::map<std::string, std::string> labels) {
  JobSpec s = Spec(std::move(queue));
  s.set_kind(std::move(kind));
  for (auto& [k, v] : labels) (*s.mutable_labels())[k] = v;
  return s;
}

// Every page of a listing, following next_page_token; the ids in order.
Task<std::vector<std::string>> ListAll(BrokerEngine& e, ListJobsRequest req) {
  std::vector<std::string> ids;
  for (int pages = 0; pages < 1000; ++pages) {
    absl::StatusOr<cohort::v1::ListJobsResponse> r = (co_await e.ListJobs(req));
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) break;
    for (const Job& job : r->jobs()) ids.push_back(job.id());
    if (r->next_page_token().empty()) break;
    req.set_page_token(r->next_page_token());
  }
  co_return ids;
}

std::vector<std::string> Pick(const std::vector<std::string>& ids, std::vector<int> which) {
  std::vector<std::string> out;
  for (int i : which) out.push_back(ids[i]);
  return out;
}

TEST_F(JobListingTest, EachKindOfFilterSelectsExactlyItsJobs) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    // 0..5: two queues, two kinds, labels; job 0 fails with "exit_status", job 2 is cancelled.
    std::vector<JobSpec> specs = {Labelled("a", "builtin.noop", {{"team", "web"}}),
                                  Labelled("a", "builtin.echo", {{"team", "data"}, {"tier", "gold"}}),
                                  Labelled("b", "builtin.echo", {{"team", "data"}}),
                                  Labelled("b", "builtin.noop", {}),
                                  Labelled("a", "builtin.echo", {{"tier", "silver"}}),
                                  Labelled("b", "builtin.echo", {{"team", "ops"}, {"canary", ""}})};
    std::vector<std::string> ids = *co_await e.Submit(specs, false);
    FakeChannel exec;
    cohort::v1::ExecutorMessage hello = Hello("x", 1);
    hello.mutable_hello()->add_queues("a");
    std::uint64_t s = *e.Attach(hello.hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1)).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob(ids[0])->state(), cohort::v1::JOB_STATE_RUNNING);
    EXPECT_TRUE(e.OnExecutorMessage(s, Fail(ids[0], 1, "boom", "exit_status")).ok());
    EXPECT_TRUE((co_await e.CancelJob(ids[2])).ok());
    co_await Settle();
    const Job failed = *e.GetJob(ids[0]);
    EXPECT_EQ(failed.state(), cohort::v1::JOB_STATE_FAILED);

    auto list = [&](auto set) -> Task<std::vector<std::string>> {
      ListJobsRequest req;
      set(req);
      co_return co_await ListAll(e, req);
    };
    {
      const std::vector<std::string> listed = co_await list([](ListJobsRequest& r) { r.mutable_filter()->add_states(cohort::v1::JOB_STATE_QUEUED); });
      EXPECT_EQ(listed,
              Pick(ids, {1, 3, 4, 5}));
    }
    {
      const std::vector<std::string> listed = co_await list([](ListJobsRequest& r) {
                r.mutable_filter()->add_states(cohort::v1::JOB_STATE_FAILED);
                r.mutable_filter()->add_states(cohort::v1::JOB_STATE_CANCELLED);
              });
      EXPECT_EQ(listed,
              Pick(ids, {0, 2}));
    }
    {
      const std::vector<std::string> listed = co_await list([](ListJobsRequest& r) { r.mutable_filter()->set_queue("b"); });
      EXPECT_EQ(listed, Pick(ids, {2, 3, 5}));
    }
    {
      const std::vector<std::string> listed = co_await list([](ListJobsRequest& r) { r.mutable_filter()->set_kind("builtin.noop"); });
      EXPECT_EQ(listed, Pick(ids, {0, 3}));
    }
    {
      const std::vector<std::string> listed = co_await list([](ListJobsRequest& r) { r.mutable_filter()->set_label_selector("team=data"); });
      EXPECT_EQ(listed, Pick(ids, {1, 2}));
    }
    {
      const std::vector<std::string> listed = co_await list([](ListJobsRequest& r) { r.mutable_filter()->set_label_selector("team!=data"); });
      EXPECT_EQ(listed,
              Pick(ids, {0, 3, 4, 5}));
    }
    {
      const std::vector<std::string> listed = co_await list([](ListJobsRequest& r) { r.mutable_filter()->set_label_selector("team in (web,ops)"); });
      EXPECT_EQ(listed,
              Pick(ids, {0, 5}));
    }
    {
      const std::vector<std::string> listed = co_await list([](ListJobsRequest& r) { r.mutable_filter()->set_label_selector("team notin (data),!canary"); });
      EXPECT_EQ(listed,
              Pick(ids, {0, 3, 4}));
    }
    {
      const std::vector<std::string> listed = co_await list([](ListJobsRequest& r) { r.mutable_filter()->set_label_selector("tier,canary"); });
      EXPECT_EQ(listed,
              std::vector<std::string>{});
    }
    {
      const std::vector<std::string> listed = co_await list([](ListJobsRequest& r) { r.mutable_filter()->set_label_selector("tier"); });
      EXPECT_EQ(listed, Pick(ids, {1, 4}));
    }
    {
      const std::vector<std::string> listed = co_await list([](ListJobsRequest& r) { r.mutable_filter()->set_error_code("exit_status"); });
      EXPECT_EQ(listed, Pick(ids, {0}));
    }
    {
      const std::vector<std::string> listed = co_await list([](ListJobsRequest& r) { r.mutable_filter()->set_error_code("cancelled"); });
      EXPECT_EQ(listed, Pick(ids, {2}));
    }
    // Finished: only ended jobs, within the range.
    {
      const std::vector<std::string> listed = co_await list([&](ListJobsRequest& r) { *r.mutable_filter()->mutable_finished_after() = failed.end_time(); });
      EXPECT_EQ(listed,
              Pick(ids, {0, 2}));
    }
    {
      const std::vector<std::string> listed = co_await list([&](ListJobsRequest& r) { *r.mutable_filter()->mutable_finished_before() = failed.end_time(); });
      EXPECT_EQ(listed,
              std::vector<std::string>{});
    }
    // Created: [after, before) around job 0's create time.
    const Job first = *e.GetJob(ids[0]);
    {
      const std::vector<std::string> listed = co_await list([&](ListJobsRequest& r) {
                *r.mutable_filter()->mutable_created_after() = first.create_time();
                *r.mutable_filter()->mutable_created_before() =
                    common::ToProto(common::FromProto(first.create_time()) + absl::Nanoseconds(1));
              });
      EXPECT_EQ(listed,
              Pick(ids, {0, 1, 2, 3, 4, 5}));
    }  // one Submit: one create time
    {
      const std::vector<std::string> listed = co_await list([&](ListJobsRequest& r) { *r.mutable_filter()->mutable_created_before() = first.create_time(); });
      EXPECT_EQ(listed,
              std::vector<std::string>{});
    }
    // Several fields: all must hold, and the older queue/states fields combine with them.
    {
      const std::vector<std::string> listed = co_await list([](ListJobsRequest& r) {
                r.mutable_filter()->set_queue("a");
                r.mutable_filter()->set_kind("builtin.echo");
                r.mutable_filter()->set_label_selector("tier");
              });
      EXPECT_EQ(listed,
              Pick(ids, {1, 4}));
    }
    {
      const std::vector<std::string> listed = co_await list([](ListJobsRequest& r) {
                r.set_queue("a");
                r.mutable_filter()->set_kind("builtin.echo");
                r.add_states(cohort::v1::JOB_STATE_QUEUED);
                r.mutable_filter()->set_label_selector("tier=gold");
              });
      EXPECT_EQ(listed,
              Pick(ids, {1}));
    }
    {
      const std::vector<std::string> listed = co_await list([](ListJobsRequest& r) {
                r.set_queue("a");
                r.mutable_filter()->set_queue("b");
              });
      EXPECT_EQ(listed,
              std::vector<std::string>{});
    }
    // Newest first: the same jobs, the other way round.
    {
      const std::vector<std::string> listed = co_await list([](ListJobsRequest& r) {
                r.set_newest_first(true);
                r.mutable_filter()->add_states(cohort::v1::JOB_STATE_QUEUED);
                r.mutable_filter()->add_states(cohort::v1::JOB_STATE_CANCELLED);
                r.set_page_size(2);
              });
      EXPECT_EQ(listed,
              Pick(ids, {5, 4, 3, 2, 1}));
    }
    {
      const std::vector<std::string> listed = co_await list([](ListJobsRequest& r) { r.set_newest_first(true); });
      EXPECT_EQ(listed, Pick(ids, {5, 4, 3, 2, 1, 0}));
    }
  });
}

TEST_F(JobListingTest, MalformedFiltersAreInvalidArgumentNamingTheField) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    ListJobsRequest req;
    req.mutable_filter()->set_label_selector("team in (a");
    EXPECT_EQ((co_await e.ListJobs(req)).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string((co_await e.ListJobs(req)).status().message()), HasSubstr("filter.label_selector at byte 10"));
    req.Clear();
    req.mutable_filter()->add_states(static_cast<cohort::v1::JobState>(42));
    EXPECT_THAT(std::string((co_await e.ListJobs(req)).status().message()), HasSubstr("filter.states contains 42"));
    req.Clear();
    req.mutable_filter()->mutable_created_after()->set_nanos(2'000'000'000);
    EXPECT_THAT(std::string((co_await e.ListJobs(req)).status().message()), HasSubstr("filter.created_after"));
    req.Clear();
    req.mutable_filter()->set_kind("No Such Kind");
    EXPECT_EQ((co_await e.ListJobs(req)).status().code(), absl::StatusCode::kInvalidArgument);
    co_return;
  });
}

TEST_F(JobListingTest, NewestFirstPagingIsStableWhileJobsAreSubmittedBetweenPages) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> before = *co_await e.Submit(std::vector<JobSpec>(9, Spec("q")), false);
    ListJobsRequest req;
    req.set_newest_first(true);
    req.set_page_size(3);
    req.mutable_filter()->set_queue("q");
    std::vector<std::string> seen;
    for (int page = 0; page < 3; ++page) {
      cohort::v1::ListJobsResponse r = *(co_await e.ListJobs(req));
      for (const Job& job : r.jobs()) seen.push_back(job.id());
      // Newer jobs arrive between pages: they are after the listing's start, not in it.
      co_await e.Submit(Batch(Spec("q"), Spec("q")), false);
      if (page < 2) {
        EXPECT_FALSE(r.next_page_token().empty());
      } else {
        EXPECT_TRUE(r.next_page_token().empty());
      }
      req.set_page_token(r.next_page_token());
    }
    EXPECT_THAT(seen, ElementsAreArray(std::vector<std::string>(before.rbegin(), before.rend())));
  });
}

TEST_F(JobListingTest, OldestFirstPagingShowsEveryJobThatMatchedThroughoutOnceWhileOthersChange) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(std::vector<JobSpec>(8, Spec("q")), false);
    ListJobsRequest req;
    req.add_states(cohort::v1::JOB_STATE_QUEUED);
    req.set_page_size(3);
    cohort::v1::ListJobsResponse first = *(co_await e.ListJobs(req));
    // Between pages: a job already listed and one not yet listed leave the filter's
    // state, and new jobs come.
    EXPECT_TRUE((co_await e.CancelJob(ids[1])).ok());
    EXPECT_TRUE((co_await e.CancelJob(ids[5])).ok());
    std::vector<std::string> later = *co_await e.Submit(Batch(Spec("q")), false);
    req.set_page_token(first.next_page_token());
    std::vector<std::string> seen;
    for (const Job& job : first.jobs()) seen.push_back(job.id());
    for (const std::string& id : (co_await ListAll(e, req))) seen.push_back(id);
    std::vector<std::string> expected = Pick(ids, {0, 1, 2, 3, 4, 6, 7});
    expected.insert(expected.end(), later.begin(), later.end());
    EXPECT_EQ(seen, expected);
  });
}

TEST_F(JobListingTest, APageTokenIsBoundToItsFiltersAndOrder) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    co_await e.Submit(std::vector<JobSpec>(4, Spec("q")), false);
    ListJobsRequest req;
    req.mutable_filter()->set_label_selector("!x");
    req.set_page_size(1);
    cohort::v1::ListJobsResponse first = *(co_await e.ListJobs(req));
    ListJobsRequest next = req;
    next.set_page_token(first.next_page_token());
    next.set_page_size(50);  // the page size may change
    EXPECT_TRUE((co_await e.ListJobs(next)).ok());
    ListJobsRequest other = next;
    other.mutable_filter()->set_label_selector("!y");
    EXPECT_EQ((co_await e.ListJobs(other)).status().code(), absl::StatusCode::kInvalidArgument);
    other = next;
    other.set_newest_first(true);
    EXPECT_EQ((co_await e.ListJobs(other)).status().code(), absl::StatusCode::kInvalidArgument);
    other = next;
    other.set_page_token("bm90LWEtdG9rZW4");  // base64 of "not-a-token"
    EXPECT_THAT(std::string((co_await e.ListJobs(other)).status().message()), HasSubstr("not issued by this broker"));
    co_return;
  });
}

TEST_F(JobListingTest, TheIndexesFollowEveryStateChangeDeletionAndRestart) {
  std::vector<std::string> ids;
  WithEngine([&](BrokerEngine& e) -> Task<void> {
    ids = *co_await e.Submit(std::vector<JobSpec>(4, Spec("q")), false);
    EXPECT_TRUE((co_await e.CancelJob(ids[0])).ok());
    EXPECT_TRUE((co_await e.DeleteJob(ids[1])).ok());
    ListJobsRequest queued;
    queued.add_states(cohort::v1::JOB_STATE_QUEUED);
    {
      const std::vector<std::string> listed = co_await ListAll(e, queued);
      EXPECT_EQ(listed, Pick(ids, {2, 3}));
    }
    ListJobsRequest in_q;
    in_q.set_queue("q");
    {
      const std::vector<std::string> listed = co_await ListAll(e, in_q);
      EXPECT_EQ(listed, Pick(ids, {0, 2, 3}));
    }
    ListJobsRequest cancelled;  // served from the CANCELLED set, which the cancel moved it into
    cancelled.add_states(cohort::v1::JOB_STATE_CANCELLED);
    {
      const std::vector<std::string> listed = co_await ListAll(e, cancelled);
      EXPECT_EQ(listed, Pick(ids, {0}));
    }
  });
  engine_.reset();
  WithEngine([&](BrokerEngine& e) -> Task<void> {
    ListJobsRequest cancelled;
    cancelled.mutable_filter()->add_states(cohort::v1::JOB_STATE_CANCELLED);
    cancelled.mutable_filter()->set_kind("builtin.echo");
    {
      const std::vector<std::string> listed = co_await ListAll(e, cancelled);
      EXPECT_EQ(listed, Pick(ids, {0}));
    }
    ListJobsRequest queued;
    queued.add_states(cohort::v1::JOB_STATE_QUEUED);
    {
      const std::vector<std::string> listed = co_await ListAll(e, queued);
      EXPECT_EQ(listed, Pick(ids, {2, 3}));
    }
    co_return;
  });
}

}  // namespace
}  // namespace cohort::broker
