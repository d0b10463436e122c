#include "tests/replication/history.h"

#include <fstream>
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace cohort::testing {
namespace {

// gRPC's (and absl's) codes for the two statuses a client retries a wait on.
constexpr int kCancelled = 1;
constexpr int kUnavailable = 14;

std::string StateName(cohort::v1::JobState state) { return cohort::v1::JobState_Name(state); }

std::string Describe(const std::vector<const History::Operation*>& ops) {
  std::vector<std::string> parts;
  for (const History::Operation* op : ops) parts.push_back(op->Describe());
  return absl::StrJoin(parts, "; ");
}

}  // namespace

std::string History::Operation::Describe() const {
  std::string what;
  switch (kind) {
    case Kind::kSubmitAcked:
      what = absl::StrCat("submit key=", key, " acknowledged as job ", job_id);
      break;
    case Kind::kCompletionAcked:
      what = absl::StrCat("completion of job ", job_id, " attempt ", attempt, " acknowledged");
      break;
    case Kind::kRun:
      what = absl::StrCat("run of job ", job_id, " attempt ", attempt);
      break;
    case Kind::kWaitAnswered:
      what = absl::StrCat("wait on job ", job_id, " answered ", StateName(state),
                          state == cohort::v1::JOB_STATE_SUCCEEDED ? absl::StrCat(" result=\"", absl::CEscape(result), "\"")
                                                                   : "");
      break;
    case Kind::kWaitInterrupted:
      what = absl::StrCat("wait on job ", job_id, " interrupted with code ", status_code, " (", message.substr(0, 120), ")");
      break;
  }
  return absl::StrFormat("#%d %s at %.3fs", sequence, what, absl::ToDoubleSeconds(at));
}

void History::Add(Operation op) {
  absl::MutexLock lock(&mu_);
  op.sequence = static_cast<int64_t>(ops_.size()) + 1;
  op.at = absl::Now() - start_;
  ops_.push_back(std::move(op));
}

void History::SubmitAcknowledged(const std::string& key, const std::string& job_id) {
  Operation op;
  op.kind = Operation::Kind::kSubmitAcked;
  op.job_id = job_id;
  op.key = key;
  Add(std::move(op));
}

void History::CompletionAcknowledged(const std::string& job_id, int attempt) {
  Operation op;
  op.kind = Operation::Kind::kCompletionAcked;
  op.job_id = job_id;
  op.attempt = attempt;
  Add(std::move(op));
}

void History::Ran(const std::string& job_id, int attempt) {
  Operation op;
  op.kind = Operation::Kind::kRun;
  op.job_id = job_id;
  op.attempt = attempt;
  Add(std::move(op));
}

void History::WaitAnswered(const std::string& job_id, cohort::v1::JobState state, const std::string& result) {
  Operation op;
  op.kind = Operation::Kind::kWaitAnswered;
  op.job_id = job_id;
  op.state = state;
  op.result = result;
  Add(std::move(op));
}

void History::WaitInterrupted(const std::string& job_id, int status_code, const std::string& message) {
  Operation op;
  op.kind = Operation::Kind::kWaitInterrupted;
  op.job_id = job_id;
  op.status_code = status_code;
  op.message = message;
  Add(std::move(op));
}

absl::Status History::LoadRuns(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the run log ", path));
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::vector<std::string> words = absl::StrSplit(line, ' ');
    int attempt = 0;
    if (words.size() != 2 || words[0].empty() || !absl::SimpleAtoi(words[1], &attempt) || attempt < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", n, ": not \"JOB_ID ATTEMPT\": \"", absl::CEscape(line.substr(0, 200)), "\""));
    }
    Ran(words[0], attempt);
  }
  return absl::OkStatus();
}

std::vector<History::Operation> History::Operations() const {
  absl::MutexLock lock(&mu_);
  return ops_;
}

std::vector<std::string> History::JobIds() const {
  std::set<std::string> ids;
  for (const Operation& op : Operations()) ids.insert(op.job_id);
  return {ids.begin(), ids.end()};
}

