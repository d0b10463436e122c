#include "services/executor/process_runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "libs/runtime/runtime.h"

namespace cohort::executor {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Services block SIGTERM and SIGINT in every thread (libs/common/signals.h); do the same
// before main, so every thread (the spawning pool included) inherits the mask and the
// tests check that children still get SIGTERM. SIGHUP is ignored (as under nohup),
// which children must not inherit either. SIGPIPE keeps its default action, so a
// write to a child's closed stdin that raised it would kill this test.
const bool kServiceSignalSetup = [] {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGHUP, SIG_IGN);
  return true;
}();

// As cohort-executor's main does: orphaned grandchildren come back to this process, so
// the tests do not depend on how quickly the machine's init reaps them.
const bool kSubreaper = [] {
  absl::Status s = BecomeChildSubreaper();
  if (!s.ok()) std::abort();
  return true;
}();

// How long any single process scenario may take before the test fails (not a sleep:
// the loop wakes as soon as the result is in).
constexpr runtime::Duration kBound = seconds(20);

bool ProcessGone(pid_t pid) { return kill(pid, 0) == -1 && errno == ESRCH; }

pid_t ParsePid(absl::string_view text) {
  int pid = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid)) return -1;
  return pid;
}

std::string TempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base != nullptr ? base : "/tmp", "/process_runner_XXXXXX");
  EXPECT_NE(mkdtemp(dir.data()), nullptr) << std::strerror(errno);
  return dir;
}

// A named pipe that a child script writes one line to (its pid) once it is ready. The
// line is read on the loop, so a test acts on that event rather than after a sleep.
class ReadyFifo {
 public:
  ReadyFifo() : path_(TempDir() + "/ready") {
    EXPECT_EQ(mkfifo(path_.c_str(), 0600), 0) << std::strerror(errno);
    // Opened before the child starts, so its `echo > fifo` does not wait for a reader.
    fd_ = open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    EXPECT_GE(fd_, 0) << std::strerror(errno);
  }
  ~ReadyFifo() { close(fd_); }

  const std::string& path() const { return path_; }
  // The line received so far (complete once it ends in '\n').
  const std::string& line() const { return line_; }

  // Calls on_line on `loop` once a whole line has arrived.
  void Watch(runtime::EventLoop& loop, absl::AnyInvocable<void()> on_line) {
    on_line_ = std::move(on_line);
    watching_ = loop.AddReader(fd_, [this, &loop] {
                      char buf[64];
                      ssize_t n = read(fd_, buf, sizeof buf);
                      if (n > 0) line_.append(buf, static_cast<std::size_t>(n));
                      bool complete = line_.find('\n') != std::string::npos;
                      if (complete) on_line_();
                      if (n == 0 || complete) Unwatch(loop);
                    })
                    .ok();
    EXPECT_TRUE(watching_);
  }
  void Unwatch(runtime::EventLoop& loop) {
    if (watching_) {
      EXPECT_TRUE(loop.RemoveReader(fd_).ok());
    }
    watching_ = false;
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::string line_;
  bool watching_ = false;
  absl::AnyInvocable<void()> on_line_;
};

// Sets an environment variable for one scope and restores what was there (or its
// absence) on exit, so no test leaks environment into the next one.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class ProcessRunnerTest : public ::testing::Test {
 protected:
  // Runs the loop until `handle` is done, or fails the test after kBound.
  absl::StatusOr<ProcessResult> Await(const runtime::TaskHandle<absl::StatusOr<ProcessResult>>& handle) {
    bool expired = false;
    runtime::TimerId watchdog = loop_.CallLater(kBound, [&] { expired = true; });
    loop_.RunUntil([&] { return handle.Done() || expired; });
    loop_.CancelTimer(watchdog);
    if (!handle.Done()) {
      ADD_FAILURE() << "RunProcess did not finish within the bound";
      return absl::DeadlineExceededError("bound");
    }
    return handle.TakeResult();
  }

  absl::StatusOr<ProcessResult> Run(ProcessSpec spec) {
    return Await(runtime::Spawn(loop_, RunProcess(loop_, std::move(spec))));
  }

