// The history checker against hand-made histories: a consistent one passes, and each
// invariant's violation is reported once, naming the operations involved.
#include "tests/replication/history.h"

#include <fstream>
#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

cohort::v1::Job Final(const std::string& id, cohort::v1::JobState state, int attempt, const std::string& result = "") {
  cohort::v1::Job job;
  job.set_id(id);
  job.set_state(state);
  job.set_attempt(attempt);
  if (state == cohort::v1::JOB_STATE_SUCCEEDED) job.set_result(result);
  return job;
}

constexpr auto kSucceeded = cohort::v1::JOB_STATE_SUCCEEDED;

TEST(HistoryTest, AConsistentHistoryHasNoViolation) {
  History h;
  h.SubmitAcknowledged("k1", "j1");
  h.SubmitAcknowledged("k1", "j1");  // a retried submit answered with the same job
  h.Ran("j1", 1);
  h.Ran("j1", 2);  // a redelivery after a failover: a new attempt
  h.CompletionAcknowledged("j1", 2);
  h.WaitInterrupted("j1", 14, "leader lost");
  h.WaitInterrupted("j1", 1, "cancelled");
  h.WaitAnswered("j1", kSucceeded, "out\n");
  EXPECT_THAT(h.Check({{"j1", Final("j1", kSucceeded, 2, "out\n")}}), IsEmpty());
  EXPECT_THAT(h.JobIds(), ElementsAre("j1"));
}

TEST(HistoryTest, AnAcknowledgedJobMissingFromTheFinalStateIsLost) {
  History h;
  h.SubmitAcknowledged("k1", "j1");
  EXPECT_THAT(h.Check({}), ElementsAre(AllOf(HasSubstr("lost: #1 submit key=k1 acknowledged as job j1"),
                                             HasSubstr("does not have the job"))));
}

TEST(HistoryTest, AnAcknowledgedJobThatDidNotSucceedIsNotEnded) {
  History h;
  h.SubmitAcknowledged("k1", "j1");
  h.Ran("j1", 1);
  EXPECT_THAT(h.Check({{"j1", Final("j1", cohort::v1::JOB_STATE_RUNNING, 1)}}),
              ElementsAre(AllOf(HasSubstr("not ended: #1"), HasSubstr("JOB_STATE_RUNNING at attempt 1"))));
}

TEST(HistoryTest, OneKeyAcknowledgedAsTwoJobsIsADuplicate) {
  History h;
  h.SubmitAcknowledged("k1", "j1");
  h.SubmitAcknowledged("k1", "j2");
  h.Ran("j1", 1);
  h.Ran("j2", 1);
  EXPECT_THAT(h.Check({{"j1", Final("j1", kSucceeded, 1)}, {"j2", Final("j2", kSucceeded, 1)}}),
              ElementsAre(AllOf(HasSubstr("duplicate: idempotency key k1 acknowledged as 2 jobs"),
                                HasSubstr("#1 submit"), HasSubstr("#2 submit"))));
}

TEST(HistoryTest, AnAttemptRunTwiceIsReportedWithBothRuns) {
  History h;
  h.SubmitAcknowledged("k1", "j1");
  h.Ran("j1", 1);
  h.Ran("j1", 1);
  EXPECT_THAT(h.Check({{"j1", Final("j1", kSucceeded, 1)}}),
              ElementsAre(AllOf(HasSubstr("ran twice: job j1 attempt 1 ran 2 times"), HasSubstr("#2 run of job j1"),
                                HasSubstr("#3 run of job j1")),
                          HasSubstr("overrun: job j1 records 1 attempts but ran 2 times")));
}

TEST(HistoryTest, RunningAnAttemptTheStoreDoesNotRecordIsAnOverrun) {
  History h;
  h.SubmitAcknowledged("k1", "j1");
  h.Ran("j1", 1);
  h.Ran("j1", 2);  // the store says the job never got past attempt 1
  EXPECT_THAT(h.Check({{"j1", Final("j1", kSucceeded, 1)}}),
              ElementsAre(AllOf(HasSubstr("overrun: job j1 records attempt 1 but ran a later one"),
                                HasSubstr("#3 run of job j1 attempt 2"))));
}

TEST(HistoryTest, MoreRunsThanRecordedAttemptsIsAnOverrun) {
  History h;
  h.SubmitAcknowledged("k1", "j1");
  h.Ran("j1", 1);
  h.Ran("j1", 2);
  h.Ran("j1", 2);
  const std::vector<std::string> v = h.Check({{"j1", Final("j1", kSucceeded, 2)}});
  EXPECT_THAT(v, ElementsAre(HasSubstr("ran twice: job j1 attempt 2"),
                             HasSubstr("overrun: job j1 records 2 attempts but ran 3 times")));
}

