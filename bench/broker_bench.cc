// End-to-end figures of the real cohort-broker (WAL fsync on), printed, not asserted:
//  - durable Submit throughput, batches of 16 and 256 jobs, 4 concurrent clients;
//  - end-to-end throughput of no-op jobs: submit -> dispatch over Connect -> complete,
//    with one executor client;
//  - round trip: 1,000 sequential Submit + WaitFor of one job, p50/p99;
//  - fan-out: Submit 1,000 jobs and Gather them;
//  - dispatch latency (submit sent -> Assign received) at a steady 1,000 jobs/s;
//  - slots: end to end with 8 slots that each ask for their next job as they finish,
//    by a CreditGrant after the Complete or by Complete.credit, interleaved rounds.
// The executor is a synchronous gRPC client that completes each Assign at once.
//
// With --executor_capacities (e.g. 4,64) it measures only the real cohort-executor
// (builtin.noop, 20,000 jobs per round, --executor_rounds rounds per capacity,
// capacities interleaved): "drain", the jobs queued on a paused queue first, then
// resumed once the executor is connected; and "live", submitted in batches of 256
// while it runs. Each run starts a fresh executor; medians and ranges are printed.
//
//   bazel build -c opt //services/broker:cohort-broker //services/executor:cohort-executor //bench:broker_bench
//   bazel-bin/bench/broker_bench [--broker=bazel-bin/services/broker/cohort-broker] [--slots_only]
//       [--figures=durable_submit,round_trip]
//   bazel-bin/bench/broker_bench --executor_capacities=4,64 [--executor=...] [--executor_args=--prefetch=0]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

ABSL_FLAG(std::string, broker, "bazel-bin/services/broker/cohort-broker", "the cohort-broker binary");
ABSL_FLAG(bool, slots_only, false, "measure only the slots figure");
ABSL_FLAG(std::vector<std::string>, figures, {},
          "measure only these figures (durable_submit, end_to_end, round_trip, fan_out, dispatch_latency, slots), "
          "e.g. to interleave brokers on one figure; default: all");
ABSL_FLAG(std::string, executor, "bazel-bin/services/executor/cohort-executor", "the cohort-executor binary");
ABSL_FLAG(std::vector<std::string>, executor_capacities, {},
          "if set: measure only end to end through the real cohort-executor at each of these capacities");
ABSL_FLAG(int, executor_rounds, 3, "rounds per capacity with --executor_capacities");
ABSL_FLAG(std::vector<std::string>, executor_args, {}, "more cohort-executor flags, e.g. --prefetch=0");

namespace {

using Clock = std::chrono::steady_clock;
using cohort::v1::Broker;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()))];
}

cohort::v1::JobSpec NoOp(const std::string& queue) {
  cohort::v1::JobSpec s;
  s.set_queue(queue);
  s.set_kind("builtin.noop");
  s.set_payload(std::string(64, 'p'));
  return s;
}

std::vector<std::string> Submit(Broker::Stub& stub, const std::string& queue, int n, const std::string& tag = "") {
  cohort::v1::SubmitRequest req;
  for (int i = 0; i < n; ++i) {
    *req.add_jobs() = NoOp(queue);
    if (!tag.empty()) req.mutable_jobs(i)->set_payload(tag);
  }
  cohort::v1::SubmitResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = stub.Submit(&ctx, req, &resp);
  if (!s.ok()) {
    std::fprintf(stderr, "Submit failed: %s\n", s.error_message().c_str());
    std::exit(1);
  }
  return {resp.job_ids().begin(), resp.job_ids().end()};
}

// How an EchoExecutor returns credit.
enum class Credit {
  kBatched,     // a CreditGrant per kCreditBatch completions
  kPerJob,      // a CreditGrant{1} after each Complete (cohort-executor before Complete.credit)
  kOnComplete,  // Complete.credit = 1 (cohort-executor with a broker that takes it)
};

// Completes every Assign at once, keeping about `window` credits outstanding.
class EchoExecutor {
 public:
  EchoExecutor(Broker::Stub& stub, const std::string& queue, int window,
               std::function<void(const cohort::v1::BrokerMessage::Assign&)> on_assign = {},
               Credit credit_mode = Credit::kBatched)
      : on_assign_(std::move(on_assign)), window_(window), credit_(credit_mode) {
    stream_ = stub.Connect(&ctx_);
    cohort::v1::ExecutorMessage hello;
    hello.mutable_hello()->set_executor_id("bench-" + queue);
    hello.mutable_hello()->add_queues(queue);
    hello.mutable_hello()->set_capacity(window);
    stream_->Write(hello);
    cohort::v1::ExecutorMessage credit;
    credit.mutable_credit()->set_credits(window);
    stream_->Write(credit);
    thread_ = std::thread([this] { Loop(); });
  }
  ~EchoExecutor() {
    ctx_.TryCancel();
    thread_.join();
  }
  long completed() const { return completed_.load(); }

