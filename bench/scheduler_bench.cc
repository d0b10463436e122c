// What the real cohort-scheduler adds to a job's life, with the real broker and
// executor (WAL fsync on), printed, not asserted:
//  - delayed release: 10,000 jobs due at the same instant; how late each is released
//    (Job.queue_time - Job.not_before, p50/p99/max) and how fast the burst goes out;
//  - a chain of 200 jobs (each depends on the one before): time per link, i.e.
//    release + dispatch + run + complete;
//  - a chord: 1,000 parents and one callback; from the last parent's end to the
//    callback's release.
//
//   bazel build -c opt //services/broker:cohort-broker //services/executor:cohort-executor \
//     //services/scheduler:cohort-scheduler //bench:scheduler_bench
//   bazel-bin/bench/scheduler_bench
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "libs/common/proto_time.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "bench/service_launcher.h"
#include "tests/testing/temp_dir.h"

ABSL_FLAG(std::string, broker, "bazel-bin/services/broker/cohort-broker", "the cohort-broker binary");
ABSL_FLAG(std::string, executor, "bazel-bin/services/executor/cohort-executor", "the cohort-executor binary");
ABSL_FLAG(std::string, scheduler, "bazel-bin/services/scheduler/cohort-scheduler", "the cohort-scheduler binary");

