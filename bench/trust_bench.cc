// The cost of trust, in one run: the same workloads against a plaintext broker and a
// broker with TLS and bearer tokens (certificates made by openssl, a token file, the
// client and a real cohort-executor presenting tokens), printed side by side:
//  - durable Submit throughput, batches of 16 and 256 jobs, 4 concurrent clients;
//  - round trip: sequential Submit + WaitFor of one builtin.noop job run by a real
//    cohort-executor, p50/p99.
// The issue's target: batched submits within 10% of plaintext. TLS alone and tokens
// alone are printed too, to say where a difference comes from.
//
//   bazel build --config=ci //services/broker:cohort-broker //services/executor:cohort-executor //bench:trust_bench
//   bazel-bin/bench/trust_bench
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "bench/service_launcher.h"
#include "libs/auth/channel_credentials.h"
#include "libs/auth/token_store.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "tests/security/certs.h"
#include "tests/testing/temp_dir.h"

ABSL_FLAG(std::string, broker, "bazel-bin/services/broker/cohort-broker", "the cohort-broker binary");
ABSL_FLAG(std::string, executor, "bazel-bin/services/executor/cohort-executor", "the cohort-executor binary");
ABSL_FLAG(int, submit_jobs, 100'000, "jobs per durable-submit run");
ABSL_FLAG(int, round_trips, 1000, "sequential Submit + WaitFor round trips");
ABSL_FLAG(int, rounds, 3, "rounds over the four configurations (the best figure of each is reported)");

namespace {

using Clock = std::chrono::steady_clock;
using cohort::v1::Broker;

struct Figures {
  double submit16 = 0, submit256 = 0, p50 = 0, p99 = 0;
};

cohort::v1::SubmitRequest Batch(const std::string& queue, int n) {
  cohort::v1::SubmitRequest req;
  for (int i = 0; i < n; ++i) {
    auto* job = req.add_jobs();
    job->set_queue(queue);
    job->set_kind("builtin.noop");
    job->set_payload(std::string(64, 'p'));
  }
  return req;
}

void SubmitOrDie(Broker::Stub& stub, const cohort::v1::SubmitRequest& req, cohort::v1::SubmitResponse* resp) {
  grpc::ClientContext ctx;
  grpc::Status s = stub.Submit(&ctx, req, resp);
  if (!s.ok()) {
    std::fprintf(stderr, "Submit failed: %s\n", s.error_message().c_str());
    std::exit(1);
  }
}

double DurableSubmit(Broker::Stub& stub, int batch) {
  constexpr int kClients = 4;
  const int per_client = absl::GetFlag(FLAGS_submit_jobs) / batch / kClients;
  const cohort::v1::SubmitRequest req = Batch("submit-bench", batch);
  auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      cohort::v1::SubmitResponse resp;
      for (int i = 0; i < per_client; ++i) SubmitOrDie(stub, req, &resp);
    });
  }
  for (auto& t : clients) t.join();
  double s = std::chrono::duration<double>(Clock::now() - start).count();
  return static_cast<double>(per_client) * batch * kClients / s;
}