 private:
  void Loop() {
    constexpr int kCreditBatch = 16;
    cohort::v1::BrokerMessage m;
    cohort::v1::ExecutorMessage done;
    cohort::v1::ExecutorMessage credit;
    int owed = 0;
    while (stream_->Read(&m)) {
      if (!m.has_assign()) continue;
      if (on_assign_) on_assign_(m.assign());
      auto* c = done.mutable_complete();
      c->set_job_id(m.assign().job().id());
      c->set_attempt(m.assign().attempt());
      c->set_result("ok");
      c->set_credit(credit_ == Credit::kOnComplete ? 1 : 0);
      if (!stream_->Write(done)) return;
      ++completed_;
      if (credit_ == Credit::kOnComplete) continue;
      if (++owed == kCreditBatch || window_ < kCreditBatch || credit_ == Credit::kPerJob) {
        credit.mutable_credit()->set_credits(owed);
        if (!stream_->Write(credit)) return;
        owed = 0;
      }
    }
  }
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<cohort::v1::ExecutorMessage, cohort::v1::BrokerMessage>> stream_;
  std::function<void(const cohort::v1::BrokerMessage::Assign&)> on_assign_;
  const int window_;
  const Credit credit_;
  std::atomic<long> completed_{0};
  std::thread thread_;
};

void DurableSubmit(Broker::Stub& stub, int batch) {
  constexpr int kClients = 4;
  const int per_client = 200'000 / batch / kClients;
  auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      for (int i = 0; i < per_client; ++i) Submit(stub, "submit-bench", batch);
    });
  }
  for (auto& t : clients) t.join();
  double s = std::chrono::duration<double>(Clock::now() - start).count();
  long jobs = static_cast<long>(per_client) * batch * kClients;
  std::printf("durable_submit batch=%d clients=%d jobs=%ld seconds=%.3f jobs_per_s=%.0f\n", batch, kClients, jobs, s,
              jobs / s);
}

void EndToEnd(Broker::Stub& stub) {
  constexpr int kJobs = 100'000;
  constexpr int kBatch = 256;
  EchoExecutor exec(stub, "e2e", 1024);
  auto start = Clock::now();
  std::vector<std::string> last;
  for (int i = 0; i < kJobs / kBatch; ++i) last = Submit(stub, "e2e", kBatch);
  const long total = static_cast<long>(kJobs / kBatch) * kBatch;
  cohort::v1::WaitRequest req;
  for (const auto& id : last) req.add_job_ids(id);
  cohort::v1::WaitResponse resp;
  grpc::ClientContext ctx;
  stub.Wait(&ctx, req, &resp);  // the last batch ended and is durable: so is everything before
  double s = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("end_to_end jobs=%ld seconds=%.3f jobs_per_s=%.0f (executor completed %ld)\n", total, s, total / s,
              exec.completed());
}

void RoundTrip(Broker::Stub& stub) {
  EchoExecutor exec(stub, "rt", 16);
  std::vector<double> ms;
  for (int i = 0; i < 1000; ++i) {
    auto t0 = Clock::now();
    std::string id = Submit(stub, "rt", 1)[0];
    cohort::v1::WaitForRequest req;
    req.set_job_id(id);
    cohort::v1::WaitForResponse resp;
    grpc::ClientContext ctx;
    if (!stub.WaitFor(&ctx, req, &resp).ok()) std::exit(1);
    ms.push_back(Ms(Clock::now() - t0));
  }
  std::printf("round_trip n=1000 p50_ms=%.3f p99_ms=%.3f\n", Percentile(ms, 0.5), Percentile(ms, 0.99));
}

void FanOut(Broker::Stub& stub) {
  EchoExecutor exec(stub, "fanout", 1024);
  std::vector<double> ms;
  for (int r = 0; r < 5; ++r) {
    auto t0 = Clock::now();
    std::vector<std::string> ids = Submit(stub, "fanout", 1000);
    cohort::v1::GatherRequest req;
    for (const auto& id : ids) req.add_job_ids(id);
    cohort::v1::GatherResponse resp;
    grpc::ClientContext ctx;
    if (!stub.Gather(&ctx, req, &resp).ok()) std::exit(1);
    ms.push_back(Ms(Clock::now() - t0));
  }
  std::printf("fan_out_gather jobs=1000 best_ms=%.1f median_ms=%.1f\n", *std::min_element(ms.begin(), ms.end()),
              Percentile(ms, 0.5));
}

