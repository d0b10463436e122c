// Peer benchmark: standalone Asio (1.22, C++20 coroutines).
//
// Measures the same five workloads as Cohort's coroutine-runtime benchmark and
// bench/peers/asyncio_bench.py. Each workload gets a fresh single-threaded
// asio::io_context (constructed outside the timed region, concurrency hint 1):
//
//   gather_100k  co_spawn 100,000 trivial awaitable<int> tasks, each with a
//                completion handler that adds its result and counts down a
//                latch; a gatherer coroutine awaits the latch. Verifies sum.
//   queue_1m     1,000,000 items through an asio::experimental::channel
//                (capacity 1,000,000, i.e. effectively unbounded) from one
//                producer coroutine to one consumer coroutine; verifies order.
//   yield_1m     100 coroutines x 10,000 `co_await asio::post(ex,
//                use_awaitable)` = 1,000,000 yields to the io_context.
//   timers_100k  100,000 steady_timers with delays uniform in [0, 1 ms] (fixed
//                seed), all armed at once with async_wait callbacks; runs until
//                all fired and verifies non-decreasing expiry order.
//   post_1m      a foreign std::thread does 1,000,000 asio::post(io, fn), each
//                fn incrementing a counter on the loop thread; timed until the
//                counter reaches 1,000,000.
//
// Choices:
//  * Queue: asio::experimental::channel (the only Asio coroutine queue; plain
//    asio has none). Every async_send/async_receive completion is *posted*
//    (never inline), so awaiting on each item would cost a scheduler round
//    trip per put and per get. The fastest idiomatic form, used here, is the
//    same contract as asyncio.Queue: try_send()/try_receive() first and only
//    co_await async_send()/async_receive() when the channel is full/empty.
//  * Gather wake-up: a "latch" built from a steady_timer that never expires;
//    the gatherer awaits it and the last completion cancels it (the usual
//    plain-asio condition-variable idiom; asio 1.22 has no
//    any_completion_handler to stash an arbitrary handler).
//
// Output: one line `<name> <seconds>` per workload (std::chrono::steady_clock,
// 6 decimals). Exit 0 on success, 1 with a message on stderr if a verification
// fails, 2 on bad usage.
//
// Build and run (from /work/main):
//   g++ -std=c++20 -O2 -DNDEBUG bench/peers/asio_bench.cc -o /tmp/asio_bench -lpthread
//   /tmp/asio_bench [--only NAME]

#include <asio.hpp>
#include <asio/experimental/channel.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kGatherTasks = 100'000;
constexpr std::uint64_t kQueueItems = 1'000'000;
constexpr int kYieldTasks = 100;
constexpr int kYieldsPerTask = 10'000;
constexpr int kTimers = 100'000;
constexpr std::int64_t kTimerMaxDelayNs = 1'000'000;  // 1 ms
constexpr std::uint64_t kTimerSeed = 12345;
constexpr std::uint64_t kPosts = 1'000'000;

[[noreturn]] void Fail(const char* workload, const std::string& what) {
  std::fprintf(stderr, "%s: verification failed: %s\n", workload, what.c_str());
  std::exit(1);
}

double Seconds(Clock::time_point t0, Clock::time_point t1) {
  return std::chrono::duration<double>(t1 - t0).count();
}

// Single-threaded countdown latch: Wait() suspends the calling coroutine until
// CountDown() has been called `n` times. Implemented with a steady_timer that
// never expires; the final CountDown() cancels it, completing the wait.
class Latch {
 public:
  Latch(asio::io_context& io, std::size_t n)
      : timer_(io, asio::steady_timer::time_point::max()), remaining_(n) {}

  void CountDown() {
    if (--remaining_ == 0) timer_.cancel();
  }

