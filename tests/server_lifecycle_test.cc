// Every Cohort server, started and stopped as a real process: a port another process
// serves is refused (gRPC's default SO_REUSEPORT let two brokers share one and split
// the clients between two job stores), and SIGTERM ends a server within a bound even
// when clients hold streams they never read (within 15 s).
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "tests/testing/run_to_exit.h"
#include "tests/testing/runfiles.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort {
namespace {

using testing::BinaryPath;
using testing::Exited;
using testing::RunToExit;
using testing::ServiceProcess;
using testing::TempDir;

// How to start one binary, given a data dir; flags other than --listen and
// --metrics-listen.
struct Server {
  const char* name;
  const char* path;
  std::vector<std::string> (*flags)(const TempDir& dir, const std::string& instance);
};

std::vector<std::string> DataDirFlags(const TempDir& dir, const std::string& instance) {
  return {"--data-dir=" + dir.Path(instance)};
}
std::vector<std::string> SchedulerFlags(const TempDir& dir, const std::string& instance) {
  // Nothing listens on port 1: the scheduler retries its broker in the background.
  return {"--data-dir=" + dir.Path(instance), "--broker=127.0.0.1:1"};
}
std::vector<std::string> ExecutorFlags(const TempDir&, const std::string&) { return {"--broker=127.0.0.1:1"}; }

const Server kServers[] = {
    {"cohort-broker", "services/broker/cohort-broker", DataDirFlags},
    {"cohort-scheduler", "services/scheduler/cohort-scheduler", SchedulerFlags},
    {"cohort-executor", "services/executor/cohort-executor", ExecutorFlags},
    {"cohort-dev", "services/dev/cohort-dev", DataDirFlags},
};

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The single line a refused start printed, or what it printed if that was not one line.
std::string OneLine(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  return lines.size() == 1 ? lines[0] : "(not one line) " + text;
}

TEST(ServerLifecycle, EveryServerRefusesAGrpcPortAnotherProcessServes) {
  for (const Server& server : kServers) {
    SCOPED_TRACE(server.name);
    TempDir dir;
    auto first = ServiceProcess::Start(
        BinaryPath(server.path),
        Concat({"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"}, server.flags(dir, "first")));
    ASSERT_TRUE(first.ok()) << first.status();
    const std::string taken = (*first)->grpc_address();

    absl::StatusOr<Exited> second = RunToExit(
        BinaryPath(server.path),
        Concat({"--listen=" + taken, "--metrics-listen=127.0.0.1:0"}, server.flags(dir, "second")));
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_EQ(second->exit_code, 2) << second->stderr_text;
    EXPECT_EQ(OneLine(second->stderr_text),
              std::string(server.name) + ": cannot serve gRPC on " + taken + ": the address is already in use");
    EXPECT_EQ(second->stdout_text, "");  // no ready line
    EXPECT_EQ((*first)->Terminate().value_or(-1), 0);
  }
}

TEST(ServerLifecycle, EveryServerRefusesAMetricsPortAnotherProcessServes) {
  for (const Server& server : kServers) {
    SCOPED_TRACE(server.name);
    TempDir dir;
    auto first = ServiceProcess::Start(
        BinaryPath(server.path),
        Concat({"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"}, server.flags(dir, "first")));
    ASSERT_TRUE(first.ok()) << first.status();
    const std::string taken = (*first)->metrics_address();

    absl::StatusOr<Exited> second = RunToExit(
        BinaryPath(server.path),
        Concat({"--listen=127.0.0.1:0", "--metrics-listen=" + taken}, server.flags(dir, "second")));
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_EQ(second->exit_code, 2) << second->stderr_text;
    EXPECT_EQ(OneLine(second->stderr_text),
              std::string(server.name) + ": cannot serve /metrics on " + taken + ": the address is already in use");
    EXPECT_EQ((*first)->Terminate().value_or(-1), 0);
  }
}

// A Watch stream whose client never reads: the broker's writes to it block once the
// transport's windows are full.
struct UnreadStream {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<v1::WatchResponse>> reader;
};

TEST(ServerLifecycle, SigtermEndsABrokerWhoseStreamsNoClientReads) {
  for (const Server& server : {kServers[0], kServers[3]}) {
    SCOPED_TRACE(server.name);
    TempDir dir;
    auto process = ServiceProcess::Start(
        BinaryPath(server.path),
        Concat({"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"}, server.flags(dir, "only")));
    ASSERT_TRUE(process.ok()) << process.status();
    auto channel = grpc::CreateChannel((*process)->grpc_address(), grpc::InsecureChannelCredentials());
    auto stub = v1::Broker::NewStub(channel);
    // About 30 MB of events per Watch from the start: jobs whose spec is 1.5 MB of argv
    // (a queue nobody serves, so they stay queued).
    v1::SubmitRequest submit;
    for (int job = 0; job < 2; ++job) {
      v1::JobSpec* spec = submit.add_jobs();
      spec->set_queue("never-served");
      spec->set_kind("exec");
      for (int arg = 0; arg < 48; ++arg) spec->mutable_command()->add_argv(std::string(32 << 10, 'a' + arg % 26));
    }
    for (int batch = 0; batch < 10; ++batch) {
      grpc::ClientContext ctx;
      v1::SubmitResponse submitted;
      grpc::Status s = stub->Submit(&ctx, submit, &submitted);
      ASSERT_TRUE(s.ok()) << s.error_message();
    }
    constexpr int kStreams = 20;
    std::vector<std::unique_ptr<UnreadStream>> streams;
    for (int i = 0; i < kStreams; ++i) {
      auto stream = std::make_unique<UnreadStream>();
      stream->reader = stub->Watch(&stream->ctx, v1::WatchRequest());
      streams.push_back(std::move(stream));
    }
    // Every stream is open on the broker once a call made after them is answered.
    {
      grpc::ClientContext ctx;
      v1::ListQueuesResponse queues;
      ASSERT_TRUE(stub->ListQueues(&ctx, v1::ListQueuesRequest(), &queues).ok());
    }
    const absl::Time sigterm = absl::Now();
    absl::StatusOr<int> exit = (*process)->Terminate(absl::Seconds(30));
    EXPECT_EQ(exit.value_or(-1), 0) << exit.status();
    const absl::Duration stopping = absl::Now() - sigterm;
    // About 4 s for the broker on a 2-core machine, most of it after the server has
    // stopped (store reads in flight, gRPC's own shutdown at exit); the issue was a
    // SIGTERM that never ended the process.
    EXPECT_LT(stopping, absl::Seconds(15));
    std::printf("%s stopped %s after SIGTERM with %d unread streams\n", server.name,
                absl::FormatDuration(stopping).c_str(), kStreams);
    for (auto& stream : streams) stream->ctx.TryCancel();
  }
}

}  // namespace
}  // namespace cohort
