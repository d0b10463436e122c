#include "services/dev/demo.h"

#include <algorithm>
#include <optional>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/sync_stream.h"
#include "libs/common/proto_time.h"
#include "services/dev/progress_bar.h"

namespace cohort::dev {
namespace {

using cohort::v1::JobOutcome;
using cohort::v1::JobSpec;
using cohort::v1::JobState;

// How long a call may outlive its step's deadline: waits are given the step's time
// left as their own timeout, and should answer (with what is pending) before this.
constexpr absl::Duration kCallSlack = absl::Seconds(2);

std::string StateName(JobState state) {
  std::string name = cohort::v1::JobState_Name(state);
  constexpr absl::string_view kPrefix = "JOB_STATE_";
  return absl::string_view(name).substr(0, kPrefix.size()) == kPrefix ? name.substr(kPrefix.size()) : name;
}

absl::Status FromGrpc(const grpc::Status& status, absl::string_view what) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

std::string Seconds(absl::Duration d) { return absl::StrFormat("%.2f s", absl::ToDoubleSeconds(d)); }

}  // namespace

std::unique_ptr<grpc::ClientContext> Demo::Context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(step_deadline_ + kCallSlack));
  return ctx;
}

void Demo::StartStep(const std::string& title) {
  ++step_;
  step_deadline_ = absl::Now() + options_.step_timeout;
  std::fprintf(out_, "\n%d. %s\n", step_, title.c_str());
  std::fflush(out_);
}

JobSpec Demo::Spec(const std::string& kind, const std::string& payload, int priority) const {
  JobSpec spec;
  spec.set_queue(options_.queue);
  spec.set_kind(kind);
  spec.set_payload(payload);
  spec.set_priority(priority);
  return spec;
}

absl::StatusOr<std::vector<std::string>> Demo::Submit(const std::vector<JobSpec>& specs) {
  cohort::v1::SubmitRequest request;
  for (const JobSpec& spec : specs) *request.add_jobs() = spec;
  cohort::v1::SubmitResponse response;
  std::unique_ptr<grpc::ClientContext> ctx = Context();
  grpc::Status status = stub_.Submit(ctx.get(), request, &response);
  if (!status.ok()) return FromGrpc(status, "Submit");
  if (response.job_ids_size() != request.jobs_size()) {
    return absl::InternalError(absl::StrCat("Submit returned ", response.job_ids_size(), " ids for ",
                                            request.jobs_size(), " jobs"));
  }
  return std::vector<std::string>(response.job_ids().begin(), response.job_ids().end());
}

absl::StatusOr<cohort::v1::Job> Demo::Get(const std::string& id) {
  cohort::v1::GetJobRequest request;
  request.set_job_id(id);
  cohort::v1::GetJobResponse response;
  std::unique_ptr<grpc::ClientContext> ctx = Context();
  grpc::Status status = stub_.GetJob(ctx.get(), request, &response);
  if (!status.ok()) return FromGrpc(status, "GetJob");
  return response.job();
}

absl::StatusOr<std::vector<JobOutcome>> Demo::AwaitAll(const std::vector<std::string>& ids) {
  cohort::v1::WaitRequest request;
  for (const std::string& id : ids) request.add_job_ids(id);
  request.set_return_when(cohort::v1::RETURN_WHEN_ALL_COMPLETED);
  *request.mutable_timeout() = common::ToProto(std::max(step_deadline_ - absl::Now(), absl::ZeroDuration()));
  cohort::v1::WaitResponse response;
  std::unique_ptr<grpc::ClientContext> ctx = Context();
  grpc::Status status = stub_.Wait(ctx.get(), request, &response);
  if (!status.ok()) return FromGrpc(status, "Wait");
  for (const JobOutcome& outcome : response.done()) Count(outcome.state());
  if (response.pending_size() > 0) {
    return absl::DeadlineExceededError(absl::StrCat(
        response.pending_size(), " job(s) had not ended after ", absl::FormatDuration(options_.step_timeout), ": ",
        absl::StrJoin(response.pending(), ", ")));
  }
  return std::vector<JobOutcome>(response.done().begin(), response.done().end());
}

