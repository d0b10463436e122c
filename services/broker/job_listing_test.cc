// ListJobs on the engine (manual clock, in-memory store): every kind of filter, both
// orders, and stable paging while jobs come and change between pages; the indexes
// (labels, error codes, creation-time id ranges) list exactly what a full scan does,
// examining only their candidates.
#include <algorithm>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/ids.h"
#include "libs/common/proto_time.h"
#include "services/broker/broker_engine.h"
#include "services/broker/engine_test_util.h"
#include "services/broker/job_filter.h"
#include "services/broker/job_index.h"

namespace cohort::broker {
namespace {

using cohort::v1::Job;
using cohort::v1::JobSpec;
using cohort::v1::ListJobsRequest;
using runtime::Task;
using testing::Batch;
using testing::Complete;
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

// A fixture whose engine makes real k-sortable ids from the manual clock (as
// cohort-broker does from the wall clock), so a creation-time filter is served by an
// id range; finished jobs keep no cached record, so listings read them back.
class IndexedListingTest : public testing::EngineTest {
 protected:
  IndexedListingTest() { options_.ended_cache.jobs = 0; }

  template <typename Body>
  void WithIdEngine(Body body) {
    engine_ = std::make_unique<BrokerEngine>(loop_, store_, metrics_, options_, [this] { return ids_.Next(); });
    Run([](BrokerEngine* e, Body* b) -> runtime::Task<void> {
      absl::Status started = co_await e->Start();
      EXPECT_TRUE(started.ok()) << started;
      co_await (*b)(*e);
      co_await e->Stop();
    }(engine_.get(), &body));
  }

