#include "services/broker/event_log.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace cohort::broker {

void EventLog::Committed(std::int64_t sequence) {
  committed_ = std::max(committed_, sequence);
  commits_->Set();
  commits_->Clear();
}

absl::Status EventLog::CheckStart(std::int64_t after_sequence) const {
  if (after_sequence < 0) return absl::InvalidArgumentError("after_sequence must not be negative");
  if (after_sequence > committed_) {
    return absl::OutOfRangeError(absl::StrCat("after_sequence ", after_sequence,
                                              " is beyond the end of this broker's event log (last sequence ",
                                              committed_, "): list again, then watch from the listing's sequence"));
  }
  return absl::OkStatus();
}

runtime::Task<absl::StatusOr<cohort::v1::WatchResponse>> EventLog::Cursor::Next() {
  while (true) {
    while (log_.committed_ < next_) co_await log_.commits_->Wait();
    absl::StatusOr<std::vector<cohort::v1::JobEvent>> events = co_await log_.store_.ReadEvents(next_, kReadEvents, kBatchBytes);
    if (!events.ok()) co_return events.status();
    if (events->empty()) {
      co_await log_.commits_->Wait();
      continue;
    }
    // Sequences are consecutive (every transition writes one event), so a first event
    // past `next_` means retention deleted the ones between.
    if (events->front().sequence() != next_ && !gap_allowed_) {
      co_return absl::FailedPreconditionError(absl::StrCat("events ", next_, "..", events->front().sequence() - 1,
                                                           " were deleted by retention: list again, then watch "
                                                           "from the listing's sequence"));
    }
    gap_allowed_ = false;
    cohort::v1::WatchResponse batch;
    std::size_t bytes = 0;
    for (cohort::v1::JobEvent& e : *events) {
      const std::size_t size = e.ByteSizeLong();
      if (batch.events_size() > 0 && bytes + size > kBatchBytes) break;
      bytes += size;
      next_ = e.sequence() + 1;
      *batch.add_events() = std::move(e);
    }
    co_return batch;
  }
}

}  // namespace cohort::broker
