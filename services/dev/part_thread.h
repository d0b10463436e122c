#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/runtime/runtime.h"

namespace cohort::dev {

// One part of cohort-dev (the broker, the scheduler or the executor) on an event loop
// and a thread of its own, so the parts share nothing but gRPC and the metrics
// registry, as separate binaries would.
//
// The part is built on its thread, on its fresh loop before the loop runs: `open`
// receives the loop and a stop event and returns the part's life as a task, which
// must return soon after `stop` is set, and which owns the part (the part is then
// destroyed on its thread when the task ends, before the loop). For instance:
//
//   auto broker = PartThread::Start("broker", [&](runtime::EventLoop& loop, runtime::Event& stop)
//       -> absl::StatusOr<runtime::Task<void>> {
//     absl::StatusOr<std::unique_ptr<SchedulerApp>> app = SchedulerApp::Create(loop, registry, options);
//     if (!app.ok()) return app.status();
//     return RunScheduler(std::move(*app), stop);  // co_await app->Run(stop)
//   });
//
// RequestStop() may be called from any thread; Join() and the destructor from the
// thread that called Start().
class PartThread {
 public:
  // Builds the part from `open` (run on the new thread) and waits for it to return;
  // the part's task runs on the thread once Launch() is called. `on_end`, if set, is called on the part's
  // thread once its task has ended, whatever the reason (e.g. to start a shutdown if a
  // part ends early). Returns `open`'s error, prefixed with `name`, after the thread
  // has ended.
  using Open =
      absl::AnyInvocable<absl::StatusOr<runtime::Task<void>>(runtime::EventLoop& loop, runtime::Event& stop)>;
  static absl::StatusOr<std::unique_ptr<PartThread>> Start(std::string name, Open open,
                                                           absl::AnyInvocable<void()> on_end = nullptr);

  // Requests a stop and joins the thread; a part never launched is destroyed without
  // running.
  ~PartThread();
  PartThread(const PartThread&) = delete;
  PartThread& operator=(const PartThread&) = delete;

  // Starts the part's task (once the parts it talks to are serving).
  void Launch();
  // Sets the part's stop event on its loop; returns at once. Idempotent; a no-op once
  // the part has ended.
  void RequestStop();
  // Waits until the part's task has ended and its thread has finished.
  void Join();

  const std::string& name() const { return name_; }

 private:
  explicit PartThread(std::string name) : name_(std::move(name)) {}
  void Body(Open open, absl::AnyInvocable<void()> on_end);

  const std::string name_;
  std::thread thread_;
  absl::Mutex mu_;
  bool opened_ ABSL_GUARDED_BY(mu_) = false;  // `open` has returned
  absl::Status open_status_ ABSL_GUARDED_BY(mu_);
  bool launched_ ABSL_GUARDED_BY(mu_) = false;
  bool abandoned_ ABSL_GUARDED_BY(mu_) = false;  // destroyed before Launch()
  // Set while the part's task runs (or may still be started): where RequestStop posts.
  runtime::EventLoop* loop_ ABSL_GUARDED_BY(mu_) = nullptr;
  runtime::Event* stop_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace cohort::dev