absl::Status Demo::FanOutAndGather() {
  const int n = options_.jobs;
  const int batches = std::clamp(options_.batches, 1, n);
  StartStep(absl::StrCat("Fan-out: ", WithCommas(n), " jobs (builtin.echo, builtin.noop) at priorities 0, 5 and 9, in ",
                         batches, " Submit calls, followed by AsCompleted"));
  constexpr int kPriorities[] = {0, 5, 9};
  std::vector<JobSpec> specs;
  specs.reserve(n);
  for (int i = 0; i < n; ++i) {
    const bool echo = i % 2 == 0;
    specs.push_back(Spec(echo ? "builtin.echo" : "builtin.noop", echo ? absl::StrCat("result of job ", i) : "",
                         kPriorities[i % 3]));
  }

  std::optional<ProgressBar> bar;
  if (options_.progress) bar.emplace(stderr, "   done", n);
  // One AsCompleted stream per Submit batch, opened right after it, each read on a
  // thread of its own: a job's latency is from its Submit being sent to its outcome
  // arriving.
  struct Stream {
    std::unique_ptr<grpc::ClientContext> ctx;
    std::thread reader;
    grpc::Status status;
    int received = 0;
    absl::Time last;
  };
  std::vector<std::unique_ptr<Stream>> streams;
  std::vector<std::string> ids;
  ids.reserve(n);
  std::vector<absl::Duration> latency(n);
  std::vector<JobState> states(n, cohort::v1::JOB_STATE_UNSPECIFIED);
  const absl::Time first_submit = absl::Now();
  absl::Status submitted = absl::OkStatus();
  for (int b = 0; b < batches && submitted.ok(); ++b) {
    const int begin = static_cast<int>(static_cast<std::int64_t>(n) * b / batches);
    const int end = static_cast<int>(static_cast<std::int64_t>(n) * (b + 1) / batches);
    const absl::Time sent = absl::Now();
    absl::StatusOr<std::vector<std::string>> batch_ids =
        Submit(std::vector<JobSpec>(specs.begin() + begin, specs.begin() + end));
    if (!batch_ids.ok()) {
      submitted = batch_ids.status();
      for (std::unique_ptr<Stream>& earlier : streams) earlier->ctx->TryCancel();
      break;
    }
    cohort::v1::AsCompletedRequest request;
    *request.mutable_timeout() = common::ToProto(std::max(step_deadline_ - absl::Now(), absl::ZeroDuration()));
    absl::flat_hash_map<std::string, int> index;
    for (int i = begin; i < end; ++i) {
      ids.push_back((*batch_ids)[i - begin]);
      request.add_job_ids(ids.back());
      index[ids.back()] = i;
    }
    auto stream = std::make_unique<Stream>();
    stream->ctx = Context();
    stream->reader = std::thread([this, s = stream.get(), request = std::move(request), index = std::move(index), sent,
                                  &latency, &states, &bar] {
      std::unique_ptr<grpc::ClientReader<cohort::v1::AsCompletedResponse>> reader =
          stub_.AsCompleted(s->ctx.get(), request);
      cohort::v1::AsCompletedResponse response;
      while (reader->Read(&response)) {
        const absl::Time now = absl::Now();
        auto it = index.find(response.outcome().job_id());
        if (it == index.end()) continue;
        latency[it->second] = now - sent;
        states[it->second] = response.outcome().state();
        s->last = now;
        ++s->received;
        if (bar) bar->Advance();
      }
      s->status = reader->Finish();
    });
    streams.push_back(std::move(stream));
  }
  const absl::Duration submit_time = absl::Now() - first_submit;
  absl::Time last_done = first_submit;
  absl::Status followed = absl::OkStatus();
  int received = 0;
  for (std::unique_ptr<Stream>& s : streams) {
    s->reader.join();
    received += s->received;
    last_done = std::max(last_done, s->last);
    if (!s->status.ok() && followed.ok()) followed = FromGrpc(s->status, "AsCompleted");
  }
  if (bar) bar->Finish();
  if (!submitted.ok()) return submitted;
  if (received != n) {
    return absl::DeadlineExceededError(absl::StrCat("only ", received, " of ", n, " jobs ended within ",
                                                    absl::FormatDuration(options_.step_timeout), " (",
                                                    followed.ok() ? "AsCompleted ended early" : followed.ToString(),
                                                    "; is the executor running?)"));
  }
  if (!followed.ok()) return followed;
  const absl::Duration elapsed = last_done - first_submit;
  std::fprintf(out_, "   submitted in %s; every job done %s after the first Submit (%s jobs/s)\n",
               FormatLatency(submit_time).c_str(), Seconds(elapsed).c_str(),
               WithCommas(static_cast<std::int64_t>(n / std::max(absl::ToDoubleSeconds(elapsed), 1e-9))).c_str());

  // gather(*jobs): every result, in submission order.
  cohort::v1::GatherRequest gather;
  for (const std::string& id : ids) gather.add_job_ids(id);
  cohort::v1::GatherResponse gathered;
  const absl::Time gather_start = absl::Now();
  std::unique_ptr<grpc::ClientContext> ctx = Context();
  grpc::Status status = stub_.Gather(ctx.get(), gather, &gathered);
  if (!status.ok()) return FromGrpc(status, "Gather");
  const absl::Duration gather_time = absl::Now() - gather_start;
  if (gathered.outcomes_size() != n) {
    return absl::InternalError(absl::StrCat("Gather returned ", gathered.outcomes_size(), " outcomes for ", n, " jobs"));
  }
  for (int i = 0; i < n; ++i) {
    const JobOutcome& outcome = gathered.outcomes(i);
    if (outcome.job_id() != ids[i] || outcome.state() != cohort::v1::JOB_STATE_SUCCEEDED ||
        outcome.result() != specs[i].payload() || states[i] != outcome.state()) {
      return absl::InternalError(absl::StrCat("job ", i, " (", ids[i], "): expected SUCCEEDED with result \"",
                                              specs[i].payload(), "\", Gather said ", outcome.ShortDebugString()));
    }
  }
  std::fprintf(out_, "   gather: %s results in submission order in %s, every one checked\n", WithCommas(n).c_str(),
               FormatLatency(gather_time).c_str());

  Count(cohort::v1::JOB_STATE_SUCCEEDED, n);
  summary_.fan_out_jobs = n;
  summary_.fan_out_elapsed = elapsed;
  for (int i = 0; i < n; ++i) summary_.latency_by_priority[specs[i].priority()].push_back(latency[i]);
  return absl::OkStatus();
}

