// BrokerApp's lifecycle, the one every app has: Validate → Create (store opened and
// recovered) → Run(stop), which on stop shuts the host's server down once, flushes
// the engine's commits and returns; a new app on the same directory finds every job.
#include "services/broker/broker_app.h"

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/common/log.h"
#include "libs/runtime/runtime.h"
#include "prometheus/registry.h"
#include "services/broker/broker_engine.h"

namespace cohort::broker {
namespace {

BrokerAppOptions OptionsIn(const std::string& name) {
  BrokerAppOptions options;
  options.data_dir = (std::filesystem::path(::testing::TempDir()) / name).string();
  options.min_free_disk = 0;
  return options;
}

TEST(BrokerApp, ValidateNamesTheFlagAndTheRule) {
  BrokerAppOptions options = OptionsIn("validate");
  EXPECT_TRUE(BrokerApp::Validate(options).ok());
  options.heartbeat_interval = options.lease;
  absl::Status s = BrokerApp::Validate(options);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "--heartbeat-interval must be positive and shorter than --lease");
  runtime::EventLoop loop;
  prometheus::Registry registry;
  EXPECT_EQ(BrokerApp::Create(loop, registry, options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BrokerApp, MaxKindsOutOfRangeIsRefusedNamingTheFlagAndTheRange) {
  // main() prints a Validate error on one line and exits 2 (common::Die).
  BrokerAppOptions options = OptionsIn("max_kinds");
  for (int bad : {0, -1, BrokerAppOptions::kMostKinds + 1}) {
    options.max_kinds = bad;
    absl::Status s = BrokerApp::Validate(options);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(s.message(), absl::StrCat("--max-kinds=", bad, " is out of range: use 1 to ",
                                        BrokerAppOptions::kMostKinds));
  }
  for (int good : {1, BrokerAppOptions::kMostKinds}) {
    options.max_kinds = good;
    EXPECT_TRUE(BrokerApp::Validate(options).ok()) << good;
  }
}

TEST(BrokerApp, RunStopsTheServerOnceAndAJobSubmittedBeforeTheStopIsFoundByTheNextApp) {
  const BrokerAppOptions options = OptionsIn("lifecycle");
  std::ostringstream logs;
  log::LogOptions log_options;
  log_options.out = &logs;
  log::Configure(std::move(log_options));
  std::string id;
  {
    runtime::EventLoop loop;
    prometheus::Registry registry;
    absl::StatusOr<std::unique_ptr<BrokerApp>> app = BrokerApp::Create(loop, registry, options);
    ASSERT_TRUE(app.ok()) << app.status();
    // A second broker on the same store is refused while this one holds it.
    runtime::EventLoop other_loop;
    prometheus::Registry other_registry;
    EXPECT_FALSE(BrokerApp::Create(other_loop, other_registry, options).ok());

    std::vector<cohort::v1::JobSpec> specs(1);
    specs[0].set_queue("q");
    specs[0].set_kind("builtin.echo");
    absl::StatusOr<std::vector<std::string>> ids =
        runtime::RunUntilComplete(loop, (*app)->engine().Submit(std::move(specs), false));
    ASSERT_TRUE(ids.ok()) << ids.status();
    id = (*ids)[0];
    runtime::Event stop;
    stop.Set();
    int server_stops = 0;
    runtime::RunUntilComplete(loop, (*app)->Run(stop, [&server_stops] { ++server_stops; }));
    EXPECT_EQ(server_stops, 1);
  }
  log::Configure(log::LogOptions{});
  EXPECT_TRUE(absl::StrContains(logs.str(), "INFO  broker: broker stopping data_dir=" + options.data_dir)) << logs.str();
  EXPECT_TRUE(absl::StrContains(logs.str(), "INFO  broker: broker stopped data_dir=" + options.data_dir)) << logs.str();

  runtime::EventLoop loop;
  prometheus::Registry registry;
  absl::StatusOr<std::unique_ptr<BrokerApp>> again = BrokerApp::Create(loop, registry, options);
  ASSERT_TRUE(again.ok()) << again.status();
  absl::StatusOr<cohort::v1::Job> job = (*again)->engine().GetJob(id);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), cohort::v1::JOB_STATE_QUEUED);
  runtime::Event stop;
  stop.Set();
  runtime::RunUntilComplete(loop, (*again)->Run(stop, [] {}));
}

}  // namespace
}  // namespace cohort::broker
