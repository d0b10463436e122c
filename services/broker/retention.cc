#include "services/broker/retention.h"

namespace cohort::broker {

std::vector<std::string> Retention::TakeExpired(absl::Time now) {
  std::vector<std::string> expired;
  while (!expiries_.empty() && expiries_.begin()->first <= now) {
    expired.push_back(expiries_.begin()->second.str());
    expiries_.erase(expiries_.begin());
  }
  return expired;
}

std::int64_t Retention::TrimBefore(absl::Time now) {
  const absl::Time cutoff = now - event_retention_;
  std::int64_t trim_below = 0;
  while (!commits_.empty() && commits_.front().first < cutoff) {
    trim_below = commits_.front().second + 1;
    commits_.pop_front();
  }
  return trim_below;
}

}  // namespace cohort::broker