  common::JobIdGenerator ids_{7, [this] { return clock_.SystemNow(); }};
};

// The ids a full scan selects: every job, listed without a filter, checked by the
// filter's matcher.
Task<std::vector<std::string>> FullScan(BrokerEngine& e, const ListJobsRequest& listing) {
  ListJobsRequest all;
  all.set_page_size(1000);
  all.set_newest_first(listing.newest_first());
  std::vector<std::string> ids;
  absl::StatusOr<JobMatcher> m = JobMatcher::Compile(listing.filter());
  EXPECT_TRUE(m.ok()) << m.status();
  if (!m.ok()) co_return ids;
  while (true) {
    absl::StatusOr<cohort::v1::ListJobsResponse> r = co_await e.ListJobs(all);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) break;
    for (const Job& job : r->jobs()) {
      if (m->Matches(job)) ids.push_back(job.id());
    }
    if (r->next_page_token().empty()) break;
    all.set_page_token(r->next_page_token());
  }
  co_return ids;
}

// A random mix of 400 jobs over ~4 s of manual time: three queues, two kinds, labels
// from a few values (some jobs over kIndexedLabelBytes of labels), and ends of every
// sort: succeeded, failed with one of three codes, cancelled, or still queued.
struct Mix {
  std::vector<std::string> ids;
  std::vector<google::protobuf::Timestamp> created;  // per job
};

// Lets commits finish and their messages go out (as EngineTest::Settle).
Task<void> Yields() {
  for (int i = 0; i < 10; ++i) co_await runtime::Yield();
}

Task<Mix> SubmitMix(BrokerEngine& e) {
  std::mt19937 rng(15);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  Mix mix;
  FakeChannel exec;
  std::uint64_t session = *e.Attach(Hello("x", 1000).hello(), &exec);
  const std::vector<std::string> teams = {"web", "data", "ops"};
  std::vector<std::string> cancel;  // while QUEUED, before the executor takes jobs
  for (int i = 0; i < 400; ++i) {
    JobSpec s = Spec(absl::StrCat("q", pick(3)));
    s.set_kind(pick(2) == 0 ? "k.one" : "k.two");
    if (pick(4) != 0) (*s.mutable_labels())["team"] = teams[pick(3)];
    if (pick(3) == 0) (*s.mutable_labels())["tier"] = pick(2) == 0 ? "gold" : "silver";
    if (i % 50 == 7) (*s.mutable_labels())["rare"] = "yes";
    if (pick(10) == 0) (*s.mutable_labels())["big"] = std::string(200, 'x');  // not indexed
    std::string id = (*co_await e.Submit(Batch(s), false))[0];
    mix.ids.push_back(id);
    mix.created.push_back(e.GetJob(id)->create_time());
    if (pick(13) == 0) cancel.push_back(id);
    co_await runtime::Sleep(std::chrono::milliseconds(pick(20)));
  }
  int ends = 0;  // jobs end 1-3 ms apart, so that finished-time ranges split them
  auto next_end = [&ends] { return runtime::Sleep(std::chrono::milliseconds(1 + ends++ % 3)); };
  for (const std::string& id : cancel) {
    EXPECT_TRUE((co_await e.CancelJob(id)).ok());
    co_await next_end();
  }
  EXPECT_TRUE(e.OnExecutorMessage(session, Credit(1000)).ok());
  co_await Yields();
  const std::vector<std::string> codes = {"boom", "exit_status", "oom"};
  for (const cohort::v1::BrokerMessage& m : exec.Assigns()) {
    const std::string& id = m.assign().job().id();
    const int end = pick(5);
    if (end == 0) continue;  // stays RUNNING
    if (id == mix.ids[57]) {
      EXPECT_TRUE(e.OnExecutorMessage(session, Fail(id, m.assign().attempt(), "rare", "rare_code")).ok());
    } else if (end <= 2) {
      EXPECT_TRUE(e.OnExecutorMessage(session, Complete(id, m.assign().attempt(), "ok")).ok());
    } else if (end == 3) {
      EXPECT_TRUE(e.OnExecutorMessage(session, Fail(id, m.assign().attempt(), "x", codes[pick(3)])).ok());
    } else {
      EXPECT_TRUE((co_await e.CancelJob(id)).ok());
    }
    co_await next_end();
  }
  co_await Yields();
  e.Detach(session);
  co_return mix;
}

// The end times of the finished jobs, ascending.
Task<std::vector<google::protobuf::Timestamp>> EndTimes(BrokerEngine& e) {
  ListJobsRequest all;
  all.set_page_size(1000);
  std::vector<google::protobuf::Timestamp> ends;
  const absl::StatusOr<cohort::v1::ListJobsResponse> listed = co_await e.ListJobs(all);
  EXPECT_TRUE(listed.ok()) << listed.status();
  if (!listed.ok()) co_return ends;
  EXPECT_TRUE(listed->next_page_token().empty());
  for (const Job& job : listed->jobs()) {
    if (job.has_end_time()) ends.push_back(job.end_time());
  }
  std::sort(ends.begin(), ends.end(), [](const auto& a, const auto& b) {
    return common::FromProto(a) < common::FromProto(b);
  });
  co_return ends;
}

// Finished-time filters: narrow ranges (served by the finished-time index, a page of 7
// cut short by it), wide ones (a full walk), one side only, and combined with labels,
// an error code and a created range.
std::vector<cohort::v1::JobFilter> FinishedFilters(const std::vector<google::protobuf::Timestamp>& ends,
                                                   const Mix& mix) {
  const std::size_t n = ends.size();
  std::vector<cohort::v1::JobFilter> filters(8);
  *filters[0].mutable_finished_after() = ends[n / 3];
  *filters[0].mutable_finished_before() = ends[n / 3 + 25];
  *filters[1].mutable_finished_after() = ends[n - 20];
  *filters[2].mutable_finished_before() = ends[n / 2];
  filters[2].set_label_selector("team=web");
  *filters[3].mutable_finished_after() = ends[10];
  *filters[3].mutable_finished_before() = ends[n - 10];
  filters[3].set_error_code("boom");
  *filters[4].mutable_finished_after() = ends[n / 2];
  *filters[4].mutable_finished_before() = ends[n / 2 + 40];
  *filters[4].mutable_created_after() = mix.created[50];
  *filters[5].mutable_finished_before() = ends[15];
  filters[5].set_label_selector("team in (data,ops)");
  // Few matches in a narrow range: a page's candidates run out before the page fills.
  *filters[6].mutable_finished_after() = ends[n / 4];
  *filters[6].mutable_finished_before() = ends[n / 4 + 30];
  filters[6].set_label_selector("team=web");
  *filters[7].mutable_finished_after() = ends[n / 2];
  *filters[7].mutable_finished_before() = ends[n / 2 + 40];
  filters[7].set_kind("k.one");
  filters[7].set_label_selector("tier");
  return filters;
}

Task<void> ExpectListingsEqualFullScans(BrokerEngine& e, const std::vector<cohort::v1::JobFilter>& filters,
                                        const std::string& where) {
  for (std::size_t f = 0; f < filters.size(); ++f) {
    for (bool newest : {false, true}) {
      for (int page : {7, 1000}) {
        ListJobsRequest req;
        *req.mutable_filter() = filters[f];
        req.set_newest_first(newest);
        req.set_page_size(page);
        const std::vector<std::string> listed = co_await ListAll(e, req);
        const std::vector<std::string> scanned = co_await FullScan(e, req);
        EXPECT_EQ(listed, scanned) << where << " filter " << f << " newest_first " << newest << " page " << page;
        EXPECT_FALSE(scanned.empty()) << where << " filter " << f;
      }
    }
  }
}

TEST_F(IndexedListingTest, FinishedTimeFiltersListExactlyWhatAFullScanSelectsBeforeAndAfterARestart) {
  std::vector<cohort::v1::JobFilter> filters;
  WithIdEngine([&](BrokerEngine& e) -> Task<void> {
    const Mix mix = co_await SubmitMix(e);
    filters = FinishedFilters(co_await EndTimes(e), mix);
    co_await ExpectListingsEqualFullScans(e, filters, "live");
  });
  engine_.reset();
  WithIdEngine([&](BrokerEngine& e) -> Task<void> {  // summaries rebuilt from the store
    co_await ExpectListingsEqualFullScans(e, filters, "recovered");
    // A finished job retried or deleted leaves the finished-time index.
    ListJobsRequest range;
    *range.mutable_filter() = filters[0];
    std::vector<std::string> expected = co_await ListAll(e, range);
    ListJobsRequest retryable = range;
    retryable.mutable_filter()->add_states(cohort::v1::JOB_STATE_FAILED);
    retryable.mutable_filter()->add_states(cohort::v1::JOB_STATE_CANCELLED);
    const std::vector<std::string> ended_badly = co_await ListAll(e, retryable);
    if (ended_badly.empty() || expected.size() < 3) {
      ADD_FAILURE() << "the range holds " << expected.size() << " jobs, " << ended_badly.size() << " retryable";
      co_return;
    }
    const std::string retried = ended_badly[0];
    const std::string deleted = expected[0] == retried ? expected[1] : expected[0];
    EXPECT_TRUE((co_await e.RetryJob(retried, 0))->retried());
    EXPECT_TRUE((co_await e.DeleteJob(deleted)).ok());
    co_await Yields();
    std::erase(expected, retried);
    std::erase(expected, deleted);
    const std::vector<std::string> after = co_await ListAll(e, range);
    EXPECT_EQ(after, expected);
    EXPECT_EQ(after, co_await FullScan(e, range));
  });
}

TEST_F(IndexedListingTest, IndexedFiltersListExactlyWhatAFullScanSelectsInBothOrdersAndPages) {
  WithIdEngine([](BrokerEngine& e) -> Task<void> {
    const Mix mix = co_await SubmitMix(e);
    EXPECT_GT(e.summarized_jobs(), 100u);  // most finished jobs are summaries only
    const google::protobuf::Timestamp t1 = mix.created[100], t2 = mix.created[230];
    std::vector<cohort::v1::JobFilter> filters(14);
    filters[0].set_label_selector("team=data");
    filters[1].set_label_selector("team in (web,ops)");
    filters[2].set_label_selector("team=data,tier!=gold");
    filters[3].set_label_selector("team in (ops,ops),!tier");
    filters[4].set_label_selector("tier notin (gold)");  // not indexed: every job
    filters[5].set_label_selector("big=" + std::string(200, 'x'));
    filters[6].set_error_code("boom");
    filters[7].set_error_code("cancelled");
    filters[8].set_error_code("oom");
    filters[8].set_label_selector("team=web");
    *filters[9].mutable_created_after() = t1;
    *filters[9].mutable_created_before() = t2;
    *filters[10].mutable_created_after() = t2;
    *filters[11].mutable_created_before() = t1;
    filters[11].set_queue("q1");
    *filters[12].mutable_created_after() = t1;
    filters[12].set_label_selector("rare=yes");
    filters[13].set_error_code("rare_code");
    for (std::size_t f = 0; f < filters.size(); ++f) {
      for (bool newest : {false, true}) {
        for (int page : {7, 1000}) {
          ListJobsRequest req;
          *req.mutable_filter() = filters[f];
          req.set_newest_first(newest);
          req.set_page_size(page);
          const std::vector<std::string> listed = co_await ListAll(e, req);
          const std::vector<std::string> scanned = co_await FullScan(e, req);
          EXPECT_EQ(listed, scanned) << "filter " << f << " newest_first " << newest << " page " << page;
          EXPECT_FALSE(scanned.empty()) << "filter " << f;
        }
      }
    }
  });
}

TEST_F(IndexedListingTest, LabelErrorCodeAndCreatedTimeFiltersExamineOnlyTheirCandidates) {
  WithIdEngine([](BrokerEngine& e) -> Task<void> {
    const Mix mix = co_await SubmitMix(e);
    std::size_t unindexed_labels = 0;  // jobs over kIndexedLabelBytes: always examined by a label filter
    {
      ListJobsRequest big;
      big.mutable_filter()->set_label_selector("big");
      big.set_page_size(1000);
      unindexed_labels = (co_await ListAll(e, big)).size();
    }
    auto visited = [&](ListJobsRequest req, std::size_t* listed) -> Task<std::uint64_t> {
      req.set_page_size(1000);
      const std::uint64_t before = e.listing_visited();
      *listed = (co_await ListAll(e, req)).size();
      co_return e.listing_visited() - before;
    };
    std::size_t listed = 0;
    ListJobsRequest rare;
    rare.mutable_filter()->set_label_selector("rare=yes,team!=nobody");
    EXPECT_LE(co_await visited(rare, &listed), 8 + unindexed_labels);  // 8 jobs have rare=yes
    EXPECT_EQ(listed, 8u);
    ListJobsRequest code;
    code.mutable_filter()->set_error_code("rare_code");
    EXPECT_EQ(co_await visited(code, &listed), 1u);
    EXPECT_EQ(listed, 1u);
    // 20 jobs created in [created[200], created[220]): only their ids (and the ids of
    // the milliseconds around) are walked, not the 400.
    ListJobsRequest range;
    *range.mutable_filter()->mutable_created_after() = mix.created[200];
    *range.mutable_filter()->mutable_created_before() = mix.created[220];
    range.set_newest_first(true);
    const std::uint64_t walked = co_await visited(range, &listed);
    EXPECT_GE(listed, 20u);
    EXPECT_LE(walked, listed + 10) << "a created range walks its id range";
    // 20 jobs ended in [ends[100], ends[120]): only they are walked; a range holding
    // most finished jobs is cheaper walked in full.
    const std::vector<google::protobuf::Timestamp> ends = co_await EndTimes(e);
    ListJobsRequest finished;
    *finished.mutable_filter()->mutable_finished_after() = ends[100];
    *finished.mutable_filter()->mutable_finished_before() = ends[120];
    EXPECT_EQ(co_await visited(finished, &listed), 20u);
    EXPECT_EQ(listed, 20u);
    finished.set_page_size(3);
    EXPECT_EQ((co_await ListAll(e, finished)).size(), 20u);
    ListJobsRequest most;
    *most.mutable_filter()->mutable_finished_after() = ends[0];
    EXPECT_EQ(co_await visited(most, &listed), 400u);
    EXPECT_EQ(listed, ends.size());
    // An unindexed selector walks every job.
    ListJobsRequest scan;
    scan.mutable_filter()->set_label_selector("tier notin (gold)");
    EXPECT_EQ(co_await visited(scan, &listed), 400u);
  });
}

// ListJobs reads finished jobs from the store between rounds; jobs that end, or are
// deleted, meanwhile must not be listed twice, and one that matched throughout must
// not be skipped.
Task<void> CompleteEach(BrokerEngine& e, std::uint64_t session, std::vector<std::string> ids) {
  for (const std::string& id : ids) {
    EXPECT_TRUE(e.OnExecutorMessage(session, Complete(id, 1, "r")).ok());
    co_await runtime::Yield();
  }
}

Task<void> DeleteEach(BrokerEngine& e, std::vector<std::string> ids) {
  for (const std::string& id : ids) {
    EXPECT_TRUE((co_await e.DeleteJob(id)).ok());
    co_await runtime::Yield();
  }
}

// ListAll yielding to other tasks after each page (as a client's separate calls do);
// `*interleaved` is set when `other` was still running after the first page.
Task<std::vector<std::string>> ListAllYielding(BrokerEngine& e, ListJobsRequest req,
                                               const runtime::TaskHandle<void>& other, bool* interleaved) {
  std::vector<std::string> ids;
  for (int pages = 0; pages < 1000; ++pages) {
    absl::StatusOr<cohort::v1::ListJobsResponse> r = co_await e.ListJobs(req);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) break;
    for (const Job& job : r->jobs()) ids.push_back(job.id());
    if (pages == 0) *interleaved = !other.Done();
    if (r->next_page_token().empty()) break;
    req.set_page_token(r->next_page_token());
    co_await runtime::Yield();
  }
  co_return ids;
}

