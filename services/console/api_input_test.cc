#include "services/console/api_input.h"

#include <string>

#include "gtest/gtest.h"
#include "services/console/api_route.h"

namespace cohort::console {
namespace {

constexpr char kJobId[] = "0190f1e2a3b4000100000001";

TEST(MatchRoute, MatchesEveryRouteWithItsTemplateName) {
  EXPECT_EQ(MatchRoute("GET", "/api/queues")->kind, RouteKind::kQueues);
  EXPECT_EQ(MatchRoute("GET", "/api/jobs")->kind, RouteKind::kJobs);
  absl::StatusOr<Route> job = MatchRoute("GET", std::string("/api/jobs/") + kJobId);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->name, "jobs/{id}");
  EXPECT_EQ(job->target, kJobId);
  absl::StatusOr<Route> cancel = MatchRoute("POST", std::string("/api/jobs/") + kJobId + "/cancel");
  ASSERT_TRUE(cancel.ok()) << cancel.status();
  EXPECT_TRUE(cancel->mutates);
  absl::StatusOr<Route> pause = MatchRoute("POST", "/api/queues/mail.send/pause");
  ASSERT_TRUE(pause.ok()) << pause.status();
  EXPECT_EQ(pause->name, "queues/{name}/pause");
  EXPECT_EQ(pause->target, "mail.send");
  EXPECT_EQ(MatchRoute("POST", "/api/schedules/nightly/trigger")->kind, RouteKind::kScheduleAction);
  EXPECT_EQ(MatchRoute("GET", "/api/whoami")->kind, RouteKind::kWhoami);
  EXPECT_EQ(MatchRoute("POST", std::string("/api/jobs/") + kJobId + "/retry")->kind, RouteKind::kRetryJob);
  EXPECT_EQ(MatchRoute("POST", std::string("/api/jobs/") + kJobId + "/delete")->kind, RouteKind::kDeleteJob);
  absl::StatusOr<Route> bulk = MatchRoute("POST", "/api/bulk");
  ASSERT_TRUE(bulk.ok()) << bulk.status();
  EXPECT_TRUE(bulk->mutates);
  EXPECT_EQ(MatchRoute("GET", "/api/bulk/op-17")->kind, RouteKind::kBulk);
  EXPECT_EQ(MatchRoute("GET", "/api/bulk/bad id").status().code(), absl::StatusCode::kNotFound);
}

TEST(MatchRoute, AnswersNotFoundForUnknownPathsAndMalformedIds) {
  EXPECT_EQ(MatchRoute("GET", "/api/nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(MatchRoute("GET", "/api/jobs/not-an-id").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(MatchRoute("POST", "/api/queues/Bad Name/pause").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(MatchRoute("GET", "/api/" + std::string(10'000, 'a')).status().code(), absl::StatusCode::kNotFound);
  EXPECT_LT(MatchRoute("GET", "/api/" + std::string(200, 'a')).status().message().size(), 400u);
}

TEST(MatchRoute, RefusesAnActionByGetAndAReadByPost) {
  EXPECT_EQ(MatchRoute("GET", "/api/queues/q/pause").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(MatchRoute("POST", "/api/queues").status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ParseStates, TakesNamesWithOrWithoutThePrefixInAnyCase) {
  absl::StatusOr<std::vector<cohort::v1::JobState>> states = ParseStates("failed,JOB_STATE_QUEUED, Running");
  ASSERT_TRUE(states.ok()) << states.status();
  EXPECT_EQ(*states, (std::vector<cohort::v1::JobState>{cohort::v1::JOB_STATE_FAILED, cohort::v1::JOB_STATE_QUEUED,
                                                        cohort::v1::JOB_STATE_RUNNING}));
  EXPECT_TRUE(ParseStates("")->empty());
}

TEST(ParseStates, RejectsUnknownAndUnspecifiedStates) {
  EXPECT_EQ(ParseStates("done").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseStates("unspecified").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseIntParam, ChecksTheRange) {
  absl::flat_hash_map<std::string, std::string> query = {{"limit", "500"}, {"bad", "1e3"}};
  EXPECT_EQ(ParseIntParam(query, "limit", 1, 200, 50).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseIntParam(query, "bad", 1, 200, 50).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseIntParam(query, "absent", 1, 200, 50), 50);
}

TEST(ParseLimits, SetsOnlyTheFieldsGiven) {
  absl::StatusOr<cohort::v1::QueueLimits> limits = ParseLimits(R"({"maxConcurrency": 3})");
  ASSERT_TRUE(limits.ok()) << limits.status();
  EXPECT_TRUE(limits->has_max_concurrency());
  EXPECT_EQ(limits->max_concurrency(), 3);
  EXPECT_FALSE(limits->has_max_rate());
  EXPECT_FALSE(limits->has_weight());
}

TEST(ParseLimits, RejectsNegativeHugeUnknownEmptyAndMalformedBodies) {
  for (const char* body : {R"({"maxConcurrency": -1})", R"({"maxRate": 1e300})", R"({"weight": 5000})",
                           R"({"maxRate": "NaN"})", R"({"colour": 1})", "{}", "not json", "[1]"}) {
    EXPECT_EQ(ParseLimits(body).status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
}

TEST(ParseJobFilter, ReadsEveryFilterOfTheOperationsApi) {
  absl::flat_hash_map<std::string, std::string> query = {
      {"state", "failed"},          {"queue", "mail"},
      {"kind", "builtin.echo"},     {"labels", "team=web,tier!=db"},
      {"error_code", "TIMEOUT"},    {"created_after", "2026-12-06T18:00:00Z"},
      {"finished_before", "2026-12-06T19:00:00.5+01:00"}};
  absl::StatusOr<cohort::v1::JobFilter> filter = ParseJobFilter(query);
  ASSERT_TRUE(filter.ok()) << filter.status();
  EXPECT_EQ(filter->states_size(), 1);
  EXPECT_EQ(filter->queue(), "mail");
  EXPECT_EQ(filter->kind(), "builtin.echo");
  EXPECT_EQ(filter->label_selector(), "team=web,tier!=db");
  EXPECT_EQ(filter->error_code(), "TIMEOUT");
  EXPECT_EQ(filter->created_after().seconds(), 1796580000);
  EXPECT_EQ(filter->finished_before().seconds(), 1796580000);
  EXPECT_EQ(filter->finished_before().nanos(), 500'000'000);
  EXPECT_FALSE(filter->has_created_before());
}

TEST(ParseJobFilter, RejectsBadTimesNamesAndOverlongSelectors) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"created_after", "yesterday"},
           {"finished_after", "1969-01-01T00:00:00Z"},
           {"queue", "Not A Queue"},
           {"labels", std::string(2000, 'a')},
           {"error_code", std::string(200, 'E')},
           {"state", "done"}}) {
    absl::StatusOr<cohort::v1::JobFilter> filter = ParseJobFilter({{key, value}});
    EXPECT_EQ(filter.status().code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_LT(filter.status().message().size(), 300u) << key;
  }
}

TEST(ParseBulkRequest, TakesTheProtoJsonOfStartBulkOperation) {
  absl::StatusOr<cohort::v1::StartBulkOperationRequest> req = ParseBulkRequest(
      R"({"action": "BULK_ACTION_CANCEL", "filter": {"labelSelector": "batch=7"}, "dryRun": true})");
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->action(), cohort::v1::BULK_ACTION_CANCEL);
  EXPECT_EQ(req->filter().label_selector(), "batch=7");
  EXPECT_TRUE(req->dry_run());
}

TEST(ParseBulkRequest, RejectsAMissingOrUnknownActionAndUnknownKeys) {
  for (const char* body : {R"({"filter": {}})", R"({"action": 9})", R"({"action": "BULK_ACTION_EXPLODE"})",
                           R"({"action": "BULK_ACTION_DELETE", "everything": true})",
                           R"({"action": "BULK_ACTION_DELETE", "filter": {"states": [0]}})", "nope"}) {
    EXPECT_EQ(ParseBulkRequest(body).status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
}

TEST(CheckName, QuotesABoundedPrefixOfTheName) {
  absl::Status s = CheckName("queue", std::string(5000, 'X'));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(s.message().size(), 200u);
}

}  // namespace
}  // namespace cohort::console
