#include "services/console/watch_hub.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/backoff.h"
#include "libs/common/log.h"
#include "libs/rpc/read_client.h"
#include "libs/rpc/status.h"
#include "libs/rpc/unary_client.h"
#include "services/console/json.h"

namespace cohort::console {
namespace {

using cohort::v1::Broker;
using WatchStream = rpc::ClientReadStream<cohort::v1::WatchRequest, cohort::v1::WatchResponse>;

constexpr char kResetData[] = "{}";
const log::Logger kLog("console");

}  // namespace

std::string SseFrame(absl::string_view event, absl::string_view data) {
  return absl::StrCat("event: ", event, "\ndata: ", data, "\n\n");
}

std::string CountsFrame(const cohort::v1::WatchResponse& batch) {
  std::int64_t succeeded = 0, failed = 0, cancelled = 0;
  // Per queue: jobs submitted (in) and ended (out); ordered, so the frame is stable.
  std::map<absl::string_view, std::pair<std::int64_t, std::int64_t>> queues;
  for (const cohort::v1::JobEvent& event : batch.events()) {
    bool ended = true;
    switch (event.to_state()) {
      case cohort::v1::JOB_STATE_SUCCEEDED: ++succeeded; break;
      case cohort::v1::JOB_STATE_FAILED: ++failed; break;
      case cohort::v1::JOB_STATE_CANCELLED: ++cancelled; break;
      default: ended = false; break;
    }
    const bool submitted = event.from_state() == cohort::v1::JOB_STATE_UNSPECIFIED &&
                           event.to_state() != cohort::v1::JOB_STATE_UNSPECIFIED;
    const std::string& queue = event.job().spec().queue();
    if (queue.empty() || (!submitted && !ended)) continue;
    auto& [in, out] = queues[queue];
    in += submitted ? 1 : 0;
    out += ended ? 1 : 0;
  }
  std::string json = absl::StrCat("{\"events\":", batch.events_size(), ",\"succeeded\":", succeeded,
                                  ",\"failed\":", failed, ",\"cancelled\":", cancelled, ",\"queues\":{");
  bool first = true;
  for (const auto& [queue, counts] : queues) {
    absl::StrAppend(&json, first ? "" : ",", JsonString(queue), ":[", counts.first, ",", counts.second, "]");
    first = false;
  }
  return SseFrame("counts", absl::StrCat(json, "}}"));
}

void EventSubscriber::Push(std::string frame) {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  if (bytes_ + frame.size() > max_bytes_) {
    frames_.clear();
    frame = SseFrame("reset", kResetData);
    bytes_ = 0;
  }
  bytes_ += frame.size();
  frames_.push_back(std::move(frame));
}

void EventSubscriber::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

EventSubscriber::Wake EventSubscriber::Take(absl::Duration timeout, std::vector<std::string>& out) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return closed_ || !frames_.empty(); };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (!frames_.empty()) {
    for (std::string& frame : frames_) out.push_back(std::move(frame));
    frames_.clear();
    bytes_ = 0;
    return Wake::kFrames;
  }
  return closed_ ? Wake::kClosed : Wake::kTimeout;
}

std::shared_ptr<EventSubscriber> WatchHub::Subscribe(std::string job_id, StreamView view) {
  auto subscriber = std::make_shared<EventSubscriber>(std::move(job_id), kSubscriberBytes, view);
  subscriber->Push(SseFrame("reset", kResetData));
  absl::MutexLock lock(&mu_);
  if (closed_) return nullptr;
  subscribers_.push_back(subscriber);
  return subscriber;
}

void WatchHub::Unsubscribe(const std::shared_ptr<EventSubscriber>& subscriber) {
  absl::MutexLock lock(&mu_);
  subscribers_.erase(std::remove(subscribers_.begin(), subscribers_.end(), subscriber), subscribers_.end());
}

void WatchHub::PublishToAll(const std::string& frame) {
  absl::MutexLock lock(&mu_);
  for (const std::shared_ptr<EventSubscriber>& s : subscribers_) s->Push(frame);
}

