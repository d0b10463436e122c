#include "tests/fault/fault_cluster.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"

namespace cohort::testing {

using cohort::v1::JobState;

cohort::v1::JobSpec RunLog::Job(absl::Duration run_for, int max_attempts) const {
  cohort::v1::JobSpec s;
  s.set_queue("default");
  s.set_kind("exec");
  s.set_max_attempts(max_attempts);
  s.mutable_backoff()->mutable_initial()->set_nanos(50'000'000);
  s.mutable_backoff()->set_multiplier(1);
  s.mutable_command()->add_argv("/bin/sh");
  s.mutable_command()->add_argv("-c");
  s.mutable_command()->add_argv(
      absl::StrCat("echo \"$COHORT_JOB_ID $COHORT_ATTEMPT\" >> '", path_, "' && exec /bin/sleep ",
                   absl::ToDoubleSeconds(run_for)));
  return s;
}

std::map<std::string, std::vector<int>> RunLog::Runs() const {
  std::map<std::string, std::vector<int>> runs;
  std::ifstream in(path_);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> words = absl::StrSplit(line, ' ');
    int attempt = 0;
    EXPECT_TRUE(words.size() == 2 && absl::SimpleAtoi(words[1], &attempt)) << "bad run log line: " << line;
    if (words.size() == 2) runs[words[0]].push_back(attempt);
  }
  return runs;
}

std::vector<std::string> ExecutorArgs(const std::string& broker, const std::string& id, int capacity) {
  return {"--broker=" + broker,        "--listen=127.0.0.1:0",  "--metrics-listen=127.0.0.1:0",
          "--executor-id=" + id,       absl::StrCat("--capacity=", capacity), "--allow-exec=/bin/sh",
          "--kill-grace=200ms",        "--drain-grace=1s"};
}

std::vector<std::string> BrokerArgs(const std::string& data_dir) {
  return {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--data-dir=" + data_dir,
          absl::StrCat("--lease=", absl::FormatDuration(kLease)), "--heartbeat-interval=300ms"};
}

std::unique_ptr<grpc::ClientContext> Deadline(std::chrono::milliseconds after) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + after);
  return ctx;
}

