#include "services/broker/executor_sessions.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/message_limits.h"
#include "libs/common/names.h"
#include "libs/common/proto_time.h"
#include "services/broker/job_validation.h"

namespace cohort::broker {

absl::Status ExecutorSessions::CheckHello(const cohort::v1::ExecutorMessage::Hello& hello, std::int32_t max_capacity) {
  if (hello.executor_id().empty() || hello.executor_id().size() > 128) {
    return absl::InvalidArgumentError("hello.executor_id must be 1-128 bytes");
  }
  if (hello.capacity() < 1 || hello.capacity() > max_capacity) {
    return absl::InvalidArgumentError(absl::StrCat("hello.capacity must be in 1..", max_capacity));
  }
  if (hello.prefetch() < 0 || hello.prefetch() > max_capacity) {
    return absl::InvalidArgumentError(
        absl::StrCat("hello.prefetch must be in 0..", max_capacity, " (the capacity limit)"));
  }
  if (hello.running_size() > MaxHeld(max_capacity)) {
    return absl::InvalidArgumentError(absl::StrCat("hello.running lists ", hello.running_size(),
                                                   " attempts: the limit is ", MaxHeld(max_capacity)));
  }
  for (const std::string& q : hello.queues()) {
    if (absl::Status s = common::CheckName(q, "hello.queues: "); !s.ok()) return s;
  }
  if (hello.kinds_size() > common::kMaxExecutorKinds) {
    return absl::InvalidArgumentError(absl::StrCat("hello.kinds lists ", hello.kinds_size(),
                                                   " kinds: the limit is ", common::kMaxExecutorKinds));
  }
  for (const std::string& kind : hello.kinds()) {
    if (absl::Status s = CheckKindName(kind, "hello.kinds: "); !s.ok()) return s;
  }
  return absl::OkStatus();
}

void ExecutorSession::Grant(std::int64_t grant) {
  const std::int64_t room = std::max<std::int64_t>(
      0, std::int64_t{hello.capacity()} + hello.prefetch() - static_cast<std::int64_t>(running.size()));
  credits = static_cast<std::int32_t>(std::clamp<std::int64_t>(std::int64_t{credits} + grant, 0, room));
}

ExecutorSession& ExecutorSessions::Add(const cohort::v1::ExecutorMessage::Hello& hello, ExecutorChannel* channel,
                                       absl::Time now) {
  const std::uint64_t token = next_token_++;
  ExecutorSession& s = sessions_[token];
  s.token = token;
  s.hello = hello;
  s.kinds = KindSet(hello.kinds().begin(), hello.kinds().end());
  s.channel = channel;
  s.connect_time = s.last_heartbeat = now;
  by_executor_[hello.executor_id()] = token;
  serving_.clear();
  return s;
}

std::optional<ExecutorSession> ExecutorSessions::Remove(std::uint64_t token) {
  auto it = sessions_.find(token);
  if (it == sessions_.end()) return std::nullopt;
  ExecutorSession session = std::move(it->second);
  sessions_.erase(it);
  serving_.clear();
  if (auto e = by_executor_.find(session.hello.executor_id()); e != by_executor_.end() && e->second == token) {
    by_executor_.erase(e);
  }
  return session;
}

ExecutorSession* ExecutorSessions::Find(std::uint64_t token) {
  auto it = sessions_.find(token);
  return it == sessions_.end() ? nullptr : &it->second;
}

ExecutorSession* ExecutorSessions::FindExecutor(const std::string& executor_id) {
  auto it = by_executor_.find(executor_id);
  return it == by_executor_.end() ? nullptr : Find(it->second);
}

cohort::v1::ListExecutorsResponse ExecutorSessions::List() const {
  cohort::v1::ListExecutorsResponse response;
  std::map<std::string, const ExecutorSession*> by_id;
  for (const auto& [token, s] : sessions_) by_id[s.hello.executor_id()] = &s;
  for (const auto& [id, s] : by_id) {
    cohort::v1::ExecutorInfo* info = response.add_executors();
    info->set_executor_id(id);
    *info->mutable_labels() = s->hello.labels();
    *info->mutable_queues() = s->hello.queues();
    *info->mutable_kinds() = s->hello.kinds();
    info->set_capacity(s->hello.capacity());
    info->set_running(static_cast<int32_t>(s->running.size()));
    info->set_credits(s->credits);
    *info->mutable_connect_time() = common::ToProto(s->connect_time);
    *info->mutable_last_heartbeat_time() = common::ToProto(s->last_heartbeat);
  }
  return response;
}

const QueueServing& ExecutorSessions::ServingOf(const std::string& queue) const {
  auto [it, fresh] = serving_.try_emplace(queue);
  if (!fresh) return it->second;
  QueueServing& serving = it->second;
  for (const auto& [token, s] : sessions_) {
    const auto& queues = s.hello.queues();
    if (!queues.empty() && std::find(queues.begin(), queues.end(), queue) == queues.end()) continue;
    ++serving.executors;
    if (s.kinds.empty()) serving.every_kind = true;
    if (!serving.every_kind) serving.kinds.insert(s.kinds.begin(), s.kinds.end());
  }
  if (serving.every_kind) serving.kinds.clear();
  return serving;
}

cohort::v1::BrokerMessage ExecutorSessions::CancelMessage(const std::string& job_id, std::int32_t attempt,
                                                          std::string reason) {
  cohort::v1::BrokerMessage msg;
  msg.mutable_cancel()->set_job_id(job_id);
  msg.mutable_cancel()->set_attempt(attempt);
  msg.mutable_cancel()->set_reason(std::move(reason));
  return msg;
}

}  // namespace cohort::broker
