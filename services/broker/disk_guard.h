#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "libs/runtime/clock.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace cohort::broker {

// The broker's free-space guard (--min-free-disk): new work is refused with
// RESOURCE_EXHAUSTED while the data dir's filesystem has less than `min_free` bytes
// available, so that the space left is kept for the transitions of work already
// accepted (dispatch, completion, leases) and a full disk never fails a commit, which
// would stop the broker. The free space is read with statvfs (at each write and
// Refresh, which the broker calls every second) at most every kRefreshInterval of
// `clock`'s monotonic time (the broker's loop clock); in between, the bytes the store
// wrote since (`written`, e.g. its JobStoreStats::bytes) are taken off it, so a burst
// of writes cannot outrun it. A refusal is logged at warning (at most one line a
// second, log.h). Exports cohort_broker_disk_free_bytes and
// cohort_broker_writes_refused_total. `min_free` 0 admits everything.
// Thread-compatible (the broker's loop only); `clock` outlives the guard.
class DiskGuard {
 public:
  static constexpr runtime::Duration kRefreshInterval = std::chrono::milliseconds(100);

  DiskGuard(const runtime::Clock& clock, std::string dir, std::uint64_t min_free,
            std::function<std::uint64_t()> written, prometheus::Registry& registry);

  // OK, or RESOURCE_EXHAUSTED "data dir has N bytes free, below --min-free-disk=M".
  absl::Status AdmitWrite();
  // Re-reads the free space (and its gauge) if the last read is stale.
  void Refresh() { Free(); }

 private:
  // Bytes available to the broker on the data dir's filesystem, refreshed if stale.
  std::uint64_t Free();

  const runtime::Clock& clock_;
  const std::string dir_;
  const std::uint64_t min_free_;
  const std::function<std::uint64_t()> written_;
  std::optional<runtime::TimePoint> read_at_;  // none before the first read
  std::uint64_t free_ = 0;          // at read_at_
  std::uint64_t written_at_read_ = 0;
  prometheus::Gauge& free_gauge_;
  prometheus::Counter& refused_;
};

}  // namespace cohort::broker