absl::Status Demo::WaitFirstCompleted() {
  StartStep("wait(FIRST_COMPLETED) over builtin.sleep jobs of 100ms, 20s and 20s");
  std::vector<JobSpec> specs;
  for (const char* duration : {"100ms", "20s", "20s"}) specs.push_back(Spec("builtin.sleep", duration));
  absl::StatusOr<std::vector<std::string>> ids = Submit(specs);
  if (!ids.ok()) return ids.status();

  cohort::v1::WaitRequest request;
  for (const std::string& id : *ids) request.add_job_ids(id);
  request.set_return_when(cohort::v1::RETURN_WHEN_FIRST_COMPLETED);
  *request.mutable_timeout() = common::ToProto(std::max(step_deadline_ - absl::Now(), absl::ZeroDuration()));
  cohort::v1::WaitResponse response;
  const absl::Time start = absl::Now();
  std::unique_ptr<grpc::ClientContext> ctx = Context();
  grpc::Status status = stub_.Wait(ctx.get(), request, &response);
  if (!status.ok()) return FromGrpc(status, "Wait");
  const absl::Duration waited = absl::Now() - start;
  if (response.done_size() == 0) {
    return absl::DeadlineExceededError(absl::StrCat("no job ended within ", absl::FormatDuration(options_.step_timeout),
                                                    " (is the executor running?)"));
  }
  if (response.done_size() != 1 || response.done(0).job_id() != (*ids)[0] ||
      response.done(0).state() != cohort::v1::JOB_STATE_SUCCEEDED || response.pending_size() != 2) {
    return absl::InternalError(absl::StrCat("expected the 100ms sleep done and 2 pending, Wait said ",
                                            response.ShortDebugString()));
  }
  std::fprintf(out_, "   returned after %s: done = [sleep 100ms: SUCCEEDED], pending = [sleep 20s, sleep 20s]\n",
               Seconds(waited).c_str());

  // Wait never cancels: the long ones are still running. Cancel them, as asyncio code would.
  for (const std::string& id : response.pending()) {
    cohort::v1::CancelJobRequest cancel;
    cancel.set_job_id(id);
    cohort::v1::CancelJobResponse cancelled;
    std::unique_ptr<grpc::ClientContext> cancel_ctx = Context();
    grpc::Status s = stub_.CancelJob(cancel_ctx.get(), cancel, &cancelled);
    if (!s.ok()) return FromGrpc(s, "CancelJob");
  }
  absl::StatusOr<std::vector<JobOutcome>> outcomes = AwaitAll(*ids);
  if (!outcomes.ok()) return outcomes.status();
  std::vector<std::string> ended;
  for (const JobOutcome& outcome : *outcomes) {
    if (outcome.job_id() != (*ids)[0]) {
      if (outcome.state() != cohort::v1::JOB_STATE_CANCELLED) {
        return absl::InternalError(absl::StrCat("a cancelled sleep ended ", StateName(outcome.state())));
      }
      ended.push_back(StateName(outcome.state()));
    }
  }
  std::fprintf(out_, "   then cancelled the two pending sleeps: %s\n", absl::StrJoin(ended, ", ").c_str());
  return absl::OkStatus();
}

