#pragma once

// What the broker's engine-level tests share: a started BrokerEngine on a manual clock
// (auto-advancing: timers fire instantly once every task is blocked) with an
// in-memory store, fake executors, and builders for specs and executor messages.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/runtime/runtime.h"
#include "libs/runtime/test_util.h"
#include "libs/store/mem_job_store.h"
#include "services/broker/broker_engine.h"

namespace cohort::broker::testing {

// Records what the broker sends to one executor.
class FakeChannel final : public ExecutorChannel {
 public:
  void Send(cohort::v1::BrokerMessage m) override { messages.push_back(std::move(m)); }
  void End(absl::Status status) override { ended = std::move(status); }
  std::vector<cohort::v1::BrokerMessage> Assigns() const {
    std::vector<cohort::v1::BrokerMessage> out;
    for (const auto& m : messages) {
      if (m.has_assign()) out.push_back(m);
    }
    return out;
  }
  std::vector<cohort::v1::BrokerMessage> messages;
  std::optional<absl::Status> ended;  // how the engine ended the stream, if it did
};

inline cohort::v1::JobSpec Spec(std::string queue, int priority = 0, std::string payload = "p") {
  cohort::v1::JobSpec s;
  s.set_queue(std::move(queue));
  s.set_kind("builtin.echo");
  s.set_priority(priority);
  s.set_payload(std::move(payload));
  return s;
}

// A Submit argument built without an initializer_list: GCC 12 cannot keep one alive
// across the co_await it appears in.
template <typename... Specs>
std::vector<cohort::v1::JobSpec> Batch(Specs... specs) {
  std::vector<cohort::v1::JobSpec> v;
  (v.push_back(std::move(specs)), ...);
  return v;
}

inline cohort::v1::ExecutorMessage Hello(std::string id, int capacity) {
  cohort::v1::ExecutorMessage m;
  m.mutable_hello()->set_executor_id(std::move(id));
  m.mutable_hello()->set_capacity(capacity);
  return m;
}

inline cohort::v1::ExecutorMessage Credit(int n) {
  cohort::v1::ExecutorMessage m;
  m.mutable_credit()->set_credits(n);
  return m;
}

inline cohort::v1::ExecutorMessage Complete(const std::string& id, int attempt, std::string result) {
  cohort::v1::ExecutorMessage m;
  m.mutable_complete()->set_job_id(id);
  m.mutable_complete()->set_attempt(attempt);
  m.mutable_complete()->set_result(std::move(result));
  return m;
}

inline cohort::v1::ExecutorMessage Fail(const std::string& id, int attempt, std::string message,
                                        std::string code = "exit_status") {
  cohort::v1::ExecutorMessage m;
  m.mutable_complete()->set_job_id(id);
  m.mutable_complete()->set_attempt(attempt);
  m.mutable_complete()->mutable_error()->set_code(std::move(code));
  m.mutable_complete()->mutable_error()->set_message(std::move(message));
  return m;
}

// A fixture whose tests run a body (a coroutine taking BrokerEngine&) on a started
// engine, stopped afterwards. Job ids are "job-1000", "job-1001", ...
class EngineTest : public runtime::testing::ManualLoopTest {
 protected:
  explicit EngineTest(store::BatchLimits limits = {}) : store_(limits) { options_.lease = std::chrono::seconds(10); }

  std::unique_ptr<BrokerEngine> NewEngine() {
    return std::make_unique<BrokerEngine>(loop_, store_, metrics_, options_,
                                          [this] { return absl::StrCat("job-", 1000 + next_id_++); });
  }
  template <typename Body>
  void WithEngine(Body body) {
    engine_ = NewEngine();
    Run([](BrokerEngine* e, Body* b) -> runtime::Task<void> {
      absl::Status started = co_await e->Start();
      EXPECT_TRUE(started.ok()) << started;
      co_await (*b)(*e);
      co_await e->Stop();
    }(engine_.get(), &body));
  }
  // Lets commits finish and their messages go out. Yields only: the manual clock
  // does not move while it runs.
  static runtime::Task<void> Settle() {
    for (int i = 0; i < 10; ++i) co_await runtime::Yield();
  }

  BrokerOptions options_;
  store::MemJobStore store_;
  prometheus::Registry registry_;
  BrokerMetrics metrics_{registry_};
  std::unique_ptr<BrokerEngine> engine_;
  int next_id_ = 0;
};

}  // namespace cohort::broker::testing
