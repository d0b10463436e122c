// A real crash: a child process commits in a loop and reports every acknowledged job
// id over a pipe; the parent SIGKILLs it at an arbitrary moment, reopens the store and
// checks that every acknowledged job is there. Several rounds on the same directory,
// so that recovery after a crash is itself crashed into. Run with several concurrent
// writers (commits merged by the writer thread, some inline) and with one (every commit
// on an idle loop: written inline, on the loop's own thread).
//
// The child is this test binary re-executed (fork + execve), so that it starts with a
// fresh RocksDB environment: a forked copy of a process with RocksDB's threads would
// have lost them.

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "libs/runtime/runtime.h"
#include "libs/store/recover_all.h"
#include "libs/store/rocks_job_store.h"

extern char** environ;

namespace cohort::store {
namespace {

using runtime::Task;

constexpr char kDirEnv[] = "COHORT_CRASH_CHILD_DIR";
constexpr char kFdEnv[] = "COHORT_CRASH_CHILD_FD";
constexpr char kRoundEnv[] = "COHORT_CRASH_CHILD_ROUND";
constexpr char kWritersEnv[] = "COHORT_CRASH_CHILD_WRITERS";
constexpr std::size_t kAcksPerRound = 3000;

// One writer of the child: commits batches of 1-8 new jobs (each with its event) for
// ever, and after each acknowledged commit writes their ids to `fd`, one per line. A
// lone writer's commits must be written inline: it exits (failing the test) if its
// first 20 were not.
Task<void> Writer(JobStore& store, int fd, int round, int writer, bool lone) {
  for (int n = 0;; ++n) {
    JobBatch batch;
    std::string acked;
    for (int k = 0; k <= n % 8; ++k) {
      cohort::v1::Job job;
      job.set_id(absl::StrCat("r", round, "-w", writer, "-", n, "-", k));
      job.mutable_spec()->set_queue("crash");
      job.mutable_spec()->set_payload(std::string(150, 'p'));
      job.set_state(cohort::v1::JOB_STATE_QUEUED);
      batch.PutJob(job, nullptr);
      absl::StrAppend(&acked, job.id(), "\n");
    }
    absl::Status s = co_await store.Commit(std::move(batch));
    if (!s.ok()) {
      fprintf(stderr, "child: commit failed: %s\n", s.ToString().c_str());
      _exit(3);
    }
    if (lone && n == 20 && store.stats().inline_commits != 21) {
      fprintf(stderr, "child: %d of 21 commits written inline\n", static_cast<int>(store.stats().inline_commits));
      _exit(7);
    }
    // Under PIPE_BUF (4096 bytes): one atomic write, so lines never interleave.
    if (write(fd, acked.data(), acked.size()) != static_cast<ssize_t>(acked.size())) _exit(4);
  }
}

[[noreturn]] void RunChild(const std::string& dir, int fd, int round, int writers) {
  absl::StatusOr<std::unique_ptr<RocksJobStore>> store = RocksJobStore::Open(RocksJobStoreOptions{.path = dir});
  if (!store.ok()) {
    fprintf(stderr, "child: %s\n", store.status().ToString().c_str());
    _exit(2);
  }
  runtime::EventLoop loop;
  std::vector<Task<void>> tasks;
  for (int w = 0; w < writers; ++w) tasks.push_back(Writer(**store, fd, round, w, writers == 1));
  runtime::RunUntilComplete(loop, runtime::Gather(std::move(tasks)));
  _exit(5);  // the writers never finish
}

// Starts the child for `round`; returns its pid and the read end of its pipe.
std::pair<pid_t, int> StartChild(const std::string& dir, int round, int writers) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0) << strerror(errno);
  // Everything the child needs is built before fork: only exec-safe calls follow it.
  std::vector<std::string> env_strings = {absl::StrCat(kDirEnv, "=", dir), absl::StrCat(kFdEnv, "=", fds[1]),
                                          absl::StrCat(kRoundEnv, "=", round), absl::StrCat(kWritersEnv, "=", writers)};
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view var(*e);
    // The child must not touch the parent's test result files.
    if (absl::StartsWith(var, "XML_OUTPUT_FILE=") || absl::StartsWith(var, "TEST_PREMATURE_EXIT_FILE=")) continue;
    env_strings.emplace_back(var);
  }
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string filter = "--gtest_filter=RocksJobStoreCrash.*";
  std::string exe = "/proc/self/exe";
  char* argv[] = {exe.data(), filter.data(), nullptr};

  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    execve(exe.c_str(), argv, envp.data());
    _exit(127);
  }
  close(fds[1]);
  return {pid, fds[0]};
}