absl::Status Demo::WaitForCancelsOnTimeout() {
  StartStep(absl::StrCat("wait_for(timeout=", absl::FormatDuration(options_.wait_for_timeout),
                         ") on a builtin.sleep job of 60s"));
  absl::StatusOr<std::vector<std::string>> ids = Submit({Spec("builtin.sleep", "60s")});
  if (!ids.ok()) return ids.status();
  cohort::v1::WaitForRequest request;
  request.set_job_id((*ids)[0]);
  *request.mutable_timeout() = common::ToProto(options_.wait_for_timeout);
  cohort::v1::WaitForResponse response;
  const absl::Time start = absl::Now();
  std::unique_ptr<grpc::ClientContext> ctx = Context();
  grpc::Status status = stub_.WaitFor(ctx.get(), request, &response);
  const absl::Duration waited = absl::Now() - start;
  if (status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::InternalError(absl::StrCat("expected DEADLINE_EXCEEDED, WaitFor said code ",
                                            static_cast<int>(status.error_code()), " ", status.error_message()));
  }
  std::fprintf(out_, "   DEADLINE_EXCEEDED after %s, and the job was cancelled\n", Seconds(waited).c_str());
  absl::StatusOr<std::vector<JobOutcome>> outcomes = AwaitAll(*ids);
  if (!outcomes.ok()) return outcomes.status();
  const JobOutcome& outcome = outcomes->front();
  if (outcome.state() != cohort::v1::JOB_STATE_CANCELLED) {
    return absl::InternalError(absl::StrCat("the timed-out job ended ", StateName(outcome.state())));
  }
  std::fprintf(out_, "   the job ended %s (error code \"%s\": %s)\n", StateName(outcome.state()).c_str(),
               outcome.error().code().c_str(), outcome.error().message().c_str());
  return absl::OkStatus();
}

