// Cohort runtime benchmark: the five workloads of bench/peers/asyncio_bench.py and
// bench/peers/asio_bench.cc, on libs/runtime. Prints `<name> <seconds>` per workload;
// asserts nothing about speed, but exits 1 if a workload computes a wrong answer.
// bench/runtime_compare.sh runs all three side by side and prints ratios.
//
//   bazel run //bench:runtime_bench [-- --only NAME [--repeat N]]   (N runs, for profiling)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "libs/runtime/runtime.h"

namespace cohort::runtime {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "verification failed: %s\n", what);
  std::exit(1);
}

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// (a) create + gather 100,000 trivial tasks.
double GatherBench() {
  constexpr int kTasks = 100'000;
  EventLoop loop;
  auto start = Clock::now();
  auto body = []() -> Task<long long> {
    auto trivial = [](int i) -> Task<int> { co_return i; };
    std::vector<Task<int>> tasks;
    tasks.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) tasks.push_back(trivial(i));
    std::vector<int> results = co_await Gather(std::move(tasks));
    long long sum = 0;
    for (int r : results) sum += r;
    co_return sum;
  };
  long long sum = RunUntilComplete(loop, body());
  double s = Seconds(start);
  if (sum != static_cast<long long>(kTasks) * (kTasks - 1) / 2) Fail("gather sum");
  return s;
}

// (b) 1,000,000 put/get pairs between a producer and a consumer task.
double QueueBench() {
  constexpr int kItems = 1'000'000;
  EventLoop loop;
  auto start = Clock::now();
  auto body = []() -> Task<bool> {
    Queue<int> q;
    auto producer = [](Queue<int>* q) -> Task<void> {
      for (int i = 0; i < kItems; ++i) co_await q->Put(i);
    };
    auto consumer = [](Queue<int>* q) -> Task<bool> {
      bool in_order = true;
      for (int i = 0; i < kItems; ++i) in_order &= (co_await q->Get()) == i;
      co_return in_order;
    };
    auto [unused, in_order] = co_await Gather(producer(&q), consumer(&q));
    co_return in_order;
  };
  bool ok = RunUntilComplete(loop, body());
  double s = Seconds(start);
  if (!ok) Fail("queue order");
  return s;
}

// (c) 1,000,000 Yield()s (Sleep(0)) across 100 tasks.
double YieldBench() {
  constexpr int kTasks = 100;
  constexpr int kYields = 10'000;
  EventLoop loop;
  auto start = Clock::now();
  auto body = []() -> Task<int> {
    auto yielder = [](int* total) -> Task<void> {
      for (int i = 0; i < kYields; ++i) {
        co_await Yield();
        ++*total;
      }
    };
    int total = 0;
    std::vector<Task<void>> tasks;
    for (int i = 0; i < kTasks; ++i) tasks.push_back(yielder(&total));
    co_await Gather(std::move(tasks));
    co_return total;
  };
  int total = RunUntilComplete(loop, body());
  double s = Seconds(start);
  if (total != kTasks * kYields) Fail("yield count");
  return s;
}

// (d) 100,000 timers with delays uniform in [0, 1 ms] firing in deadline order.
double TimersBench() {
  constexpr int kTimers = 100'000;
  EventLoop loop;
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> delay_ns(0, 1'000'000);
  std::vector<Duration> delays(kTimers);
  for (Duration& d : delays) d = Duration(delay_ns(rng));
  struct Order {
    int fired = 0;
    TimePoint last{};
    bool in_order = true;
  } order;
  auto start = Clock::now();
  TimePoint base = loop.Now();
  for (Duration d : delays) {
    TimePoint deadline = base + d;
    // Two words of captures: stored inline in the callback, no allocation per timer.
    loop.CallAt(deadline, [o = &order, deadline] {
      o->in_order &= deadline >= o->last;
      o->last = deadline;
      ++o->fired;
    });
  }
  loop.RunUntil([&] { return order.fired == kTimers; });
  double s = Seconds(start);
  if (!order.in_order) Fail("timer order");
  return s;
}

// (e) 1,000,000 Posts from a foreign thread.
double PostBench() {
  constexpr int kPosts = 1'000'000;
  EventLoop loop;
  int count = 0;
  auto start = Clock::now();
  std::thread poster([&] {
    for (int i = 0; i < kPosts; ++i) loop.Post([&count] { ++count; });
  });
  loop.RunUntil([&] { return count == kPosts; });
  double s = Seconds(start);
  poster.join();
  return s;
}

struct Workload {
  const char* name;
  double (*run)();
};

}  // namespace
}  // namespace cohort::runtime

int main(int argc, char** argv) {
  using cohort::runtime::Workload;
  const Workload workloads[] = {
      {"gather_100k", cohort::runtime::GatherBench}, {"queue_1m", cohort::runtime::QueueBench},
      {"yield_1m", cohort::runtime::YieldBench},     {"timers_100k", cohort::runtime::TimersBench},
      {"post_1m", cohort::runtime::PostBench},
  };
  const char* only = nullptr;
  int repeat = 1;
  if ((argc == 3 || argc == 5) && std::strcmp(argv[1], "--only") == 0) {
    only = argv[2];
    if (argc == 5) repeat = std::strcmp(argv[3], "--repeat") == 0 ? std::atoi(argv[4]) : 0;
  }
  if ((argc != 1 && only == nullptr) || repeat < 1) {
    std::fprintf(stderr, "usage: %s [--only NAME [--repeat N]]\n", argv[0]);
    return 2;
  }
  bool matched = false;
  for (const Workload& w : workloads) {
    if (only != nullptr && std::strcmp(only, w.name) != 0) continue;
    matched = true;
    for (int i = 0; i < repeat; ++i) {
      std::printf("%s %.6f\n", w.name, w.run());
      std::fflush(stdout);
    }
  }
  if (!matched) {
    std::fprintf(stderr, "unknown workload: %s\n", only);
    return 2;
  }
  return 0;
}
