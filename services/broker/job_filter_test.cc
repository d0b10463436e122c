#include "services/broker/job_filter.h"

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/proto_time.h"

namespace cohort::broker {
namespace {

using cohort::v1::Job;
using cohort::v1::JobFilter;
using common::ToProto;
using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

Job MakeJob(cohort::v1::JobState state, const std::string& queue, const std::string& kind, absl::Time created) {
  Job job;
  job.set_id("j");
  job.set_state(state);
  job.mutable_spec()->set_queue(queue);
  job.mutable_spec()->set_kind(kind);
  (*job.mutable_spec()->mutable_labels())["team"] = "data";
  *job.mutable_create_time() = ToProto(created);
  return job;
}

Job Failed(const std::string& code, absl::Time ended) {
  Job job = MakeJob(cohort::v1::JOB_STATE_FAILED, "q", "builtin.fail", kT0);
  job.mutable_error()->set_code(code);
  *job.mutable_end_time() = ToProto(ended);
  return job;
}

JobMatcher Compile(const JobFilter& filter) {
  absl::StatusOr<JobMatcher> m = JobMatcher::Compile(filter);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *std::move(m) : JobMatcher();
}

TEST(JobMatcher, AnEmptyFilterMatchesEveryJob) {
  JobMatcher m = Compile(JobFilter());
  EXPECT_TRUE(m.matches_all());
  EXPECT_TRUE(m.Matches(MakeJob(cohort::v1::JOB_STATE_QUEUED, "q", "k", kT0)));
}

TEST(JobMatcher, EveryFieldMustHold) {
  JobFilter f;
  f.add_states(cohort::v1::JOB_STATE_QUEUED);
  f.add_states(cohort::v1::JOB_STATE_RUNNING);
  f.set_queue("q");
  f.set_kind("builtin.echo");
  f.set_label_selector("team=data");
  JobMatcher m = Compile(f);
  EXPECT_FALSE(m.matches_all());
  EXPECT_TRUE(m.Matches(MakeJob(cohort::v1::JOB_STATE_RUNNING, "q", "builtin.echo", kT0)));
  EXPECT_FALSE(m.Matches(MakeJob(cohort::v1::JOB_STATE_PENDING, "q", "builtin.echo", kT0)));
  EXPECT_FALSE(m.Matches(MakeJob(cohort::v1::JOB_STATE_QUEUED, "other", "builtin.echo", kT0)));
  EXPECT_FALSE(m.Matches(MakeJob(cohort::v1::JOB_STATE_QUEUED, "q", "builtin.noop", kT0)));
  Job unlabelled = MakeJob(cohort::v1::JOB_STATE_QUEUED, "q", "builtin.echo", kT0);
  unlabelled.mutable_spec()->clear_labels();
  EXPECT_FALSE(m.Matches(unlabelled));
}

TEST(JobMatcher, CreatedRangeIsHalfOpen) {
  JobFilter f;
  *f.mutable_created_after() = ToProto(kT0);
  *f.mutable_created_before() = ToProto(kT0 + absl::Seconds(10));
  JobMatcher m = Compile(f);
  EXPECT_TRUE(m.Matches(MakeJob(cohort::v1::JOB_STATE_QUEUED, "q", "k", kT0)));
  EXPECT_TRUE(m.Matches(MakeJob(cohort::v1::JOB_STATE_QUEUED, "q", "k", kT0 + absl::Seconds(9))));
  EXPECT_FALSE(m.Matches(MakeJob(cohort::v1::JOB_STATE_QUEUED, "q", "k", kT0 + absl::Seconds(10))));
  EXPECT_FALSE(m.Matches(MakeJob(cohort::v1::JOB_STATE_QUEUED, "q", "k", kT0 - absl::Nanoseconds(1))));
}

TEST(JobMatcher, AJobThatHasNotEndedNeverMatchesAFinishedBound) {
  JobFilter f;
  *f.mutable_finished_after() = ToProto(kT0);
  JobMatcher m = Compile(f);
  EXPECT_FALSE(m.Matches(MakeJob(cohort::v1::JOB_STATE_RUNNING, "q", "k", kT0)));
  EXPECT_TRUE(m.Matches(Failed("handler", kT0 + absl::Seconds(1))));
  EXPECT_FALSE(m.Matches(Failed("handler", kT0 - absl::Seconds(1))));
}

TEST(JobMatcher, ErrorCodeMatchesFailedAndCancelledJobsOnly) {
  JobFilter f;
  f.set_error_code("timeout");
  JobMatcher m = Compile(f);
  EXPECT_TRUE(m.Matches(Failed("timeout", kT0)));
  EXPECT_FALSE(m.Matches(Failed("handler", kT0)));
  Job requeued = Failed("timeout", kT0);
  requeued.set_state(cohort::v1::JOB_STATE_QUEUED);  // a retried job keeps its last error
  EXPECT_FALSE(m.Matches(requeued));
}

TEST(JobMatcher, RestrictionsCombineWithTheFilter) {
  JobFilter f;
  f.set_queue("a");
  f.add_states(cohort::v1::JOB_STATE_QUEUED);
  f.add_states(cohort::v1::JOB_STATE_FAILED);
  JobMatcher same = Compile(f);
  same.RestrictQueue("a");
  same.RestrictStates({cohort::v1::JOB_STATE_FAILED, cohort::v1::JOB_STATE_SUCCEEDED});
  EXPECT_FALSE(same.matches_nothing());
  EXPECT_THAT(same.states(), ::testing::ElementsAre(cohort::v1::JOB_STATE_FAILED));
  JobMatcher other_queue = Compile(f);
  other_queue.RestrictQueue("b");
  EXPECT_TRUE(other_queue.matches_nothing());
  EXPECT_FALSE(other_queue.Matches(MakeJob(cohort::v1::JOB_STATE_QUEUED, "a", "k", kT0)));
  EXPECT_FALSE(other_queue.Matches(MakeJob(cohort::v1::JOB_STATE_QUEUED, "b", "k", kT0)));
  JobMatcher disjoint = Compile(f);
  disjoint.RestrictStates({cohort::v1::JOB_STATE_RUNNING});
  EXPECT_TRUE(disjoint.matches_nothing());
}

struct BadFilter {
  const char* name;
  JobFilter filter;
  const char* message_part;
};

std::vector<BadFilter> BadFilters() {
  std::vector<BadFilter> out;
  auto add = [&](const char* name, const char* part, auto set) {
    JobFilter f;
    set(f);
    out.push_back({name, f, part});
  };
  add("state_zero", "filter.states contains 0", [](JobFilter& f) { f.add_states(cohort::v1::JOB_STATE_UNSPECIFIED); });
  add("state_unknown", "filter.states contains 99", [](JobFilter& f) { f.add_states(static_cast<cohort::v1::JobState>(99)); });
  add("queue", "filter.queue \"A B\" is invalid", [](JobFilter& f) { f.set_queue("A B"); });
  add("kind", "filter.kind \"Bad!\" is invalid", [](JobFilter& f) { f.set_kind("Bad!"); });
  add("selector", "filter.label_selector at byte 2", [](JobFilter& f) { f.set_label_selector("a,"); });
  add("nanos", "filter.created_after", [](JobFilter& f) { f.mutable_created_after()->set_nanos(-1); });
  add("year", "filter.finished_before", [](JobFilter& f) { f.mutable_finished_before()->set_seconds(300'000'000'000); });
  add("empty_range", "filter.finished_after must be earlier than filter.finished_before", [](JobFilter& f) {
    *f.mutable_finished_after() = ToProto(kT0);
    *f.mutable_finished_before() = ToProto(kT0);
  });
  add("error_code", "filter.error_code", [](JobFilter& f) { f.set_error_code(std::string(65, 'e')); });
  return out;
}

TEST(JobMatcher, RejectsEachMalformedFieldNamingIt) {
  for (const BadFilter& c : BadFilters()) {
    absl::StatusOr<JobMatcher> m = JobMatcher::Compile(c.filter);
    ASSERT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(m.status().message(), HasSubstr(c.message_part)) << c.name << ": " << m.status();
  }
}

}  // namespace
}  // namespace cohort::broker