absl::Status Demo::RetriesWithBackoff() {
  StartStep(absl::StrCat("A failing job: builtin.fail, max_attempts 3, backoff ",
                         absl::FormatDuration(options_.retry_backoff), " doubling"));
  JobSpec spec = Spec("builtin.fail", "the flaky service is down");
  spec.set_max_attempts(3);
  *spec.mutable_backoff()->mutable_initial() = common::ToProto(options_.retry_backoff);
  spec.mutable_backoff()->set_multiplier(2);
  absl::StatusOr<std::vector<std::string>> ids = Submit({spec});
  if (!ids.ok()) return ids.status();
  absl::StatusOr<std::vector<JobOutcome>> outcomes = AwaitAll(*ids);
  if (!outcomes.ok()) {
    return absl::Status(outcomes.status().code(),
                        absl::StrCat(outcomes.status().message(),
                                     " (the scheduler releases retries: is it running in cohort-dev?)"));
  }
  absl::StatusOr<cohort::v1::Job> job = Get((*ids)[0]);
  if (!job.ok()) return job.status();
  const absl::Time created = common::FromProto(job->create_time());
  for (const cohort::v1::Attempt& attempt : job->attempts()) {
    std::fprintf(out_, "   attempt %d  started +%s  %s: %s\n", attempt.number(),
                 Seconds(common::FromProto(attempt.start_time()) - created).c_str(),
                 attempt.has_error() ? "failed" : "ok", attempt.error().message().c_str());
  }
  if (job->state() != cohort::v1::JOB_STATE_FAILED || job->attempts_size() != 3) {
    return absl::InternalError(absl::StrCat("expected FAILED after 3 attempts, the job is ", StateName(job->state()),
                                            " after ", job->attempts_size()));
  }
  std::fprintf(out_, "   ended %s after %d attempts (error code \"%s\")\n", StateName(job->state()).c_str(),
               job->attempts_size(), job->error().code().c_str());
  return absl::OkStatus();
}

absl::Status Demo::DiamondDag() {
  StartStep("A diamond DAG in one Submit: a -> (b, c) -> d");
  const std::vector<std::string> names = {"a", "b", "c", "d"};
  std::vector<JobSpec> specs;
  for (const std::string& name : names) specs.push_back(Spec("builtin.echo", name));
  specs[1].add_depends_on_index(0);
  specs[2].add_depends_on_index(0);
  specs[3].add_depends_on_index(1);
  specs[3].add_depends_on_index(2);
  absl::StatusOr<std::vector<std::string>> ids = Submit(specs);
  if (!ids.ok()) return ids.status();
  absl::StatusOr<std::vector<JobOutcome>> outcomes = AwaitAll(*ids);
  if (!outcomes.ok()) {
    return absl::Status(outcomes.status().code(),
                        absl::StrCat(outcomes.status().message(),
                                     " (the scheduler releases dependents: is it running in cohort-dev?)"));
  }
  std::vector<cohort::v1::Job> jobs;
  for (const std::string& id : *ids) {
    absl::StatusOr<cohort::v1::Job> job = Get(id);
    if (!job.ok()) return job.status();
    if (job->state() != cohort::v1::JOB_STATE_SUCCEEDED) {
      return absl::InternalError(absl::StrCat("job ", id, " ended ", StateName(job->state())));
    }
    jobs.push_back(*std::move(job));
  }
  const absl::Time origin = common::FromProto(jobs[0].create_time());
  std::vector<std::string> timeline;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    timeline.push_back(absl::StrFormat(
        "%s %.3f-%.3f s", names[i], absl::ToDoubleSeconds(common::FromProto(jobs[i].start_time()) - origin),
        absl::ToDoubleSeconds(common::FromProto(jobs[i].end_time()) - origin)));
  }
  std::fprintf(out_, "   ran (start-end): %s\n", absl::StrJoin(timeline, ", ").c_str());
  // Each job started only after all of its parents had ended.
  const std::vector<std::pair<int, int>> edges = {{0, 1}, {0, 2}, {1, 3}, {2, 3}};
  for (const auto& [parent, child] : edges) {
    if (common::FromProto(jobs[child].start_time()) < common::FromProto(jobs[parent].end_time())) {
      return absl::InternalError(
          absl::StrCat(names[child], " started before its parent ", names[parent], " ended"));
    }
  }
  std::fprintf(out_, "   every job started after its parents ended\n");
  return absl::OkStatus();
}

}  // namespace cohort::dev