TEST_F(IndexedListingTest, JobsEndingOrDeletedDuringAListingAreListedOnceAndNoneIsSkipped) {
  WithIdEngine([](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    std::uint64_t session = *e.Attach(Hello("x", 1000).hello(), &exec);
    const std::vector<std::string> ids = *co_await e.Submit(std::vector<JobSpec>(300, Spec("q")), false);
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(1000)).ok());
    co_await Settle();
    // Every other job ends before the listings, as a summary only (read back from the
    // store); the others end a few at a time while pages of 7 are listed.
    std::vector<std::string> now, during[2];
    for (std::size_t i = 0; i < ids.size(); ++i) (i % 2 == 0 ? now : during[i % 4 == 1 ? 0 : 1]).push_back(ids[i]);
    co_await CompleteEach(e, session, now);
    co_await Settle();
    ListJobsRequest req;
    req.set_queue("q");
    req.set_page_size(7);
    for (bool newest : {false, true}) {
      req.set_newest_first(newest);
      runtime::TaskHandle<void> ender = runtime::Spawn(CompleteEach(e, session, during[newest ? 1 : 0]));
      bool interleaved = false;
      const std::vector<std::string> listed = co_await ListAllYielding(e, req, ender, &interleaved);
      EXPECT_TRUE(interleaved) << "the jobs ended before the listing went on";
      co_await ender;
      std::vector<std::string> expected = ids;
      if (newest) std::reverse(expected.begin(), expected.end());
      EXPECT_EQ(listed, expected) << "newest_first " << newest;
    }
    co_await Settle();
    // Every third job is deleted during a listing: the others are each listed once.
    std::vector<std::string> deleted, kept;
    for (std::size_t i = 0; i < ids.size(); ++i) (i % 3 == 0 ? deleted : kept).push_back(ids[i]);
    runtime::TaskHandle<void> deleter = runtime::Spawn(DeleteEach(e, deleted));
    req.set_newest_first(false);
    bool interleaved = false;
    const std::vector<std::string> listed = co_await ListAllYielding(e, req, deleter, &interleaved);
    EXPECT_TRUE(interleaved) << "the jobs were deleted before the listing went on";
    co_await deleter;
    EXPECT_EQ(std::adjacent_find(listed.begin(), listed.end(), std::greater_equal<>()), listed.end())
        << "ids not strictly increasing: a job listed twice or out of order";
    std::vector<std::string> listed_kept;
    for (const std::string& id : listed) {
      if (std::find(kept.begin(), kept.end(), id) != kept.end()) listed_kept.push_back(id);
    }
    EXPECT_EQ(listed_kept, kept) << "a job that was never deleted was skipped";
    e.Detach(session);
  });
}

