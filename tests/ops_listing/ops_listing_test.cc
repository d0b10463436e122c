// Listing and queue administration against a real cohort-broker: ListJobs filters
// (label selectors included) and newest-first paging over the wire, queues that only
// CreateQueue or Submit create, DeleteQueue's rules, --max-queues, --max-kinds and metric series
// that stay bounded whatever queue names clients use.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/broker_fixture.h"
#include "tests/testing/metrics_scrape.h"

namespace cohort::testing {
namespace {

using cohort::v1::Job;
using cohort::v1::JobSpec;
using cohort::v1::ListJobsRequest;
using cohort::v1::ListJobsResponse;
using ::testing::HasSubstr;

class OpsListingTest : public BrokerTest {
 protected:
  static JobSpec Labelled(const std::string& queue, std::map<std::string, std::string> labels) {
    JobSpec s = Spec(queue);
    for (auto& [k, v] : labels) (*s.mutable_labels())[k] = v;
    return s;
  }

  grpc::Status List(const ListJobsRequest& req, ListJobsResponse* resp) {
    auto ctx = Context();
    return stub().ListJobs(ctx.get(), req, resp);
  }

  // Every page of a listing, in order.
  std::vector<std::string> ListAll(ListJobsRequest req) {
    std::vector<std::string> ids;
    for (int pages = 0; pages < 1000; ++pages) {
      ListJobsResponse resp;
      grpc::Status status = List(req, &resp);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) break;
      for (const Job& job : resp.jobs()) ids.push_back(job.id());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return ids;
  }

