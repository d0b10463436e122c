#pragma once

#include <cstdint>

#include "absl/time/time.h"

namespace cohort::log {

// The rate limit of one call site: at most `lines_per_window` lines per `window`
// (by default one per second); lines beyond that are counted, and the next line
// written carries the count, so a flood of the same warning costs one line per
// second plus a number. Windows start at the first line after the previous window
// ended. Not thread-safe: the logger holds one per call site under its lock.
//
//   RateLimiter limit;
//   if (RateLimiter::Verdict v = limit.Admit(now); v.write) Write(..., v.suppressed);
class RateLimiter {
 public:
  struct Verdict {
    bool write = false;
    // Lines dropped since the last one written; meaningful when `write`.
    std::int64_t suppressed = 0;
  };

  explicit RateLimiter(absl::Duration window = absl::Seconds(1), int lines_per_window = 1)
      : window_(window), lines_per_window_(lines_per_window) {}

  Verdict Admit(absl::Time now) {
    if (written_ == 0 || now - window_start_ >= window_ || now < window_start_) {
      window_start_ = now;
      written_ = 0;
    }
    if (written_ >= lines_per_window_) {
      ++suppressed_;
      return Verdict{};
    }
    ++written_;
    Verdict v{true, suppressed_};
    suppressed_ = 0;
    return v;
  }

 private:
  const absl::Duration window_;
  const int lines_per_window_;
  absl::Time window_start_;
  int written_ = 0;
  std::int64_t suppressed_ = 0;
};

}  // namespace cohort::log
