#include "libs/common/log.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace cohort::log {
namespace {

const Logger kLog("test");

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override { Use(Format::kText, Level::kInfo); }
  void TearDown() override { Configure(LogOptions{}); }

  void Use(Format format, Level level) {
    LogOptions options;
    options.format = format;
    options.level = level;
    options.out = &out_;
    options.now = [this] { return now_; };
    Configure(std::move(options));
  }

  std::vector<std::string> Lines() const {
    return absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
  }

  std::ostringstream out_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
};

TEST_F(LogTest, WritesOneLineThroughSpdlogWithTheComponentAndFields) {
  kLog.Info("executor connected", {{"executor_id", "h-1"}});
  EXPECT_EQ(out_.str(), "2027-01-15T08:00:00.000000Z INFO  test: executor connected executor_id=h-1\n");
}

TEST_F(LogTest, JsonIsOneObjectPerLine) {
  Use(Format::kJson, Level::kInfo);
  kLog.Warn("broker unreachable", {{"attempts", 2}});
  EXPECT_EQ(out_.str(),
            "{\"time\":\"2027-01-15T08:00:00.000000Z\",\"level\":\"warn\",\"component\":\"test\","
            "\"msg\":\"broker unreachable\",\"attempts\":2}\n");
}

TEST_F(LogTest, LinesBelowTheLevelAreDropped) {
  Use(Format::kText, Level::kWarn);
  kLog.Info("not written");
  kLog.Debug("not written either");
  EXPECT_FALSE(Logger::Enabled(Level::kInfo));
  EXPECT_TRUE(Logger::Enabled(Level::kError));
  kLog.Error("written");
  ASSERT_EQ(Lines().size(), 1u);
  EXPECT_NE(Lines()[0].find("ERROR test: written"), std::string::npos);
}

TEST_F(LogTest, AFloodFromOneCallSiteIsOneLinePerSecondPlusACount) {
  for (int second = 0; second < 3; ++second) {
    for (int i = 0; i < 500; ++i) {
      kLog.Warn("attempt failed", {{"job_id", "j"}});  // one call site
      now_ += absl::Milliseconds(2);
    }
  }
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 3u) << out_.str();
  EXPECT_EQ(lines[0].find("suppressed"), std::string::npos);
  EXPECT_NE(lines[1].find("attempt failed job_id=j suppressed=499"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("suppressed=499"), std::string::npos) << lines[2];
}

TEST_F(LogTest, DistinctCallSitesAreLimitedSeparately) {
  kLog.Info("connected");
  kLog.Info("lost");
  kLog.Info("connected");  // a third site: each line is its own call site
  EXPECT_EQ(Lines().size(), 3u) << out_.str();
}

TEST(LogParse, FlagsSayWhatIsAllowed) {
  EXPECT_EQ(*ParseLevel("--log-level", "warn"), Level::kWarn);
  EXPECT_EQ(*ParseFormat("--log-format", "json"), Format::kJson);
  absl::StatusOr<Level> bad = ParseLevel("--log-level", "verbose");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "--log-level \"verbose\" is invalid: use debug, info, warn or error");
  absl::StatusOr<Format> bad_format = ParseFormat("--log-format", "xml");
  EXPECT_EQ(bad_format.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_format.status().message(), "--log-format \"xml\" is invalid: use text or json");
}

}  // namespace
}  // namespace cohort::log
