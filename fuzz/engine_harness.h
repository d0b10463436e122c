#pragma once

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/runtime/runtime.h"
#include "libs/store/mem_job_store.h"
#include "prometheus/registry.h"
#include "services/broker/broker_engine.h"

namespace cohort::fuzz {

// A BrokerEngine as the broker runs it, without gRPC: an in-memory store and a manual
// clock that jumps to the next timer whenever every task is blocked (so leases,
// deadlines and sweeps fire deterministically and instantly). Job ids are "job-1000",
// "job-1001", ... so a seed can name them. One per fuzz input; not thread-safe.
class EngineHarness {
 public:
  EngineHarness() {
    cohort::broker::BrokerOptions options;
    options.lease = std::chrono::seconds(10);
    options.heartbeat_interval = std::chrono::seconds(1);
    engine_ = std::make_unique<cohort::broker::BrokerEngine>(
        loop_, store_, metrics_, options, [this] { return absl::StrCat("job-", 1000 + next_id_++); });
  }

  // Runs `body(engine)` (a coroutine returning Task<void>) on a started engine, then
  // stops the engine. Aborts if the engine does not start: an empty store always does.
  template <typename Body>
  void Run(Body body) {
    runtime::RunUntilComplete(loop_, [](cohort::broker::BrokerEngine* e, Body* b) -> runtime::Task<void> {
      absl::Status started = co_await e->Start();
      if (!started.ok()) __builtin_trap();
      co_await (*b)(*e);
      co_await e->Stop();
    }(engine_.get(), &body));
  }

 private:
  runtime::ManualClock clock_{/*auto_advance=*/true};
  runtime::EventLoop loop_{&clock_};
  store::MemJobStore store_;
  prometheus::Registry registry_;
  cohort::broker::BrokerMetrics metrics_{registry_};
  std::unique_ptr<cohort::broker::BrokerEngine> engine_;
  int next_id_ = 0;
};

}  // namespace cohort::fuzz
