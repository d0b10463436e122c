#include "services/executor/executor_app.h"

#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace cohort::executor {
namespace {

// The message of Validate(options) after `change`, or "OK".
template <typename Change>
std::string Problem(Change change) {
  ExecutorAppOptions options;
  change(options);
  absl::Status s = ExecutorApp::Validate(options);
  if (s.ok()) return "OK";
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  return std::string(s.message());
}

TEST(ExecutorAppValidate, AcceptsTheDefaults) { EXPECT_TRUE(ExecutorApp::Validate({}).ok()); }

TEST(ExecutorAppValidate, NamesTheFlagAndWhatIsAllowed) {
  EXPECT_EQ(Problem([](auto& o) { o.capacity = 0; }), "--capacity 0 is out of range: use 1..10000");
  EXPECT_EQ(Problem([](auto& o) { o.capacity = 10'001; }), "--capacity 10001 is out of range: use 1..10000");
  EXPECT_EQ(Problem([](auto& o) { o.prefetch = -2; }),
            "--prefetch -2 is out of range: use 0..9996 (10000 - capacity), or -1 for the default");
  EXPECT_EQ(Problem([](auto& o) {
              o.capacity = 100;
              o.prefetch = 9901;
            }),
            "--prefetch 9901 is out of range: use 0..9900 (10000 - capacity), or -1 for the default");
  EXPECT_EQ(Problem([](auto& o) { o.prefetch = 9996; }), "OK");  // beyond the capacity is fine
  EXPECT_EQ(Problem([](auto& o) { o.queues = {"ok", "Not OK"}; }),
            "--queues: \"Not OK\" is invalid: use [a-z0-9._-]{1,64}");
  EXPECT_EQ(Problem([](auto& o) { o.executor_id = std::string(129, 'x'); }),
            "--executor-id is 129 bytes long: use at most 128");
  EXPECT_EQ(Problem([](auto& o) { o.drain_grace = absl::Seconds(-1); }), "--drain-grace -1s is negative: use 0 or more");
  EXPECT_EQ(Problem([](auto& o) { o.kill_grace = absl::Milliseconds(-5); }),
            "--kill-grace -5ms is negative: use 0 or more");
  EXPECT_EQ(Problem([](auto& o) { o.max_output_bytes = -1; }),
            "--max-output-bytes -1 is out of range: use 0..1073741824 (1 GiB)");
  EXPECT_EQ(Problem([](auto& o) { o.max_stderr_bytes = int64_t{1} << 31; }),
            "--max-stderr-bytes 2147483648 is out of range: use 0..1073741824 (1 GiB)");
  EXPECT_EQ(Problem([](auto& o) { o.labels = {{"", "x"}}; }), "--labels: a label has an empty key: use KEY=VALUE");
  EXPECT_NE(Problem([](auto& o) { o.broker = "nowhere"; }).find("--broker"), std::string::npos);
  EXPECT_NE(Problem([](auto& o) { o.broker = "127.0.0.1:0"; }).find("--broker"), std::string::npos);
  EXPECT_NE(Problem([](auto& o) { o.allow_exec = {"bin/sh"}; }).find("--allow-exec: "), std::string::npos);
}

TEST(ExecutorAppTest, PrefetchDefaultsToAnAdaptiveWindowHolding128InAllOrAtLeast64) {
  ExecutorAppOptions options;  // capacity 4
  ExecutorOptions engine = ExecutorApp::EngineOptions(options);
  EXPECT_TRUE(engine.adaptive_prefetch);
  EXPECT_EQ(engine.prefetch, 124);
  options.capacity = 100;
  EXPECT_EQ(ExecutorApp::EngineOptions(options).prefetch, 64);
  options.capacity = 9'990;  // capacity + prefetch stays within the broker's limit
  EXPECT_EQ(ExecutorApp::EngineOptions(options).prefetch, 10);
  options.capacity = 4;
  options.adaptive_prefetch = false;  // fixed: as the capacity, at most 64
  engine = ExecutorApp::EngineOptions(options);
  EXPECT_FALSE(engine.adaptive_prefetch);
  EXPECT_EQ(engine.prefetch, 4);
  options.capacity = 200;
  EXPECT_EQ(ExecutorApp::EngineOptions(options).prefetch, 64);
  options.capacity = 9'990;
  EXPECT_EQ(ExecutorApp::EngineOptions(options).prefetch, 10);
  options.prefetch = 7;  // as set, adaptive or not
  EXPECT_EQ(ExecutorApp::EngineOptions(options).prefetch, 7);
  options.adaptive_prefetch = true;
  EXPECT_EQ(ExecutorApp::EngineOptions(options).prefetch, 7);
}

TEST(ExecutorAppTest, CreateRejectsInvalidOptions) {
  runtime::EventLoop loop;
  prometheus::Registry registry;
  ExecutorAppOptions options;
  options.capacity = -3;
  auto app = ExecutorApp::Create(loop, registry, options);
  EXPECT_EQ(app.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ExecutorAppTest, RunReturnsOnceStopIsSetEvenWithoutABroker) {
  runtime::EventLoop loop;
  prometheus::Registry registry;
  ExecutorAppOptions options;
  options.broker = "127.0.0.1:1";  // nothing listens there
  options.executor_id = "app-under-test";
  auto app = ExecutorApp::Create(loop, registry, options);
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_EQ((*app)->executor_id(), "app-under-test");
  runtime::Event stop;
  stop.Set();
  runtime::RunUntilComplete(loop, (*app)->Run(stop));
  EXPECT_EQ((*app)->running(), 0);
  bool capacity_exported = false;
  for (const auto& family : registry.Collect()) {
    if (family.name == "cohort_executor_capacity") capacity_exported = family.metric.at(0).gauge.value == 4;
  }
  EXPECT_TRUE(capacity_exported);
}

TEST(ExecutorAppTest, DefaultExecutorIdIsHostnameAndPid) {
  runtime::EventLoop loop;
  prometheus::Registry registry;
  auto app = ExecutorApp::Create(loop, registry, {});
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_NE((*app)->executor_id().find(absl::StrCat("-", getpid())), std::string::npos) << (*app)->executor_id();
}

}  // namespace
}  // namespace cohort::executor