void DispatchLatency(Broker::Stub& stub) {
  constexpr int kJobs = 3000;
  // Send times by job index; the index travels in the payload, since an Assign can
  // arrive before the Submit reply that names the job.
  std::vector<std::atomic<std::int64_t>> sent(kJobs);
  std::vector<double> latency;
  std::mutex mu;
  EchoExecutor exec(stub, "paced", 64, [&](const cohort::v1::BrokerMessage::Assign& a) {
    auto now = Clock::now().time_since_epoch().count();
    int i = std::atoi(a.job().spec().payload().c_str());
    std::lock_guard<std::mutex> lock(mu);
    latency.push_back((now - sent[i].load()) / 1e6);
  });
  auto next = Clock::now();
  for (int i = 0; i < kJobs; ++i) {
    next += std::chrono::milliseconds(1);
    std::this_thread::sleep_until(next);  // pacing the load at 1,000 jobs/s, not synchronisation
    sent[i] = Clock::now().time_since_epoch().count();
    Submit(stub, "paced", 1, std::to_string(i));
  }
  while (exec.completed() < kJobs) std::this_thread::yield();
  std::lock_guard<std::mutex> lock(mu);
  std::printf("dispatch_latency rate=1000/s n=%zu p50_ms=%.3f p99_ms=%.3f (submit sent -> Assign received)\n",
              latency.size(), Percentile(latency, 0.5), Percentile(latency, 0.99));
}

// 20,000 jobs queued first, then drained by 8 slots that each ask for the next job as
// they finish (a real executor at its default capacity is latency-bound like this).
double SlotsDrain(Broker::Stub& stub, Credit credit, int round) {
  constexpr int kJobs = 20'000;
  constexpr int kBatch = 250;
  const std::string queue = "slots-" + std::to_string(round);
  std::vector<std::string> last;
  for (int i = 0; i < kJobs / kBatch; ++i) last = Submit(stub, queue, kBatch);
  auto start = Clock::now();
  EchoExecutor exec(stub, queue, 8, {}, credit);
  cohort::v1::WaitRequest req;
  for (const auto& id : last) req.add_job_ids(id);
  cohort::v1::WaitResponse resp;
  grpc::ClientContext ctx;
  stub.Wait(&ctx, req, &resp);  // FIFO: the last batch ends last
  return kJobs / std::chrono::duration<double>(Clock::now() - start).count();
}

void Slots(Broker::Stub& stub) {
  std::vector<double> grant, on_complete;
  for (int round = 0; round < 3; ++round) {
    grant.push_back(SlotsDrain(stub, Credit::kPerJob, 2 * round));
    on_complete.push_back(SlotsDrain(stub, Credit::kOnComplete, 2 * round + 1));
  }
  std::printf("slots_drain slots=8 jobs=20000 grant_jobs_per_s=%.0f complete_credit_jobs_per_s=%.0f ratio=%.2f "
              "(medians of 3 interleaved rounds)\n",
              Percentile(grant, 0.5), Percentile(on_complete, 0.5), Percentile(on_complete, 0.5) / Percentile(grant, 0.5));
}

std::string Resolve(std::string binary) {
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY"); ws != nullptr && binary[0] != '/') {
    binary = std::string(ws) + "/" + binary;
  }
  return binary;
}

void OrDie(const grpc::Status& s, const char* what) {
  if (s.ok()) return;
  std::fprintf(stderr, "%s failed: %s\n", what, s.error_message().c_str());
  std::exit(1);
}