  std::vector<std::string> QueueNames() {
    cohort::v1::ListQueuesResponse resp;
    auto ctx = Context();
    grpc::Status status = stub().ListQueues(ctx.get(), {}, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<std::string> names;
    for (const auto& q : resp.queues()) names.push_back(q.name());
    return names;
  }

  grpc::Status CreateQueue(const std::string& name, bool paused = false) {
    cohort::v1::CreateQueueRequest req;
    req.set_queue(name);
    req.set_paused(paused);
    cohort::v1::CreateQueueResponse resp;
    auto ctx = Context();
    return stub().CreateQueue(ctx.get(), req, &resp);
  }

  grpc::Status DeleteQueue(const std::string& name, bool delete_jobs, cohort::v1::DeleteQueueResponse* resp) {
    cohort::v1::DeleteQueueRequest req;
    req.set_queue(name);
    req.set_delete_jobs(delete_jobs);
    auto ctx = Context();
    return stub().DeleteQueue(ctx.get(), req, resp);
  }
};

TEST_F(OpsListingTest, ListJobsFiltersByLabelSelectorStateQueueKindAndTime) {
  std::vector<std::string> ids = Submit({Labelled("web", {{"team", "data"}, {"tier", "gold"}}),
                                         Labelled("web", {{"team", "ops"}}), Labelled("batch", {{"team", "data"}}),
                                         Labelled("batch", {})});
  cohort::v1::CancelJobRequest cancel;
  cancel.set_job_id(ids[1]);
  cohort::v1::CancelJobResponse cancelled;
  auto ctx = Context();
  ASSERT_TRUE(stub().CancelJob(ctx.get(), cancel, &cancelled).ok());

  ListJobsRequest req;
  req.mutable_filter()->set_label_selector("team=data");
  EXPECT_EQ(ListAll(req), (std::vector<std::string>{ids[0], ids[2]}));
  req.mutable_filter()->set_label_selector("team notin (data), !tier");
  EXPECT_EQ(ListAll(req), (std::vector<std::string>{ids[1], ids[3]}));
  req.mutable_filter()->set_label_selector("team in (data,ops)");
  req.mutable_filter()->set_queue("web");
  EXPECT_EQ(ListAll(req), (std::vector<std::string>{ids[0], ids[1]}));
  req.mutable_filter()->add_states(cohort::v1::JOB_STATE_CANCELLED);
  req.mutable_filter()->set_error_code("cancelled");
  EXPECT_EQ(ListAll(req), (std::vector<std::string>{ids[1]}));

  ListJobsRequest by_kind;
  by_kind.mutable_filter()->set_kind("builtin.echo");
  by_kind.set_queue("batch");  // the older field combines with the filter
  by_kind.set_newest_first(true);
  EXPECT_EQ(ListAll(by_kind), (std::vector<std::string>{ids[3], ids[2]}));
  by_kind.mutable_filter()->set_kind("builtin.noop");
  EXPECT_TRUE(ListAll(by_kind).empty());

  const Job first = Get(ids[0]);
  ListJobsRequest created;
  *created.mutable_filter()->mutable_created_before() = first.create_time();
  EXPECT_TRUE(ListAll(created).empty());
  ListJobsRequest finished;
  finished.mutable_filter()->mutable_finished_after()->set_seconds(1);
  EXPECT_EQ(ListAll(finished), (std::vector<std::string>{ids[1]}));
}

TEST_F(OpsListingTest, AMalformedFilterIsInvalidArgumentNamingTheFieldAndPosition) {
  ListJobsRequest req;
  req.mutable_filter()->set_label_selector("team in (a," + std::string(900, 'x'));
  ListJobsResponse resp;
  grpc::Status status = List(req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("filter.label_selector at byte 911"));
  EXPECT_LT(status.error_message().size(), 512u);  // a bounded prefix of the selector
  req.mutable_filter()->set_label_selector(std::string(2000, 'k'));
  EXPECT_THAT(List(req, &resp).error_message(), HasSubstr("2000 bytes: the limit is 1024"));
  req.Clear();
  req.mutable_filter()->add_states(static_cast<cohort::v1::JobState>(77));
  EXPECT_EQ(List(req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(OpsListingTest, NewestFirstPagesStayStableWhileJobsAreSubmittedBetweenThem) {
  std::vector<std::string> ids = Submit(std::vector<JobSpec>(12, Labelled("paged", {{"run", "1"}})));
  ListJobsRequest req;
  req.set_newest_first(true);
  req.set_page_size(4);
  req.mutable_filter()->set_label_selector("run=1");
  std::vector<std::string> seen;
  for (int page = 0; page < 3; ++page) {
    ListJobsResponse resp;
    ASSERT_TRUE(List(req, &resp).ok());
    EXPECT_EQ(resp.jobs_size(), 4);
    for (const Job& job : resp.jobs()) seen.push_back(job.id());
    Submit({Labelled("paged", {{"run", "1"}}), Labelled("paged", {{"run", "1"}})});  // newer, not in this listing
    EXPECT_EQ(resp.next_page_token().empty(), page == 2);
    req.set_page_token(resp.next_page_token());
  }
  EXPECT_EQ(seen, std::vector<std::string>(ids.rbegin(), ids.rend()));  // no duplicate, no gap
  // The token belongs to its listing: another filter or order is refused.
  ListJobsRequest first_page = req;
  first_page.clear_page_token();
  ListJobsResponse resp;
  ASSERT_TRUE(List(first_page, &resp).ok());
  ListJobsRequest other = first_page;
  other.set_page_token(resp.next_page_token());
  other.set_newest_first(false);
  EXPECT_EQ(List(other, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(OpsListingTest, PausingOrLimitingAnUnknownQueueIsNotFoundAndCreatesNothing) {
  Submit({Spec("real")});
  const std::vector<std::string> before = QueueNames();
  cohort::v1::PauseQueueRequest pause;
  pause.set_queue("nosuchqueue2");
  cohort::v1::PauseQueueResponse paused;
  auto ctx = Context();
  grpc::Status status = stub().PauseQueue(ctx.get(), pause, &paused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("\"nosuchqueue2\" does not exist"));
  cohort::v1::ResumeQueueRequest resume;
  resume.set_queue("nosuchqueue2");
  cohort::v1::ResumeQueueResponse resumed;
  auto ctx2 = Context();
  EXPECT_EQ(stub().ResumeQueue(ctx2.get(), resume, &resumed).error_code(), grpc::StatusCode::NOT_FOUND);
  cohort::v1::SetQueueLimitsRequest limits;
  limits.set_queue("nosuchqueue");  // even a request that changes no limit
  cohort::v1::SetQueueLimitsResponse limited;
  auto ctx3 = Context();
  EXPECT_EQ(stub().SetQueueLimits(ctx3.get(), limits, &limited).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(QueueNames(), before);
  StartBroker();  // and nothing was written
  EXPECT_EQ(QueueNames(), before);
}

TEST_F(OpsListingTest, DeleteQueueNeedsAnEmptyQueueOrDeleteJobsAndIsDurable) {
  std::vector<std::string> ids = Submit({Spec("doomed"), Spec("doomed")});
  ASSERT_TRUE(CreateQueue("empty", /*paused=*/true).ok());
  cohort::v1::DeleteQueueResponse resp;
  grpc::Status held = DeleteQueue("doomed", false, &resp);
  EXPECT_EQ(held.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(held.error_message(), HasSubstr("holds 2 jobs"));
  EXPECT_EQ(DeleteQueue("nosuch", false, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(DeleteQueue("doomed", true, &resp).ok());
  EXPECT_EQ(resp.deleted_jobs(), 2);
  ASSERT_TRUE(DeleteQueue("empty", false, &resp).ok());
  EXPECT_EQ(resp.deleted_jobs(), 0);
  EXPECT_TRUE(QueueNames().empty());
  StartBroker();
  EXPECT_TRUE(QueueNames().empty());
  cohort::v1::GetJobRequest get;
  get.set_job_id(ids[0]);
  cohort::v1::GetJobResponse got;
  auto ctx = Context();
  EXPECT_EQ(stub().GetJob(ctx.get(), get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(OpsListingTest, MaxQueuesRefusesOneMoreQueueFromCreateQueueOrSubmit) {
  StartBroker({"--max-queues=2"});
  ASSERT_TRUE(CreateQueue("one").ok());
  Submit({Spec("two")});
  grpc::Status created = CreateQueue("three");
  EXPECT_EQ(created.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(created.error_message(), HasSubstr("--max-queues of 2"));
  cohort::v1::SubmitRequest submit;
  *submit.add_jobs() = Spec("three");
  cohort::v1::SubmitResponse submitted;
  auto ctx = Context();
  EXPECT_EQ(stub().Submit(ctx.get(), submit, &submitted).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  Submit({Spec("one")});  // an existing queue takes jobs
  EXPECT_EQ(QueueNames(), (std::vector<std::string>{"one", "two"}));
}

TEST_F(OpsListingTest, MetricSeriesStayBoundedAfterAThousandDistinctQueueNames) {
  for (int batch = 0; batch < 2; ++batch) {
    std::vector<JobSpec> specs;
    for (int i = 0; i < 500; ++i) specs.push_back(Spec(absl::StrCat("tenant-", batch * 500 + i)));
    Submit(specs);
  }
  EXPECT_EQ(QueueNames().size(), 1000u);
  absl::StatusOr<std::string> body = ScrapeMetrics(broker_->metrics_address());
  ASSERT_TRUE(body.ok()) << body.status();
  std::set<std::string> values;
  int series = 0;
  for (absl::string_view line : absl::StrSplit(*body, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t at = line.find("queue=\"");
    if (at == absl::string_view::npos) continue;
    ++series;
    const std::size_t start = at + 7;
    values.insert(std::string(line.substr(start, line.find('"', start) - start)));
  }
  EXPECT_EQ(values.size(), 101u);  // --metric-label-limit=100 names and "_other"
  EXPECT_TRUE(values.contains("_other"));
  EXPECT_TRUE(values.contains("tenant-0"));
  EXPECT_FALSE(values.contains("tenant-100"));
  // Unbounded, 1,000 queues would give about 1,000 series per queue-labelled family.
  EXPECT_LE(series, 101 * 8) << "series with a queue label";
  EXPECT_EQ(MetricValue(*body, "cohort_broker_queue_depth{queue=\"_other\"}"), 900.0);
}

TEST_F(OpsListingTest, MaxKindsRefusesOneMoreKindAndListQueuesNamesAtMostThirtyTwo) {
  StartBroker({"--max-kinds=40"});
  std::vector<JobSpec> specs;
  for (int i = 0; i < 40; ++i) {
    specs.push_back(Spec("tenant"));
    specs.back().set_kind(absl::StrCat("kind-", 100 + i));
  }
  Submit(specs);
  cohort::v1::SubmitRequest submit;
  *submit.add_jobs() = Spec("tenant");
  submit.mutable_jobs(0)->set_kind("kind-100");
  *submit.add_jobs() = Spec("other");
  submit.mutable_jobs(1)->set_kind("kind-200");
  cohort::v1::SubmitResponse submitted;
  auto ctx = Context();
  grpc::Status over = stub().Submit(ctx.get(), submit, &submitted);
  EXPECT_EQ(over.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(over.error_message(), HasSubstr("--max-kinds of 40 (40 in use)"));
  EXPECT_EQ(QueueNames(), std::vector<std::string>{"tenant"});  // the whole Submit was refused
  cohort::v1::ListQueuesResponse queues;
  auto ctx2 = Context();
  ASSERT_TRUE(stub().ListQueues(ctx2.get(), {}, &queues).ok());
  ASSERT_EQ(queues.queues_size(), 1);
  const cohort::v1::QueueInfo& q = queues.queues(0);
  EXPECT_EQ(q.depth(), 40);
  EXPECT_EQ(q.unserved(), 40);
  EXPECT_EQ(q.unserved_kind_count(), 40);
  ASSERT_EQ(q.unserved_kinds_size(), 32);
  EXPECT_EQ(q.unserved_kinds(0), "kind-100");
  EXPECT_EQ(q.unserved_kinds(31), "kind-131");
  // A kind already held is accepted.
  Submit({specs[0]});
}

// Finished jobs live on disk: after kill -9 the restarted broker lists the same
// finished (and live) jobs under every filter and order, and a page token taken before
// the kill goes on where it stopped.
TEST_F(OpsListingTest, ListingsAndPageTokensAreTheSameAfterKill9) {
  std::vector<JobSpec> specs;
  for (int i = 0; i < 40; ++i) specs.push_back(Labelled("done", {{"team", i % 2 == 0 ? "a" : "b"}}));
  const std::vector<std::string> ids = Submit(specs);
  {
    TestExecutor exec(stub(), "lister", 8);
    exec.Grant(8);
    for (std::size_t n = 0; n < ids.size(); ++n) {
      const cohort::v1::BrokerMessage::Assign a = exec.RequireAssign();
      const auto at = std::find(ids.begin(), ids.end(), a.job().id());
      ASSERT_NE(at, ids.end());
      if ((at - ids.begin()) % 5 == 0) {
        exec.Fail(a.job().id(), a.attempt(), "boom");
      } else {
        exec.Complete(a.job().id(), a.attempt(), "r-" + a.job().id());
      }
      exec.Grant(1);  // the slot is free again
    }
    for (const std::string& id : ids) ASSERT_TRUE(AwaitEnd(id).has_value());  // durable ends
  }
  const std::vector<std::string> live = Submit({Spec("waiting"), Spec("waiting"), Spec("waiting")});

  std::vector<ListJobsRequest> listings(5);
  listings[0].set_page_size(7);
  listings[1].mutable_filter()->add_states(cohort::v1::JOB_STATE_SUCCEEDED);
  listings[1].set_newest_first(true);
  listings[1].set_page_size(5);
  listings[2].mutable_filter()->set_queue("done");
  listings[2].mutable_filter()->set_label_selector("team=a");
  listings[2].set_page_size(3);
  listings[3].mutable_filter()->add_states(cohort::v1::JOB_STATE_FAILED);
  listings[4].mutable_filter()->mutable_finished_after()->set_seconds(1);
  listings[4].set_newest_first(true);
  listings[4].set_page_size(6);
  std::vector<std::vector<std::string>> before;
  for (const ListJobsRequest& req : listings) before.push_back(ListAll(req));
  ASSERT_EQ(before[0].size(), ids.size() + live.size());
  ASSERT_EQ(before[1].size() + before[3].size(), ids.size());
  ASSERT_EQ(before[3].size(), 8u);
  ASSERT_EQ(before[4].size(), ids.size());
  ListJobsResponse first_page;
  ASSERT_TRUE(List(listings[1], &first_page).ok());
  ASSERT_FALSE(first_page.next_page_token().empty());

  ASSERT_TRUE(broker_->Kill9().ok());
  StartBroker();

  for (std::size_t i = 0; i < listings.size(); ++i) EXPECT_EQ(ListAll(listings[i]), before[i]) << "listing " << i;
  ListJobsRequest rest = listings[1];
  rest.set_page_token(first_page.next_page_token());
  std::vector<std::string> resumed;
  for (const Job& job : first_page.jobs()) resumed.push_back(job.id());
  for (const std::string& id : ListAll(rest)) resumed.push_back(id);
  EXPECT_EQ(resumed, before[1]);
  const Job succeeded = Get(ids[1]);
  EXPECT_EQ(succeeded.state(), cohort::v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(succeeded.result(), "r-" + ids[1]);
  EXPECT_EQ(Get(live[0]).state(), cohort::v1::JOB_STATE_QUEUED);
}

}  // namespace
}  // namespace cohort::testing
