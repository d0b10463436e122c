#include "services/executor/exec_runner.h"

#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/runtime/runtime.h"
#include "prometheus/registry.h"
#include "services/executor/env_denylist.h"
#include "services/executor/process_runner.h"

namespace cohort::executor {
namespace {

using std::chrono::seconds;

constexpr runtime::Duration kBound = seconds(20);
constexpr char kProgram[] = "/bin/true";  // dynamically linked: the loader runs

std::string PreloadLibrary() {
  return absl::StrCat(std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"),
                      "/services/executor/testdata/libmarker_preload.so");
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

class NoProgress final : public ProgressSink {
 public:
  void Report(double, std::string) override {}
};

class ExecRunnerTest : public ::testing::Test {
 protected:
  template <typename T>
  T Await(runtime::Task<T> task) {
    auto handle = runtime::Spawn(loop_, std::move(task));
    bool expired = false;
    runtime::TimerId watchdog = loop_.CallLater(kBound, [&] { expired = true; });
    loop_.RunUntil([&] { return handle.Done() || expired; });
    loop_.CancelTimer(watchdog);
    EXPECT_TRUE(handle.Done()) << "did not finish within the bound";
    return handle.TakeResult();
  }

  Outcome RunJob(std::map<std::string, std::string> env) {
    cohort::v1::Job job;
    job.set_id("job-1");
    job.mutable_spec()->set_kind("exec");
    job.mutable_spec()->mutable_command()->add_argv(kProgram);
    for (const auto& [k, v] : env) (*job.mutable_spec()->mutable_command()->mutable_env())[k] = v;
    return Await(runner_.Run(job, 1, progress_));
  }

  const std::string marker_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/marker-", ::testing::UnitTest::GetInstance()
                                                                                        ->current_test_info()
                                                                                        ->name());
  runtime::EventLoop loop_;
  prometheus::Registry registry_;
  ExecutorMetrics metrics_{registry_};
  CommandAllowlist allowlist_ = *CommandAllowlist::Create({kProgram});
  ExecRunner runner_{loop_, allowlist_, ExecOptions{}, metrics_};
  NoProgress progress_;
};

// The control: the library does run its constructor when the loader is given it, so
// the marker's absence below means the job was refused, not that the library is inert.
TEST_F(ExecRunnerTest, ThePreloadLibraryWritesItsMarkerWhenTheLoaderLoadsIt) {
  ASSERT_TRUE(Exists(PreloadLibrary())) << PreloadLibrary();
  ProcessSpec spec{.argv = {kProgram}, .env = {{"LD_PRELOAD", PreloadLibrary()}, {"COHORT_TEST_MARKER", marker_}}};
  absl::StatusOr<ProcessResult> r = Await(RunProcess(loop_, std::move(spec)));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->Succeeded()) << r->Describe();
  EXPECT_TRUE(Exists(marker_));
}

TEST_F(ExecRunnerTest, AJobSettingLdPreloadFailsNotAllowedAndNothingRuns) {
  Outcome o = RunJob({{"LD_PRELOAD", PreloadLibrary()}, {"COHORT_TEST_MARKER", marker_}});
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error.code(), "not_allowed");
  EXPECT_NE(o.error.message().find("LD_PRELOAD"), std::string::npos) << o.error.message();
  EXPECT_FALSE(Exists(marker_));
}

TEST_F(ExecRunnerTest, AJobSettingLdLibraryPathFailsNotAllowed) {
  Outcome o = RunJob({{"LD_LIBRARY_PATH", "/tmp"}});
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error.code(), "not_allowed");
}

TEST_F(ExecRunnerTest, AJobWithAnOrdinaryEnvironmentRuns) {
  Outcome o = RunJob({{"PATH", "/usr/bin"}, {"LANG", "C.UTF-8"}, {"COHORT_TEST_MARKER", marker_}});
  EXPECT_TRUE(o.ok) << o.error.code() << ": " << o.error.message();
}

TEST_F(ExecRunnerTest, AHugeTimeoutIsNoTimeoutRatherThanAnImmediateOne) {
  cohort::v1::Job job;
  job.mutable_spec()->set_kind("exec");
  job.mutable_spec()->mutable_command()->add_argv(kProgram);
  job.mutable_spec()->mutable_timeout()->set_seconds(10'000'000'000);  // 2,777,778 h
  Outcome o = Await(runner_.Run(job, 1, progress_));
  EXPECT_TRUE(o.ok) << o.error.code() << ": " << o.error.message();
}

TEST(IsDeniedJobEnvName, DeniesTheLoaderGlibcAndShellHooks) {
  for (const char* name : {"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "LD_DEBUG_OUTPUT", "LD_ANYTHING_NEW",
                           "MALLOC_TRACE", "MALLOC_ARENA_MAX", "GLIBC_TUNABLES", "GCONV_PATH", "LOCPATH", "NLSPATH",
                           "HOSTALIASES", "RES_OPTIONS", "BASH_ENV", "ENV", "BASH_FUNC_ls%%", "SHELLOPTS"}) {
    EXPECT_TRUE(IsDeniedJobEnvName(name)) << name;
  }
  for (const char* name : {"PATH", "HOME", "LANG", "TZ", "TMPDIR", "PYTHONPATH", "ld_preload", "OLD_PRELOAD"}) {
    EXPECT_FALSE(IsDeniedJobEnvName(name)) << name;
  }
}

}  // namespace
}  // namespace cohort::executor
