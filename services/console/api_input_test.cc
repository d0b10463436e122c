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

TEST(CheckName, QuotesABoundedPrefixOfTheName) {
  absl::Status s = CheckName("queue", std::string(5000, 'X'));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(s.message().size(), 200u);
}

}  // namespace
}  // namespace cohort::console