std::vector<std::string> History::Check(const std::map<std::string, cohort::v1::Job>& final_jobs) const {
  const std::vector<Operation> ops = Operations();
  std::vector<std::string> violations;
  auto final_of = [&](const std::string& id) -> const cohort::v1::Job* {
    auto it = final_jobs.find(id);
    return it == final_jobs.end() ? nullptr : &it->second;
  };

  std::map<std::string, std::vector<const Operation*>> submits_by_key;
  std::map<std::string, std::vector<const Operation*>> runs_by_job;
  std::map<std::pair<std::string, int>, std::vector<const Operation*>> runs_by_attempt;
  std::set<std::string> acknowledged;
  for (const Operation& op : ops) {
    switch (op.kind) {
      case Operation::Kind::kSubmitAcked:
        submits_by_key[op.key].push_back(&op);
        break;
      case Operation::Kind::kRun:
        runs_by_job[op.job_id].push_back(&op);
        runs_by_attempt[{op.job_id, op.attempt}].push_back(&op);
        break;
      default:
        break;
    }
  }

  for (const auto& [key, submits] : submits_by_key) {
    std::set<std::string> ids;
    for (const Operation* op : submits) ids.insert(op->job_id);
    if (ids.size() > 1) {
      violations.push_back(absl::StrCat("duplicate: idempotency key ", key, " acknowledged as ", ids.size(),
                                        " jobs: ", Describe(submits)));
    }
  }

  for (const Operation& op : ops) {
    const cohort::v1::Job* job = final_of(op.job_id);
    switch (op.kind) {
      case Operation::Kind::kSubmitAcked:
        if (!acknowledged.insert(op.job_id).second) break;  // the same job acknowledged again
        if (job == nullptr) {
          violations.push_back(absl::StrCat("lost: ", op.Describe(), "; the leader does not have the job"));
        } else if (job->state() != cohort::v1::JOB_STATE_SUCCEEDED) {
          violations.push_back(absl::StrCat("not ended: ", op.Describe(), "; the job is ", StateName(job->state()),
                                            " at attempt ", job->attempt()));
        }
        break;
      case Operation::Kind::kCompletionAcked: {
        if (job == nullptr || job->state() != cohort::v1::JOB_STATE_SUCCEEDED || job->attempt() != op.attempt) {
          violations.push_back(absl::StrCat(
              "completion: ", op.Describe(), "; the job is ",
              job == nullptr ? "unknown" : absl::StrCat(StateName(job->state()), " at attempt ", job->attempt())));
        }
        if (!runs_by_attempt.contains({op.job_id, op.attempt})) {
          violations.push_back(absl::StrCat("completion: ", op.Describe(), "; that attempt never ran"));
        }
        break;
      }
      case Operation::Kind::kWaitAnswered:
        if (job == nullptr) {
          violations.push_back(absl::StrCat("wrong answer: ", op.Describe(), "; the leader does not have the job"));
        } else if (job->state() != op.state ||
                   (op.state == cohort::v1::JOB_STATE_SUCCEEDED && job->result() != op.result)) {
          violations.push_back(absl::StrCat("wrong answer: ", op.Describe(), "; the job ended ", StateName(job->state()),
                                            " result=\"", absl::CEscape(job->result()), "\""));
        }
        break;
      case Operation::Kind::kWaitInterrupted:
        if (op.status_code != kUnavailable && op.status_code != kCancelled) {
          violations.push_back(absl::StrCat("bad status: ", op.Describe(),
                                            "; a wait interrupted by a failover must end UNAVAILABLE or CANCELLED"));
        }
        break;
      case Operation::Kind::kRun:
        break;
    }
  }

  for (const auto& [attempt, runs] : runs_by_attempt) {
    if (runs.size() > 1) {
      violations.push_back(absl::StrCat("ran twice: job ", attempt.first, " attempt ", attempt.second, " ran ",
                                        runs.size(), " times: ", Describe(runs)));
    }
  }
  for (const auto& [id, runs] : runs_by_job) {
    const cohort::v1::Job* job = final_of(id);
    if (job == nullptr) {
      violations.push_back(absl::StrCat("phantom: job ", id, " ran but the leader does not have it: ", Describe(runs)));
      continue;
    }
    std::vector<const Operation*> beyond;
    for (const Operation* run : runs) {
      if (run->attempt > job->attempt()) beyond.push_back(run);
    }
    if (!beyond.empty()) {
      violations.push_back(absl::StrCat("overrun: job ", id, " records attempt ", job->attempt(),
                                        " but ran a later one: ", Describe(beyond)));
    } else if (static_cast<int64_t>(runs.size()) > job->attempt()) {
      violations.push_back(absl::StrCat("overrun: job ", id, " records ", job->attempt(), " attempts but ran ",
                                        runs.size(), " times: ", Describe(runs)));
    }
  }
  for (const auto& [id, job] : final_jobs) {
    if (job.state() == cohort::v1::JOB_STATE_SUCCEEDED && !runs_by_job.contains(id)) {
      violations.push_back(absl::StrCat("unrun: job ", id, " SUCCEEDED at attempt ", job.attempt(), " with no recorded run"));
    }
  }
  return violations;
}

}  // namespace cohort::testing