// Bulk operations walk the same candidates: counting a label's 2 jobs among 300 is
// done within 5 examined jobs, where an unindexed selector is not.
TEST_F(IndexedListingTest, BulkOperationsWalkOnlyTheCandidatesOfAnIndexedFilter) {
  WithIdEngine([](BrokerEngine& e) -> Task<void> {
    std::vector<JobSpec> specs(300, Spec("q"));
    (*specs[10].mutable_labels())["pick"] = "me";
    (*specs[250].mutable_labels())["pick"] = "me";
    co_await e.Submit(specs, false);
    cohort::v1::JobFilter filter;
    filter.set_label_selector("pick=me");
    BulkStep step = co_await e.CountMatching(*JobMatcher::Compile(filter), "", 5);
    EXPECT_TRUE(step.done);
    EXPECT_EQ(step.matched, 2);
    filter.set_label_selector("pick notin (you)");
    step = co_await e.CountMatching(*JobMatcher::Compile(filter), "", 5);
    EXPECT_FALSE(step.done);
    EXPECT_EQ(step.matched, 5);
  });
}

TEST_F(IndexedListingTest, BulkOperationsWalkOnlyTheJobsOfANarrowFinishedRange) {
  WithIdEngine([](BrokerEngine& e) -> Task<void> {
    const Mix mix = co_await SubmitMix(e);
    const std::vector<google::protobuf::Timestamp> ends = co_await EndTimes(e);
    cohort::v1::JobFilter filter;
    *filter.mutable_finished_after() = ends[100];
    *filter.mutable_finished_before() = ends[120];
    BulkStep step = co_await e.CountMatching(*JobMatcher::Compile(filter), "", 20);
    EXPECT_TRUE(step.done);  // its 20 jobs are the only candidates examined
    EXPECT_EQ(step.matched, 20);
    for (const cohort::v1::JobFilter& f : FinishedFilters(ends, mix)) {
      ListJobsRequest req;
      *req.mutable_filter() = f;
      const std::size_t scanned = (co_await FullScan(e, req)).size();
      step = co_await e.CountMatching(*JobMatcher::Compile(f), "", 1000);
      EXPECT_TRUE(step.done);
      EXPECT_EQ(step.matched, static_cast<std::int64_t>(scanned)) << f.ShortDebugString();
    }
  });
}

}  // namespace
}  // namespace cohort::broker