  asio::awaitable<void> Wait() {
    if (remaining_ == 0) co_return;
    asio::error_code ec;  // operation_aborted is the expected wake-up
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

 private:
  asio::steady_timer timer_;
  std::size_t remaining_;
};

// ---------------------------------------------------------------- gather_100k

asio::awaitable<int> Trivial(int i) { co_return i; }

double BenchGather() {
  asio::io_context io(1);
  double seconds = 0;
  std::int64_t sum = 0;

  auto gatherer = [&]() -> asio::awaitable<void> {
    auto t0 = Clock::now();
    Latch latch(io, kGatherTasks);
    for (int i = 0; i < kGatherTasks; ++i) {
      asio::co_spawn(io, Trivial(i), [&](std::exception_ptr e, int v) {
        if (e) std::rethrow_exception(e);
        sum += v;
        latch.CountDown();
      });
    }
    co_await latch.Wait();
    seconds = Seconds(t0, Clock::now());
  };
  asio::co_spawn(io, gatherer(), asio::detached);
  io.run();

  const std::int64_t expected =
      static_cast<std::int64_t>(kGatherTasks) * (kGatherTasks - 1) / 2;
  if (sum != expected) {
    Fail("gather_100k", "sum " + std::to_string(sum) + " != " +
                            std::to_string(expected));
  }
  return seconds;
}

// ------------------------------------------------------------------- queue_1m

using Channel =
    asio::experimental::channel<void(asio::error_code, std::uint64_t)>;

asio::awaitable<void> Producer(Channel& ch) {
  for (std::uint64_t i = 0; i < kQueueItems; ++i) {
    if (!ch.try_send(asio::error_code{}, i)) {
      co_await ch.async_send(asio::error_code{}, i, asio::use_awaitable);
    }
  }
}

asio::awaitable<void> Consumer(Channel& ch, std::uint64_t& received,
                               bool& in_order) {
  for (std::uint64_t expected = 0; expected < kQueueItems; ++expected) {
    std::uint64_t got = 0;
    bool ready = ch.try_receive(
        [&](asio::error_code ec, std::uint64_t v) {
          if (ec) throw asio::system_error(ec);
          got = v;
        });
    if (!ready) got = co_await ch.async_receive(asio::use_awaitable);
    if (got != expected) in_order = false;
    ++received;
  }
}

double BenchQueue() {
  asio::io_context io(1);
  Channel ch(io, kQueueItems);
  std::uint64_t received = 0;
  bool in_order = true;
  double seconds = 0;

  auto main_task = [&]() -> asio::awaitable<void> {
    auto t0 = Clock::now();
    Latch latch(io, 2);
    auto on_done = [&](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
      latch.CountDown();
    };
    asio::co_spawn(io, Consumer(ch, received, in_order), on_done);
    asio::co_spawn(io, Producer(ch), on_done);
    co_await latch.Wait();
    seconds = Seconds(t0, Clock::now());
  };
  asio::co_spawn(io, main_task(), asio::detached);
  io.run();

  if (received != kQueueItems) {
    Fail("queue_1m", "received " + std::to_string(received));
  }
  if (!in_order) Fail("queue_1m", "items arrived out of order");
  return seconds;
}

// ------------------------------------------------------------------- yield_1m

asio::awaitable<void> Yielder(int& count) {
  auto ex = co_await asio::this_coro::executor;
  for (int i = 0; i < kYieldsPerTask; ++i) {
    co_await asio::post(ex, asio::use_awaitable);
    ++count;
  }
}

double BenchYield() {
  asio::io_context io(1);
  std::vector<int> counts(kYieldTasks, 0);
  double seconds = 0;

  auto main_task = [&]() -> asio::awaitable<void> {
    auto t0 = Clock::now();
    Latch latch(io, kYieldTasks);
    for (int k = 0; k < kYieldTasks; ++k) {
      asio::co_spawn(io, Yielder(counts[k]), [&](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
        latch.CountDown();
      });
    }
    co_await latch.Wait();
    seconds = Seconds(t0, Clock::now());
  };
  asio::co_spawn(io, main_task(), asio::detached);
  io.run();

  std::int64_t total = 0;
  for (int c : counts) total += c;
  if (total != static_cast<std::int64_t>(kYieldTasks) * kYieldsPerTask) {
    Fail("yield_1m", "total yields " + std::to_string(total));
  }
  return seconds;
}

// ---------------------------------------------------------------- timers_100k

double BenchTimers() {
  asio::io_context io(1);
  std::mt19937_64 rng(kTimerSeed);
  std::uniform_int_distribution<std::int64_t> dist(0, kTimerMaxDelayNs);
  std::vector<std::chrono::nanoseconds> delays(kTimers);
  for (auto& d : delays) d = std::chrono::nanoseconds(dist(rng));

  std::vector<asio::steady_timer> timers;  // kept alive until all fired
  timers.reserve(kTimers);
  std::vector<asio::steady_timer::time_point> fired;  // expiry, in firing order
  fired.reserve(kTimers);
  bool error = false;

  auto t0 = Clock::now();
  for (int i = 0; i < kTimers; ++i) {
    auto& timer = timers.emplace_back(io, delays[i]);  // expires_after(delay)
    timer.async_wait([&, i](const asio::error_code& ec) {
      if (ec) error = true;
      fired.push_back(timers[i].expiry());
    });
  }
  io.run();  // returns once every timer has fired
  auto t1 = Clock::now();

  if (error) Fail("timers_100k", "a timer completed with an error");
  if (fired.size() != static_cast<std::size_t>(kTimers)) {
    Fail("timers_100k", "fired " + std::to_string(fired.size()));
  }
  for (std::size_t i = 1; i < fired.size(); ++i) {
    if (fired[i] < fired[i - 1]) {
      Fail("timers_100k", "deadline order violated at firing #" +
                              std::to_string(i));
    }
  }
  return Seconds(t0, t1);
}

// -------------------------------------------------------------------- post_1m

double BenchPost() {
  asio::io_context io(1);
  auto guard = asio::make_work_guard(io);  // keep run() alive until done
  std::uint64_t counter = 0;  // touched only on the loop thread
  Clock::time_point t1;

  auto t0 = Clock::now();
  std::thread foreign([&] {
    for (std::uint64_t i = 0; i < kPosts; ++i) {
      asio::post(io, [&] {
        if (++counter == kPosts) {
          t1 = Clock::now();
          guard.reset();
        }
      });
    }
  });
  io.run();
  foreign.join();

  if (counter != kPosts) {
    Fail("post_1m", "counter " + std::to_string(counter));
  }
  return Seconds(t0, t1);
}

struct Workload {
  const char* name;
  double (*run)();
};

constexpr Workload kWorkloads[] = {
    {"gather_100k", BenchGather}, {"queue_1m", BenchQueue},
    {"yield_1m", BenchYield},     {"timers_100k", BenchTimers},
    {"post_1m", BenchPost},
};

}  // namespace

int main(int argc, char** argv) {
  const char* only = nullptr;
  if (argc == 3 && std::strcmp(argv[1], "--only") == 0) {
    only = argv[2];
  } else if (argc != 1) {
    std::fprintf(stderr, "usage: %s [--only NAME]\n", argv[0]);
    return 2;
  }

  bool matched = false;
  for (const Workload& w : kWorkloads) {
    if (only != nullptr && std::strcmp(only, w.name) != 0) continue;
    matched = true;
    double seconds = w.run();
    std::printf("%s %.6f\n", w.name, seconds);
    std::fflush(stdout);
  }
  if (!matched) {
    std::fprintf(stderr, "unknown workload: %s\n", only);
    return 2;
  }
  return 0;
}