void RoundTrip(Broker::Stub& stub, Figures& f) {
  const cohort::v1::SubmitRequest req = Batch("rt", 1);
  std::vector<double> ms;
  for (int i = 0; i < absl::GetFlag(FLAGS_round_trips); ++i) {
    auto t0 = Clock::now();
    cohort::v1::SubmitResponse submitted;
    SubmitOrDie(stub, req, &submitted);
    cohort::v1::WaitForRequest wait;
    wait.set_job_id(submitted.job_ids(0));
    cohort::v1::WaitForResponse waited;
    grpc::ClientContext ctx;
    if (!stub.WaitFor(&ctx, wait, &waited).ok()) std::exit(1);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  f.p50 = ms[ms.size() / 2];
  f.p99 = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
}

Figures Run(const std::string& label, const std::string& dir, const std::vector<std::string>& broker_security,
            const std::vector<std::string>& executor_security, const cohort::auth::ClientSecurityOptions& client) {
  std::vector<std::string> args = {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir};
  args.insert(args.end(), broker_security.begin(), broker_security.end());
  auto broker = cohort::bench::StartServiceOrDie(absl::GetFlag(FLAGS_broker), args);
  std::vector<std::string> exec_args = {"--broker=" + broker->grpc_address(), "--listen=127.0.0.1:0",
                                        "--metrics-listen=127.0.0.1:0", "--capacity=16", "--queues=rt",
                                        "--executor-id=bench-executor"};
  exec_args.insert(exec_args.end(), executor_security.begin(), executor_security.end());
  auto executor = cohort::bench::StartServiceOrDie(absl::GetFlag(FLAGS_executor), exec_args);
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = cohort::auth::MakeChannel(broker->grpc_address(), client, channel_args);
  if (!channel.ok()) {
    std::fprintf(stderr, "%s\n", channel.status().ToString().c_str());
    std::exit(1);
  }
  auto stub = Broker::NewStub(*channel);
  Figures f;
  f.submit16 = DurableSubmit(*stub, 16);
  f.submit256 = DurableSubmit(*stub, 256);
  RoundTrip(*stub, f);
  std::printf("  %-12s durable_submit_b16_jobs_per_s=%.0f durable_submit_b256_jobs_per_s=%.0f round_trip_p50_ms=%.3f "
              "round_trip_p99_ms=%.3f\n",
              label.c_str(), f.submit16, f.submit256, f.p50, f.p99);
  std::fflush(stdout);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  cohort::testing::TempDir dir;
  auto ca = cohort::testing::TestCa::Create(dir.path(), "bench-ca");
  if (!ca.ok()) {
    std::fprintf(stderr, "%s\n", ca.status().ToString().c_str());
    return 1;
  }
  auto cert = ca->Issue("broker", "broker");
  if (!cert.ok()) {
    std::fprintf(stderr, "%s\n", cert.status().ToString().c_str());
    return 1;
  }
  using cohort::auth::Principal;
  std::ofstream(dir.path() + "/tokens")
      << cohort::auth::TokenFileLine("bench-client", Principal{"client", *cohort::auth::ParseScopes("submit,read,cancel"), "", {}})
      << "\n"
      << cohort::auth::TokenFileLine("bench-executor", Principal{"executor", *cohort::auth::ParseScopes("execute"), "bench-*", {}})
      << "\n";
  std::ofstream(dir.path() + "/executor.token") << "bench-executor\n";

  cohort::auth::ClientSecurityOptions tls_only;
  tls_only.tls_ca = ca->cert();
  cohort::auth::ClientSecurityOptions token_only;
  token_only.token = "bench-client";
  cohort::auth::ClientSecurityOptions trusted = tls_only;
  trusted.token = "bench-client";
  const std::vector<std::string> tls_server = {"--tls-cert=" + cert->cert, "--tls-key=" + cert->key};
  const std::string tokens_flag = "--auth-tokens=" + dir.path() + "/tokens";
  const std::string executor_token = "--broker-token-file=" + dir.path() + "/executor.token";
  const std::string executor_ca = "--broker-tls-ca=" + ca->cert();
  // Plaintext, TLS alone, tokens alone (loopback, no TLS) and both; the configurations
  // take turns for --rounds rounds on a fresh broker each, and the best figure of each
  // is kept: on a shared machine the noise is only ever a slowdown.
  struct Config {
    std::string label;
    std::vector<std::string> broker, executor;
    cohort::auth::ClientSecurityOptions client;
    Figures best;
  };
  std::vector<Config> configs = {
      {"plaintext", {}, {}, {}, {}},
      {"tls", tls_server, {executor_ca}, tls_only, {}},
      {"tokens", {tokens_flag}, {executor_token}, token_only, {}},
      {"tls+tokens", {tls_server[0], tls_server[1], tokens_flag}, {executor_ca, executor_token}, trusted, {}},
  };
  for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
    for (std::size_t i = 0; i < configs.size(); ++i) {
      Config& c = configs[i];
      Figures f = Run(c.label, dir.path() + "/r" + std::to_string(round) + "-" + std::to_string(i), c.broker,
                      c.executor, c.client);
      if (round == 0) c.best = f;
      c.best.submit16 = std::max(c.best.submit16, f.submit16);
      c.best.submit256 = std::max(c.best.submit256, f.submit256);
      c.best.p50 = std::min(c.best.p50, f.p50);
      c.best.p99 = std::min(c.best.p99, f.p99);
    }
  }
  std::printf("best of %d rounds:\n", absl::GetFlag(FLAGS_rounds));
  for (const Config& c : configs) {
    std::printf("%-12s durable_submit_b16_jobs_per_s=%.0f durable_submit_b256_jobs_per_s=%.0f round_trip_p50_ms=%.3f "
                "round_trip_p99_ms=%.3f\n",
                c.label.c_str(), c.best.submit16, c.best.submit256, c.best.p50, c.best.p99);
  }
  const Figures& plain = configs[0].best;
  const Figures& tls = configs[3].best;
  std::printf("cost_of_trust (tls+tokens against plaintext) durable_submit_b16=%+.1f%% durable_submit_b256=%+.1f%% round_trip_p50=%+.1f%% "
              "round_trip_p99=%+.1f%%\n",
              100 * (plain.submit16 - tls.submit16) / plain.submit16, 100 * (plain.submit256 - tls.submit256) / plain.submit256,
              100 * (tls.p50 - plain.p50) / plain.p50, 100 * (tls.p99 - plain.p99) / plain.p99);
  return 0;
}
