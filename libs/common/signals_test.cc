#include "libs/common/signals.h"

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/runtime/event_loop.h"

namespace cohort::common {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Runs `loop` until `done` or a generous real-time bound passes; returns false on the bound.
template <typename Pred>
bool RunLoopUntil(runtime::EventLoop& loop, Pred done) {
  bool timed_out = false;
  const runtime::TimerId guard = loop.CallLater(10s, [&] { timed_out = true; });
  loop.RunUntil([&] { return done() || timed_out; });
  loop.CancelTimer(guard);
  return !timed_out;
}

TEST(SignalWatcher, TurnsSigtermIntoACallbackOnTheLoop) {
  runtime::EventLoop loop;
  std::vector<int> received;
  auto watcher = SignalWatcher::Install(loop, [&](int signal_number) {
    EXPECT_TRUE(loop.InLoopThread());
    received.push_back(signal_number);
  });
  ASSERT_TRUE(watcher.ok()) << watcher.status();

  ASSERT_EQ(raise(SIGTERM), 0);
  ASSERT_TRUE(RunLoopUntil(loop, [&] { return !received.empty(); }));
  EXPECT_EQ(received, std::vector<int>{SIGTERM});
}

TEST(SignalWatcher, DeliversEachSignalItWatches) {
  runtime::EventLoop loop;
  std::vector<int> received;
  auto watcher =
      SignalWatcher::Install(loop, [&](int signal_number) { received.push_back(signal_number); });
  ASSERT_TRUE(watcher.ok()) << watcher.status();

  ASSERT_EQ(raise(SIGINT), 0);
  ASSERT_TRUE(RunLoopUntil(loop, [&] { return received.size() == 1; }));
  ASSERT_EQ(raise(SIGTERM), 0);
  ASSERT_TRUE(RunLoopUntil(loop, [&] { return received.size() == 2; }));
  EXPECT_EQ(received, (std::vector<int>{SIGINT, SIGTERM}));
}

TEST(SignalWatcher, SignalsStayBlockedAfterTheWatcherIsGone) {
  runtime::EventLoop loop;
  int calls = 0;
  {
    auto watcher = SignalWatcher::Install(loop, [&](int) { ++calls; });
    ASSERT_TRUE(watcher.ok()) << watcher.status();
  }
  // Still blocked: the signal waits, pending, instead of killing the test.
  ASSERT_EQ(raise(SIGTERM), 0);
  loop.RunUntilIdle();
  EXPECT_EQ(calls, 0);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  const timespec no_wait{0, 0};
  EXPECT_EQ(sigtimedwait(&set, nullptr, &no_wait), SIGTERM);  // consume it
}

TEST(SignalWatcher, RejectsAnEmptySignalList) {
  runtime::EventLoop loop;
  auto watcher = SignalWatcher::Install(loop, [](int) {}, {});
  EXPECT_EQ(watcher.status().code(), absl::StatusCode::kInvalidArgument);
}

// In a child process (a death test), so the extra thread, and any helper thread a
// sanitizer starts with it, cannot leak into the other tests.
void InstallWhileAnotherThreadRuns() {
  runtime::EventLoop loop;
  std::promise<void> release;
  std::thread other([done = release.get_future()]() mutable { done.wait(); });
  auto watcher = SignalWatcher::Install(loop, [](int) {});
  release.set_value();
  other.join();
  std::fprintf(stderr, "%s\n", watcher.status().ToString().c_str());
  std::_Exit(watcher.status().code() == absl::StatusCode::kFailedPrecondition ? 0 : 1);
}

TEST(SignalWatcherDeathTest, RefusesToInstallOnceOtherThreadsExist) {
  EXPECT_EXIT(InstallWhileAnotherThreadRuns(), ::testing::ExitedWithCode(0),
              "FAILED_PRECONDITION: cannot watch signals: the process already has [0-9]+ threads.*"
              "before any thread starts");
}

}  // namespace
}  // namespace cohort::common
