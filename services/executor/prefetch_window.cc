#include "services/executor/prefetch_window.h"

#include <algorithm>
#include <cmath>

namespace cohort::executor {

PrefetchWindow::PrefetchWindow(PrefetchWindowOptions options)
    : options_(options), size_(options.adaptive ? 0 : options.max) {}

int PrefetchWindow::Target() const {
  if (!mean_) return 0;
  const double mean = std::chrono::duration<double>(*mean_).count();
  const double work = std::chrono::duration<double>(options_.horizon).count() * options_.capacity;
  if (mean <= 0 || work / mean >= options_.max) return options_.max;  // also when the quotient overflows an int
  return static_cast<int>(std::floor(work / mean));
}

void PrefetchWindow::Finished(runtime::Duration ran) {
  if (!options_.adaptive) return;
  ran = std::max(ran, runtime::Duration::zero());
  mean_ = mean_ ? *mean_ + (ran - *mean_) / 4 : ran;
  const int target = Target();
  // Down at once; up by at most doubling (from 0, to 1).
  size_ = target <= size_ ? target : std::min(target, std::max(1, 2 * size_));
}

void PrefetchWindow::Forget() {
  if (!options_.adaptive) return;
  mean_.reset();
  size_ = 0;
}

}  // namespace cohort::executor
