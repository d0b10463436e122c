#include "services/executor/builtin_runner.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "libs/runtime/test_util.h"

namespace cohort::executor {
namespace {

struct Report {
  double fraction;
  std::string message;
  long long at_ms;
};

class RecordingSink final : public ProgressSink {
 public:
  explicit RecordingSink(const runtime::Clock& clock) : clock_(clock) {}
  void Report(double fraction, std::string message) override {
    reports.push_back({fraction, std::move(message),
                       std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch()).count()});
  }
  std::vector<executor::Report> reports;

 private:
  const runtime::Clock& clock_;
};

class BuiltinRunnerTest : public runtime::testing::ManualLoopTest {
 protected:
  Outcome RunJob(const std::string& kind, const std::string& payload) {
    cohort::v1::Job job;
    job.mutable_spec()->set_kind(kind);
    job.mutable_spec()->set_payload(payload);
    return Run(runner_.Run(job, 1, sink_));
  }

  BuiltinRunner runner_;
  RecordingSink sink_{clock_};
};

TEST_F(BuiltinRunnerTest, EchoReturnsThePayload) {
  Outcome o = RunJob("builtin.echo", "hi");
  EXPECT_TRUE(o.ok);
  EXPECT_EQ(o.result, "hi");
}

TEST_F(BuiltinRunnerTest, FailFailsWithThePayloadAsMessage) {
  Outcome o = RunJob("builtin.fail", "no such customer");
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error.code(), "handler");
  EXPECT_EQ(o.error.message(), "no such customer");
}

TEST_F(BuiltinRunnerTest, SleepRefusesMoreThanAHundredYearsInsteadOfReturningAtOnce) {
  // 342 years: more nanoseconds than a time point holds; it once wrapped and returned.
  Outcome o = RunJob("builtin.sleep", "3000000h");
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error.code(), "bad_payload");
  o = RunJob("builtin.sleep", std::string(100'000, '9'));
  EXPECT_EQ(o.error.code(), "bad_payload");
  EXPECT_LT(o.error.message().size(), 256u);
}

TEST_F(BuiltinRunnerTest, SleepReportsTheFractionSleptOnceASecond) {
  Outcome o = RunJob("builtin.sleep", "4s");
  EXPECT_TRUE(o.ok);
  EXPECT_EQ(o.result, "4s");
  EXPECT_EQ(ElapsedMs(), 4000);
  ASSERT_EQ(sink_.reports.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_DOUBLE_EQ(sink_.reports[i].fraction, 0.25 * (i + 1));
    EXPECT_EQ(sink_.reports[i].at_ms, 1000 * (i + 1));
  }
  EXPECT_EQ(sink_.reports[1].message, "slept 2s of 4s");
}

TEST_F(BuiltinRunnerTest, LongSleepReportsAHundredTimesAtMost) {
  Outcome o = RunJob("builtin.sleep", "1000s");
  EXPECT_TRUE(o.ok);
  EXPECT_EQ(sink_.reports.size(), 99u);
  EXPECT_DOUBLE_EQ(sink_.reports.front().fraction, 0.01);
  EXPECT_EQ(sink_.reports.front().at_ms, 10'000);
}

TEST_F(BuiltinRunnerTest, ShortSleepReportsNothing) {
  Outcome o = RunJob("builtin.sleep", "250ms");
  EXPECT_TRUE(o.ok);
  EXPECT_EQ(ElapsedMs(), 250);
  EXPECT_TRUE(sink_.reports.empty());
}

TEST_F(BuiltinRunnerTest, SleepRejectsABadDuration) {
  for (const char* payload : {"soon", "-1s", "inf"}) {
    Outcome o = RunJob("builtin.sleep", payload);
    EXPECT_FALSE(o.ok);
    EXPECT_EQ(o.error.code(), "bad_payload") << payload;
  }
}

TEST_F(BuiltinRunnerTest, UnknownKindFails) {
  Outcome o = RunJob("builtin.nope", "");
  EXPECT_EQ(o.error.code(), "unknown_kind");
}

}  // namespace
}  // namespace cohort::executor
