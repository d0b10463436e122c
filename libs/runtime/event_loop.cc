#include "libs/runtime/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/runtime/check.h"
#include "libs/runtime/task.h"

namespace cohort::runtime {
namespace {

thread_local EventLoop* current_loop = nullptr;

// With ready work the loop polls fds only every kIoPollInterval iterations, so a busy
// loop does not pay a syscall per iteration yet I/O is never starved.
constexpr std::uint32_t kIoPollInterval = 32;

// How many timers ahead a burst of due timers prefetches their callbacks.
constexpr std::size_t kPrefetchAhead = 8;

}  // namespace

// A CallAt callback. Its TimerId is (generation << 32 | slot); the heap holds the id
// as a cookie, and cancelling only bumps the generation, so the stale entry is skipped
// when it falls due (or swept), and a stale id never cancels the slot's next timer.
struct EventLoop::CallbackSlot {
  absl::AnyInvocable<void()> fn;
  std::uint32_t generation = 1;  // < 2^31, never 0: an id is a non-zero 63-bit cookie
};

EventLoop::EventLoop(Clock* clock) : clock_(clock), owner_(std::this_thread::get_id()) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  COHORT_CHECK(epoll_fd_ >= 0, std::strerror(errno));
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  COHORT_CHECK(wake_fd_ >= 0, std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  COHORT_CHECK(epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) == 0, std::strerror(errno));
  ready_.reserve(1024);
  running_.reserve(1024);
}

EventLoop::~EventLoop() {
  COHORT_CHECK(!active_.load(std::memory_order_acquire), "event loop destroyed while running");
  EventLoop* previous = current_loop;
  BindToCurrentThread();
  // Cancel what is unfinished and let it unwind (asyncio.run's teardown); run only what
  // is ready, and block only for work on other threads (ToThread) that will post back.
  tasks_.ForEach([](internal::TaskState* task) { task->Cancel(); });
  while (!tasks_.empty() && (!ready_.empty() || !posted_.Empty() || external_work_ > 0)) {
    RunOnce(/*may_block=*/external_work_ > 0);
  }
  // Whatever still waits (e.g. on a timer) is abandoned newest first: children before
  // the parents whose frames they may use.
  while (internal::TaskState* task = tasks_.PopBack()) task->Abandon();
  slot_chunks_.clear();
  Unbind();
  current_loop = previous;
  // Posts in flight: a claimed item is published shortly; a poster waking the loop
  // (the eventfd must stay open until it is done) is counted; a poster waiting for
  // room gets it as the leftovers, never run, are dropped.
  while (posters_.load(std::memory_order_acquire) > 0 || posted_.ClaimsPending()) {
    posted_.DropPublished();
    std::this_thread::yield();
  }
  close(wake_fd_);
  close(epoll_fd_);
}

EventLoop* EventLoop::Current() { return current_loop; }

void EventLoop::CheckInLoopThread() const {
  COHORT_CHECK(InLoopThread(), "event loop used from a thread that does not own it");
}

void EventLoop::RegisterTask(internal::TaskState* task) { tasks_.PushBack(task); }

void EventLoop::CallSoon(absl::AnyInvocable<void()> fn) {
  auto* boxed = new absl::AnyInvocable<void()>(std::move(fn));
  Schedule(
      [](void* arg) {
        std::unique_ptr<absl::AnyInvocable<void()>> f(static_cast<absl::AnyInvocable<void()>*>(arg));
        (*f)();
      },
      boxed);
}

TimerId EventLoop::CallAt(TimePoint when, absl::AnyInvocable<void()> fn) {
  if (free_slots_.empty()) {
    // A chunk of slots at a time: one allocation per kSlotChunk timers.
    auto first = static_cast<std::uint32_t>(slot_chunks_.size() * kSlotChunk);
    slot_chunks_.push_back(std::make_unique<CallbackSlot[]>(kSlotChunk));
    for (std::uint32_t i = kSlotChunk; i-- > 0;) free_slots_.push_back(first + i);
  }
  std::uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  CallbackSlot& s = Slot(slot);
  s.fn = std::move(fn);
  TimerId id = (static_cast<TimerId>(s.generation) << 32) | slot;
  timers_.PushCookie(id, when);
  return id;
}

EventLoop::CallbackSlot* EventLoop::LiveSlot(TimerId id) const {
  auto slot = static_cast<std::uint32_t>(id & 0xffffffffu);
  if (slot >= slot_chunks_.size() * kSlotChunk) return nullptr;
  CallbackSlot& s = Slot(slot);
  if (s.generation != static_cast<std::uint32_t>(id >> 32) || s.fn == nullptr) return nullptr;
  return &s;
}

