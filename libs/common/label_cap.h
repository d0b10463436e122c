#pragma once

#include <cstddef>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace cohort::common {

// Bounds the cardinality of a metric label whose values come from clients (queue and
// kind names): the first `limit` distinct values keep their own label value, every
// later one maps to kOtherLabel. A value keeps its mapping for the life of the object,
// so a series never changes meaning. At most `limit` + 1 label values, and O(limit)
// memory, whatever the clients send.
//
//   common::LabelCap queues(100);
//   counter.Add({{"queue", queues.Label(name)}}).Increment();
//
// Thread-safe; Label costs one hash lookup under a mutex.
class LabelCap {
 public:
  static constexpr absl::string_view kOtherLabel = "_other";

  explicit LabelCap(std::size_t limit) : limit_(limit) {}

  // `value` itself while it is among the first `limit` distinct values seen, else
  // kOtherLabel.
  std::string Label(absl::string_view value) ABSL_LOCKS_EXCLUDED(mu_);
  // True if `value` maps to kOtherLabel (recording it, as Label does).
  bool IsOther(absl::string_view value) ABSL_LOCKS_EXCLUDED(mu_);

  std::size_t limit() const { return limit_; }

 private:
  const std::size_t limit_;
  absl::Mutex mu_;
  absl::flat_hash_set<std::string> named_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cohort::common
