// The cost of trust, in one run: the same workloads against a plaintext broker and a
// broker with TLS and bearer tokens (certificates made by openssl, a token file, the
// client and a real cohort-executor presenting tokens), printed side by side:
//  - durable Submit throughput, batches of 16 and 256 jobs, 4 concurrent clients;
//  - round trip: sequential Submit + WaitFor of one builtin.noop job run by a real
//    cohort-executor, p50/p99;
//  - CPU time per job of the batch-16 submits, in the broker and in the clients: the
//    figure that says what trust costs when the rates are blurred by other work.
// The issue's target: batched submits within 10% of plaintext. TLS alone and tokens
// alone can be added (--configs) to say where a difference comes from.
//
// The configurations take turns, each round on a fresh broker and executor, so a
// machine shared with builds slows both sides of a round alike. Per configuration the
// median and range over rounds is printed; the cost of trust is the ratio of each
// round's trusted figure to the same round's plaintext one, as median and range.
//
//   bazel build --config=ci //services/broker:cohort-broker //services/executor:cohort-executor //bench:trust_bench
//   bazel-bin/bench/trust_bench --rounds=5
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "libs/auth/channel_credentials.h"
#include "libs/auth/token_store.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "tests/security/certs.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

ABSL_FLAG(std::string, broker, "bazel-bin/services/broker/cohort-broker", "the cohort-broker binary");
ABSL_FLAG(std::string, executor, "bazel-bin/services/executor/cohort-executor", "the cohort-executor binary");
ABSL_FLAG(int, submit_jobs, 100'000, "jobs per durable-submit run (each batch size)");
ABSL_FLAG(int, round_trips, 1000, "sequential Submit + WaitFor round trips");
ABSL_FLAG(int, rounds, 5, "rounds; each runs every configuration once, in turn");
ABSL_FLAG(std::vector<std::string>, configs, std::vector<std::string>({"plaintext", "tls+tokens"}),
          "configurations, in the order each round runs them: plaintext, tls, tokens, tls+tokens");

namespace {

using Clock = std::chrono::steady_clock;
using cohort::v1::Broker;

struct Figures {
  double submit16 = 0, submit256 = 0, p50 = 0, p99 = 0;
  // CPU time (user + system) per job of the batch-16 submits, in microseconds: what the
  // broker process spent, and what this process (the 4 clients) spent. Unlike the
  // rates, these hardly move when other work shares the machine.
  double broker_cpu16 = 0, client_cpu16 = 0;
};

// CPU seconds (user + system) `pid` has used so far, from /proc; -1 if unreadable.
double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t close = text.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return -1;
  std::vector<std::string> fields = absl::StrSplit(text.substr(close + 2), ' ');
  // Fields 14 and 15 of stat(5), utime and stime, are 11 and 12 after the name.
  if (fields.size() < 13) return -1;
  return (std::stod(fields[11]) + std::stod(fields[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double SelfCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

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

absl::Status FromGrpc(const char* what, const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), absl::StrCat(what, ": ", s.error_message()));
}

// Jobs per second for --submit_jobs jobs in batches of `batch`, 4 clients on one channel.
absl::StatusOr<double> DurableSubmit(Broker::Stub& stub, int batch) {
  constexpr int kClients = 4;
  const int per_client = absl::GetFlag(FLAGS_submit_jobs) / batch / kClients;
  const cohort::v1::SubmitRequest req = Batch("submit-bench", batch);
  absl::Mutex mu;
  absl::Status first_error;
  auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      cohort::v1::SubmitResponse resp;
      for (int i = 0; i < per_client; ++i) {
        grpc::ClientContext ctx;
        if (absl::Status s = FromGrpc("Submit", stub.Submit(&ctx, req, &resp)); !s.ok()) {
          absl::MutexLock lock(&mu);
          if (first_error.ok()) first_error = s;
          return;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  if (!first_error.ok()) return first_error;
  double s = std::chrono::duration<double>(Clock::now() - start).count();
  return static_cast<double>(per_client) * batch * kClients / s;
}

// Nearest-rank percentile of sorted `v`.
double Percentile(const std::vector<double>& v, double p) {
  std::size_t rank = static_cast<std::size_t>(std::ceil(p / 100 * static_cast<double>(v.size())));
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

absl::Status RoundTrip(Broker::Stub& stub, Figures& f) {
  const cohort::v1::SubmitRequest req = Batch("rt", 1);
  std::vector<double> ms;
  for (int i = 0; i < absl::GetFlag(FLAGS_round_trips); ++i) {
    auto t0 = Clock::now();
    cohort::v1::SubmitResponse submitted;
    {
      grpc::ClientContext ctx;
      if (absl::Status s = FromGrpc("Submit", stub.Submit(&ctx, req, &submitted)); !s.ok()) return s;
    }
    cohort::v1::WaitForRequest wait;
    wait.set_job_id(submitted.job_ids(0));
    wait.mutable_timeout()->set_seconds(30);
    cohort::v1::WaitForResponse waited;
    grpc::ClientContext ctx;
    if (absl::Status s = FromGrpc("WaitFor", stub.WaitFor(&ctx, wait, &waited)); !s.ok()) return s;
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  f.p50 = Percentile(ms, 50);
  f.p99 = Percentile(ms, 99);
  return absl::OkStatus();
}

// A relative binary path is taken from the workspace root under `bazel run`, else from
// the current directory.
std::string Binary(std::string path) {
  const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (ws != nullptr && !path.empty() && path[0] != '/') path = absl::StrCat(ws, "/", path);
  return path;
}

struct Config {
  std::vector<std::string> broker, executor;
  cohort::auth::ClientSecurityOptions client;
};

// One configuration on a fresh broker and executor. On failure the error carries the last lines
// of both services' output; both are stopped either way.
absl::StatusOr<Figures> Run(const std::string& dir, const Config& config) {
  std::vector<std::string> args = {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir};
  args.insert(args.end(), config.broker.begin(), config.broker.end());
  absl::StatusOr<std::unique_ptr<cohort::testing::ServiceProcess>> broker =
      cohort::testing::ServiceProcess::Start(Binary(absl::GetFlag(FLAGS_broker)), args);
  if (!broker.ok()) return broker.status();
  std::vector<std::string> exec_args = {"--broker=" + (*broker)->grpc_address(), "--listen=127.0.0.1:0",
                                        "--metrics-listen=127.0.0.1:0", "--capacity=16", "--queues=rt",
                                        "--executor-id=bench-executor"};
  exec_args.insert(exec_args.end(), config.executor.begin(), config.executor.end());
  absl::StatusOr<std::unique_ptr<cohort::testing::ServiceProcess>> executor =
      cohort::testing::ServiceProcess::Start(Binary(absl::GetFlag(FLAGS_executor)), exec_args);
  if (!executor.ok()) return executor.status();
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = cohort::auth::MakeChannel((*broker)->grpc_address(), config.client, channel_args);
  if (!channel.ok()) return channel.status();
  auto stub = Broker::NewStub(*channel);
  Figures f;
  absl::Status s;
  const double broker_cpu = ProcessCpuSeconds((*broker)->pid()), client_cpu = SelfCpuSeconds();
  if (absl::StatusOr<double> r = DurableSubmit(*stub, 16); r.ok()) {
    f.submit16 = *r;
    const double jobs = absl::GetFlag(FLAGS_submit_jobs) / 64 * 64;  // what DurableSubmit sends
    f.broker_cpu16 = (ProcessCpuSeconds((*broker)->pid()) - broker_cpu) / jobs * 1e6;
    f.client_cpu16 = (SelfCpuSeconds() - client_cpu) / jobs * 1e6;
  } else {
    s = r.status();
  }
  if (absl::StatusOr<double> r = s.ok() ? DurableSubmit(*stub, 256) : s; r.ok()) {
    f.submit256 = *r;
  } else {
    s = r.status();
  }
  if (s.ok()) s = RoundTrip(*stub, f);
  if (s.ok()) return f;
  auto tail = [](const cohort::testing::ServiceProcess& p) {
    std::vector<std::string> lines = p.output();
    lines.erase(lines.begin(), lines.end() - std::min<std::ptrdiff_t>(lines.size(), 10));
    return absl::StrJoin(lines, "\n  ");
  };
  absl::StatusOr<int> broker_exit = (*broker)->Wait(absl::ZeroDuration());
  return absl::Status(s.code(), absl::StrCat(s.message(), "\nbroker: ",
                                             broker_exit.ok() ? absl::StrCat("exited ", *broker_exit)
                                                              : broker_exit.status().ToString(),
                                             "\nbroker's last output:\n  ", tail(**broker),
                                             "\nexecutor's last output:\n  ", tail(**executor)));
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string Summary(const std::vector<double>& v, const char* format) {
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  char buf[128];
  std::snprintf(buf, sizeof buf, format, Median(v), *lo, *hi);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int rounds = absl::GetFlag(FLAGS_rounds);
  if (rounds < 1 || absl::GetFlag(FLAGS_submit_jobs) < 1024 || absl::GetFlag(FLAGS_round_trips) < 1) {
    std::fprintf(stderr, "--rounds, --round_trips must be at least 1, --submit_jobs at least 1024\n");
    return 2;
  }
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
  // Tokens alone run on loopback without TLS (gRPC's local credentials carry them).
  const std::map<std::string, Config> known = {
      {"plaintext", {{}, {}, {}}},
      {"tls", {tls_server, {executor_ca}, tls_only}},
      {"tokens", {{tokens_flag}, {executor_token}, token_only}},
      {"tls+tokens", {{tls_server[0], tls_server[1], tokens_flag}, {executor_ca, executor_token}, trusted}},
  };
  const std::vector<std::string> labels = absl::GetFlag(FLAGS_configs);
  for (const std::string& label : labels) {
    if (!known.contains(label)) {
      std::fprintf(stderr, "--configs: unknown configuration \"%s\": use plaintext, tls, tokens, tls+tokens\n",
                   label.c_str());
      return 2;
    }
  }
  std::map<std::string, std::vector<Figures>> results;
  for (int round = 0; round < rounds; ++round) {
    for (std::size_t i = 0; i < labels.size(); ++i) {
      absl::StatusOr<Figures> f =
          Run(absl::StrCat(dir.path(), "/r", round, "-", i), known.at(labels[i]));
      if (!f.ok()) {
        std::fprintf(stderr, "%s, round %d: %s\n", labels[i].c_str(), round + 1, f.status().ToString().c_str());
        return 1;
      }
      std::printf("round %d %-11s durable_submit_b16_jobs_per_s=%.0f durable_submit_b256_jobs_per_s=%.0f "
                  "round_trip_p50_ms=%.3f round_trip_p99_ms=%.3f b16_cpu_us_per_job_broker=%.1f "
                  "b16_cpu_us_per_job_client=%.1f\n",
                  round + 1, labels[i].c_str(), f->submit16, f->submit256, f->p50, f->p99, f->broker_cpu16,
                  f->client_cpu16);
      std::fflush(stdout);
      results[labels[i]].push_back(*f);
    }
  }
  auto column = [](const std::vector<Figures>& fs, double Figures::*field) {
    std::vector<double> v;
    for (const Figures& f : fs) v.push_back(f.*field);
    return v;
  };
  std::printf("median [min..max] over %d rounds:\n", rounds);
  for (const std::string& label : labels) {
    const std::vector<Figures>& fs = results[label];
    std::printf("%-11s durable_submit_b16_jobs_per_s=%s durable_submit_b256_jobs_per_s=%s round_trip_p50_ms=%s "
                "round_trip_p99_ms=%s b16_cpu_us_per_job_broker=%s b16_cpu_us_per_job_client=%s\n",
                label.c_str(), Summary(column(fs, &Figures::submit16), "%.0f [%.0f..%.0f]").c_str(),
                Summary(column(fs, &Figures::submit256), "%.0f [%.0f..%.0f]").c_str(),
                Summary(column(fs, &Figures::p50), "%.3f [%.3f..%.3f]").c_str(),
                Summary(column(fs, &Figures::p99), "%.3f [%.3f..%.3f]").c_str(),
                Summary(column(fs, &Figures::broker_cpu16), "%.1f [%.1f..%.1f]").c_str(),
                Summary(column(fs, &Figures::client_cpu16), "%.1f [%.1f..%.1f]").c_str());
  }
  // Each configuration against plaintext, round by round: trusted / plaintext.
  if (!results.contains("plaintext")) return 0;
  const std::vector<Figures>& plain = results["plaintext"];
  for (const std::string& label : labels) {
    if (label == "plaintext") continue;
    const std::vector<Figures>& other = results[label];
    std::vector<double> b16, b256, p50, p99, broker_cpu, client_cpu;
    for (int r = 0; r < rounds; ++r) {
      broker_cpu.push_back(other[r].broker_cpu16 / plain[r].broker_cpu16);
      client_cpu.push_back(other[r].client_cpu16 / plain[r].client_cpu16);
      b16.push_back(other[r].submit16 / plain[r].submit16);
      b256.push_back(other[r].submit256 / plain[r].submit256);
      p50.push_back(other[r].p50 / plain[r].p50);
      p99.push_back(other[r].p99 / plain[r].p99);
    }
    std::printf("ratio %s/plaintext (per round; throughput: higher is better, latency: lower is better) "
                "durable_submit_b16=%s durable_submit_b256=%s round_trip_p50=%s round_trip_p99=%s "
                "b16_cpu_per_job_broker=%s b16_cpu_per_job_client=%s\n",
                label.c_str(), Summary(b16, "%.3f [%.3f..%.3f]").c_str(), Summary(b256, "%.3f [%.3f..%.3f]").c_str(),
                Summary(p50, "%.3f [%.3f..%.3f]").c_str(), Summary(p99, "%.3f [%.3f..%.3f]").c_str(),
                Summary(broker_cpu, "%.3f [%.3f..%.3f]").c_str(), Summary(client_cpu, "%.3f [%.3f..%.3f]").c_str());
  }
  return 0;
}
