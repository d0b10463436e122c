#pragma once

#include <memory>

#include "gtest/gtest.h"
#include "libs/runtime/runtime.h"

namespace cohort::runtime::testing {

// A loop on a ManualClock with auto-advance: timers fire in order, instantly and
// deterministically, whenever every task is blocked (trio's autojump clock).
class ManualLoopTest : public ::testing::Test {
 protected:
  ManualClock clock_{/*auto_advance=*/true};
  EventLoop loop_{&clock_};

  template <typename T>
  T Run(Task<T> task) {
    return RunUntilComplete(loop_, std::move(task));
  }
  // Milliseconds of manual time since the test began.
  long long ElapsedMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch()).count();
  }
};

}  // namespace cohort::runtime::testing
