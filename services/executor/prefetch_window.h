#pragma once

#include <optional>

#include "libs/runtime/clock.h"

namespace cohort::executor {

// What the prefetch window is allowed to do; each field has its default here.
struct PrefetchWindowOptions {
  // Slots: attempts that run at once (the executor's capacity), 1 or more.
  int capacity = 4;
  // The hard bound on the window (what Hello.prefetch announces), 0 or more.
  int max = 0;
  // false: the window is always `max` (a fixed prefetch, as set by the operator).
  bool adaptive = false;
  // Adaptive: hold about as many attempts as the slots finish in this much time, enough
  // to cover a broker round trip and its commit (~1-2 ms on a loaded 2-core machine)
  // with room to spare, small enough that a held attempt waits at most a few ms.
  runtime::Duration horizon = std::chrono::milliseconds(5);
};

// The prefetch window: how many assigned attempts an executor asks to hold unstarted
// beyond its capacity (executor.proto, Hello.prefetch), so that a slot that frees
// starts its next job without waiting a broker round trip for it.
//
// Adaptive (the default of cohort-executor), from the durations of finished attempts
// (an exponentially weighted mean, weight 1/4 for the newest): the window is
// floor(capacity * horizon / mean), within 0..max. So short jobs get a deep pipeline
// (completions and assignments travel in batches and share broker commits), while
// jobs longer than capacity * horizon get none, so that a slow job never strands
// others behind it on a busy executor while another executor is idle (the
// head-of-line problem that makes Celery users set a prefetch of 1). The window
// starts at 0 (nothing learned yet: an executor takes only what it can start) and
// after Forget(); it shrinks at once when jobs get longer and at most doubles per
// finished attempt when they get shorter, so one fast outlier cannot open it wide.
//
// Not thread-safe: the executor's loop owns it. O(1) per call.
class PrefetchWindow {
 public:
  explicit PrefetchWindow(PrefetchWindowOptions options);

  // The number of attempts to hold unstarted now, within 0..max().
  int size() const { return size_; }
  // The bound.
  int max() const { return options_.max; }
  bool adaptive() const { return options_.adaptive; }

  // A started attempt has ended after running for `ran` (negative reads as zero).
  void Finished(runtime::Duration ran);
  // Nothing has finished for a while (the queue emptied, or every slot runs something
  // long): what was learned may no longer hold, so back to the start: a window of 0
  // and no mean. A fixed window stays as it is.
  void Forget();
  // The mean duration of finished attempts, or nullopt before the first (or after
  // Forget()).
  std::optional<runtime::Duration> mean() const { return mean_; }

 private:
  // The window the mean asks for, within 0..max.
  int Target() const;

  const PrefetchWindowOptions options_;
  std::optional<runtime::Duration> mean_;
  int size_;
};

}  // namespace cohort::executor
