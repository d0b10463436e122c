#include "libs/common/ids.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cohort::common {
namespace {

using ::testing::HasSubstr;

// A wall clock the test sets by hand.
struct FakeWallClock {
  std::atomic<std::int64_t> millis{1'700'000'000'000};
  JobIdGenerator::WallClock AsWallClock() {
    return [this] { return absl::FromUnixMillis(millis.load()); };
  }
};

TEST(JobIdGenerator, MillionIdsAreStrictlyIncreasingAndUnique) {
  JobIdGenerator generator;
  constexpr int kCount = 1'000'000;
  std::vector<std::string> ids;
  ids.reserve(kCount);
  for (int i = 0; i < kCount; ++i) ids.push_back(generator.Next());
  absl::flat_hash_set<std::string> seen;
  seen.reserve(kCount);
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(ids[i].size(), kJobIdLength);
    if (i > 0) {
      ASSERT_LT(ids[i - 1], ids[i]) << "at " << i;
    }
    ASSERT_TRUE(seen.insert(ids[i]).second) << "duplicate " << ids[i];
  }
}

TEST(JobIdGenerator, IdsCarryTheirCreationTimeSequenceAndNode) {
  FakeWallClock clock;
  JobIdGenerator generator(0xdeadbeef, clock.AsWallClock());
  const std::string first = generator.Next();
  EXPECT_EQ(first, "018bcfe568000000deadbeef");
  const std::string second = generator.Next();
  auto parts = ParseJobId(second);
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_EQ(parts->created, absl::FromUnixMillis(1'700'000'000'000));
  EXPECT_EQ(parts->sequence, 1);
  EXPECT_EQ(parts->node, 0xdeadbeefu);

  clock.millis += 5;
  parts = ParseJobId(generator.Next());
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_EQ(parts->created, absl::FromUnixMillis(1'700'000'000'005));
  EXPECT_EQ(parts->sequence, 0);
}

TEST(JobIdGenerator, StaysMonotonicWhenTheClockGoesBackwards) {
  FakeWallClock clock;
  JobIdGenerator generator(1, clock.AsWallClock());
  const std::string before = generator.Next();
  clock.millis -= 60'000;  // an NTP step back of a minute
  const std::string after = generator.Next();
  EXPECT_LT(before, after);
  auto parts = ParseJobId(after);
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_EQ(parts->created, absl::FromUnixMillis(1'700'000'000'000));
  EXPECT_EQ(parts->sequence, 1);
}

TEST(JobIdGenerator, RunsAheadOfTheClockWhenAMillisecondsSequenceIsUsedUp) {
  FakeWallClock clock;
  JobIdGenerator generator(1, clock.AsWallClock());
  std::string previous = generator.Next();
  for (int i = 1; i < 65536 + 10; ++i) {
    std::string id = generator.Next();
    ASSERT_LT(previous, id) << "at " << i;
    previous = std::move(id);
  }
  auto parts = ParseJobId(previous);
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_EQ(parts->created, absl::FromUnixMillis(1'700'000'000'001));
  EXPECT_EQ(parts->sequence, 9);
}

TEST(JobIdGenerator, ConcurrentCallersNeverGetTheSameId) {
  JobIdGenerator generator;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50'000;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&generator, &mine = ids[t]] {
      mine.reserve(kPerThread);
      for (int i = 0; i < kPerThread; ++i) mine.push_back(generator.Next());
    });
  }
  for (auto& thread : threads) thread.join();
  absl::flat_hash_set<std::string> seen;
  for (const auto& mine : ids) {
    for (std::size_t i = 0; i < mine.size(); ++i) {
      if (i > 0) {
        ASSERT_LT(mine[i - 1], mine[i]);
      }
      ASSERT_TRUE(seen.insert(mine[i]).second) << "duplicate " << mine[i];
    }
  }
}

TEST(ValidateJobId, AcceptsGeneratedIds) {
  JobIdGenerator generator;
  EXPECT_TRUE(ValidateJobId(generator.Next()).ok());
  EXPECT_TRUE(ValidateJobId("0123456789abcdef01234567").ok());
}

TEST(ValidateJobId, RejectsMalformedIdsNamingTheRule) {
  for (const std::string& bad :
       {std::string(""), std::string("018bcfe568000000deadbee"), std::string("018bcfe568000000deadbeef0"),
        std::string("018BCFE568000000DEADBEEF"), std::string("018bcfe56800000 deadbeef"),
        std::string("018bcfe568000000deadbeeg"), std::string("018bcfe568000000deadbee\0", 24),
        std::string("../../../../etc/passwd00")}) {
    const absl::Status status = ValidateJobId(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(status.message(), HasSubstr("is invalid: use 24 lowercase hex digits")) << bad;
    EXPECT_EQ(ParseJobId(bad).status(), status);
  }
  EXPECT_EQ(ValidateJobId("xyz").message(), "job id \"xyz\" is invalid: use 24 lowercase hex digits");
}

TEST(ValidateJobId, EscapesAndTruncatesTheEchoedId) {
  const absl::Status status = ValidateJobId("\x1b[31m" + std::string(1000, 'a'));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("job id \"\\x1b[31maaa"));
  EXPECT_THAT(status.message(), HasSubstr("...\" is invalid"));
  EXPECT_LT(status.message().size(), 150u);
}

}  // namespace
}  // namespace cohort::common
