#include "services/broker/disk_guard.h"

#include <sys/statvfs.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/log.h"

namespace cohort::broker {
namespace {

const log::Logger kLog("broker");

}  // namespace

DiskGuard::DiskGuard(const runtime::Clock& clock, std::string dir, std::uint64_t min_free,
                     std::function<std::uint64_t()> written, prometheus::Registry& registry)
    : clock_(clock),
      dir_(std::move(dir)),
      min_free_(min_free),
      written_(std::move(written)),
      free_gauge_(prometheus::BuildGauge()
                      .Name("cohort_broker_disk_free_bytes")
                      .Help("Bytes available on the filesystem of the broker's data dir")
                      .Register(registry)
                      .Add({})),
      refused_(prometheus::BuildCounter()
                   .Name("cohort_broker_writes_refused_total")
                   .Help("Client writes refused because the data dir had less than --min-free-disk free")
                   .Register(registry)
                   .Add({})) {}

std::uint64_t DiskGuard::Free() {
  const runtime::TimePoint now = clock_.Now();
  const std::uint64_t written = written_();
  if (read_at_ && now - *read_at_ < kRefreshInterval) {
    const std::uint64_t since = written - written_at_read_;
    return since >= free_ ? 0 : free_ - since;
  }
  struct statvfs fs {};
  // An unreadable filesystem admits writes: the commit itself then says what is wrong.
  if (statvfs(dir_.c_str(), &fs) != 0) return UINT64_MAX;
  read_at_ = now;
  written_at_read_ = written;
  free_ = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  free_gauge_.Set(static_cast<double>(free_));
  return free_;
}

absl::Status DiskGuard::AdmitWrite() {
  if (min_free_ == 0) return absl::OkStatus();
  const std::uint64_t free = Free();
  if (free >= min_free_) return absl::OkStatus();
  refused_.Increment();
  kLog.Warn("refusing new writes: the data dir's free space is below --min-free-disk",
            {{"data_dir", dir_}, {"free_bytes", free}, {"min_free_bytes", min_free_}});
  return absl::ResourceExhaustedError(
      absl::StrCat("data dir has ", free, " bytes free, below --min-free-disk=", min_free_,
                   ": new work is refused until space is freed (reads and work already accepted go on)"));
}

}  // namespace cohort::broker
