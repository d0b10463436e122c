#include "libs/runtime/external_completion.h"

#include <atomic>
#include <future>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "libs/runtime/runtime.h"

namespace cohort::runtime {
namespace {

// A thread that runs one job handed to it later, joined on destruction.
class Worker {
 public:
  Worker() : thread_([this] { job_.get_future().get()(); }) {}
  ~Worker() { thread_.join(); }
  void Run(absl::AnyInvocable<void()> fn) { job_.set_value(std::move(fn)); }

 private:
  std::promise<absl::AnyInvocable<void()>> job_;
  std::thread thread_;
};

TEST(ExternalCompletion, ResumesOnTheLoopThreadWithTheValueFromAnotherThread) {
  EventLoop loop;
  Worker worker;
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::string value = RunUntilComplete(loop, [](Worker* worker, std::thread::id loop_thread) -> Task<std::string> {
    std::string v = co_await ExternalCompletion<std::string>([worker](Completer<std::string> done) {
      worker->Run([done] { done("from the worker"); });
    });
    EXPECT_EQ(std::this_thread::get_id(), loop_thread);
    co_return v;
  }(&worker, loop_thread));
  EXPECT_EQ(value, "from the worker");
}

TEST(ExternalCompletion, MayCompleteInsideStartOnTheLoopThread) {
  EventLoop loop;
  int v = RunUntilComplete(loop, []() -> Task<int> {
    co_return co_await ExternalCompletion<int>([](Completer<int> done) { done(7); });
  }());
  EXPECT_EQ(v, 7);
}

TEST(ExternalCompletion, VoidCompletion) {
  EventLoop loop;
  Worker worker;
  RunUntilComplete(loop, [](Worker* worker) -> Task<void> {
    co_await ExternalCompletion<void>([worker](Completer<void> done) { worker->Run([done] { done(); }); });
  }(&worker));
}

TEST(ExternalCompletion, CancelCallsTheHookAndRaisesOnlyOnceTheWorkHasCompleted) {
  EventLoop loop;
  Worker worker;
  std::promise<void> hook_called;
  std::atomic<bool> completed{false};
  auto waiter = [](Worker* worker, std::promise<void>* hook_called, std::atomic<bool>* completed) -> Task<int> {
    co_return co_await ExternalCompletion<int>(
        [worker, hook_called, completed](Completer<int> done) {
          // Completes only after the hook asked it to stop, as gRPC does after TryCancel.
          worker->Run([future = hook_called->get_future(), completed, done]() mutable {
            future.get();
            *completed = true;
            done(1);
          });
        },
        [hook_called] { hook_called->set_value(); });
  };
  RunUntilComplete(loop, [](Task<int> child, std::atomic<bool>* completed) -> Task<void> {
    TaskHandle<int> handle = Spawn(std::move(child));
    co_await Yield();
    handle.Cancel();
    handle.Cancel();  // the hook runs once
    try {
      co_await handle;
      ADD_FAILURE() << "expected CancelledError";
    } catch (const CancelledError&) {
    }
    EXPECT_TRUE(*completed);
  }(waiter(&worker, &hook_called, &completed), &completed));
}

TEST(ExternalCompletion, WithoutAHookCancellationIsRaisedAtTheNextSuspension) {
  EventLoop loop;
  Worker worker;
  std::promise<void> cancelled;
  auto waiter = [](Worker* worker, std::promise<void>* cancelled) -> Task<int> {
    int v = co_await ExternalCompletion<int>([worker, cancelled](Completer<int> done) {
      worker->Run([future = cancelled->get_future(), done]() mutable {
        future.get();
        done(42);
      });
    });
    EXPECT_EQ(v, 42);  // the value arrives despite the cancellation
    co_await Yield();  // raises it
    ADD_FAILURE() << "the cancellation was lost";
    co_return v;
  };
  RunUntilComplete(loop, [](Task<int> child, std::promise<void>* cancelled) -> Task<void> {
    TaskHandle<int> handle = Spawn(std::move(child));
    co_await Yield();
    handle.Cancel();
    cancelled->set_value();
    try {
      co_await handle;
      ADD_FAILURE() << "expected CancelledError";
    } catch (const CancelledError&) {
    }
  }(waiter(&worker, &cancelled), &cancelled));
}

TEST(ExternalCompletion, LoopTeardownCancelsThroughTheHookAndWaitsForTheCompletion) {
  Worker worker;
  std::promise<void> hook_called;
  std::atomic<bool> frame_alive{false};
  {
    EventLoop loop;
    auto waiter = [](Worker* worker, std::promise<void>* hook_called, std::atomic<bool>* alive) -> Task<void> {
      struct Alive {
        std::atomic<bool>* flag;
        ~Alive() { *flag = false; }
      } guard{alive};
      *alive = true;
      std::string text = co_await ExternalCompletion<std::string>(
          [worker, hook_called, alive](Completer<std::string> done) {
            worker->Run([future = hook_called->get_future(), alive, done]() mutable {
              future.get();
              EXPECT_TRUE(*alive);  // the frame the value goes into still exists
              done("late");
            });
          },
          [hook_called] { hook_called->set_value(); });
    };
    TaskHandle<void> handle = Spawn(loop, waiter(&worker, &hook_called, &frame_alive));
    loop.RunUntil([&] { return frame_alive.load(); });
  }  // cancels the task, whose hook lets the worker complete; then the frame unwinds
  EXPECT_FALSE(frame_alive);
}

}  // namespace
}  // namespace cohort::runtime
