#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace cohort::dev {

// A one-line progress bar for a terminal, redrawn in place ("\r") as work completes:
//
//   fan-out [##########################------] 4,210/5,000  6,950 jobs/s
//
// It is driven by the caller's events (Advance), never by a timer, and redraws at most
// every 50 ms (and on the last item), so a fast stream of completions costs little.
// When `out` is not a terminal it draws nothing, so logs stay clean.
//
// Thread-safe: Advance() may be called from several threads at once.
class ProgressBar {
 public:
  // `label` precedes the bar; `total` > 0 items are expected.
  ProgressBar(std::FILE* out, std::string label, std::int64_t total);
  // Finish()es the line if it was drawn.
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `n` more items are done.
  void Advance(std::int64_t n = 1);
  // Draws the final state and ends the line (once).
  void Finish();

  std::int64_t done() const;
  // The line as drawn now, without "\r" (for tests).
  std::string Render() const;

 private:
  std::string RenderLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DrawLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::FILE* const out_;
  const bool terminal_;
  const std::string label_;
  const std::int64_t total_;
  const absl::Time start_;
  mutable absl::Mutex mu_;
  std::int64_t done_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_draw_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// 1234567 -> "1,234,567".
std::string WithCommas(std::int64_t n);

}  // namespace cohort::dev