TEST(HistoryTest, ARunOfAJobTheLeaderDoesNotHaveIsAPhantom) {
  History h;
  h.Ran("ghost", 1);
  EXPECT_THAT(h.Check({}), ElementsAre(HasSubstr("phantom: job ghost ran but the leader does not have it: #1 run")));
}

TEST(HistoryTest, ASucceededJobWithoutARunIsUnrun) {
  History h;
  h.SubmitAcknowledged("k1", "j1");
  EXPECT_THAT(h.Check({{"j1", Final("j1", kSucceeded, 1)}}),
              ElementsAre(HasSubstr("unrun: job j1 SUCCEEDED at attempt 1 with no recorded run")));
}

TEST(HistoryTest, AnAcknowledgedCompletionTheStoreDoesNotReflectIsReported) {
  History h;
  h.SubmitAcknowledged("k1", "j1");
  h.Ran("j1", 1);
  h.Ran("j1", 2);
  h.CompletionAcknowledged("j1", 1);  // acknowledged, yet the job went on to attempt 2
  h.CompletionAcknowledged("j1", 3);  // acknowledged for an attempt that never ran
  const std::vector<std::string> v = h.Check({{"j1", Final("j1", kSucceeded, 2)}});
  EXPECT_THAT(v, ElementsAre(AllOf(HasSubstr("completion: #4 completion of job j1 attempt 1"),
                                   HasSubstr("JOB_STATE_SUCCEEDED at attempt 2")),
                             AllOf(HasSubstr("completion: #5 completion of job j1 attempt 3"),
                                   HasSubstr("JOB_STATE_SUCCEEDED at attempt 2")),
                             AllOf(HasSubstr("completion: #5 completion of job j1 attempt 3"),
                                   HasSubstr("that attempt never ran"))))
      << ::testing::PrintToString(v);
}

TEST(HistoryTest, AWaitAnsweringADifferentOutcomeIsAWrongAnswer) {
  History h;
  h.SubmitAcknowledged("k1", "j1");
  h.Ran("j1", 1);
  h.WaitAnswered("j1", cohort::v1::JOB_STATE_FAILED, "");
  h.WaitAnswered("j1", kSucceeded, "stale\n");
  h.WaitAnswered("gone", kSucceeded, "x");
  EXPECT_THAT(h.Check({{"j1", Final("j1", kSucceeded, 1, "out\n")}}),
              ElementsAre(AllOf(HasSubstr("wrong answer: #3 wait on job j1 answered JOB_STATE_FAILED"),
                                HasSubstr("the job ended JOB_STATE_SUCCEEDED result=\"out\\n\"")),
                          HasSubstr("wrong answer: #4 wait on job j1 answered JOB_STATE_SUCCEEDED result=\"stale\\n\""),
                          HasSubstr("wrong answer: #5 wait on job gone")));
}

TEST(HistoryTest, AWaitInterruptedWithANonRetryableStatusIsReported) {
  History h;
  h.SubmitAcknowledged("k1", "j1");
  h.Ran("j1", 1);
  h.WaitInterrupted("j1", 5, "job not found");  // NOT_FOUND: a wrong answer, not a retry
  h.WaitInterrupted("j1", 4, "deadline");       // DEADLINE_EXCEEDED
  EXPECT_THAT(h.Check({{"j1", Final("j1", kSucceeded, 1)}}),
              ElementsAre(HasSubstr("bad status: #3 wait on job j1 interrupted with code 5 (job not found)"),
                          HasSubstr("bad status: #4 wait on job j1 interrupted with code 4")));
}

TEST(HistoryTest, LoadRunsReadsTheRunLogAndRefusesAMalformedLine) {
  TempDir dir("history");
  const std::string log = dir.Path("runs");
  std::ofstream(log) << "j1 1\nj1 2\n";
  History h;
  ASSERT_TRUE(h.LoadRuns(log).ok());
  EXPECT_THAT(h.Check({{"j1", Final("j1", kSucceeded, 2)}}), IsEmpty());
  ASSERT_EQ(h.Operations().size(), 2u);
  EXPECT_EQ(h.Operations()[1].Describe().substr(0, 24), "#2 run of job j1 attempt");

  std::ofstream(dir.Path("bad")) << "j1 1\nj1 two\n";
  absl::Status bad = History().LoadRuns(dir.Path("bad"));
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), HasSubstr(":2: not \"JOB_ID ATTEMPT\": \"j1 two\""));
  EXPECT_EQ(History().LoadRuns(dir.Path("missing")).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace cohort::testing
