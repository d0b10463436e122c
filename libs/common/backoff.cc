#include "libs/common/backoff.h"

#include <algorithm>

namespace cohort::common {

Backoff::Backoff(Options options) : options_(options) {
  options_.initial = std::max(options_.initial, absl::ZeroDuration());
  options_.max = std::max(options_.max, options_.initial);
  options_.multiplier = std::max(options_.multiplier, 1.0);
  options_.jitter = std::clamp(options_.jitter, 0.0, 1.0);
  step_ = options_.initial;
}

absl::Duration Backoff::Next() {
  const absl::Duration step = step_;
  ++attempts_;
  // Saturates at max: multiplying an absl::Duration never overflows (it goes infinite).
  step_ = std::min(options_.max, step_ * options_.multiplier);
  if (options_.jitter == 0.0 || step == absl::ZeroDuration()) return step;
  const double cut = absl::Uniform(gen_, 0.0, options_.jitter);
  return step - step * cut;
}

void Backoff::Reset() {
  step_ = options_.initial;
  attempts_ = 0;
}

}  // namespace cohort::common