  // Runs `script` under /bin/sh with a ReadyFifo's path as $1 and cancels the task
  // running it when the script writes its line there, so the cancellation lands
  // while the child certainly runs. Returns the result and the line.
  std::pair<absl::StatusOr<ProcessResult>, std::string> RunAndCancelWhenReady(const std::string& script,
                                                                               runtime::Duration kill_grace) {
    ReadyFifo ready;
    auto handle = runtime::Spawn(
        loop_, RunProcess(loop_, {.argv = {"/bin/sh", "-c", script, "sh", ready.path()}, .kill_grace = kill_grace}));
    ready.Watch(loop_, [&] { handle.Cancel(); });
    absl::StatusOr<ProcessResult> result = Await(handle);
    ready.Unwatch(loop_);
    return {std::move(result), ready.line()};
  }

  runtime::EventLoop loop_;
};

TEST_F(ProcessRunnerTest, StdoutBecomesTheResult) {
  absl::StatusOr<ProcessResult> r = Run({.argv = {"/bin/echo", "hello", "world"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_FALSE(r->term_signal.has_value());
  EXPECT_TRUE(r->Succeeded());
  EXPECT_EQ(r->stdout_data, "hello world\n");
  EXPECT_FALSE(r->stdout_truncated);
  EXPECT_EQ(r->stderr_data, "");
  EXPECT_GT(r->spawn_latency.count(), 0);
  EXPECT_GT(r->run_duration.count(), 0);
}

TEST_F(ProcessRunnerTest, StderrIsKeptSeparately) {
  absl::StatusOr<ProcessResult> r = Run({.argv = {"/bin/sh", "-c", "echo out; echo err >&2"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_data, "out\n");
  EXPECT_EQ(r->stderr_data, "err\n");
}

TEST_F(ProcessRunnerTest, StdinReceivesThePayload) {
  absl::StatusOr<ProcessResult> r = Run({.argv = {"/bin/cat"}, .stdin_data = "the payload"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->stdout_data, "the payload");
}

TEST_F(ProcessRunnerTest, StdinLargerThanThePipeIsWrittenWhole) {
  std::string payload(1 << 20, 'x');
  for (std::size_t i = 0; i < payload.size(); i += 997) payload[i] = static_cast<char>('a' + i % 26);
  absl::StatusOr<ProcessResult> r = Run({.argv = {"/bin/cat"}, .stdin_data = payload, .max_stdout_bytes = 2 << 20});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->stdout_data, payload);
}

TEST_F(ProcessRunnerTest, ChildThatIgnoresStdinIsNotAnError) {
  absl::StatusOr<ProcessResult> r = Run({.argv = {"/bin/true"}, .stdin_data = std::string(1 << 20, 'x')});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
}

TEST_F(ProcessRunnerTest, NonZeroExitIsReportedWithItsCode) {
  absl::StatusOr<ProcessResult> r = Run({.argv = {"/bin/sh", "-c", "exit 3"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->Succeeded());
  EXPECT_EQ(r->Describe(), "exited with code 3");
}

TEST_F(ProcessRunnerTest, ChildKilledBySignalIsReportedWithTheSignal) {
  // SIGTERM is blocked in this process: the child must get an empty mask to die of it.
  absl::StatusOr<ProcessResult> r = Run({.argv = {"/bin/sh", "-c", "kill -TERM $$; echo survived"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->exit_code.has_value());
  EXPECT_EQ(r->term_signal, SIGTERM);
  EXPECT_EQ(r->stdout_data, "");
  EXPECT_EQ(r->Describe(), "killed by signal 15 (SIGTERM)");
}

TEST_F(ProcessRunnerTest, ChildGetsAnEmptySignalMaskAndDefaultDispositions) {
  absl::StatusOr<ProcessResult> r = Run({.argv = {"/bin/grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"}});
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::string> lines = absl::StrSplit(r->stdout_data, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << r->stdout_data;
  EXPECT_EQ(lines[0], "SigBlk:\t0000000000000000");
  // Standard signals only: glibc's posix_spawn leaves its two internal real-time
  // signals (32, 33) ignored, and the new program's libc sets them up itself.
  std::uint64_t ignored = 0;
  ASSERT_TRUE(absl::SimpleHexAtoi(absl::StripPrefix(lines[1], "SigIgn:\t"), &ignored)) << lines[1];
  EXPECT_EQ(ignored & 0x7fffffffu, 0u) << lines[1];
}

TEST_F(ProcessRunnerTest, ChildInheritsNoOtherFileDescriptors) {
  absl::StatusOr<ProcessResult> r = Run({.argv = {"/bin/ls", "/proc/self/fd"}});
  ASSERT_TRUE(r.ok()) << r.status();
  // 0, 1, 2 and the directory ls itself is reading.
  EXPECT_EQ(r->stdout_data, "0\n1\n2\n3\n");
}

TEST_F(ProcessRunnerTest, TimeoutKillsTheScriptAndItsBackgroundGrandchild) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<ProcessResult> r =
      Run({.argv = {"/bin/sh", "-c", "sleep 1000 & echo $!; wait"}, .timeout = seconds(1), .kill_grace = seconds(30)});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  EXPECT_FALSE(r->cancelled);
  EXPECT_EQ(r->term_signal, SIGTERM);  // the shell died of the SIGTERM, within the grace
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(30));
  EXPECT_FALSE(r->stray_processes);
  EXPECT_EQ(r->Describe(), "timed out (killed by signal 15 (SIGTERM))");
  pid_t grandchild = ParsePid(r->stdout_data);
  ASSERT_GT(grandchild, 0) << r->stdout_data;
  EXPECT_TRUE(ProcessGone(grandchild));
}

TEST_F(ProcessRunnerTest, BackgroundGrandchildDiesWhenTheScriptExits) {
  absl::StatusOr<ProcessResult> r = Run({.argv = {"/bin/sh", "-c", "sleep 1000 & echo $!"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_FALSE(r->timed_out);
  pid_t grandchild = ParsePid(r->stdout_data);
  ASSERT_GT(grandchild, 0) << r->stdout_data;
  EXPECT_TRUE(ProcessGone(grandchild));
}

TEST_F(ProcessRunnerTest, CancellationKillsTheChildWithinTheGrace) {
  const auto start = std::chrono::steady_clock::now();
  auto [r, line] = RunAndCancelWhenReady("echo $$ > \"$1\"; exec sleep 1000", seconds(30));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->cancelled);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->term_signal, SIGTERM);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(30));
  pid_t child = ParsePid(line);
  ASSERT_GT(child, 0) << line;
  EXPECT_TRUE(ProcessGone(child));
}

TEST_F(ProcessRunnerTest, ChildIgnoringSigtermIsKilledAfterTheGrace) {
  const auto start = std::chrono::steady_clock::now();
  auto [r, line] = RunAndCancelWhenReady("trap '' TERM; echo $$ > \"$1\"; exec sleep 1000", milliseconds(300));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->cancelled);
  EXPECT_EQ(r->term_signal, SIGKILL);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(300));
  EXPECT_EQ(r->Describe(), "cancelled (killed by signal 9 (SIGKILL))");
  pid_t child = ParsePid(line);
  ASSERT_GT(child, 0) << line;
  EXPECT_TRUE(ProcessGone(child));
}

TEST_F(ProcessRunnerTest, OutputOverTheCapIsTruncatedAndTheChildCompletes) {
  absl::StatusOr<ProcessResult> r =
      Run({.argv = {"/usr/bin/head", "-c", "5000000", "/dev/zero"}, .max_stdout_bytes = 1000});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->stdout_data, std::string(1000, '\0'));
  EXPECT_TRUE(r->stdout_truncated);
  EXPECT_FALSE(r->stderr_truncated);
}

TEST_F(ProcessRunnerTest, StderrOverTheCapIsTruncated) {
  absl::StatusOr<ProcessResult> r =
      Run({.argv = {"/bin/sh", "-c", "head -c 300000 /dev/zero | tr '\\0' e >&2; echo done"}, .max_stderr_bytes = 10});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->stdout_data, "done\n");
  EXPECT_EQ(r->stderr_data, "eeeeeeeeee");
  EXPECT_TRUE(r->stderr_truncated);
}

TEST_F(ProcessRunnerTest, EnvironmentIsNotInherited) {
  ScopedEnv secret("COHORT_PROCESS_RUNNER_TEST", "secret");
  absl::StatusOr<ProcessResult> r = Run({.argv = {"/usr/bin/env"}, .env = {{"A", "1"}, {"B", "two words"}}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_data, "A=1\nB=two words\n");
}

TEST_F(ProcessRunnerTest, InheritedEnvironmentIsOverriddenBySpecEnv) {
  ScopedEnv secret("COHORT_PROCESS_RUNNER_TEST", "secret");
  ScopedEnv old("COHORT_PROCESS_RUNNER_OVERRIDE", "old");
  absl::StatusOr<ProcessResult> r =
      Run({.argv = {"/usr/bin/env"}, .env = {{"COHORT_PROCESS_RUNNER_OVERRIDE", "new"}}, .inherit_env = true});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(r->stdout_data.find("\nCOHORT_PROCESS_RUNNER_TEST=secret\n"), std::string::npos) << r->stdout_data;
  EXPECT_NE(r->stdout_data.find("COHORT_PROCESS_RUNNER_OVERRIDE=new\n"), std::string::npos);
  EXPECT_EQ(r->stdout_data.find("COHORT_PROCESS_RUNNER_OVERRIDE=old"), std::string::npos);
}

TEST_F(ProcessRunnerTest, CwdIsHonoured) {
  std::string dir = TempDir();
  char real[PATH_MAX];
  ASSERT_NE(realpath(dir.c_str(), real), nullptr);
  absl::StatusOr<ProcessResult> r = Run({.argv = {"/bin/pwd"}, .cwd = dir});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_data, absl::StrCat(real, "\n"));
}

TEST_F(ProcessRunnerTest, MissingProgramIsNotFound) {
  absl::StatusOr<ProcessResult> r = Run({.argv = {"/nonexistent/program"}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_NE(r.status().message().find("/nonexistent/program"), absl::string_view::npos) << r.status();
}

TEST_F(ProcessRunnerTest, MissingCwdIsNotFound) {
  absl::StatusOr<ProcessResult> r = Run({.argv = {"/bin/true"}, .cwd = "/nonexistent/dir"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
}

TEST_F(ProcessRunnerTest, RejectsEmptyArgvRelativeProgramAndBadEnv) {
  EXPECT_EQ(Run({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Run({.argv = {"true"}}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Run({.argv = {"/bin/true"}, .env = {{"A=B", "x"}}}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Run({.argv = {"/bin/true"}, .env = {{"", "x"}}}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Run({.argv = {"/bin/echo", std::string("a\0b", 3)}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ProcessRunnerTest, ManyConcurrentChildrenAllComplete) {
  std::vector<runtime::TaskHandle<absl::StatusOr<ProcessResult>>> handles;
  for (int i = 0; i < 16; ++i) {
    handles.push_back(runtime::Spawn(loop_, RunProcess(loop_, {.argv = {"/bin/echo", absl::StrCat(i)}})));
  }
  for (int i = 0; i < 16; ++i) {
    absl::StatusOr<ProcessResult> r = Await(handles[i]);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->stdout_data, absl::StrCat(i, "\n"));
  }
}

// The fds of this process that are ends of the pipe whose link is `pipe_link`
// ("pipe:[inode]", as readlink of /proc/PID/fd/N gives).
int OpenEndsOfPipe(const std::string& pipe_link) {
  int count = 0;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  while (dirent* entry = readdir(dir)) {
    char target[256] = {};
    std::string path = absl::StrCat("/proc/self/fd/", entry->d_name);
    ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
    if (n > 0 && std::string(target, static_cast<std::size_t>(n)) == pipe_link) ++count;
  }
  closedir(dir);
  return count;
}

int OpenFdCount() {
  int count = 0;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  while (readdir(dir) != nullptr) ++count;
  closedir(dir);
  return count;
}

TEST_F(ProcessRunnerTest, ProgressLinesReachTheCallbackAndMalformedOnesAreCounted) {
  std::vector<ProgressLine> seen;
  absl::StatusOr<ProcessResult> r =
      Run({.argv = {"/bin/sh", "-c",
                    "p=\"$COHORT_PROGRESS_FD\"; echo '0.25 a quarter' >&$p; echo 'not a number' >&$p; echo >&$p; "
                    "echo '1.5 clamped' >&$p; echo 'nan' >&$p; printf '0.75 three quarters' >&$p"},
           .on_progress = [&seen](ProgressLine line) { seen.push_back(std::move(line)); }});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->progress_lines, 3);
  EXPECT_EQ(r->malformed_progress_lines, 3);
  // Lines that arrive together are coalesced: how many are seen depends on timing, but
  // the last one always is, and nothing is seen twice or out of order.
  ASSERT_FALSE(seen.empty());
  EXPECT_LE(seen.size(), 3u);
  EXPECT_EQ(seen.back(), (ProgressLine{0.75, "three quarters"}));
  for (const ProgressLine& line : seen) {
    EXPECT_TRUE(line == (ProgressLine{0.25, "a quarter"}) || line == (ProgressLine{1, "clamped"}) ||
                line == seen.back())
        << line.fraction << " " << line.message;
  }
}

TEST_F(ProcessRunnerTest, ProgressArrivesWhileTheChildRuns) {
  runtime::TaskHandle<absl::StatusOr<ProcessResult>> handle;
  std::vector<ProgressLine> seen;
  int ends_of_pipe = -1;
  handle = runtime::Spawn(
      loop_, RunProcess(loop_, {.argv = {"/bin/sh", "-c",
                                         "echo \"0.5 $$\" >&\"$COHORT_PROGRESS_FD\"; exec sleep 1000"},
                                .on_progress = [&](ProgressLine line) {
                                  seen.push_back(line);
                                  // The child's fd 3 is the pipe's write end: the executor
                                  // holds only the read end of it.
                                  char link[256] = {};
                                  std::string fd3 = absl::StrCat("/proc/", line.message, "/fd/3");
                                  ssize_t n = readlink(fd3.c_str(), link, sizeof link - 1);
                                  if (n > 0) ends_of_pipe = OpenEndsOfPipe(std::string(link, static_cast<std::size_t>(n)));
                                  handle.Cancel();
                                }}));
  absl::StatusOr<ProcessResult> r = Await(handle);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->cancelled);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].fraction, 0.5);
  EXPECT_EQ(ends_of_pipe, 1);
}

TEST_F(ProcessRunnerTest, ProgressFdIsNamedInTheEnvironmentEvenWhenNothingIsInherited) {
  absl::StatusOr<ProcessResult> r =
      Run({.argv = {"/usr/bin/env"}, .env = {{"COHORT_PROGRESS_FD", "9"}}, .on_progress = [](ProgressLine) {}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_data, "COHORT_PROGRESS_FD=3\n");
}

TEST_F(ProcessRunnerTest, WithProgressTheChildHasOnlyStdioAndTheProgressFd) {
  const int fds_before = OpenFdCount();
  absl::StatusOr<ProcessResult> r = Run({.argv = {"/bin/ls", "/proc/self/fd"}, .on_progress = [](ProgressLine) {}});
  ASSERT_TRUE(r.ok()) << r.status();
  // 0, 1, 2, the progress fd and the directory ls itself is reading.
  EXPECT_EQ(r->stdout_data, "0\n1\n2\n3\n4\n");
  EXPECT_EQ(OpenFdCount(), fds_before);  // every pipe end closed again
}

TEST_F(ProcessRunnerTest, WithoutProgressThereIsNoProgressFd) {
  absl::StatusOr<ProcessResult> r = Run({.argv = {"/bin/sh", "-c", "echo \"[$COHORT_PROGRESS_FD]\"; echo x >&3"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_data, "[]\n");
  EXPECT_NE(r->stderr_data, "");  // sh: 3: Bad file descriptor
}

TEST_F(ProcessRunnerTest, OutputBytesCountEverythingTheChildWrote) {
  absl::StatusOr<ProcessResult> r =
      Run({.argv = {"/bin/sh", "-c", "head -c 5000 /dev/zero; head -c 300 /dev/zero >&2"}, .max_stdout_bytes = 100});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_data.size(), 100u);
  EXPECT_EQ(r->stdout_bytes, 5000u);
  EXPECT_EQ(r->stderr_bytes, 300u);
}

TEST_F(ProcessRunnerTest, OnStartedReportsTheSpawnLatency) {
  std::optional<runtime::Duration> latency;
  absl::StatusOr<ProcessResult> r =
      Run({.argv = {"/bin/true"}, .on_started = [&latency](runtime::Duration d) { latency = d; }});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(latency.has_value());
  EXPECT_EQ(*latency, r->spawn_latency);
}

TEST(ProcessRunnerTeardownTest, DestroyingTheLoopMidRunKillsAndReapsTheChild) {
  ReadyFifo ready;
  {
    runtime::EventLoop loop;
    // The child ignores SIGTERM and the grace is long: only the frame's destructor can
    // end it, when the loop's teardown destroys the task mid-grace.
    auto handle = runtime::Spawn(loop, RunProcess(loop, {.argv = {"/bin/sh", "-c",
                                                                  "trap '' TERM; echo $$ > \"$1\"; exec sleep 1000",
                                                                  "sh", ready.path()},
                                                         .kill_grace = seconds(30)}));
    bool expired = false;
    loop.CallLater(kBound, [&] { expired = true; });
    bool ready_seen = false;
    ready.Watch(loop, [&] { ready_seen = true; });
    loop.RunUntil([&] { return ready_seen || expired; });
    ready.Unwatch(loop);
    ASSERT_TRUE(ready_seen);
    EXPECT_FALSE(handle.Done());
  }
  pid_t child = ParsePid(ready.line());
  ASSERT_GT(child, 0) << ready.line();
  EXPECT_TRUE(ProcessGone(child));
}

}  // namespace
}  // namespace cohort::executor
