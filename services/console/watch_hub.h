#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/runtime/runtime.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "services/console/console_metrics.h"

namespace cohort::console {

// What a live stream carries: every event of every job (`jobs` frames with each event
// and its job), one job's events only, or per batch only how many events there were
// and how many jobs ended in each state (`counts` frames: tens of bytes per batch,
// whatever the number of jobs in it, for pages that only count and reload).
enum class StreamView { kAllEvents, kOneJob, kCounts };

// One browser's live stream: Server-Sent-Events frames that the hub queues on the loop
// and the HTTP thread serving the stream takes and writes. Thread-safe.
//
// Bounded in bytes: a reader that falls more than `max_bytes` behind loses what is
// queued, and gets one `reset` frame instead, telling the page to reload its view
// (nothing in the console relies on seeing every event).
class EventSubscriber {
 public:
  // `job_id` empty: every event (or counts, with `view` kCounts); otherwise only that job's.
  EventSubscriber(std::string job_id, std::size_t max_bytes, StreamView view = StreamView::kAllEvents)
      : job_id_(std::move(job_id)),
        max_bytes_(max_bytes),
        view_(job_id_.empty() ? view : StreamView::kOneJob) {}

  const std::string& job_id() const { return job_id_; }
  StreamView view() const { return view_; }

  // Hub side: queues one frame and wakes the reader.
  void Push(std::string frame);
  // Hub side: ends the stream; the reader's next wait returns kClosed.
  void Close();

  enum class Wake { kFrames, kTimeout, kClosed };
  // Reader side: waits up to `timeout` for frames and moves them all into `out`.
  Wake Take(absl::Duration timeout, std::vector<std::string>& out);

 private:
  const std::string job_id_;
  const std::size_t max_bytes_;
  const StreamView view_;
  absl::Mutex mu_;
  std::deque<std::string> frames_ ABSL_GUARDED_BY(mu_);
  std::size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// The console's one Watch on the broker, fanned out to every open page: however many
// pages are open, the broker serves a single stream to this console.
//
// Run() (on the console's loop) lists to learn the log's current sequence, then
// follows Watch from it; each batch becomes one `jobs` frame per subscriber,
// {"events": [JobEvent JSON, ...]}, holding only the events it asked for, or one
// `counts` frame (see CountsFrame) for a kCounts subscriber. Each JSON is made once per
// batch, whatever the number of subscribers. Whenever the
// stream is (re)established — at start, after the broker restarts or after retention
// trimmed past it — every subscriber gets a `reset` frame, so its page reloads what it
// shows and then applies events again. Broker errors are retried with backoff (0.2 s
// doubling to 5 s). When `stop` is set the stream is cancelled, every subscriber is
// closed, and Run() returns.
//
// Subscribe/Unsubscribe are thread-safe; Run is loop-only. The stub must outlive Run.
class WatchHub {
 public:
  WatchHub(cohort::v1::Broker::Stub& broker, ConsoleMetrics& metrics) : broker_(broker), metrics_(metrics) {}

  // Most bytes queued for one subscriber before it is reset.
  static constexpr std::size_t kSubscriberBytes = 4 << 20;

  // A new subscriber; it receives a `reset` frame first. nullptr once the hub stopped.
  std::shared_ptr<EventSubscriber> Subscribe(std::string job_id, StreamView view = StreamView::kAllEvents);
  void Unsubscribe(const std::shared_ptr<EventSubscriber>& subscriber);

  runtime::Task<void> Run(runtime::Event& stop);

 private:
  // Follows one Watch until it ends or `stop_`; returns why it ended.
  runtime::Task<absl::Status> FollowOnce();
  void Publish(const cohort::v1::WatchResponse& batch);
  void PublishToAll(const std::string& frame);

  cohort::v1::Broker::Stub& broker_;
  ConsoleMetrics& metrics_;
  bool stopping_ = false;  // loop-only
  runtime::Event wake_;    // loop-only: cuts a backoff short at stop
  grpc::ClientContext* watch_ctx_ = nullptr;  // loop-only: the Watch in flight

  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::shared_ptr<EventSubscriber>> subscribers_ ABSL_GUARDED_BY(mu_);
};

// The SSE frame for `event` with `data` (one line of JSON).
std::string SseFrame(absl::string_view event, absl::string_view data);

// The `counts` frame of a Watch batch: {"events": N, "succeeded": S, "failed": F,
// "cancelled": C, "queues": {"<queue>": [IN, OUT], ...}}: the jobs that entered each
// terminal state in it, and per queue the jobs submitted (IN) and ended (OUT), queues
// with neither left out. At most one entry per event, so bounded by the batch.
std::string CountsFrame(const cohort::v1::WatchResponse& batch);

}  // namespace cohort::console
