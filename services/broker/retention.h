#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/time/time.h"
#include "services/broker/compact_id.h"

namespace cohort::broker {

// What the broker's retention sweep needs to know, on the wall clock: when each ended
// job expires (its result_ttl after it ended), and when each commit's events were
// written (so events older than the retention window can be trimmed). It only keeps
// the bookkeeping; the engine's sweep deletes through the commit outbox. Loop thread
// only.
class Retention {
 public:
  explicit Retention(absl::Duration event_retention) : event_retention_(event_retention) {}

  // Job `id` ended and may be deleted from `expire` on.
  void NoteEnded(absl::Time expire, const std::string& id) { expiries_.emplace(expire, id); }
  // A commit whose last event is `last_sequence` became durable at `at`.
  void NoteCommit(absl::Time at, std::int64_t last_sequence) { commits_.emplace_back(at, last_sequence); }

  // The jobs whose expiry is at or before `now`, forgotten here. A job deleted or
  // changed meanwhile may be among them: the caller checks.
  std::vector<std::string> TakeExpired(absl::Time now);
  // The first event sequence to keep, given `now`: every event committed before the
  // retention window may go. 0 when there is nothing (new) to trim.
  std::int64_t TrimBefore(absl::Time now);

 private:
  const absl::Duration event_retention_;
  absl::btree_multimap<absl::Time, CompactId> expiries_;     // ended jobs by expire time (one per retained job: packed)
  std::deque<std::pair<absl::Time, std::int64_t>> commits_;  // (time, last sequence) per commit
};

}  // namespace cohort::broker
