// Connect as the broker handles it: a sequence of ExecutorMessages (each a
// length-prefixed chunk of the input) fed to BrokerEngine::Attach (the first Hello) and
// OnExecutorMessage, on an engine holding a few jobs (ids "job-1000".."job-1003") so
// that credits, completions, heartbeats and progress reach real leases. Stream
// reconnects (a second Hello) detach the session first. Afterwards the engine's view
// must be consistent: no queue with negative depth or running count.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fuzz/engine_harness.h"
#include "protos/cohort/v1/executor.pb.h"

namespace {

class NullChannel final : public cohort::broker::ExecutorChannel {
 public:
  void Send(cohort::v1::BrokerMessage) override {}
  void End(absl::Status) override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  std::vector<cohort::v1::ExecutorMessage> messages;
  while (input.remaining_bytes() > 0 && messages.size() < 64) {
    const std::string chunk = input.ConsumeRandomLengthString(4096);
    cohort::v1::ExecutorMessage m;
    if (m.ParseFromString(chunk)) messages.push_back(std::move(m));
  }
  cohort::fuzz::EngineHarness harness;
  harness.Run([&](cohort::broker::BrokerEngine& e) -> cohort::runtime::Task<void> {
    std::vector<cohort::v1::JobSpec> specs(4);
    for (auto& s : specs) {
      s.set_queue("default");
      s.set_kind("builtin.echo");
      s.set_max_attempts(3);
    }
    auto ids = co_await e.Submit(specs, false);
    if (!ids.ok()) __builtin_trap();
    NullChannel channel;
    std::optional<uint64_t> session;
    for (const auto& m : messages) {
      if (m.has_hello()) {
        if (session) e.Detach(*session);
        session.reset();
        auto attached = e.Attach(m.hello(), &channel);
        if (attached.ok()) session = *attached;
      } else if (session) {
        if (!e.OnExecutorMessage(*session, m).ok()) {  // INVALID_ARGUMENT ends the stream
          e.Detach(*session);
          session.reset();
        }
      }
      co_await cohort::runtime::Yield();
    }
    if (session) e.Detach(*session);
    const cohort::v1::ListQueuesResponse queues = e.ListQueues();
    for (const auto& q : queues.queues()) {
      if (q.depth() < 0 || q.running() < 0) __builtin_trap();
    }
  });
  return 0;
}
