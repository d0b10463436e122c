#include "services/console/loop_bridge.h"

#include <exception>
#include <memory>
#include <optional>
#include <utility>

#include "absl/synchronization/notification.h"
#include "services/console/json.h"

namespace cohort::console {
namespace {

struct PendingCall {
  absl::Notification done;
  HttpReply reply;
};

runtime::Task<void> RunAndNotify(runtime::Gate::Holder holder, runtime::Task<HttpReply> task,
                                 std::shared_ptr<PendingCall> call) {
  try {
    call->reply = co_await std::move(task);
  } catch (const runtime::CancelledError&) {
    call->reply = ErrorReply(503, "the console is shutting down");
  } catch (const std::exception& e) {
    call->reply = ErrorReply(500, e.what());
  }
  call->done.Notify();
}

}  // namespace

HttpReply LoopBridge::Run(absl::AnyInvocable<runtime::Task<HttpReply>()> make) {
  auto call = std::make_shared<PendingCall>();
  loop_.Post([this, call, make = std::move(make)]() mutable {
    std::optional<runtime::Gate::Holder> holder = gate_.TryEnter();
    if (!holder) {
      call->reply = ErrorReply(503, "the console is shutting down");
      call->done.Notify();
      return;
    }
    // Detached on purpose: its owner is the HTTP thread blocked on `done` below, and
    // the gate it holds makes Close() wait for it.
    runtime::Spawn(loop_, RunAndNotify(std::move(*holder), make(), call));
  });
  call->done.WaitForNotification();
  return std::move(call->reply);
}

}  // namespace cohort::console
