// Throughput of the real cohort-executor working for the real cohort-broker (WAL
// fsync on), printed, not asserted:
//  - builtin.noop jobs end to end (submit -> dispatch -> run -> complete, durable);
//  - exec of /bin/true with --capacity=8 (a real child process per job).
//
//   bazel build -c opt //services/broker:cohort-broker //services/executor:cohort-executor //bench:executor_bench
//   bazel-bin/bench/executor_bench
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "bench/service_launcher.h"
#include "tests/testing/temp_dir.h"

ABSL_FLAG(std::string, broker, "bazel-bin/services/broker/cohort-broker", "the cohort-broker binary");
ABSL_FLAG(std::string, executor, "bazel-bin/services/executor/cohort-executor", "the cohort-executor binary");

namespace {

using Clock = std::chrono::steady_clock;

// Submits `total` copies of spec in batches of 256, then waits until all have ended.
double Throughput(cohort::v1::Broker::Stub& stub, const cohort::v1::JobSpec& spec, int total) {
  auto start = Clock::now();
  std::vector<std::string> ids;
  for (int done = 0; done < total; done += 256) {
    cohort::v1::SubmitRequest req;
    for (int i = 0; i < std::min(256, total - done); ++i) *req.add_jobs() = spec;
    cohort::v1::SubmitResponse resp;
    grpc::ClientContext ctx;
    if (!stub.Submit(&ctx, req, &resp).ok()) std::exit(1);
    ids.insert(ids.end(), resp.job_ids().begin(), resp.job_ids().end());
  }
  for (std::size_t i = 0; i < ids.size(); i += 10'000) {
    cohort::v1::WaitRequest req;
    for (std::size_t j = i; j < std::min(ids.size(), i + 10'000); ++j) req.add_job_ids(ids[j]);
    cohort::v1::WaitResponse resp;
    grpc::ClientContext ctx;
    if (!stub.Wait(&ctx, req, &resp).ok() || resp.pending_size() != 0) std::exit(1);
  }
  return total / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  cohort::testing::TempDir dir;
  auto broker = cohort::bench::StartServiceOrDie(absl::GetFlag(FLAGS_broker),
                           {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir.path() + "/b"});
  auto executor = cohort::bench::StartServiceOrDie(absl::GetFlag(FLAGS_executor),
                             {"--broker=" + broker->grpc_address(), "--listen=127.0.0.1:0",
                              "--metrics-listen=127.0.0.1:0", "--capacity=8", "--allow-exec=/bin/true"});
  auto stub = cohort::v1::Broker::NewStub(grpc::CreateChannel(broker->grpc_address(), grpc::InsecureChannelCredentials()));

  cohort::v1::JobSpec noop;
  noop.set_queue("bench");
  noop.set_kind("builtin.noop");
  std::printf("noop_end_to_end capacity=8 jobs=20000 jobs_per_s=%.0f\n", Throughput(*stub, noop, 20'000));

  cohort::v1::JobSpec exec;
  exec.set_queue("bench");
  exec.set_kind("exec");
  exec.mutable_command()->add_argv("/bin/true");
  std::printf("exec_bin_true capacity=8 jobs=2000 jobs_per_s=%.0f\n", Throughput(*stub, exec, 2'000));
  return 0;
}
