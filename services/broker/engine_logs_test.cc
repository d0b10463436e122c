// What the engine tells an operator through libs/common/log.h: one info line per failed
// job with its code and attempt, never its payload, result or error message; queue
// administration at info.
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "libs/common/log.h"
#include "libs/runtime/runtime.h"
#include "services/broker/engine_test_util.h"

namespace cohort::broker {
namespace {

using runtime::Task;
using testing::Batch;
using testing::Complete;
using testing::Credit;
using testing::Fail;
using testing::FakeChannel;
using testing::Hello;
using testing::Spec;

class EngineLogsTest : public testing::EngineTest {
 protected:
  void SetUp() override {
    log::LogOptions options;
    options.out = &out_;
    options.now = [this] { return clock_.SystemNow(); };
    log::Configure(std::move(options));
  }
  void TearDown() override { log::Configure(log::LogOptions{}); }

  // The lines written so far that contain `text`.
  std::vector<std::string> LinesWith(const std::string& text) const {
    std::vector<std::string> lines;
    for (absl::string_view line : absl::StrSplit(out_.str(), '\n', absl::SkipEmpty())) {
      if (absl::StrContains(line, text)) lines.emplace_back(line);
    }
    return lines;
  }

  std::ostringstream out_;
};

TEST_F(EngineLogsTest, AFailedJobIsOneInfoLineWithItsCodeAndAttemptAndNoneOfItsData) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    cohort::v1::JobSpec spec = Spec("emails", 0, "payload-c4f1e");
    spec.set_max_attempts(1);
    const std::string failed = (*co_await e.Submit(Batch(spec, Spec("emails", 0, "payload-c4f1e")), false))[0];
    FakeChannel exec;
    const std::uint64_t s = *e.Attach(Hello("x", 2).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(2)).ok());
    co_await Settle();
    EXPECT_EQ(exec.Assigns().size(), 2u);
    if (exec.Assigns().size() != 2) co_return;
    const std::string succeeded = exec.Assigns()[1].assign().job().id();
    EXPECT_TRUE(e.OnExecutorMessage(s, Fail(failed, 1, "stderr-9d2b0 said no", "exit_status")).ok());
    EXPECT_TRUE(e.OnExecutorMessage(s, Complete(succeeded, 1, "result-77aa1")).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob(failed)->state(), cohort::v1::JOB_STATE_FAILED);
    EXPECT_EQ(e.GetJob(succeeded)->state(), cohort::v1::JOB_STATE_SUCCEEDED);
  });
  const std::vector<std::string> lines = LinesWith("job failed");
  ASSERT_EQ(lines.size(), 1u) << out_.str();
  EXPECT_TRUE(absl::StrContains(lines[0], "INFO  broker: job failed job_id=job-1000 queue=emails kind=builtin.echo "
                                          "code=exit_status attempt=1"))
      << lines[0];
  EXPECT_FALSE(absl::StrContains(out_.str(), "payload-c4f1e")) << out_.str();
  EXPECT_FALSE(absl::StrContains(out_.str(), "stderr-9d2b0")) << out_.str();
  EXPECT_FALSE(absl::StrContains(out_.str(), "result-77aa1")) << out_.str();
}

TEST_F(EngineLogsTest, QueueAdministrationIsLoggedAtInfo) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    cohort::v1::CreateQueueRequest create;
    create.set_queue("reports");
    EXPECT_TRUE((co_await e.CreateQueue(create)).ok());
    EXPECT_TRUE((co_await e.PauseQueue("reports", true)).ok());
    EXPECT_TRUE((co_await e.PauseQueue("reports", false)).ok());
    cohort::v1::QueueLimits limits;
    limits.set_max_concurrency(3);
    EXPECT_TRUE((co_await e.SetQueueLimits("reports", limits)).ok());
    EXPECT_TRUE((co_await e.DeleteQueue("reports", false)).ok());
  });
  EXPECT_EQ(LinesWith("INFO  broker: queue created queue=reports paused=false").size(), 1u) << out_.str();
  EXPECT_EQ(LinesWith("INFO  broker: queue paused queue=reports").size(), 1u) << out_.str();
  EXPECT_EQ(LinesWith("INFO  broker: queue resumed queue=reports").size(), 1u) << out_.str();
  EXPECT_EQ(LinesWith("INFO  broker: queue limits changed queue=reports max_concurrency=3").size(), 1u) << out_.str();
  EXPECT_EQ(LinesWith("INFO  broker: queue deleted queue=reports deleted_jobs=0").size(), 1u) << out_.str();
}

}  // namespace
}  // namespace cohort::broker
