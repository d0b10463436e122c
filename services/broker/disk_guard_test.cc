// The free-space guard: refuses below --min-free-disk with the figures in the message,
// counts refusals, and takes the store's writes since its last statvfs off the free
// space it read, so that a burst of writes cannot outrun its cache.
#include "services/broker/disk_guard.h"

#include <sys/statvfs.h>

#include <cstdint>
#include <string>

#include "gtest/gtest.h"
#include "libs/runtime/clock.h"
#include "prometheus/registry.h"

namespace cohort::broker {
namespace {

std::uint64_t FreeBytes(const std::string& dir) {
  struct statvfs fs {};
  EXPECT_EQ(statvfs(dir.c_str(), &fs), 0);
  return static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
}

double Refused(prometheus::Registry& registry) {
  for (const auto& family : registry.Collect()) {
    if (family.name == "cohort_broker_writes_refused_total") return family.metric.at(0).counter.value;
  }
  return -1;
}

const std::string kDir = ::testing::TempDir();

// Held still: every read after the first is within the guard's cache interval.
runtime::ManualClock still_clock;

TEST(DiskGuard, BelowTheThresholdAWriteIsResourceExhaustedNamingBothFiguresAndCounted) {
  prometheus::Registry registry;
  const std::uint64_t min_free = FreeBytes(kDir) + (std::uint64_t{1} << 40);  // 1 TiB more than there is
  DiskGuard guard(still_clock, kDir, min_free, [] { return std::uint64_t{0}; }, registry);
  absl::Status s = guard.AdmitWrite();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("below --min-free-disk=" + std::to_string(min_free)), std::string::npos) << s;
  EXPECT_LT(s.message().size(), 1024u);
  EXPECT_EQ(Refused(registry), 1);
}

TEST(DiskGuard, ZeroAdmitsEverything) {
  prometheus::Registry registry;
  DiskGuard guard(still_clock, kDir, 0, [] { return std::uint64_t{0}; }, registry);
  EXPECT_TRUE(guard.AdmitWrite().ok());
  EXPECT_EQ(Refused(registry), 0);
}

TEST(DiskGuard, BytesWrittenSinceTheLastReadCountAgainstTheCachedFreeSpace) {
  prometheus::Registry registry;
  const std::uint64_t margin = std::uint64_t{64} << 20;
  std::uint64_t written = 0;
  DiskGuard guard(still_clock, kDir, FreeBytes(kDir) - margin, [&written] { return written; }, registry);
  EXPECT_TRUE(guard.AdmitWrite().ok());
  written += 2 * margin;  // the store wrote more than the margin, within the cache interval
  EXPECT_EQ(guard.AdmitWrite().code(), absl::StatusCode::kResourceExhausted);
}

TEST(DiskGuard, ReadsTheFilesystemAgainOnceItsClockHasMovedPastTheCacheInterval) {
  prometheus::Registry registry;
  runtime::ManualClock clock;
  const std::uint64_t margin = std::uint64_t{64} << 20;
  std::uint64_t written = 0;
  DiskGuard guard(clock, kDir, FreeBytes(kDir) - margin, [&written] { return written; }, registry);
  EXPECT_TRUE(guard.AdmitWrite().ok());
  written += 2 * margin;  // counted against the cached figure...
  EXPECT_EQ(guard.AdmitWrite().code(), absl::StatusCode::kResourceExhausted);
  clock.Advance(DiskGuard::kRefreshInterval);  // ...until a fresh statvfs, which saw no such write
  EXPECT_TRUE(guard.AdmitWrite().ok());
}

}  // namespace
}  // namespace cohort::broker
