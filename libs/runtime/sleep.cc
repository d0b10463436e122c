#include "libs/runtime/sleep.h"

namespace cohort::runtime {

Task<void> SleepUntil(TimePoint deadline) {
  EventLoop* loop = EventLoop::Current();
  co_await Sleep(deadline - loop->Now());
}

}  // namespace cohort::runtime