// Waits until every job of `ids` has ended.
void WaitAll(Broker::Stub& stub, const std::vector<std::string>& ids) {
  for (std::size_t i = 0; i < ids.size(); i += 10'000) {
    cohort::v1::WaitRequest req;
    for (std::size_t j = i; j < std::min(ids.size(), i + 10'000); ++j) req.add_job_ids(ids[j]);
    cohort::v1::WaitResponse resp;
    grpc::ClientContext ctx;
    OrDie(stub.Wait(&ctx, req, &resp), "Wait");
    if (resp.pending_size() != 0) {
      std::fprintf(stderr, "Wait returned with %d jobs pending\n", resp.pending_size());
      std::exit(1);
    }
  }
}

// One run through a fresh cohort-executor serving only `queue`: jobs/s.
double RealExecutorRun(Broker::Stub& stub, const std::string& broker_address, int capacity, bool drain,
                       const std::string& queue) {
  constexpr int kJobs = 20'000;
  constexpr int kBatch = 256;
  if (drain) {
    cohort::v1::CreateQueueRequest create;
    create.set_queue(queue);
    create.set_paused(true);
    cohort::v1::CreateQueueResponse created;
    grpc::ClientContext ctx;
    OrDie(stub.CreateQueue(&ctx, create, &created), "CreateQueue");
  }
  std::vector<std::string> ids;
  if (drain) {
    for (int done = 0; done < kJobs; done += kBatch) {
      for (std::string& id : Submit(stub, queue, std::min(kBatch, kJobs - done))) ids.push_back(std::move(id));
    }
  }
  std::vector<std::string> args = {"--broker=" + broker_address, "--listen=127.0.0.1:0",
                                   "--metrics-listen=127.0.0.1:0", "--queues=" + queue,
                                   "--executor-id=bench-" + queue, "--capacity=" + std::to_string(capacity)};
  for (const std::string& a : absl::GetFlag(FLAGS_executor_args)) args.push_back(a);
  auto executor = cohort::testing::ServiceProcess::Start(Resolve(absl::GetFlag(FLAGS_executor)), args);
  if (!executor.ok()) {
    std::fprintf(stderr, "cannot start the executor: %s\n", executor.status().ToString().c_str());
    std::exit(1);
  }
  // Connected: the broker lists it (polled, with a deadline).
  for (auto deadline = Clock::now() + std::chrono::seconds(30);;) {
    cohort::v1::ListExecutorsResponse list;
    grpc::ClientContext ctx;
    OrDie(stub.ListExecutors(&ctx, cohort::v1::ListExecutorsRequest(), &list), "ListExecutors");
    if (std::any_of(list.executors().begin(), list.executors().end(),
                    [&](const auto& e) { return e.executor_id() == "bench-" + queue; })) {
      break;
    }
    if (Clock::now() > deadline) {
      std::fprintf(stderr, "the executor did not connect within 30 s\n");
      std::exit(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling a condition, with a deadline
  }
  const auto start = Clock::now();
  if (drain) {
    cohort::v1::ResumeQueueRequest resume;
    resume.set_queue(queue);
    cohort::v1::ResumeQueueResponse resumed;
    grpc::ClientContext ctx;
    OrDie(stub.ResumeQueue(&ctx, resume, &resumed), "ResumeQueue");
  } else {
    for (int done = 0; done < kJobs; done += kBatch) {
      for (std::string& id : Submit(stub, queue, std::min(kBatch, kJobs - done))) ids.push_back(std::move(id));
    }
  }
  WaitAll(stub, ids);
  return kJobs / std::chrono::duration<double>(Clock::now() - start).count();
}

void RealExecutor(Broker::Stub& stub, const std::string& broker_address) {
  std::vector<int> capacities;
  for (const std::string& c : absl::GetFlag(FLAGS_executor_capacities)) capacities.push_back(std::atoi(c.c_str()));
  // By capacity, then mode (0 drain, 1 live): jobs/s of each round.
  std::map<int, std::vector<double>[2]> figures;
  int run = 0;
  for (int round = 0; round < absl::GetFlag(FLAGS_executor_rounds); ++round) {
    for (int capacity : capacities) {
      for (int mode = 0; mode < 2; ++mode) {
        const std::string queue = "real-" + std::to_string(run++);
        figures[capacity][mode].push_back(RealExecutorRun(stub, broker_address, capacity, mode == 0, queue));
      }
    }
  }
  for (auto& [capacity, by_mode] : figures) {
    for (int mode = 0; mode < 2; ++mode) {
      std::vector<double>& v = by_mode[mode];
      std::printf("real_executor mode=%s capacity=%d jobs=20000 rounds=%zu median_jobs_per_s=%.0f min=%.0f max=%.0f\n",
                  mode == 0 ? "drain" : "live", capacity, v.size(), Percentile(v, 0.5),
                  *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::string binary = absl::GetFlag(FLAGS_broker);
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY"); ws != nullptr && binary[0] != '/') {
    binary = std::string(ws) + "/" + binary;
  }
  cohort::testing::TempDir dir;
  auto broker = cohort::testing::ServiceProcess::Start(
      binary, {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir.path() + "/broker"});
  if (!broker.ok()) {
    std::fprintf(stderr, "cannot start %s: %s\n", binary.c_str(), broker.status().ToString().c_str());
    return 1;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto stub = Broker::NewStub(grpc::CreateCustomChannel((*broker)->grpc_address(), grpc::InsecureChannelCredentials(), args));
  if (!absl::GetFlag(FLAGS_executor_capacities).empty()) {
    RealExecutor(*stub, (*broker)->grpc_address());
    return 0;
  }
  std::vector<std::string> figures = absl::GetFlag(FLAGS_figures);
  if (absl::GetFlag(FLAGS_slots_only)) figures = {"slots"};
  auto wanted = [&figures](const std::string& figure) {
    return figures.empty() || std::find(figures.begin(), figures.end(), figure) != figures.end();
  };
  if (wanted("durable_submit")) {
    DurableSubmit(*stub, 16);
    DurableSubmit(*stub, 256);
  }
  if (wanted("end_to_end")) EndToEnd(*stub);
  if (wanted("round_trip")) RoundTrip(*stub);
  if (wanted("fan_out")) FanOut(*stub);
  if (wanted("dispatch_latency")) DispatchLatency(*stub);
  if (wanted("slots")) Slots(*stub);
  return 0;
}
