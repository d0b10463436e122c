// cohort-demo: the README's main demo, a client of a running cohort-dev. See demo.h for
// the steps; tools/demo.sh starts cohort-dev and runs this against it.
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "libs/auth/channel_credentials.h"
#include "libs/common/flag_help.h"
#include "libs/common/flag_parse.h"
#include "libs/common/fatal.h"
#include "libs/common/flag_names.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "services/dev/demo.h"
#include "services/dev/demo_summary.h"

ABSL_FLAG(std::string, server, "127.0.0.1:7070", "cohort-dev's gRPC address, HOST:PORT");
ABSL_FLAG(int, jobs, 5'000, "fan-out jobs (1..10000), spread over priorities 0, 5 and 9");
ABSL_FLAG(int, batches, 5, "Submit calls the fan-out jobs are sent in");
ABSL_FLAG(absl::Duration, step_timeout, absl::Seconds(30), "each step fails if it has not ended within this");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(5), "how long to try reaching cohort-dev before giving up");
ABSL_FLAG(bool, progress, true, "draw a live progress bar on stderr when it is a terminal");

namespace cohort::dev {
namespace {

constexpr char kProgram[] = "cohort-demo";

int Main(int argc, char** argv) {
  // --help lists this binary's flags (absl matches files named after the program).
  common::ShowFlagsDefinedIn({"services/dev/"});
  absl::SetProgramUsageMessage("cohort-demo: Cohort's main demo, run against a cohort-dev (see tools/demo.sh)");
  common::DashedArgs args(argc, argv);
  common::ParseFlagsOrExit(kProgram, args.argc(), args.argv());
  const std::string server = absl::GetFlag(FLAGS_server);
  common::OrDie(kProgram, auth::ChannelTarget("--server", server));
  DemoOptions options;
  options.jobs = absl::GetFlag(FLAGS_jobs);
  options.batches = absl::GetFlag(FLAGS_batches);
  options.step_timeout = absl::GetFlag(FLAGS_step_timeout);
  options.progress = absl::GetFlag(FLAGS_progress);
  if (options.jobs < 1 || options.jobs > 10'000) common::Die(kProgram, "--jobs must be in 1..10000");
  if (options.batches < 1 || options.batches > options.jobs) common::Die(kProgram, "--batches must be in 1..--jobs");
  if (options.step_timeout <= absl::ZeroDuration()) common::Die(kProgram, "--step-timeout must be positive");

  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(64 << 20);
  auth::ClientSecurityOptions security;  // COHORT_TLS_CA, COHORT_TOKEN, ... from the environment
  auth::FillFromEnvironment(security);
  std::shared_ptr<grpc::Channel> channel =
      common::OrDie(kProgram, auth::MakeChannel(server, security, channel_args));
  if (!channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_connect_timeout)))) {
    common::Die(kProgram, absl::StrCat("cannot reach cohort-dev at ", server, " (is it running?)"));
  }
  std::unique_ptr<cohort::v1::Broker::Stub> stub = cohort::v1::Broker::NewStub(channel);

  std::printf("Cohort demo against cohort-dev at %s\n", server.c_str());
  Demo demo(*stub, options, stdout);
  const std::vector<std::function<absl::Status()>> steps = {
      [&] { return demo.FanOutAndGather(); },       [&] { return demo.WaitFirstCompleted(); },
      [&] { return demo.WaitForCancelsOnTimeout(); }, [&] { return demo.RetriesWithBackoff(); },
      [&] { return demo.DiamondDag(); },
  };
  int failed = 0;
  const absl::Time start = absl::Now();
  for (const std::function<absl::Status()>& step : steps) {
    absl::Status status = step();
    if (status.ok()) {
      std::printf("   ok\n");
    } else {
      ++failed;
      std::printf("   FAILED: %s\n", status.ToString().c_str());
    }
    std::fflush(stdout);
  }
  std::printf("\nSummary (%zu steps in %.1f s)\n%s\n", steps.size(), absl::ToDoubleSeconds(absl::Now() - start),
              FormatSummary(demo.summary()).c_str());
  if (failed > 0) {
    std::printf("%d of %zu steps FAILED\n", failed, steps.size());
    return 1;
  }
  std::printf("All %zu steps passed.\n", steps.size());
  return 0;
}

}  // namespace
}  // namespace cohort::dev

int main(int argc, char** argv) { return cohort::dev::Main(argc, argv); }
