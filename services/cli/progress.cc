#include "services/cli/progress.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace cohort::cli {
namespace {

constexpr std::size_t kBarWidth = 30;

// Whether a bar's line is on the terminal now, for the signal handler.
std::atomic<bool> line_open{false};

// SIGINT/SIGTERM while a bar is drawn: end its line, so the shell's prompt starts on a
// line of its own, then die of the signal as before (async-signal-safe: write, signal,
// raise only).
extern "C" void EndLineAndDie(int sig) {
  if (line_open.load()) {
    ssize_t written = write(STDERR_FILENO, "\n", 1);
    (void)written;  // nothing to do if stderr is gone: the process is dying anyway
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

std::size_t DistinctCount(const std::vector<std::string>& job_ids) {
  return absl::flat_hash_set<std::string>(job_ids.begin(), job_ids.end()).size();
}

ProgressBar::ProgressBar(std::size_t total) : enabled_(isatty(STDOUT_FILENO) == 1 && total > 0), total_(total) {
  absl::MutexLock lock(&mu_);
  if (!enabled_) return;
  struct sigaction action = {};
  action.sa_handler = EndLineAndDie;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &previous_int_);
  sigaction(SIGTERM, &action, &previous_term_);
  Draw();
}

ProgressBar::~ProgressBar() {
  Erase();
  if (!enabled_) return;
  sigaction(SIGINT, &previous_int_, nullptr);
  sigaction(SIGTERM, &previous_term_, nullptr);
}

void ProgressBar::Advance(std::size_t n) {
  absl::MutexLock lock(&mu_);
  done_ += n;
  if (enabled_) Draw();
}

void ProgressBar::Erase() {
  absl::MutexLock lock(&mu_);
  if (!drawn_) return;
  std::fputs("\r\x1b[K", stderr);
  std::fflush(stderr);
  drawn_ = false;
  line_open.store(false);
}

void ProgressBar::Draw() {
  const std::size_t done = std::min(done_, total_);
  const std::size_t filled = done * kBarWidth / total_;
  const std::string line = absl::StrCat("\r\x1b[K[", std::string(filled, '#'), std::string(kBarWidth - filled, '-'),
                                        "] ", done, "/", total_, " done");
  // Open before the first byte is written: a signal that lands just after the write
  // must still end the line (the test that sends SIGINT on seeing the bar caught this).
  line_open.store(true);
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  drawn_ = true;
}

CompletionProgress::CompletionProgress(cohort::v1::Broker::Stub& stub, const std::vector<std::string>& job_ids)
    : bar_(std::make_unique<ProgressBar>(DistinctCount(job_ids))) {
  if (!bar_->enabled()) return;
  cohort::v1::AsCompletedRequest request;
  for (const std::string& id : job_ids) request.add_job_ids(id);
  follower_ = std::thread([this, &stub, request = std::move(request)] {
    std::unique_ptr<grpc::ClientReader<cohort::v1::AsCompletedResponse>> stream = stub.AsCompleted(&call_, request);
    cohort::v1::AsCompletedResponse response;
    while (stream->Read(&response)) bar_->Advance();
    // Ends OK after the last job, or CANCELLED by the destructor: either way the bar
    // only decorates the real call, whose status the command reports.
    stream->Finish().ok();
  });
}

CompletionProgress::~CompletionProgress() {
  if (follower_.joinable()) {
    call_.TryCancel();
    follower_.join();
  }
  bar_->Erase();
}

}  // namespace cohort::cli
