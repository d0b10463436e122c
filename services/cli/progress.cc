#include "services/cli/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace cohort::cli {
namespace {

constexpr std::size_t kBarWidth = 30;

}  // namespace

std::size_t DistinctCount(const std::vector<std::string>& job_ids) {
  return absl::flat_hash_set<std::string>(job_ids.begin(), job_ids.end()).size();
}

ProgressBar::ProgressBar(std::size_t total) : enabled_(isatty(STDOUT_FILENO) == 1 && total > 0), total_(total) {
  absl::MutexLock lock(&mu_);
  if (enabled_) Draw();
}

ProgressBar::~ProgressBar() { Erase(); }

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
}

void ProgressBar::Draw() {
  const std::size_t done = std::min(done_, total_);
  const std::size_t filled = done * kBarWidth / total_;
  const std::string line = absl::StrCat("\r\x1b[K[", std::string(filled, '#'), std::string(kBarWidth - filled, '-'),
                                        "] ", done, "/", total_, " done");
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
