#include "services/console/caller_stubs.h"

#include "libs/auth/token_store.h"

namespace cohort::console {

std::shared_ptr<CallerStub> CallerStubs::For(const std::string& token) {
  std::string key = token.empty() ? std::string() : auth::HashToken(token);
  if (auto it = by_key_.find(key); it != by_key_.end()) {
    order_.splice(order_.begin(), order_, it->second);
    return it->second->second;
  }
  auto stub = std::make_shared<CallerStub>();
  stub->broker_channel = broker_();
  stub->broker = cohort::v1::Broker::NewStub(stub->broker_channel);
  if (scheduler_) {
    stub->scheduler_channel = scheduler_();
    stub->scheduler = cohort::v1::Scheduler::NewStub(stub->scheduler_channel);
  }
  order_.emplace_front(key, stub);
  by_key_[key] = order_.begin();
  while (order_.size() > capacity_) {
    by_key_.erase(order_.back().first);
    order_.pop_back();
  }
  return stub;
}

}  // namespace cohort::console
