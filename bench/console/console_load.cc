// console_load: a steady flow of jobs through a running broker, for the console's
// benchmark (run.sh). It submits `--rate` jobs/s in Submit batches of `--batch` from
// `--submitters` threads, each paced on its own share (a thread behind schedule catches
// up at once, so short stalls do not lower the average), and runs the jobs itself: one
// executor stream of capacity `--window` for kind `--kind` alone, completing every
// Assign at once (Complete.credit gives the slot back). Every second it prints
// "second=N submitted=S completed=C" (per second), and at the end the totals.
//
//   console_load --broker=127.0.0.1:7070 --rate=5000 --seconds=30
//   console_load --broker=... --rate=20000 --total=100000   # fill the store, then exit
//
// Plaintext gRPC without a token: for a cohort-dev on this machine only. It stops by
// itself after --seconds (or --total jobs), or at SIGTERM/SIGINT, and exits 1 if a
// Submit fails.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "protos/cohort/v1/broker.grpc.pb.h"

ABSL_FLAG(std::string, broker, "127.0.0.1:7070", "the broker's gRPC address, HOST:PORT");
ABSL_FLAG(int, rate, 5000, "jobs submitted per second (1..200000)");
ABSL_FLAG(int, seconds, 30, "how long to run (1..3600); ignored with --total");
ABSL_FLAG(long, total, 0, "submit this many jobs as fast as --rate allows, wait for them to end, and exit");
ABSL_FLAG(int, batch, 100, "jobs per Submit (1..1000)");
ABSL_FLAG(int, submitters, 2, "submitting threads (1..16)");
ABSL_FLAG(int, window, 2048, "executor capacity: jobs running at once (1..100000)");
ABSL_FLAG(std::string, queue, "console-load", "the queue the jobs go to");
ABSL_FLAG(std::string, kind, "bench.load", "the jobs' kind: only this generator's executor runs it");

namespace {

using Clock = std::chrono::steady_clock;
using cohort::v1::Broker;

std::atomic<bool> g_stop{false};

void Require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "console_load: %s\n", what);
    std::exit(2);
  }
}

// Completes every Assign at once; the Complete carries the slot's credit back.
class EchoExecutor {
 public:
  EchoExecutor(Broker::Stub& stub, const std::string& queue, const std::string& kind, int window) {
    stream_ = stub.Connect(&ctx_);
    cohort::v1::ExecutorMessage hello;
    hello.mutable_hello()->set_executor_id("console-load");
    hello.mutable_hello()->add_queues(queue);
    hello.mutable_hello()->add_kinds(kind);
    hello.mutable_hello()->set_capacity(window);
    cohort::v1::ExecutorMessage credit;
    credit.mutable_credit()->set_credits(window);
    Require(stream_->Write(hello) && stream_->Write(credit), "the broker refused the executor stream");
    thread_ = std::thread([this] { Loop(); });
  }
  ~EchoExecutor() {
    ctx_.TryCancel();
    thread_.join();
  }
  long completed() const { return completed_.load(std::memory_order_relaxed); }

