#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "libs/runtime/runtime.h"
#include "protos/cohort/v1/broker.pb.h"
#include "services/broker/ready_queue.h"

namespace cohort::broker {

// The range of a queue's max_rate (jobs per second) besides 0, which means unlimited.
// At the minimum a queue dispatches one job in about 11.6 days.
inline constexpr double kMinQueueRate = 1e-6;
inline constexpr double kMaxQueueRate = 1e6;

// One queue as the dispatcher keeps it.
struct QueueState {
  explicit QueueState(int starvation_every) : ready(starvation_every) {}
  ReadyQueue ready;              // its QUEUED jobs
  bool paused = false;
  cohort::v1::QueueLimits limits;  // every field set
  std::int64_t running = 0;      // its RUNNING jobs (kept by the engine)
  // Token bucket for limits.max_rate: refilled at max_rate per second, up to
  // max(1, max_rate) tokens; one per dispatch.
  double tokens = 0;
  runtime::TimePoint refilled{};
};

// The dispatch side of the broker: its queues (ready jobs by priority, paused flag,
// limits, running count, token bucket) and which queue's turn it is. It decides which
// ready job goes next; it changes no job (the engine does, through Transition).
//
// Order: queues in weighted round robin (a queue keeps its turn for `weight`
// dispatches), skipping paused ones, those at max_concurrency and those out of
// tokens, and those with no job of the executor's kinds; within a queue ReadyQueue's
// order (priority, FIFO, starvation bound) among the jobs of those kinds. When
// only rate-limited queues hold work, a timer on the loop's clock calls
// `on_token_due` once the next token is due. Loop thread only.
class Dispatcher {
 public:
  Dispatcher(runtime::EventLoop& loop, int starvation_every, std::function<void()> on_token_due)
      : loop_(loop), starvation_every_(starvation_every), on_token_due_(std::move(on_token_due)) {}
  ~Dispatcher() { Stop(); }
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // The queue, created with the defaults (no limits, weight 1) if it is new.
  QueueState& Queue(const std::string& name);
  const QueueState* Find(const std::string& name) const;
  const std::map<std::string, QueueState>& queues() const { return queues_; }
  // Forgets the queue (DeleteQueue); the engine has taken its jobs out first.
  void Erase(const std::string& name) { queues_.erase(name); }

  // Pops the next ready job for an executor serving the queues `wanted` (empty: every
  // queue) and the kinds `kinds` (empty: every kind), taking a token from its queue;
  // nullopt if none may go now. A queue with no job of those kinds is passed over
  // without taking its token or its turn.
  std::optional<ReadyQueue::Entry> Next(const google::protobuf::RepeatedPtrField<std::string>& wanted,
                                        const KindSet& kinds);

  // INVALID_ARGUMENT for a negative max_concurrency, a max_rate that is neither 0 nor
  // within [kMinQueueRate, kMaxQueueRate] (NaN and infinities included), or a weight
  // outside 0..1000.
  static absl::Status CheckLimits(const cohort::v1::QueueLimits& limits);
  // Applies the fields set in `limits` (checked) and returns the queue's limits; a new
  // rate starts with a full bucket.
  const cohort::v1::QueueLimits& SetLimits(const std::string& name, const cohort::v1::QueueLimits& limits);

  // The meta record (key, value) that makes a queue's settings durable, and recovery
  // from those records: a rate stored out of range is clamped into it (a tiny rate
  // once wedged the broker). DATA_LOSS for a corrupt record.
  std::pair<std::string, std::string> SettingsRecord(const std::string& name) const;
  absl::Status Recover(const std::map<std::string, std::string>& meta);

  // Disarms the token timer; nothing is dispatched by it afterwards.
  void Stop();

 private:
  // True if the queue's rate limit allows a dispatch now; otherwise notes when it will.
  bool TakeToken(QueueState& q, runtime::TimePoint now, runtime::TimePoint& next_token);

  runtime::EventLoop& loop_;
  const int starvation_every_;
  std::function<void()> on_token_due_;
  std::map<std::string, QueueState> queues_;
  std::string rr_queue_;  // weighted round robin: the queue whose turn it is
  int rr_left_ = 0;        // dispatches left in its turn; 0: its turn starts afresh
  runtime::TimerId rate_timer_ = 0;
};

}  // namespace cohort::broker
