#pragma once

#include <chrono>
#include <cstdint>

#include "absl/random/random.h"
#include "absl/time/time.h"

namespace cohort::common {

// Exponential backoff with jitter, for every "retry until it works" loop (a lost
// broker, a refused batch, a stream to redial). The k-th delay after a Reset() is
// min(initial * multiplier^(k-1), max), then shortened by a random fraction of at most
// `jitter` (AWS's "equal jitter" family): never longer than the un-jittered step nor
// than `max`, never shorter than (1 - jitter) of it, so peers that lost the same server
// at the same moment spread their retries instead of arriving together. Jitter 0 gives
// the exact sequence (for tests and for callers that need it).
//
//   common::Backoff backoff({.initial = absl::Milliseconds(100), .max = absl::Seconds(5)});
//   while (!(status = co_await Call()).ok()) {
//     co_await runtime::Sleep(backoff.NextChrono());
//   }
//   backoff.Reset();  // it worked: the next failure starts again from `initial`
//
// Not thread-safe: one per retry loop. Cheap to copy.
class Backoff {
 public:
  struct Options {
    absl::Duration initial = absl::Milliseconds(100);
    absl::Duration max = absl::Seconds(5);
    // Growth per attempt; at least 1.
    double multiplier = 2.0;
    // The largest fraction a delay is shortened by, in [0, 1].
    double jitter = 0.2;
  };

  Backoff() : Backoff(Options{}) {}
  explicit Backoff(Options options);

  // The delay before the next attempt; counts an attempt.
  absl::Duration Next();
  std::chrono::nanoseconds NextChrono() { return absl::ToChronoNanoseconds(Next()); }
  // The un-jittered delay Next() would start from (for logs: "retrying in ~2s").
  absl::Duration Peek() const { return step_; }
  // Starts over from `initial`: call when an attempt worked.
  void Reset();
  // Next() calls since construction or the last Reset().
  std::int64_t attempts() const { return attempts_; }

 private:
  Options options_;
  absl::Duration step_;
  std::int64_t attempts_ = 0;
  absl::InsecureBitGen gen_;
};

}  // namespace cohort::common
