#include "services/dev/part_thread.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace cohort::dev {

absl::StatusOr<std::unique_ptr<PartThread>> PartThread::Start(std::string name, Open open,
                                                               absl::AnyInvocable<void()> on_end) {
  std::unique_ptr<PartThread> part(new PartThread(std::move(name)));
  part->thread_ = std::thread([p = part.get(), open = std::move(open), on_end = std::move(on_end)]() mutable {
    p->Body(std::move(open), std::move(on_end));
  });
  absl::Status status;
  {
    absl::MutexLock lock(&part->mu_);
    part->mu_.Await(absl::Condition(&part->opened_));
    status = part->open_status_;
  }
  if (!status.ok()) {
    part->thread_.join();
    return absl::Status(status.code(), absl::StrCat(part->name_, ": ", status.message()));
  }
  return part;
}

void PartThread::Body(Open open, absl::AnyInvocable<void()> on_end) {
  // `stop` outlives the loop: a RequestStop() posted just as the task ended may run
  // during the loop's teardown.
  runtime::Event stop;
  runtime::EventLoop loop;
  absl::StatusOr<runtime::Task<void>> life = open(loop, stop);
  {
    absl::MutexLock lock(&mu_);
    opened_ = true;
    open_status_ = life.status();
    if (life.ok()) {
      loop_ = &loop;
      stop_ = &stop;
    }
  }
  if (!life.ok()) return;
  bool launched = false;
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](PartThread* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) { return p->launched_ || p->abandoned_; }, this));
    launched = launched_;
  }
  // Unlaunched, the task (and the part it owns) is destroyed with `life`, on this
  // thread and before the loop.
  if (launched) runtime::RunUntilComplete(loop, std::move(*life));
  {
    absl::MutexLock lock(&mu_);
    loop_ = nullptr;
    stop_ = nullptr;
  }
  if (launched && on_end) on_end();
}

void PartThread::Launch() {
  absl::MutexLock lock(&mu_);
  launched_ = true;
}

void PartThread::RequestStop() {
  absl::MutexLock lock(&mu_);
  if (loop_ == nullptr) return;
  loop_->Post([stop = stop_] { stop->Set(); });
}

void PartThread::Join() {
  if (thread_.joinable()) thread_.join();
}

PartThread::~PartThread() {
  {
    absl::MutexLock lock(&mu_);
    abandoned_ = !launched_;
  }
  RequestStop();
  Join();
}

}  // namespace cohort::dev