 private:
  void Loop() {
    cohort::v1::BrokerMessage m;
    cohort::v1::ExecutorMessage done;
    while (stream_->Read(&m)) {
      if (!m.has_assign()) continue;
      auto* c = done.mutable_complete();
      c->set_job_id(m.assign().job().id());
      c->set_attempt(m.assign().attempt());
      c->set_result("ok");
      c->set_credit(1);
      if (!stream_->Write(done)) return;
      completed_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<cohort::v1::ExecutorMessage, cohort::v1::BrokerMessage>> stream_;
  std::atomic<long> completed_{0};
  std::thread thread_;
};

// Submits `rate` jobs/s in batches until `stop` or `limit` jobs (0: no limit).
void Submitter(Broker::Stub& stub, double rate, long limit, int batch, std::atomic<long>& submitted) {
  if (limit > 0 && limit < batch) batch = static_cast<int>(limit);
  cohort::v1::SubmitRequest req;
  for (int i = 0; i < batch; ++i) {
    cohort::v1::JobSpec* spec = req.add_jobs();
    spec->set_queue(absl::GetFlag(FLAGS_queue));
    spec->set_kind(absl::GetFlag(FLAGS_kind));
    spec->set_payload(std::string(64, 'p'));
    (*spec->mutable_labels())["source"] = "console-load";
  }
  const Clock::time_point start = Clock::now();
  long sent = 0;
  while (!g_stop.load() && (limit == 0 || sent < limit)) {
    const double due = rate * std::chrono::duration<double>(Clock::now() - start).count();
    if (sent > 0 && sent + batch > due) {
      std::this_thread::sleep_for(std::chrono::duration<double>((sent + batch - due) / rate));
      continue;
    }
    cohort::v1::SubmitResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status s = stub.Submit(&ctx, req, &resp);
    if (!s.ok()) {
      std::fprintf(stderr, "console_load: Submit failed: %s\n", s.error_message().substr(0, 300).c_str());
      std::exit(1);
    }
    sent += batch;
    submitted.fetch_add(batch, std::memory_order_relaxed);
  }
}

int Main() {
  const int rate = absl::GetFlag(FLAGS_rate);
  const int seconds = absl::GetFlag(FLAGS_seconds);
  const long total = absl::GetFlag(FLAGS_total);
  const int batch = absl::GetFlag(FLAGS_batch);
  const int submitters = absl::GetFlag(FLAGS_submitters);
  const int window = absl::GetFlag(FLAGS_window);
  Require(rate >= 1 && rate <= 200'000, "--rate must be in 1..200000");
  Require(seconds >= 1 && seconds <= 3600, "--seconds must be in 1..3600");
  Require(total >= 0 && total <= 10'000'000, "--total must be in 0..10000000");
  Require(batch >= 1 && batch <= 1000, "--batch must be in 1..1000");
  Require(submitters >= 1 && submitters <= 16, "--submitters must be in 1..16");
  Require(window >= 1 && window <= 100'000, "--window must be in 1..100000");
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::signal(SIGINT, [](int) { g_stop = true; });

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  // One channel (and so one connection) per submitter, and one for the executor.
  auto channel = [&](int i) {
    args.SetInt("cohort.console_load.channel", i);  // keeps gRPC from sharing subchannels
    return grpc::CreateCustomChannel(absl::GetFlag(FLAGS_broker), grpc::InsecureChannelCredentials(), args);
  };
  auto exec_stub = Broker::NewStub(channel(0));
  EchoExecutor executor(*exec_stub, absl::GetFlag(FLAGS_queue), absl::GetFlag(FLAGS_kind), window);

  std::atomic<long> submitted{0};
  std::vector<std::unique_ptr<Broker::Stub>> stubs;
  std::vector<std::thread> threads;
  const long per_thread = total == 0 ? 0 : (total + submitters - 1) / submitters;
  for (int i = 0; i < submitters; ++i) {
    stubs.push_back(Broker::NewStub(channel(i + 1)));
    threads.emplace_back(Submitter, std::ref(*stubs.back()), static_cast<double>(rate) / submitters, per_thread,
                         batch, std::ref(submitted));
  }
  const Clock::time_point start = Clock::now();
  long last_submitted = 0, last_completed = 0;
  for (int second = 1; !g_stop.load(); ++second) {
    std::this_thread::sleep_until(start + std::chrono::seconds(second));
    const long s = submitted.load(), c = executor.completed();
    std::printf("second=%d submitted=%ld completed=%ld\n", second, s - last_submitted, c - last_completed);
    std::fflush(stdout);
    last_submitted = s;
    last_completed = c;
    if (total == 0 && second >= seconds) g_stop = true;
    if (total > 0 && s >= per_thread * submitters && c >= s) g_stop = true;
    if (total > 0 && second >= 3600) g_stop = true;
  }
  for (std::thread& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("total submitted=%ld completed=%ld seconds=%.1f completed_per_s=%.0f\n", submitted.load(),
              executor.completed(), elapsed, executor.completed() / elapsed);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return Main();
}
