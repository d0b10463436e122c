#pragma once

#include <signal.h>

#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/client_context.h"
#include "protos/cohort/v1/broker.grpc.pb.h"

namespace cohort::cli {

// A one-line progress bar on stderr, "[########------------] 12/30 done", for commands
// that wait on many jobs. Drawn only when stdout is a terminal, so a person sees it and
// a script that captures stdout gets nothing extra on stderr. The line is redrawn in
// place and erased by Erase() or the destructor. While it is enabled, SIGINT and SIGTERM
// (Ctrl-C) end the line before the process dies of them, so the shell prompt does not
// land on the bar. Thread-safe; one bar at a time.
class ProgressBar {
 public:
  explicit ProgressBar(std::size_t total);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Whether the bar is drawn at all (stdout is a terminal).
  bool enabled() const { return enabled_; }
  // Counts `n` more jobs done and redraws.
  void Advance(std::size_t n = 1);
  // Removes the line, e.g. before printing a row on stdout; the next Advance() draws
  // it again.
  void Erase();

 private:
  void Draw() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const bool enabled_;
  const std::size_t total_;
  struct sigaction previous_int_ = {};
  struct sigaction previous_term_ = {};
  absl::Mutex mu_;
  std::size_t done_ ABSL_GUARDED_BY(mu_) = 0;
  bool drawn_ ABSL_GUARDED_BY(mu_) = false;
};

// Keeps a ProgressBar up to date while the caller blocks in another call (Gather,
// Wait): a background thread follows an AsCompleted stream of the same jobs, so the
// bar moves as the broker pushes each job's end; nothing polls. When the bar is
// disabled no stream is opened. The destructor cancels the stream, joins the thread
// and erases the bar, so destroy it before printing the results.
class CompletionProgress {
 public:
  CompletionProgress(cohort::v1::Broker::Stub& stub, const std::vector<std::string>& job_ids);
  ~CompletionProgress();
  CompletionProgress(const CompletionProgress&) = delete;
  CompletionProgress& operator=(const CompletionProgress&) = delete;

 private:
  std::unique_ptr<ProgressBar> bar_;
  grpc::ClientContext call_;
  std::thread follower_;
};

// The number of distinct ids: what AsCompleted streams and a bar counts to.
std::size_t DistinctCount(const std::vector<std::string>& job_ids);

}  // namespace cohort::cli