void WatchHub::Publish(const cohort::v1::WatchResponse& batch) {
  metrics_.watch_events().Increment(static_cast<double>(batch.events_size()));
  absl::MutexLock lock(&mu_);
  // Each JSON is made once, and only when a subscriber wants it.
  std::string counts;
  std::vector<std::pair<const std::string*, std::string>> events;
  bool made_events = false;
  std::string all;
  for (const std::shared_ptr<EventSubscriber>& s : subscribers_) {
    if (s->view() == StreamView::kCounts) {
      if (counts.empty()) counts = CountsFrame(batch);
      s->Push(counts);
      continue;
    }
    if (!made_events) {
      made_events = true;
      events.reserve(batch.events_size());
      for (const cohort::v1::JobEvent& event : batch.events()) events.emplace_back(&event.job_id(), ProtoJson(event));
    }
    if (s->view() == StreamView::kAllEvents) {
      if (all.empty()) {
        all = "{\"events\":[";
        for (std::size_t i = 0; i < events.size(); ++i) absl::StrAppend(&all, i ? "," : "", events[i].second);
        all = SseFrame("jobs", absl::StrCat(all, "]}"));
      }
      s->Push(all);
      continue;
    }
    std::string mine;
    for (const auto& [id, json] : events) {
      if (*id == s->job_id()) absl::StrAppend(&mine, mine.empty() ? "" : ",", json);
    }
    if (!mine.empty()) s->Push(SseFrame("jobs", absl::StrCat("{\"events\":[", mine, "]}")));
  }
}

runtime::Task<absl::Status> WatchHub::FollowOnce() {
  // The listing's sequence is where the log stands now: pages reload on `reset`, so
  // only what happens after it is news.
  cohort::v1::ListJobsRequest list;
  list.set_page_size(1);
  cohort::v1::ListJobsResponse listed;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status s = co_await rpc::Call(broker_.async(), &Broker::Stub::async::ListJobs, &ctx, list, &listed);
    if (!s.ok()) co_return rpc::FromGrpc(s);
  }
  cohort::v1::WatchRequest request;
  request.set_after_sequence(listed.sequence());
  WatchStream stream(*runtime::EventLoop::Current(), request);
  broker_.async()->Watch(stream.context(), &stream.request(), &stream);
  stream.Start();
  watch_ctx_ = stream.context();
  if (stopping_) stream.Cancel();  // stop came during the listing
  metrics_.watch_connects().Increment();
  kLog.Info("following the broker's events", {{"after_sequence", listed.sequence()}});
  PublishToAll(SseFrame("reset", kResetData));
  while (std::optional<cohort::v1::WatchResponse> batch = co_await stream.Read()) Publish(*batch);
  watch_ctx_ = nullptr;
  grpc::Status status = co_await stream.Finish();
  co_return status.ok() ? absl::UnavailableError("Watch ended") : rpc::FromGrpc(status);
}

runtime::Task<void> WatchHub::Run(runtime::Event& stop) {
  runtime::TaskGroup group;
  // Stop cancels the Watch in flight (its Read then ends) and cuts a backoff short.
  group.Spawn([](WatchHub* self, runtime::Event* stop) -> runtime::Task<void> {
    co_await stop->Wait();
    self->stopping_ = true;
    if (self->watch_ctx_ != nullptr) self->watch_ctx_->TryCancel();
    self->wake_.Set();
  }(this, &stop));
  common::Backoff backoff({.initial = absl::Milliseconds(200), .max = absl::Seconds(5)});
  while (!stopping_) {
    const runtime::TimePoint started = runtime::EventLoop::Current()->Now();
    absl::Status ended = co_await FollowOnce();
    if (stopping_) break;
    // A stream that lived a while was healthy: start the backoff afresh.
    if (runtime::EventLoop::Current()->Now() - started > std::chrono::seconds(10)) backoff.Reset();
    const absl::Duration delay = backoff.Next();
    kLog.Warn("broker watch ended; retrying",
              {{"error", std::string(ended.message().substr(0, 200))}, {"retry_ms", absl::ToInt64Milliseconds(delay)}});
    co_await wake_.WaitUntil(runtime::EventLoop::Current()->Now() + absl::ToChronoNanoseconds(delay));
  }
  co_await group.Join();
  absl::MutexLock lock(&mu_);
  closed_ = true;
  for (const std::shared_ptr<EventSubscriber>& s : subscribers_) s->Close();
  subscribers_.clear();
}

}  // namespace cohort::console
