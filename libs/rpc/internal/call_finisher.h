#pragma once

#include <utility>

#include "grpcpp/support/status.h"

namespace cohort::rpc::internal {

// When a server stream may call Finish: once its handler has returned and every
// queued message is written. Both the handler's task and gRPC's write callbacks ask;
// exactly one of them is told yes. Guarded by the stream's mutex.
class CallFinisher {
 public:
  // The handler returned with `status`. Mutex held.
  void RequestLocked(grpc::Status status) {
    status_ = std::move(status);
    requested_ = true;
  }
  // True once: when finishing was requested and the outbox is idle. Mutex held.
  bool TakeLocked(bool outbox_idle) {
    if (!requested_ || taken_ || !outbox_idle) return false;
    taken_ = true;
    return true;
  }
  // The status to finish with; read after TakeLocked() said yes.
  const grpc::Status& status() const { return status_; }

 private:
  bool requested_ = false;
  bool taken_ = false;
  grpc::Status status_;
};

}  // namespace cohort::rpc::internal