namespace {

using cohort::common::FromProto;
using cohort::v1::Broker;
using cohort::v1::Job;
using cohort::v1::JobSpec;

void OrDie(const grpc::Status& s, const char* what) {
  if (s.ok()) return;
  std::fprintf(stderr, "%s: %s\n", what, s.error_message().c_str());
  std::exit(1);
}

std::vector<std::string> Submit(Broker::Stub& stub, const std::vector<JobSpec>& specs) {
  cohort::v1::SubmitRequest req;
  for (const JobSpec& s : specs) *req.add_jobs() = s;
  cohort::v1::SubmitResponse resp;
  grpc::ClientContext ctx;
  OrDie(stub.Submit(&ctx, req, &resp), "Submit");
  return std::vector<std::string>(resp.job_ids().begin(), resp.job_ids().end());
}

// Jobs of `queue` in `state`, every page.
std::vector<Job> List(Broker::Stub& stub, const std::string& queue, cohort::v1::JobState state) {
  std::vector<Job> out;
  cohort::v1::ListJobsRequest req;
  req.set_queue(queue);
  req.add_states(state);
  req.set_page_size(1000);
  while (true) {
    cohort::v1::ListJobsResponse resp;
    grpc::ClientContext ctx;
    OrDie(stub.ListJobs(&ctx, req, &resp), "ListJobs");
    out.insert(out.end(), resp.jobs().begin(), resp.jobs().end());
    if (resp.next_page_token().empty()) return out;
    req.set_page_token(resp.next_page_token());
  }
}

// Follows the event log until `n` events of `reason` for `queue` have been seen.
void AwaitEvents(Broker::Stub& stub, const std::string& queue, cohort::v1::TransitionReason reason, int n) {
  grpc::ClientContext ctx;
  auto reader = stub.Watch(&ctx, cohort::v1::WatchRequest());
  cohort::v1::WatchResponse batch;
  int seen = 0;
  while (seen < n && reader->Read(&batch)) {
    for (const auto& e : batch.events()) seen += e.reason() == reason && e.job().spec().queue() == queue ? 1 : 0;
  }
  ctx.TryCancel();
  if (seen < n) std::exit(1);
}

void AwaitAll(Broker::Stub& stub, const std::vector<std::string>& ids) {
  cohort::v1::WaitRequest req;
  for (const std::string& id : ids) req.add_job_ids(id);
  cohort::v1::WaitResponse resp;
  grpc::ClientContext ctx;
  OrDie(stub.Wait(&ctx, req, &resp), "Wait");
}

Job Get(Broker::Stub& stub, const std::string& id) {
  cohort::v1::GetJobRequest req;
  req.set_job_id(id);
  cohort::v1::GetJobResponse resp;
  grpc::ClientContext ctx;
  OrDie(stub.GetJob(&ctx, req, &resp), "GetJob");
  return resp.job();
}

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

void DelayedRelease(Broker::Stub& stub) {
  constexpr int kJobs = 10'000;
  JobSpec spec;
  spec.set_queue("delayed");  // no executor serves it: the jobs stay QUEUED once released
  spec.set_kind("builtin.noop");
  *spec.mutable_run_at() = cohort::common::ToProto(absl::Now() + absl::Seconds(3));
  for (int done = 0; done < kJobs; done += 1000) Submit(stub, std::vector<JobSpec>(1000, spec));
  AwaitEvents(stub, "delayed", cohort::v1::TRANSITION_REASON_RUN_AT, kJobs);
  std::vector<double> late;
  absl::Time first = absl::InfiniteFuture();
  absl::Time last = absl::InfinitePast();
  for (const Job& j : List(stub, "delayed", cohort::v1::JOB_STATE_QUEUED)) {
    const absl::Time queued = FromProto(j.queue_time());
    late.push_back(Ms(queued - FromProto(j.spec().run_at())));
    first = std::min(first, queued);
    last = std::max(last, queued);
  }
  std::sort(late.begin(), late.end());
  std::printf("delayed_release jobs=%zu late_ms_p50=%.1f late_ms_p99=%.1f late_ms_max=%.1f burst_ms=%.1f\n",
              late.size(), late[late.size() / 2], late[late.size() * 99 / 100], late.back(), Ms(last - first));
}

void Chain(Broker::Stub& stub) {
  constexpr int kLinks = 200;
  std::vector<JobSpec> specs;
  for (int i = 0; i < kLinks; ++i) {
    JobSpec s;
    s.set_queue("chain");
    s.set_kind("builtin.noop");
    if (i > 0) s.add_depends_on_index(i - 1);
    specs.push_back(s);
  }
  const absl::Time start = absl::Now();
  std::vector<std::string> ids = Submit(stub, specs);
  AwaitAll(stub, ids);
  const absl::Duration total = absl::Now() - start;
  std::printf("chain links=%d total_ms=%.0f ms_per_link=%.2f\n", kLinks, Ms(total), Ms(total) / kLinks);
}

void Chord(Broker::Stub& stub) {
  constexpr int kParents = 1'000;
  std::vector<JobSpec> specs;
  JobSpec callback;
  callback.set_queue("chord");
  callback.set_kind("builtin.noop");
  for (int i = 0; i < kParents; ++i) {
    JobSpec s;
    s.set_queue("chord");
    s.set_kind("builtin.noop");
    specs.push_back(s);
    callback.add_depends_on_index(i);
  }
  specs.push_back(callback);
  const absl::Time start = absl::Now();
  std::vector<std::string> ids = Submit(stub, specs);
  AwaitAll(stub, ids);
  const absl::Duration total = absl::Now() - start;
  absl::Time last_parent = absl::InfinitePast();
  for (int i = 0; i < kParents; ++i) last_parent = std::max(last_parent, FromProto(Get(stub, ids[i]).end_time()));
  const Job cb = Get(stub, ids.back());
  std::printf("chord parents=%d total_ms=%.0f callback_release_ms=%.1f\n", kParents, Ms(total),
              Ms(FromProto(cb.queue_time()) - last_parent));
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  cohort::testing::TempDir dir;
  auto broker = cohort::bench::StartServiceOrDie(absl::GetFlag(FLAGS_broker),
                           {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir.path() + "/b"});
  auto executor = cohort::bench::StartServiceOrDie(absl::GetFlag(FLAGS_executor),
                             {"--broker=" + broker->grpc_address(), "--listen=127.0.0.1:0",
                              "--metrics-listen=127.0.0.1:0", "--capacity=8", "--queues=chain,chord"});
  auto scheduler = cohort::bench::StartServiceOrDie(absl::GetFlag(FLAGS_scheduler),
                              {"--broker=" + broker->grpc_address(), "--listen=127.0.0.1:0",
                               "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir.path() + "/s"});
  auto stub = Broker::NewStub(grpc::CreateChannel(broker->grpc_address(), grpc::InsecureChannelCredentials()));
  DelayedRelease(*stub);
  Chain(*stub);
  Chord(*stub);
  return 0;
}
