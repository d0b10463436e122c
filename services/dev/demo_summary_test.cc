#include "services/dev/demo_summary.h"

#include <cstdio>

#include "gtest/gtest.h"
#include "services/dev/progress_bar.h"

namespace cohort::dev {
namespace {

TEST(Percentile, TakesTheNearestRank) {
  std::vector<absl::Duration> samples;
  for (int i = 100; i >= 1; --i) samples.push_back(absl::Milliseconds(i));
  EXPECT_EQ(Percentile(samples, 0.5), absl::Milliseconds(50));
  EXPECT_EQ(Percentile(samples, 0.99), absl::Milliseconds(99));
  EXPECT_EQ(Percentile(samples, 1.0), absl::Milliseconds(100));
  EXPECT_EQ(Percentile(samples, 0.0), absl::Milliseconds(1));
  EXPECT_EQ(Percentile({absl::Seconds(3)}, 0.5), absl::Seconds(3));
  EXPECT_EQ(Percentile({}, 0.5), absl::ZeroDuration());
}

TEST(FormatSummary, ListsStatesThroughputAndLatenciesByPriorityHighestFirst) {
  DemoSummary summary;
  summary.by_state[cohort::v1::JOB_STATE_SUCCEEDED] = 1500;
  summary.by_state[cohort::v1::JOB_STATE_FAILED] = 1;
  summary.fan_out_jobs = 1000;
  summary.fan_out_elapsed = absl::Milliseconds(500);
  summary.latency_by_priority[0] = {absl::Milliseconds(30), absl::Milliseconds(40)};
  summary.latency_by_priority[9] = {absl::Milliseconds(2)};
  const std::string table = FormatSummary(summary);
  EXPECT_NE(table.find("SUCCEEDED 1,500"), std::string::npos) << table;
  EXPECT_NE(table.find("FAILED 1"), std::string::npos) << table;
  EXPECT_NE(table.find("2,000 jobs/s"), std::string::npos) << table;
  EXPECT_LT(table.find("       9 "), table.find("       0 ")) << table;
  EXPECT_NE(table.find("40.0 ms"), std::string::npos) << table;
  EXPECT_NE(table.find("all"), std::string::npos) << table;
}

TEST(WithCommas, GroupsThousands) {
  EXPECT_EQ(WithCommas(0), "0");
  EXPECT_EQ(WithCommas(999), "999");
  EXPECT_EQ(WithCommas(1000), "1,000");
  EXPECT_EQ(WithCommas(1234567), "1,234,567");
  EXPECT_EQ(WithCommas(-12345), "-12,345");
}

TEST(ProgressBar, RendersDoneOverTotal) {
  std::FILE* sink = std::tmpfile();
  ASSERT_NE(sink, nullptr);
  {
    ProgressBar bar(sink, "done", 4);
    bar.Advance(2);
    EXPECT_EQ(bar.done(), 2);
    const std::string line = bar.Render();
    EXPECT_NE(line.find("done [###############---------------] 2/4"), std::string::npos) << line;
  }
  // Not a terminal: nothing was drawn.
  EXPECT_EQ(std::ftell(sink), 0);
  std::fclose(sink);
}

}  // namespace
}  // namespace cohort::dev