bool EventLoop::CancelTimer(TimerId id) {
  CallbackSlot* s = LiveSlot(id);
  if (s == nullptr) return false;
  s->fn = nullptr;
  ReleaseSlot(id);
  // Its heap entry stays until it falls due or a sweep, once cancelled entries are
  // the majority, removes them all: O(1) amortized per cancel, bounded memory.
  if (++cancelled_timers_ >= kSweepMin && cancelled_timers_ * 2 > timers_.size()) {
    timers_.RemoveCookiesIf([this](std::uint64_t cookie) { return LiveSlot(cookie) == nullptr; });
    cancelled_timers_ = 0;
  }
  return true;
}

void EventLoop::FireCallback(TimerId id) {
  CallbackSlot* s = LiveSlot(id);
  if (s == nullptr) {
    --cancelled_timers_;
    return;
  }
  absl::AnyInvocable<void()> fn = std::move(s->fn);
  s->fn = nullptr;
  ReleaseSlot(id);  // before running: fn may arm a timer into this slot
  fn();
}

void EventLoop::DropCancelledTop() {
  while (!timers_.empty()) {
    internal::DueTimer top = timers_.top();
    if (top.node != nullptr || LiveSlot(top.cookie) != nullptr) return;
    timers_.PopTop();
    --cancelled_timers_;
  }
}

EventLoop::CallbackSlot& EventLoop::Slot(std::uint32_t slot) const {
  return slot_chunks_[slot / kSlotChunk][slot % kSlotChunk];
}

void EventLoop::ReleaseSlot(TimerId id) {
  auto slot = static_cast<std::uint32_t>(id & 0xffffffffu);
  CallbackSlot& s = Slot(slot);
  s.generation = s.generation % 0x7fffffffu + 1;
  free_slots_.push_back(slot);
}

absl::Status EventLoop::AddReader(int fd, absl::AnyInvocable<void()> on_readable) {
  CheckInLoopThread();
  if (readers_.contains(fd)) {
    return absl::AlreadyExistsError(absl::StrCat("fd ", fd, " already has a reader"));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("epoll_ctl(ADD, ", fd, "): ", std::strerror(errno)));
  }
  readers_.emplace(fd, std::make_shared<absl::AnyInvocable<void()>>(std::move(on_readable)));
  return absl::OkStatus();
}

