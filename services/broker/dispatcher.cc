#include "services/broker/dispatcher.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "libs/common/wire_time.h"

namespace cohort::broker {
namespace {

constexpr char kQueueMetaPrefix[] = "queue:";

// A queue's max_rate as the dispatcher may use it: 0 (unlimited) or within
// [kMinQueueRate, kMaxQueueRate]. CheckLimits rejects anything else; this repairs a
// value stored before it did (a tiny rate once overflowed the next-token time and
// wedged the broker).
double UsableRate(double rate) {
  if (!(rate > 0)) return 0;  // NaN, negative, zero: unlimited
  if (std::isinf(rate)) return 0;
  return std::clamp(rate, kMinQueueRate, kMaxQueueRate);
}

}  // namespace

QueueState& Dispatcher::Queue(const std::string& name) {
  auto it = queues_.find(name);
  if (it == queues_.end()) {
    it = queues_.emplace(name, QueueState(starvation_every_)).first;
    it->second.limits.set_max_concurrency(0);
    it->second.limits.set_max_rate(0);
    it->second.limits.set_weight(1);
  }
  return it->second;
}

const QueueState* Dispatcher::Find(const std::string& name) const {
  auto it = queues_.find(name);
  return it == queues_.end() ? nullptr : &it->second;
}

void Dispatcher::Stop() {
  if (rate_timer_ != 0) loop_.CancelTimer(rate_timer_);
  rate_timer_ = 0;
}

absl::Status Dispatcher::CheckLimits(const cohort::v1::QueueLimits& limits) {
  if (limits.has_max_concurrency() && limits.max_concurrency() < 0) {
    return absl::InvalidArgumentError("limits.max_concurrency must not be negative (0: unlimited)");
  }
  if (limits.has_max_rate() && limits.max_rate() != 0 &&
      !(limits.max_rate() >= kMinQueueRate && limits.max_rate() <= kMaxQueueRate)) {  // NaN fails too
    return absl::InvalidArgumentError(absl::StrCat("limits.max_rate must be 0 (unlimited) or between ",
                                                   kMinQueueRate, " and ", kMaxQueueRate, " jobs per second"));
  }
  if (limits.has_weight() && (limits.weight() < 0 || limits.weight() > 1000)) {
    return absl::InvalidArgumentError("limits.weight must be in 0..1000 (0: the default, 1)");
  }
  return absl::OkStatus();
}

const cohort::v1::QueueLimits& Dispatcher::SetLimits(const std::string& name, const cohort::v1::QueueLimits& limits) {
  QueueState& q = Queue(name);
  if (limits.has_max_concurrency()) q.limits.set_max_concurrency(limits.max_concurrency());
  if (limits.has_max_rate()) {
    q.limits.set_max_rate(limits.max_rate());
    q.tokens = std::max(1.0, limits.max_rate());  // a full bucket
    q.refilled = loop_.Now();
  }
  if (limits.has_weight()) q.limits.set_weight(std::max(1, limits.weight()));
  return q.limits;
}

std::pair<std::string, std::string> Dispatcher::SettingsRecord(const std::string& name) const {
  const QueueState& q = queues_.at(name);
  cohort::v1::QueueInfo info;
  info.set_name(name);
  info.set_paused(q.paused);
  *info.mutable_limits() = q.limits;
  return {absl::StrCat(kQueueMetaPrefix, name), info.SerializeAsString()};
}

absl::Status Dispatcher::Recover(const std::map<std::string, std::string>& meta) {
  for (const auto& [key, value] : meta) {
    if (key.rfind(kQueueMetaPrefix, 0) != 0) continue;
    cohort::v1::QueueInfo info;
    if (!info.ParseFromString(value)) return absl::DataLossError(absl::StrCat("meta ", key, " is corrupt"));
    QueueState& q = Queue(info.name());
    q.paused = info.paused();
    q.limits = info.limits();
    q.limits.set_max_rate(UsableRate(q.limits.max_rate()));
    q.tokens = std::max(1.0, q.limits.max_rate());  // a full bucket, as SetLimits leaves it
    q.refilled = loop_.Now();
  }
  return absl::OkStatus();
}

bool Dispatcher::TakeToken(QueueState& q, runtime::TimePoint now, runtime::TimePoint& next_token) {
  const double rate = q.limits.max_rate();
  if (rate <= 0) return true;
  const double burst = std::max(1.0, rate);
  q.tokens = std::min(burst, q.tokens + rate * std::chrono::duration<double>(now - q.refilled).count());
  q.refilled = now;
  if (q.tokens >= 1) {
    q.tokens -= 1;
    return true;
  }
  // Saturating: a next token too far ahead to represent is one that never comes (no
  // timer is armed for TimePoint::max()), not a wrapped time in the past.
  const absl::Duration wait = absl::Seconds((1 - q.tokens) / rate);
  next_token = std::min(next_token, common::AddSaturated(now, wait));
  return false;
}

std::optional<ReadyQueue::Entry> Dispatcher::Next(const google::protobuf::RepeatedPtrField<std::string>& wanted,
                                                  const KindSet& kinds) {
  if (queues_.empty()) return std::nullopt;
  const runtime::TimePoint now = loop_.Now();
  runtime::TimePoint next_token = runtime::TimePoint::max();
  auto it = queues_.lower_bound(rr_queue_);
  for (std::size_t i = 0; i < queues_.size(); ++i, ++it) {
    if (it == queues_.end()) it = queues_.begin();
    const std::string& name = it->first;
    QueueState& q = it->second;
    if (q.paused || !q.ready.HasFor(kinds)) continue;
    if (q.limits.max_concurrency() > 0 && q.running >= q.limits.max_concurrency()) continue;
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), name) == wanted.end()) continue;
    if (!TakeToken(q, now, next_token)) continue;
    // A queue starts a turn of `weight` dispatches when it takes one with no turn
    // left (rr_left_ 0: the turn just passed to it, or it is another queue's turn).
    if (name != rr_queue_ || rr_left_ <= 0) {
      rr_queue_ = name;
      rr_left_ = std::max(1, q.limits.weight());
    }
    if (--rr_left_ <= 0) {  // its turn is over: the next queue's starts fresh
      auto next = std::next(it);
      rr_queue_ = next == queues_.end() ? queues_.begin()->first : next->first;
      rr_left_ = 0;
    }
    return q.ready.Pop(kinds);
  }
  if (next_token != runtime::TimePoint::max() && rate_timer_ == 0) {
    // A rate-limited queue has work: dispatch again when its next token is due.
    rate_timer_ = loop_.CallAt(next_token, [this] {
      rate_timer_ = 0;
      on_token_due_();
    });
  }
  return std::nullopt;
}

}  // namespace cohort::broker