std::unique_ptr<cohort::v1::Broker::Stub> BrokerStub(const std::string& address) {
  return cohort::v1::Broker::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

std::vector<std::string> SubmitAll(cohort::v1::Broker::Stub& stub, const std::vector<cohort::v1::JobSpec>& specs) {
  cohort::v1::SubmitRequest req;
  for (const auto& s : specs) *req.add_jobs() = s;
  cohort::v1::SubmitResponse resp;
  auto ctx = Deadline(std::chrono::seconds(30));
  grpc::Status status = stub.Submit(ctx.get(), req, &resp);
  EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  return {resp.job_ids().begin(), resp.job_ids().end()};
}

bool AwaitAllRunning(cohort::v1::Broker::Stub& stub, const std::vector<std::string>& ids, absl::Duration timeout) {
  std::set<std::string> waiting(ids.begin(), ids.end());
  auto ctx = Deadline(std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  auto reader = stub.Watch(ctx.get(), cohort::v1::WatchRequest());
  cohort::v1::WatchResponse batch;
  while (!waiting.empty() && reader->Read(&batch)) {
    for (const auto& e : batch.events()) {
      if (e.to_state() == cohort::v1::JOB_STATE_RUNNING) waiting.erase(e.job_id());
    }
  }
  ctx->TryCancel();
  reader->Finish().error_code();
  return waiting.empty();
}

namespace {

bool IsTerminal(JobState s) {
  return s == cohort::v1::JOB_STATE_SUCCEEDED || s == cohort::v1::JOB_STATE_FAILED ||
         s == cohort::v1::JOB_STATE_CANCELLED;
}

}  // namespace

void CheckInvariants(cohort::v1::Broker::Stub& stub, const std::vector<std::string>& ids, const RunLog& log,
                     Expect expect, absl::Duration timeout) {
  // Every acknowledged job ends (event-driven: the broker's Wait, ALL_COMPLETED).
  constexpr size_t kChunk = 1000;
  const absl::Time give_up = absl::Now() + timeout;
  for (size_t first = 0; first < ids.size(); first += kChunk) {
    cohort::v1::WaitRequest req;
    for (size_t i = first; i < std::min(ids.size(), first + kChunk); ++i) req.add_job_ids(ids[i]);
    req.set_return_when(cohort::v1::RETURN_WHEN_ALL_COMPLETED);
    const absl::Duration left = std::max(give_up - absl::Now(), absl::Seconds(1));
    req.mutable_timeout()->set_seconds(absl::ToInt64Seconds(left));
    cohort::v1::WaitResponse resp;
    auto ctx = Deadline(std::chrono::milliseconds(absl::ToInt64Milliseconds(left + absl::Seconds(10))));
    grpc::Status status = stub.Wait(ctx.get(), req, &resp);
    // NOT_FOUND here means an acknowledged job is gone; GetJob below names it.
    if (status.ok()) {
      EXPECT_EQ(resp.pending_size(), 0) << resp.pending_size() << " acknowledged jobs did not end within "
                                        << absl::FormatDuration(timeout) << ", e.g. " << resp.pending(0);
    } else {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
    }
  }

  const std::map<std::string, std::vector<int>> runs = log.Runs();
  int lost = 0, unfinished = 0, twice = 0, never_ran = 0, repeated = 0, failed = 0;
  for (const std::string& id : ids) {
    cohort::v1::GetJobRequest req;
    req.set_job_id(id);
    cohort::v1::GetJobResponse resp;
    auto ctx = Deadline(std::chrono::seconds(10));
    grpc::Status status = stub.GetJob(ctx.get(), req, &resp);
    if (!status.ok()) {
      if (++lost <= 5) ADD_FAILURE() << "acknowledged job " << id << " is lost: " << status.error_message();
      continue;
    }
    const cohort::v1::Job& job = resp.job();
    if (!IsTerminal(job.state())) {
      if (++unfinished <= 5) ADD_FAILURE() << "job " << id << " never ended: " << job.ShortDebugString();
      continue;
    }
    auto it = runs.find(id);
    const std::vector<int> attempts = it == runs.end() ? std::vector<int>() : it->second;
    std::vector<int> sorted = attempts;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
      if (++twice <= 5) {
        ADD_FAILURE() << "an attempt of job " << id << " ran twice; runs (attempts): "
                      << absl::StrJoin(attempts, ",") << "; job: " << job.ShortDebugString();
      }
    }
    if (!sorted.empty() && sorted.back() > job.attempt()) {
      ADD_FAILURE() << "job " << id << " ran attempt " << sorted.back() << " beyond its last attempt "
                    << job.attempt();
    }
    if (job.state() == cohort::v1::JOB_STATE_SUCCEEDED &&
        std::find(sorted.begin(), sorted.end(), job.attempt()) == sorted.end()) {
      if (++never_ran <= 5) {
        ADD_FAILURE() << "job " << id << " SUCCEEDED with attempt " << job.attempt()
                      << " that never ran; runs: " << absl::StrJoin(attempts, ",");
      }
    }
    if (expect.exactly_once && attempts.size() != 1) {
      if (++repeated <= 5) {
        ADD_FAILURE() << "job " << id << " ran " << attempts.size()
                      << " times where the contract promises once (attempts "
                      << absl::StrJoin(attempts, ",") << "); job: " << job.ShortDebugString();
      }
    }
    if (expect.all_succeed && job.state() != cohort::v1::JOB_STATE_SUCCEEDED) {
      if (++failed <= 5) ADD_FAILURE() << "job " << id << " did not succeed: " << job.ShortDebugString();
    }
  }
  EXPECT_EQ(lost, 0) << "acknowledged jobs lost, of " << ids.size();
  EXPECT_EQ(unfinished, 0) << "jobs never ended, of " << ids.size();
  EXPECT_EQ(twice, 0) << "jobs with an attempt that ran twice, of " << ids.size();
  EXPECT_EQ(never_ran, 0) << "jobs that succeeded with an attempt that never ran, of " << ids.size();
  if (expect.exactly_once) {
    EXPECT_EQ(repeated, 0) << "jobs run more than once, of " << ids.size();
  }
  if (expect.all_succeed) {
    EXPECT_EQ(failed, 0) << "jobs that did not succeed, of " << ids.size();
  }
}

}  // namespace cohort::testing