absl::Status EventLoop::RemoveReader(int fd) {
  CheckInLoopThread();
  if (readers_.erase(fd) == 0) return absl::NotFoundError(absl::StrCat("fd ", fd, " has no reader"));
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr) != 0 && errno != EBADF) {
    return absl::InternalError(absl::StrCat("epoll_ctl(DEL, ", fd, "): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

void EventLoop::PostWhenRoom(absl::FunctionRef<void(void*)> emplace) {
  posters_.fetch_add(1, std::memory_order_acq_rel);
  while (true) {
    // Still before the call is visible, so the loop is alive: keep the count only to
    // wake it.
    auto pushed = posted_.TryEmplace(emplace, [this](bool asleep) {
      if (!asleep) posters_.fetch_sub(1, std::memory_order_acq_rel);
    });
    if (pushed == decltype(posted_)::Push::kPushedAsleep) WakeAndRelease();
    if (pushed != decltype(posted_)::Push::kFull) return;
    Wake();
    std::this_thread::yield();
  }
}

void EventLoop::Stop() {
  stop_requested_.store(true, std::memory_order_seq_cst);
  Wake();
}

void EventLoop::Wake() {
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
  std::uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  COHORT_CHECK(n == sizeof(one) || errno == EAGAIN, std::strerror(errno));
}

void EventLoop::BindToCurrentThread() {
  COHORT_CHECK(current_loop == nullptr || current_loop == this,
               "another event loop is already running on this thread");
  COHORT_CHECK(!active_.exchange(true, std::memory_order_acq_rel), "event loop run on two threads at once");
  owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  current_loop = this;
}

void EventLoop::Unbind() {
  current_loop = nullptr;
  active_.store(false, std::memory_order_release);
}

void EventLoop::Run() {
  BindToCurrentThread();
  // Stop() wakes a blocked poll, so each iteration may block.
  while (!stop_requested_.exchange(false, std::memory_order_acq_rel)) RunOnce(/*may_block=*/true);
  Unbind();
}

void EventLoop::RunUntilIdle() {
  BindToCurrentThread();
  do {
    RunOnce(/*may_block=*/false);
    DropCancelledTop();
  } while (!ready_.empty() || !posted_.Empty() || (!timers_.empty() && timers_.next_deadline() <= Now()));
  Unbind();
}

void EventLoop::RunOnce(bool may_block) {
  ++iterations_;
  std::int64_t timeout_ns = 0;
  bool poll = !readers_.empty() && (iterations_ % kIoPollInterval == 0);
  // Posts already waiting are work: no need to ask the kernel. While posts keep
  // arriving, wait a little for the next one before sleeping, so a steady stream from
  // another thread costs no eventfd write and no epoll_wait per batch.
  bool idle = ready_.empty() && posted_.Empty();
  if (idle && may_block && posts_flowing_) idle = !SpinForPost();
  if (idle && may_block) {
    poll = true;
    timeout_ns = -1;
    DropCancelledTop();
    if (!timers_.empty()) {
      TimePoint next = timers_.next_deadline();
      if (clock_->IsManual()) {
        if (next <= Now()) {
          timeout_ns = 0;  // already due: the clock was advanced since the last check
        } else if (clock_->AutoAdvance() && external_work_ == 0) {
          clock_->AdvanceTo(next);
          timeout_ns = 0;
        }
      } else {
        timeout_ns = std::max<std::int64_t>(0, (next - Now()).count());
      }
    }
  } else if (idle && !readers_.empty()) {
    poll = true;
  }
  if (poll) Poll(timeout_ns);
  DrainPosted();
  FireDueTimers();

  running_.swap(ready_);
  for (run_next_ = 0; run_next_ < running_.size();) {
    const Runnable r = running_[run_next_++];
    r.fn(r.arg);
  }
  running_.clear();
  run_next_ = 0;
}

void EventLoop::Poll(std::int64_t timeout_ns) {
  // Before sleeping, tell posters (through the ring): the first post after this wakes
  // the loop. If a post is already pending, look again instead.
  const bool wanted_sleep = timeout_ns != 0;
  const bool asleep = wanted_sleep && posted_.TrySleep();
  if (wanted_sleep && !asleep) timeout_ns = 0;
  constexpr int kMaxEvents = 64;
  epoll_event events[kMaxEvents];
  int n;
  if (timeout_ns < 0) {
    n = epoll_wait(epoll_fd_, events, kMaxEvents, -1);
  } else {
    timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000), static_cast<long>(timeout_ns % 1'000'000'000)};
    n = epoll_pwait2(epoll_fd_, events, kMaxEvents, &ts, nullptr);
    if (n < 0 && errno == ENOSYS) {  // kernels before 5.11: millisecond timeouts, rounded up
      n = epoll_wait(epoll_fd_, events, kMaxEvents, static_cast<int>((timeout_ns + 999'999) / 1'000'000));
    }
  }
  if (asleep) {
    posted_.Awake();
  } else if (wanted_sleep && posted_.Empty()) {
    std::this_thread::yield();  // a poster is between claiming its slot and publishing
  }
  COHORT_CHECK(n >= 0 || errno == EINTR, std::strerror(errno));
  for (int i = 0; i < n; ++i) {
    int fd = events[i].data.fd;
    if (fd == wake_fd_) {
      // One read takes the whole count and resets it (not EFD_SEMAPHORE): a second
      // read would only fail with EAGAIN, a wasted system call per wake-up.
      std::uint64_t value;
      ssize_t got = read(wake_fd_, &value, sizeof(value));
      COHORT_CHECK(got == sizeof(value) || errno == EAGAIN || errno == EINTR, std::strerror(errno));
      wake_pending_.store(false, std::memory_order_release);
      continue;
    }
    auto it = readers_.find(fd);
    if (it == readers_.end()) continue;  // removed by an earlier callback
    std::shared_ptr<absl::AnyInvocable<void()>> reader = it->second;  // survives RemoveReader
    (*reader)();
  }
}

void EventLoop::DrainPosted() {
  // At most one ring's worth per iteration, so endless posting cannot starve the rest.
  posts_flowing_ = posted_.Drain(kPostCapacity, [](internal::PostedCall& call) { call(); }) > 0;
}

bool EventLoop::SpinForPost() {
  // About 20 microseconds: far less than a sleep and wake-up through the kernel.
  for (int i = 0; i < kPostSpins; ++i) {
    if (!posted_.Empty()) return true;
    if (stop_requested_.load(std::memory_order_relaxed)) return false;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  posts_flowing_ = false;  // the stream has paused: sleep from now on
  return false;
}

void EventLoop::FireDueTimers() {
  if (timers_.empty()) return;
  TimePoint now = Now();
  while (internal::DueTimer due = timers_.PopDue(now)) {
    // In a burst, the callbacks of the next timers are far apart in memory: fetch them
    // while this one runs.
    if (TimerId ahead = timers_.RunCookieAhead(kPrefetchAhead)) {
      __builtin_prefetch(&Slot(static_cast<std::uint32_t>(ahead & 0xffffffffu)));
    }
    if (due.node != nullptr) {
      due.node->OnTimer();
    } else {
      FireCallback(due.cookie);
    }
  }
}

}  // namespace cohort::runtime
