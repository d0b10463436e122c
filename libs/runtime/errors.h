#pragma once

#include <exception>

namespace cohort::runtime {

// Raised at a task's suspension point when the task is cancelled (asyncio's
// CancelledError). A task may catch it to clean up, and may even finish normally;
// re-throwing it marks the task cancelled.
class CancelledError : public std::exception {
 public:
  const char* what() const noexcept override { return "task was cancelled"; }
};

// Raised by WaitFor, AsCompleted and timed waits when their timeout passes
// (asyncio's TimeoutError).
class TimeoutError : public std::exception {
 public:
  const char* what() const noexcept override { return "timed out"; }
};

}  // namespace cohort::runtime