// Reads whole lines from fd until `want` ids arrived (or EOF if want is 0).
bool ReadIds(int fd, std::size_t want, std::string& buffer, std::vector<std::string>& ids) {
  char chunk[4096];
  while (want == 0 || ids.size() < want) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return want == 0;
    buffer.append(chunk, n);
    std::size_t end;
    while ((end = buffer.find('\n')) != std::string::npos) {
      ids.push_back(buffer.substr(0, end));
      buffer.erase(0, end + 1);
    }
  }
  return true;
}

// In the re-executed child (its environment says so): runs it, never returns.
void RunChildIfAsked() {
  if (const char* dir = getenv(kDirEnv)) {
    int fd = 0;
    int round = 0;
    int writers = 0;
    if (!absl::SimpleAtoi(getenv(kFdEnv), &fd) || !absl::SimpleAtoi(getenv(kRoundEnv), &round) ||
        !absl::SimpleAtoi(getenv(kWritersEnv), &writers)) {
      _exit(6);
    }
    RunChild(dir, fd, round, writers);
  }
}

// Three rounds of: start a child with `writers` writers, SIGKILL it once enough
// commits were acknowledged, reopen the store and check every acknowledged job.
void CrashRounds(int writers) {
  std::string dir = absl::StrCat(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp", "/crash-XXXXXX");
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  std::vector<std::string> acknowledged;
  for (int round = 0; round < 3; ++round) {
    auto [pid, fd] = StartChild(dir, round, writers);
    std::string partial;
    bool enough = ReadIds(fd, acknowledged.size() + kAcksPerRound, partial, acknowledged);
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(enough) << "the child died early; status " << status;
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
    // Lines the child wrote before dying were acknowledged too.
    ASSERT_TRUE(ReadIds(fd, 0, partial, acknowledged));
    close(fd);
    EXPECT_EQ(partial, "") << "a torn line: writes under PIPE_BUF are atomic";

    absl::StatusOr<std::unique_ptr<RocksJobStore>> store = RocksJobStore::Open(RocksJobStoreOptions{.path = dir});
    ASSERT_TRUE(store.ok()) << store.status();
    runtime::EventLoop loop;
    absl::StatusOr<RecoveredStore> state = runtime::RunUntilComplete(loop, RecoverAll(**store));
    ASSERT_TRUE(state.ok()) << state.status();
    absl::flat_hash_set<std::string> stored;
    for (const cohort::v1::Job& job : state->jobs) stored.insert(job.id());
    absl::flat_hash_set<std::string> ready;
    for (const ReadyEntry& e : state->ready) ready.insert(e.job_id);
    std::size_t missing = 0;
    for (const std::string& id : acknowledged) {
      if (!stored.contains(id) || !ready.contains(id)) {
        if (++missing <= 5) ADD_FAILURE() << "acknowledged job " << id << " lost after SIGKILL in round " << round;
      }
    }
    EXPECT_EQ(missing, 0u) << "of " << acknowledged.size() << " acknowledged";
    EXPECT_GE(stored.size(), acknowledged.size());
  }
}

TEST(RocksJobStoreCrash, EveryAcknowledgedCommitSurvivesSigkill) {
  RunChildIfAsked();
  CrashRounds(4);
}

TEST(RocksJobStoreCrash, EveryAcknowledgedInlineCommitSurvivesSigkill) {
  RunChildIfAsked();
  CrashRounds(1);
}

}  // namespace
}  // namespace cohort::store
