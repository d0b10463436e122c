// cohortctl end to end: the real binary, run as a child process, against a real
// cluster (see cluster.h). Every broker command's happy path, --output=json parsed back
// into the response message, and the exit codes scripts rely on.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "protos/cohort/v1/broker.pb.h"
#include "protos/cohort/v1/scheduler.pb.h"
#include "tests/cli/cluster.h"
#include "tests/cli/run_process.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/runfiles.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {

std::ostream& operator<<(std::ostream& os, const ProcessResult& r) {
  return os << "exit " << r.exit_code << (r.signal != 0 ? absl::StrCat(" (signal ", r.signal, ")") : "")
            << "\n--- stdout ---\n" << r.stdout_text << "\n--- stderr ---\n" << r.stderr_text;
}

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;
using namespace cohort::v1;

// cohortctl's exit codes (cohortctl --help).
constexpr int kOk = 0;
constexpr int kJobFailed = 1;
constexpr int kUsage = 2;
constexpr int kRejected = 3;
constexpr int kUnreachable = 4;

// Undoes cohortctl's text for bytes fields (output.h): "<field>Encoding": "text" means
// the field holds the bytes as text, which protobuf JSON wants in base64.
void BytesAsBase64(google::protobuf::Value& value) {
  if (value.has_list_value()) {
    for (google::protobuf::Value& item : *value.mutable_list_value()->mutable_values()) BytesAsBase64(item);
    return;
  }
  if (!value.has_struct_value()) return;
  auto& fields = *value.mutable_struct_value()->mutable_fields();
  std::vector<std::string> encodings;
  for (auto& [key, field] : fields) {
    if (absl::EndsWith(key, "Encoding") && fields.contains(key.substr(0, key.size() - 8))) {
      encodings.push_back(key);
    } else {
      BytesAsBase64(field);
    }
  }
  for (const std::string& key : encodings) {
    google::protobuf::Value& bytes = fields[key.substr(0, key.size() - 8)];
    if (fields[key].string_value() == "text") bytes.set_string_value(absl::Base64Escape(bytes.string_value()));
    fields.erase(key);
  }
}

template <typename Message>
Message FromJson(const std::string& text) {
  google::protobuf::Value value;
  auto status = google::protobuf::util::JsonStringToMessage(text, &value);
  EXPECT_TRUE(status.ok()) << status << " parsing: " << text;
  BytesAsBase64(value);
  std::string json;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(value, &json).ok());
  Message message;
  status = google::protobuf::util::JsonStringToMessage(json, &message);
  EXPECT_TRUE(status.ok()) << status << " parsing: " << text;
  return message;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(absl::StripSuffix(text, "\n"), '\n', absl::SkipEmpty());
}

std::string Trimmed(const std::string& text) { return std::string(absl::StripAsciiWhitespace(text)); }

// Writes `text` to `path`, creating its directory.
absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), error);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<Cluster>> started = Cluster::Start();
    ASSERT_TRUE(started.ok()) << started.status();
    cluster_ = *std::move(started);
  }
  static void TearDownTestSuite() { cluster_.reset(); }
  void SetUp() override { ASSERT_NE(cluster_, nullptr); }
  // Whatever this test left unfinished in its queue (a failed assertion skips its own
  // cancels) is cancelled, so no test's jobs hold the shared executor's capacity.
  void TearDown() override {
    if (cluster_ == nullptr) return;
    ProcessResult r = Ctl({"ls", "--output=json", "--page-size=500", "--queue=" + Queue(), "--state=pending,queued,running"});
    if (r.exit_code != kOk) return;
    const ListJobsResponse left = FromJson<ListJobsResponse>(r.stdout_text);
    for (const Job& job : left.jobs()) Ctl({"cancel", job.id()});
  }

  static std::string CtlPath() { return BinaryPath("services/cli/cohortctl"); }

  // cohortctl --server=<the cluster> args...
  static ProcessResult Ctl(std::vector<std::string> args, RunOptions options = {}) {
    args.insert(args.begin(), "--server=" + cluster_->address());
    return Run(args, options);
  }
  // cohortctl args..., with no --server added.
  static ProcessResult Run(const std::vector<std::string>& args, RunOptions options = {}) {
    absl::StatusOr<ProcessResult> result = RunProcess(CtlPath(), args, options);
    if (!result.ok()) {
      ADD_FAILURE() << result.status();
      return {};
    }
    return *std::move(result);
  }

  // A queue of this test's own, so tests sharing the cluster do not see each other.
  static std::string Queue(absl::string_view suffix = "") {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    name = absl::AsciiStrToLower(name).substr(0, 48);
    return absl::StrCat("t-", name, suffix);
  }

  // Submits and returns the new job's id.
  static std::string Submit(std::vector<std::string> args) {
    args.insert(args.begin(), "submit");
    ProcessResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, kOk) << r;
    const std::string id = Trimmed(r.stdout_text);
    EXPECT_THAT(id, MatchesRegex("[0-9a-f]{24}")) << r;
    return id;
  }

  // Waits (at most 20 s) for the job to end and returns how it ended.
  static JobOutcome Outcome(const std::string& id) {
    ProcessResult r = Ctl({"gather", "--return-exceptions", "--timeout=20s", "--output=json", id});
    EXPECT_EQ(r.exit_code, kOk) << r;
    GatherResponse response = FromJson<GatherResponse>(r.stdout_text);
    return response.outcomes_size() == 1 ? response.outcomes(0) : JobOutcome();
  }

  static Job Get(const std::string& id) {
    ProcessResult r = Ctl({"get", "--output=json", id});
    EXPECT_EQ(r.exit_code, kOk) << r;
    return FromJson<GetJobResponse>(r.stdout_text).job();
  }

  // The jobs, of any queue, that carry the label key=value (ListJobs has no payloads).
  static int CountJobsLabelled(const std::string& key, const std::string& value) {
    int count = 0;
    std::string token;
    do {
      ProcessResult r = Ctl({"ls", "--output=json", "--page-size=500", "--page-token=" + token});
      EXPECT_EQ(r.exit_code, kOk) << r;
      if (r.exit_code != kOk) return -1;
      ListJobsResponse page = FromJson<ListJobsResponse>(r.stdout_text);
      for (const Job& job : page.jobs()) {
        auto it = job.spec().labels().find(key);
        if (it != job.spec().labels().end() && it->second == value) ++count;
      }
      token = page.next_page_token();
    } while (!token.empty());
    return count;
  }

  // The id of the cluster's one executor.
  static std::string ExecutorId() {
    ProcessResult r = Ctl({"executors", "--output=json"});
    EXPECT_EQ(r.exit_code, kOk) << r;
    ListExecutorsResponse response = FromJson<ListExecutorsResponse>(r.stdout_text);
    return response.executors_size() == 1 ? response.executors(0).executor_id() : "";
  }

  // The event log's last sequence now.
  static int64_t Sequence() {
    ProcessResult r = Ctl({"ls", "--output=json", "--page-size=1"});
    EXPECT_EQ(r.exit_code, kOk) << r;
    return FromJson<ListJobsResponse>(r.stdout_text).sequence();
  }

  static void Cancel(const std::string& id) {
    ProcessResult r = Ctl({"cancel", id});
    EXPECT_EQ(r.exit_code, kOk) << r;
  }

  inline static std::unique_ptr<Cluster> cluster_;
};

// ---- submit ----

TEST_F(CliTest, SubmitPrintsTheIdAndGetShowsTheJob) {
  const std::string id = Submit({Queue(), "builtin.echo", "hello"});
  EXPECT_EQ(Outcome(id).state(), JOB_STATE_SUCCEEDED);

  ProcessResult table = Ctl({"get", id});
  ASSERT_EQ(table.exit_code, kOk) << table;
  EXPECT_THAT(table.stdout_text, HasSubstr(absl::StrCat("id         ", id, "\n")));
  EXPECT_THAT(table.stdout_text, HasSubstr("state      SUCCEEDED\n"));
  EXPECT_THAT(table.stdout_text, HasSubstr("result     5 bytes: \"hello\"\n"));
  EXPECT_THAT(table.stdout_text, HasSubstr(absl::StrCat("attempt 1  ", ExecutorId())));

  ProcessResult json = Ctl({"get", "--output=json", id});
  ASSERT_EQ(json.exit_code, kOk) << json;
  Job job = FromJson<GetJobResponse>(json.stdout_text).job();
  EXPECT_EQ(job.id(), id);
  EXPECT_EQ(job.spec().queue(), Queue());
  EXPECT_EQ(job.spec().payload(), "hello");
  EXPECT_EQ(job.result(), "hello");
  ASSERT_EQ(job.attempts_size(), 1);
  EXPECT_EQ(job.attempts(0).executor_id(), ExecutorId());
}

TEST_F(CliTest, SubmitWaitPrintsTheResult) {
  ProcessResult r = Ctl({"submit", "--wait", Queue(), "builtin.echo", "the result"});
  EXPECT_EQ(r.exit_code, kOk) << r;
  EXPECT_EQ(r.stdout_text, "the result\n");
  EXPECT_EQ(r.stderr_text, "");

  ProcessResult json = Ctl({"submit", "--wait", "--output=json", Queue(), "builtin.echo", "again"});
  ASSERT_EQ(json.exit_code, kOk) << json;
  JobOutcome outcome = FromJson<JobOutcome>(json.stdout_text);
  EXPECT_EQ(outcome.state(), JOB_STATE_SUCCEEDED);
  EXPECT_EQ(outcome.result(), "again");
}

TEST_F(CliTest, SubmitWaitOfAFailingJobExitsOneAndSaysWhy) {
  ProcessResult r = Ctl({"submit", "--wait", Queue(), "builtin.fail", "no such customer"});
  EXPECT_EQ(r.exit_code, kJobFailed) << r;
  EXPECT_EQ(r.stdout_text, "");
  EXPECT_THAT(r.stderr_text, MatchesRegex("cohortctl: job [0-9a-f]{24} FAILED: .*no such customer\n"));
}

TEST_F(CliTest, SubmitReadsThePayloadFromStdinOrAFile) {
  RunOptions from_stdin;
  from_stdin.stdin_data = "payload from stdin\n";
  ProcessResult r = Ctl({"submit", "--wait", Queue(), "builtin.echo", "-"}, from_stdin);
  EXPECT_EQ(r.exit_code, kOk) << r;
  EXPECT_EQ(r.stdout_text, "payload from stdin\n");

  // An exec job gets the payload on its stdin.
  ProcessResult cat = Ctl({"submit", "--wait", Queue(), "exec", "-", "--", "/bin/cat"}, from_stdin);
  EXPECT_EQ(cat.exit_code, kOk) << cat;
  EXPECT_EQ(cat.stdout_text, "payload from stdin\n");

  TempDir dir;
  const std::string path = dir.Path("payload.txt");
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("payload from a file", f);
  fclose(f);
  ProcessResult file = Ctl({"submit", "--wait", Queue(), "builtin.echo", "@" + path});
  EXPECT_EQ(file.exit_code, kOk) << file;
  EXPECT_EQ(file.stdout_text, "payload from a file\n");

  ProcessResult missing = Ctl({"submit", Queue(), "builtin.echo", "@" + dir.Path("missing")});
  EXPECT_EQ(missing.exit_code, kUsage) << missing;
  EXPECT_THAT(missing.stderr_text, HasSubstr("cannot read @"));
}

TEST_F(CliTest, APayloadTheServerRefusesWhileItIsSentExitsAsSoonAsTheErrorIsPrinted) {
  // A broker whose largest message is 10 MiB refuses a 50 MB Submit while cohortctl is
  // still sending it. cohortctl used to print the error at once and exit 10 s later
  // (gRPC's shutdown waited on a poll), in about one run of four: three runs.
  TempDir dir("cli-big");
  absl::StatusOr<std::unique_ptr<ServiceProcess>> broker = ServiceProcess::Start(
      BinaryPath("services/broker/cohort-broker"),
      {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir.Path("data"),
       "--max-message-bytes=10485760", "--max-spec-bytes=1048576", "--max-payload-bytes=524288"});
  ASSERT_TRUE(broker.ok()) << broker.status();
  std::string payload(50'000'000, '\0');
  std::uint64_t x = 88172645463325252u;  // xorshift64: bytes that do not compress
  for (char& c : payload) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  const std::string path = dir.Path("payload.bin");
  ASSERT_TRUE(WriteFile(path, payload).ok());
  for (int run = 0; run < 3; ++run) {
    ProcessResult r = Run({"--server=" + (*broker)->grpc_address(), "submit", "big", "builtin.echo", "@" + path});
    EXPECT_EQ(r.exit_code, kRejected) << r;
    EXPECT_THAT(r.stderr_text, StartsWith("cohortctl: RESOURCE_EXHAUSTED: ")) << r;
    EXPECT_EQ(Lines(r.stderr_text).size(), 1u) << r;
    EXPECT_LT(r.elapsed, absl::Seconds(6)) << "run " << run;
  }
}

TEST_F(CliTest, SubmitRunsAnExecCommandWithItsEnvironment) {
  ProcessResult r = Ctl({"submit", "--wait", "--env=GREETING=hi there", Queue(), "exec", "--", "/bin/sh", "-c",
                         "echo \"$GREETING from $0\"", "sh"});
  EXPECT_EQ(r.exit_code, kOk) << r;
  EXPECT_EQ(r.stdout_text, "hi there from sh\n");
}

TEST_F(CliTest, SubmitSetsTheSpecFromItsFlags) {
  const std::string id = Submit({"--priority=7", "--delay=1h", "--timeout=30s", "--attempts=3", "--backoff-initial=2s",
                                 "--backoff-multiplier=2", "--label=team=data", "--label=tier=gold",
                                 "--idempotency-key=" + Queue(), "--shield", Queue(), "builtin.echo", "x"});
  Job job = Get(id);
  EXPECT_EQ(job.state(), JOB_STATE_PENDING);  // held back by --delay
  EXPECT_EQ(job.spec().priority(), 7);
  EXPECT_EQ(job.spec().timeout().seconds(), 30);
  EXPECT_EQ(job.spec().max_attempts(), 3);
  EXPECT_EQ(job.spec().backoff().initial().seconds(), 2);
  EXPECT_EQ(job.spec().backoff().multiplier(), 2);
  EXPECT_EQ(job.spec().labels().at("team"), "data");
  EXPECT_EQ(job.spec().labels().at("tier"), "gold");
  EXPECT_TRUE(job.spec().shield());

  // The same idempotency key gives the same job; --output=json is the SubmitResponse.
  ProcessResult again = Ctl({"submit", "--output=json", "--idempotency-key=" + Queue(), Queue(), "builtin.echo", "y"});
  ASSERT_EQ(again.exit_code, kOk) << again;
  EXPECT_THAT(FromJson<SubmitResponse>(again.stdout_text).job_ids(), ElementsAre(id));
  Cancel(id);
}

TEST_F(CliTest, DependsOnHoldsTheChildUntilItsParentSucceeds) {
  ASSERT_EQ(Ctl({"queues", "create", "--paused", Queue()}).exit_code, kOk);
  const std::string parent = Submit({Queue(), "builtin.echo", "parent"});
  const std::string child =
      Submit({"--depends-on=" + parent, "--on-dependency-failure=fail", Queue(), "builtin.echo", "child"});
  Job job = Get(child);
  EXPECT_EQ(job.state(), JOB_STATE_PENDING);
  EXPECT_THAT(job.spec().depends_on(), ElementsAre(parent));
  EXPECT_EQ(job.spec().on_dependency_failure(), DEPENDENCY_FAILURE_POLICY_FAIL);

  // The parent runs once the queue resumes; then the scheduler releases the child.
  ASSERT_EQ(Ctl({"queues", "resume", Queue()}).exit_code, kOk);
  JobOutcome outcome = Outcome(child);
  EXPECT_EQ(outcome.state(), JOB_STATE_SUCCEEDED);
  EXPECT_EQ(outcome.result(), "child");
}

// ---- get, ls, cancel, watch ----

TEST_F(CliTest, LsFiltersByQueueAndStateAndPages) {
  std::vector<std::string> ids;
  for (const char* payload : {"a", "b", "c"}) ids.push_back(Submit({Queue(), "builtin.echo", payload}));
  for (const std::string& id : ids) EXPECT_EQ(Outcome(id).state(), JOB_STATE_SUCCEEDED);

  ProcessResult table = Ctl({"ls", "--queue", Queue()});
  ASSERT_EQ(table.exit_code, kOk) << table;
  std::vector<std::string> lines = Lines(table.stdout_text);
  ASSERT_EQ(lines.size(), 4u) << table;
  EXPECT_THAT(lines[0], MatchesRegex("ID +QUEUE +KIND +STATE +PRIORITY +ATTEMPT +AGE +ERROR"));
  EXPECT_THAT(lines[1], StartsWith(absl::StrCat(ids[0], "  ", Queue(), "  builtin.echo  SUCCEEDED")));

  ProcessResult succeeded = Ctl({"ls", "--output=json", "--queue=" + Queue(), "--state=succeeded"});
  ASSERT_EQ(succeeded.exit_code, kOk) << succeeded;
  ListJobsResponse all = FromJson<ListJobsResponse>(succeeded.stdout_text);
  ASSERT_EQ(all.jobs_size(), 3);
  EXPECT_EQ(all.jobs(2).id(), ids[2]);
  EXPECT_GT(all.sequence(), 0);

  ProcessResult failed = Ctl({"ls", "--output=json", "--queue=" + Queue(), "--state=failed,cancelled"});
  ASSERT_EQ(failed.exit_code, kOk) << failed;
  EXPECT_EQ(FromJson<ListJobsResponse>(failed.stdout_text).jobs_size(), 0);

  ProcessResult page1 = Ctl({"ls", "--output=json", "--queue=" + Queue(), "--page-size=2"});
  ListJobsResponse first = FromJson<ListJobsResponse>(page1.stdout_text);
  ASSERT_EQ(first.jobs_size(), 2);
  ASSERT_FALSE(first.next_page_token().empty());
  ProcessResult page2 =
      Ctl({"ls", "--output=json", "--queue=" + Queue(), "--page-size=2", "--page-token=" + first.next_page_token()});
  ListJobsResponse second = FromJson<ListJobsResponse>(page2.stdout_text);
  ASSERT_EQ(second.jobs_size(), 1);
  EXPECT_EQ(second.jobs(0).id(), ids[2]);
  EXPECT_EQ(second.next_page_token(), "");

  // In a table, the hint for the next page goes to stderr, so stdout stays the table.
  ProcessResult hinted = Ctl({"ls", "--queue=" + Queue(), "--page-size=2"});
  EXPECT_EQ(Lines(hinted.stdout_text).size(), 3u) << hinted;
  EXPECT_THAT(hinted.stderr_text, HasSubstr("--page-token="));

  ProcessResult bad = Ctl({"ls", "--state=done"});
  EXPECT_EQ(bad.exit_code, kUsage) << bad;
}

TEST_F(CliTest, CancelEndsAQueuedJobAndSaysWhenItHadAlreadyEnded) {
  ASSERT_EQ(Ctl({"queues", "create", "--paused", Queue()}).exit_code, kOk);
  const std::string id = Submit({Queue(), "builtin.echo", "never runs"});
  ProcessResult r = Ctl({"cancel", id});
  EXPECT_EQ(r.exit_code, kOk) << r;
  EXPECT_EQ(r.stdout_text, absl::StrCat(id, " CANCELLED\n"));
  EXPECT_EQ(Get(id).state(), JOB_STATE_CANCELLED);

  ProcessResult again = Ctl({"cancel", "--output=json", id});
  ASSERT_EQ(again.exit_code, kOk) << again;
  CancelJobResponse response = FromJson<CancelJobResponse>(again.stdout_text);
  EXPECT_TRUE(response.already_ended());
  EXPECT_EQ(response.state(), JOB_STATE_CANCELLED);
}

TEST_F(CliTest, WatchPrintsAQueuesEventsAfterASequence) {
  const int64_t after = Sequence();
  const std::string id = Submit({Queue(), "builtin.echo", "watched"});
  ASSERT_EQ(Outcome(id).state(), JOB_STATE_SUCCEEDED);

  ProcessResult json =
      Ctl({"watch", "--output=json", absl::StrCat("--from=", after), "--queue=" + Queue(), "--limit=3"});
  ASSERT_EQ(json.exit_code, kOk) << json;
  std::vector<std::string> lines = Lines(json.stdout_text);
  ASSERT_EQ(lines.size(), 3u) << json;
  std::vector<JobState> states;
  for (const std::string& line : lines) {
    JobEvent event = FromJson<JobEvent>(line);
    EXPECT_EQ(event.job_id(), id);
    EXPECT_GT(event.sequence(), after);
    states.push_back(event.to_state());
  }
  EXPECT_THAT(states, ElementsAre(JOB_STATE_QUEUED, JOB_STATE_RUNNING, JOB_STATE_SUCCEEDED));

  ProcessResult table = Ctl({"watch", absl::StrCat("--from=", after), "--queue=" + Queue(), "--limit=3"});
  ASSERT_EQ(table.exit_code, kOk) << table;
  lines = Lines(table.stdout_text);
  ASSERT_EQ(lines.size(), 4u) << table;
  EXPECT_THAT(lines[0], MatchesRegex("SEQ +TIME +JOB +TRANSITION +REASON"));
  EXPECT_THAT(lines[3], HasSubstr("RUNNING -> SUCCEEDED"));
  EXPECT_THAT(lines[3], HasSubstr("COMPLETED"));
}

// ---- gather, wait, wait-for, as-completed ----

TEST_F(CliTest, GatherPrintsOutcomesInTheOrderGiven) {
  const std::string slow = Submit({Queue(), "builtin.sleep", "200ms"});
  const std::string fast = Submit({Queue(), "builtin.echo", "fast"});
  ProcessResult table = Ctl({"gather", slow, fast});
  ASSERT_EQ(table.exit_code, kOk) << table;
  std::vector<std::string> lines = Lines(table.stdout_text);
  ASSERT_EQ(lines.size(), 3u) << table;
  EXPECT_THAT(lines[1], MatchesRegex(slow + " +SUCCEEDED +200ms"));
  EXPECT_THAT(lines[2], MatchesRegex(fast + " +SUCCEEDED +fast"));

  // Ids may come from stdin too.
  RunOptions ids;
  ids.stdin_data = absl::StrCat(slow, "\n", fast, "\n");
  ProcessResult json = Ctl({"gather", "--output=json", "-"}, ids);
  ASSERT_EQ(json.exit_code, kOk) << json;
  GatherResponse response = FromJson<GatherResponse>(json.stdout_text);
  ASSERT_EQ(response.outcomes_size(), 2);
  EXPECT_EQ(response.outcomes(0).job_id(), slow);
  EXPECT_EQ(response.outcomes(1).result(), "fast");
}

TEST_F(CliTest, GatherRaisesTheFirstFailureUnlessReturningExceptions) {
  const std::string ok = Submit({Queue(), "builtin.echo", "fine"});
  const std::string bad = Submit({Queue(), "builtin.fail", "broken"});
  ProcessResult raised = Ctl({"gather", ok, bad});
  EXPECT_EQ(raised.exit_code, kJobFailed) << raised;
  EXPECT_EQ(raised.stdout_text, "");
  EXPECT_THAT(raised.stderr_text, HasSubstr(bad));
  EXPECT_THAT(raised.stderr_text, HasSubstr("broken"));

  ProcessResult returned = Ctl({"gather", "--return-exceptions", ok, bad});
  EXPECT_EQ(returned.exit_code, kOk) << returned;
  EXPECT_THAT(returned.stdout_text, MatchesRegex(".*" + bad + " +FAILED +[a-z_]+: broken\n"));
}

TEST_F(CliTest, GatherTimeoutExitsOneAndCancelsNothing) {
  const std::string sleeper = Submit({Queue(), "builtin.sleep", "1h"});
  ProcessResult r = Ctl({"gather", "--timeout=100ms", sleeper});
  EXPECT_EQ(r.exit_code, kJobFailed) << r;
  EXPECT_THAT(r.stderr_text, HasSubstr("timed out after 100ms"));
  EXPECT_NE(Get(sleeper).state(), JOB_STATE_CANCELLED);
  Cancel(sleeper);
}

TEST_F(CliTest, WaitFirstCompletedReturnsTheDoneAndThePending) {
  const std::string sleeper = Submit({Queue(), "builtin.sleep", "1h"});
  const std::string fast = Submit({Queue(), "builtin.echo", "first"});
  ProcessResult json = Ctl({"wait", "--output=json", "--return-when=first-completed", sleeper, fast});
  ASSERT_EQ(json.exit_code, kOk) << json;
  WaitResponse response = FromJson<WaitResponse>(json.stdout_text);
  ASSERT_EQ(response.done_size(), 1);
  EXPECT_EQ(response.done(0).job_id(), fast);
  EXPECT_THAT(response.pending(), ElementsAre(sleeper));

  ProcessResult table = Ctl({"wait", "--return-when=first-completed", sleeper, fast});
  ASSERT_EQ(table.exit_code, kOk) << table;
  EXPECT_THAT(table.stdout_text, MatchesRegex("JOB +STATE +RESULT\n" + fast + " +SUCCEEDED +first\n" + sleeper +
                                              " +\\(not done\\)\n"));

  // All-completed cannot hold before the timeout: exit code 1, and nothing cancelled.
  ProcessResult timed_out = Ctl({"wait", "--timeout=100ms", sleeper, fast});
  EXPECT_EQ(timed_out.exit_code, kJobFailed) << timed_out;
  EXPECT_THAT(timed_out.stderr_text, HasSubstr("wait timed out after 100ms: 1 job(s) not done"));
  EXPECT_NE(Get(sleeper).state(), JOB_STATE_CANCELLED);

  ProcessResult bad = Ctl({"wait", "--return-when=soon", fast});
  EXPECT_EQ(bad.exit_code, kUsage) << bad;
  EXPECT_EQ(bad.stderr_text,
            "cohortctl: --return-when \"soon\" is invalid: use first-completed, first-exception, all-completed\n");
  Cancel(sleeper);
}

TEST_F(CliTest, WaitForPrintsTheResult) {
  const std::string id = Submit({Queue(), "builtin.echo", "waited for"});
  ProcessResult r = Ctl({"wait-for", "--timeout=20s", id});
  EXPECT_EQ(r.exit_code, kOk) << r;
  EXPECT_EQ(r.stdout_text, "waited for\n");

  ProcessResult json = Ctl({"wait-for", "--output=json", id});
  ASSERT_EQ(json.exit_code, kOk) << json;
  EXPECT_EQ(FromJson<WaitForResponse>(json.stdout_text).result(), "waited for");
}

TEST_F(CliTest, WaitForTimeoutExitsOneAndTheJobIsCancelled) {
  const std::string sleeper = Submit({Queue(), "builtin.sleep", "1h"});
  ProcessResult r = Ctl({"wait-for", "--timeout=200ms", sleeper});
  EXPECT_EQ(r.exit_code, kJobFailed) << r;
  EXPECT_THAT(r.stderr_text, StartsWith(absl::StrCat("cohortctl: job ", sleeper, " did not end within 200ms: ")));
  EXPECT_EQ(Outcome(sleeper).state(), JOB_STATE_CANCELLED);
}

TEST_F(CliTest, WaitForShieldLeavesTheJobRunning) {
  const std::string sleeper = Submit({Queue(), "builtin.sleep", "1h"});
  ProcessResult r = Ctl({"wait-for", "--timeout=100ms", "--shield", sleeper});
  EXPECT_EQ(r.exit_code, kJobFailed) << r;
  EXPECT_THAT(r.stderr_text, HasSubstr("left running (--shield)"));
  Job job = Get(sleeper);
  EXPECT_NE(job.state(), JOB_STATE_CANCELLED);
  EXPECT_FALSE(job.cancel_requested());
  Cancel(sleeper);
}

TEST_F(CliTest, AsCompletedPrintsEachJobOnceAndExitsOneIfAnyFailed) {
  const std::string a = Submit({Queue(), "builtin.echo", "a"});
  const std::string b = Submit({Queue(), "builtin.sleep", "100ms"});
  ProcessResult json = Ctl({"as-completed", "--output=json", b, a, b});
  ASSERT_EQ(json.exit_code, kOk) << json;
  std::vector<std::string> ids;
  for (const std::string& line : Lines(json.stdout_text)) {
    AsCompletedResponse response = FromJson<AsCompletedResponse>(line);
    EXPECT_EQ(response.outcome().state(), JOB_STATE_SUCCEEDED);
    ids.push_back(response.outcome().job_id());
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_THAT(ids, ElementsAre(a, b));

  const std::string bad = Submit({Queue(), "builtin.fail", "nope"});
  ProcessResult table = Ctl({"as-completed", a, bad});
  EXPECT_EQ(table.exit_code, kJobFailed) << table;
  EXPECT_EQ(Lines(table.stdout_text).size(), 3u) << table;
  EXPECT_THAT(table.stdout_text, MatchesRegex("(.|\n)*" + bad + " +FAILED +[a-z_]+: nope\n(.|\n)*"));
  EXPECT_EQ(table.stderr_text, "cohortctl: 1 of 2 job(s) ended FAILED or CANCELLED\n");
}

TEST_F(CliTest, ProgressBarIsDrawnOnlyWhenStdoutIsATerminal) {
  std::vector<std::string> args = {"gather"};
  for (int i = 0; i < 3; ++i) args.push_back(Submit({Queue(), "builtin.sleep", "100ms"}));
  RunOptions terminal;
  terminal.stdout_is_terminal = true;
  ProcessResult drawn = Ctl(args, terminal);
  EXPECT_EQ(drawn.exit_code, kOk) << drawn;
  // Drawn as jobs end (Gather may return before the last redraw) and erased at the end.
  EXPECT_THAT(drawn.stderr_text, MatchesRegex("\r\x1b\\[K\\[-{30}\\] 0/3 done(.|\r|\x1b)*\r\x1b\\[K"));
  EXPECT_THAT(drawn.stdout_text, HasSubstr("SUCCEEDED"));

  ProcessResult piped = Ctl(args);
  EXPECT_EQ(piped.exit_code, kOk) << piped;
  EXPECT_EQ(piped.stderr_text, "");
}

TEST_F(CliTest, CtrlCDuringGatherEndsTheProgressLine) {
  std::vector<std::string> args = {"gather"};
  for (int i = 0; i < 2; ++i) args.push_back(Submit({Queue(), "builtin.sleep", "20s"}));
  RunOptions terminal;
  terminal.stdout_is_terminal = true;
  bool interrupted = false;
  terminal.on_output = [&](pid_t pid, const ProcessResult& so_far) {
    if (interrupted || !absl::StrContains(so_far.stderr_text, "0/2 done")) return;
    interrupted = kill(pid, SIGINT) == 0;
  };
  ProcessResult r = Ctl(args, terminal);
  ASSERT_TRUE(interrupted) << r;
  EXPECT_EQ(r.signal, SIGINT) << r;
  // The bar's line is ended, so the shell's prompt starts on a line of its own.
  EXPECT_THAT(r.stderr_text, MatchesRegex("(.|\r|\x1b)*0/2 done\n")) << r;
}

// ---- queues, executors ----

TEST_F(CliTest, QueuesShowDepthAndPauseResumeAndLimitsWork) {
  ProcessResult created = Ctl({"queues", "create", Queue()});
  ASSERT_EQ(created.exit_code, kOk) << created;
  EXPECT_EQ(created.stdout_text, absl::StrCat("queue ", Queue(), " created\n"));
  ProcessResult paused = Ctl({"queues", "pause", Queue()});
  ASSERT_EQ(paused.exit_code, kOk) << paused;
  EXPECT_EQ(paused.stdout_text, absl::StrCat("queue ", Queue(), " paused\n"));
  const std::string high = Submit({"--priority=5", Queue(), "builtin.echo", "high"});
  const std::string low = Submit({Queue(), "builtin.echo", "low"});

  ProcessResult json = Ctl({"queues", "--output=json"});
  ASSERT_EQ(json.exit_code, kOk) << json;
  ListQueuesResponse queues = FromJson<ListQueuesResponse>(json.stdout_text);
  auto it = std::find_if(queues.queues().begin(), queues.queues().end(),
                         [&](const QueueInfo& q) { return q.name() == Queue(); });
  ASSERT_NE(it, queues.queues().end()) << json;
  EXPECT_TRUE(it->paused());
  EXPECT_EQ(it->depth(), 2);
  ASSERT_EQ(it->depth_by_priority_size(), 2);
  EXPECT_EQ(it->depth_by_priority(0).priority(), 5);
  EXPECT_TRUE(it->has_oldest_queued_age());

  ProcessResult table = Ctl({"queues"});
  ASSERT_EQ(table.exit_code, kOk) << table;
  EXPECT_THAT(table.stdout_text,
              MatchesRegex("QUEUE +STATE +DEPTH +BY PRIORITY +RUNNING +OLDEST +MAX CONCURRENCY +MAX RATE +WEIGHT +EXECUTORS +UNSERVED\n"
                           "(.|\n)*" + Queue() + " +paused +2 +5:1 0:1 +0 +[0-9]+m?s +- +- +1 +[0-9]+ +-\n(.|\n)*"));

  ProcessResult limits = Ctl({"queues", "limits", "--output=json", "--max-concurrency=1", "--weight=3", Queue()});
  ASSERT_EQ(limits.exit_code, kOk) << limits;
  SetQueueLimitsResponse set = FromJson<SetQueueLimitsResponse>(limits.stdout_text);
  EXPECT_EQ(set.limits().max_concurrency(), 1);
  EXPECT_EQ(set.limits().weight(), 3);
  EXPECT_EQ(set.limits().max_rate(), 0);

  ProcessResult resumed = Ctl({"queues", "resume", Queue()});
  ASSERT_EQ(resumed.exit_code, kOk) << resumed;
  EXPECT_EQ(Outcome(high).result(), "high");
  EXPECT_EQ(Outcome(low).result(), "low");

  ProcessResult bad = Ctl({"queues", "pause", "Not A Queue"});
  EXPECT_EQ(bad.exit_code, kRejected) << bad;
  EXPECT_THAT(bad.stderr_text, StartsWith("cohortctl: INVALID_ARGUMENT: "));
}

TEST_F(CliTest, QueuesSaysHowManyMoreUnservedKindsThereAreThanItShows) {
  // 33 kinds no executor runs: the broker lists the first 32 names and counts all 33;
  // the table shows what fits and "N more" for the rest of the 33.
  ASSERT_EQ(Ctl({"queues", "create", "--paused", Queue()}).exit_code, kOk);
  constexpr int kKinds = 33;
  for (int i = 0; i < kKinds; ++i) Submit({Queue(), absl::StrFormat("unserved.k%02d", i)});

  ProcessResult json = Ctl({"queues", "--output=json"});
  ASSERT_EQ(json.exit_code, kOk) << json;
  ListQueuesResponse queues = FromJson<ListQueuesResponse>(json.stdout_text);
  auto it = std::find_if(queues.queues().begin(), queues.queues().end(),
                         [&](const QueueInfo& q) { return q.name() == Queue(); });
  ASSERT_NE(it, queues.queues().end()) << json;
  EXPECT_EQ(it->unserved(), kKinds);
  EXPECT_EQ(it->unserved_kinds_size(), 32);
  EXPECT_EQ(it->unserved_kind_count(), kKinds);

  ProcessResult table = Ctl({"queues"});
  ASSERT_EQ(table.exit_code, kOk) << table;
  EXPECT_THAT(table.stdout_text,
              HasSubstr("33 (unserved.k00,unserved.k01,unserved.k02, 30 more)\n"));
}

TEST_F(CliTest, ExecutorsListsTheConnectedExecutor) {
  ProcessResult table = Ctl({"executors"});
  ASSERT_EQ(table.exit_code, kOk) << table;
  std::vector<std::string> lines = Lines(table.stdout_text);
  ASSERT_EQ(lines.size(), 2u) << table;
  EXPECT_THAT(lines[0],
              MatchesRegex("EXECUTOR +CAPACITY +RUNNING +CREDITS +QUEUES +KINDS +CONNECTED +LAST HEARTBEAT +LABELS"));
  // The kinds cohort-dev's executor declared: its built-ins, and exec (allowed there).
  EXPECT_THAT(lines[1], MatchesRegex(absl::StrCat(ExecutorId(), " +8 +[0-9]+ +[0-9]+ +\\(all\\) +",
                                                  "builtin.echo,builtin.noop,builtin.sleep,builtin.fail,exec .*")));

  ProcessResult json = Ctl({"executors", "--output=json"});
  ASSERT_EQ(json.exit_code, kOk) << json;
  ListExecutorsResponse response = FromJson<ListExecutorsResponse>(json.stdout_text);
  ASSERT_EQ(response.executors_size(), 1);
  EXPECT_EQ(response.executors(0).capacity(), Cluster::kExecutorCapacity);
  EXPECT_TRUE(response.executors(0).has_last_heartbeat_time());
}

// ---- schedules ----

TEST_F(CliTest, SchedulesCreateListGetPauseResumeUpdateTriggerAndDelete) {
  const std::string hourly = Queue("-hourly");  // a schedule id of this test's own
  ProcessResult created = Ctl({"schedules", "create", "--every=1h", "--overlap=buffer-one", "--label=team=data",
                               hourly, Queue(), "builtin.echo", "from a schedule"});
  ASSERT_EQ(created.exit_code, kOk) << created;
  EXPECT_THAT(created.stdout_text, HasSubstr("id         " + hourly + "\n"));
  EXPECT_THAT(created.stdout_text, HasSubstr("trigger    every 1h00m\n"));
  EXPECT_THAT(created.stdout_text, HasSubstr("overlap    buffer-one\n"));
  EXPECT_THAT(created.stdout_text, HasSubstr("catch-up   run-once\n"));

  ProcessResult list = Ctl({"schedules", "--output=json"});
  ASSERT_EQ(list.exit_code, kOk) << list;
  ListSchedulesResponse listed = FromJson<ListSchedulesResponse>(list.stdout_text);
  auto found = std::find_if(listed.schedules().begin(), listed.schedules().end(),
                            [&](const Schedule& s) { return s.id() == hourly; });
  ASSERT_NE(found, listed.schedules().end()) << list;
  const Schedule& schedule = *found;
  EXPECT_EQ(schedule.spec().interval().seconds(), 3600);
  EXPECT_EQ(schedule.spec().overlap_policy(), OVERLAP_POLICY_BUFFER_ONE);
  EXPECT_EQ(schedule.spec().job().queue(), Queue());
  EXPECT_EQ(schedule.spec().job().payload(), "from a schedule");
  EXPECT_EQ(schedule.spec().job().labels().at("team"), "data");
  EXPECT_TRUE(schedule.has_next_fire_time());
  ProcessResult table = Ctl({"schedules", "list"});
  EXPECT_THAT(table.stdout_text, MatchesRegex("ID +STATE +TRIGGER +JOB +NEXT FIRE +LAST JOB\n(.|\n)*" + hourly +
                                              " +active +every 1h00m +" + Queue() + " builtin.echo +.*\n(.|\n)*"));

  ProcessResult paused = Ctl({"schedules", "pause", "--output=json", hourly});
  ASSERT_EQ(paused.exit_code, kOk) << paused;
  EXPECT_TRUE(FromJson<PauseScheduleResponse>(paused.stdout_text).schedule().paused());
  ProcessResult resumed = Ctl({"schedules", "resume", "--output=json", hourly});
  ASSERT_EQ(resumed.exit_code, kOk) << resumed;
  EXPECT_FALSE(FromJson<ResumeScheduleResponse>(resumed.stdout_text).schedule().paused());

  // Update replaces the whole spec; an unknown id is NOT_FOUND.
  ProcessResult updated = Ctl({"schedules", "update", "--output=json", "--cron=30 6 * * *", "--tz=Asia/Tokyo",
                               hourly, Queue(), "builtin.echo", "from a schedule"});
  ASSERT_EQ(updated.exit_code, kOk) << updated;
  const Schedule after_update = FromJson<UpdateScheduleResponse>(updated.stdout_text).schedule();
  EXPECT_EQ(after_update.spec().cron().expression(), "30 6 * * *");
  EXPECT_EQ(after_update.spec().cron().time_zone(), "Asia/Tokyo");
  EXPECT_FALSE(after_update.spec().has_interval());
  EXPECT_EQ(after_update.spec().overlap_policy(), OVERLAP_POLICY_SKIP);
  ProcessResult missing = Ctl({"schedules", "update", "--every=1h", Queue("-nope"), Queue(), "builtin.echo"});
  EXPECT_EQ(missing.exit_code, kRejected) << missing;
  EXPECT_EQ(missing.stderr_text, "cohortctl: NOT_FOUND: schedule \"" + Queue("-nope") + "\" not found\n");

  // Trigger submits the template now and prints the job's id.
  ProcessResult triggered = Ctl({"schedules", "trigger", hourly});
  ASSERT_EQ(triggered.exit_code, kOk) << triggered;
  const std::string job = Trimmed(triggered.stdout_text);
  EXPECT_EQ(Outcome(job).result(), "from a schedule");
  ProcessResult got = Ctl({"schedules", "get", "--output=json", hourly});
  ASSERT_EQ(got.exit_code, kOk) << got;
  EXPECT_EQ(FromJson<GetScheduleResponse>(got.stdout_text).schedule().last_job_id(), job);

  ProcessResult deleted = Ctl({"schedules", "delete", hourly});
  ASSERT_EQ(deleted.exit_code, kOk) << deleted;
  EXPECT_EQ(deleted.stdout_text, "schedule " + hourly + " deleted\n");
  ProcessResult gone = Ctl({"schedules", "get", hourly});
  EXPECT_EQ(gone.exit_code, kRejected) << gone;
  EXPECT_EQ(gone.stderr_text, "cohortctl: NOT_FOUND: schedule \"" + hourly + "\" not found\n");
}

TEST_F(CliTest, AnIntervalScheduleFiresItsJob) {
  const int64_t after = Sequence();
  ProcessResult created = Ctl({"schedules", "create", "--every=1s", "--output=json", Queue("-tick"), Queue(),
                               "builtin.echo", "tick"});
  ASSERT_EQ(created.exit_code, kOk) << created;
  // The first fire's job shows up in the event log (watch blocks until it does).
  ProcessResult fired = Ctl({"watch", "--output=json", absl::StrCat("--from=", after), "--queue=" + Queue(),
                             "--limit=1"});
  ASSERT_EQ(fired.exit_code, kOk) << fired;
  JobEvent event = FromJson<JobEvent>(fired.stdout_text);
  EXPECT_EQ(event.job().spec().labels().at("cohort.schedule"), Queue("-tick"));
  EXPECT_EQ(Outcome(event.job_id()).result(), "tick");
  ASSERT_EQ(Ctl({"schedules", "delete", Queue("-tick")}).exit_code, kOk);
}

TEST_F(CliTest, CronSchedulesKeepTheirTimeZoneAndBadOnesAreRejected) {
  ProcessResult created = Ctl({"schedules", "create", "--output=json", "--cron=0 9 * * MON-FRI", "--tz=Europe/Paris",
                               "--catch-up=run-all", "--catch-up-limit=3", Queue("-weekdays"), Queue(), "builtin.noop"});
  ASSERT_EQ(created.exit_code, kOk) << created;
  Schedule schedule = FromJson<CreateScheduleResponse>(created.stdout_text).schedule();
  EXPECT_EQ(schedule.spec().cron().expression(), "0 9 * * MON-FRI");
  EXPECT_EQ(schedule.spec().cron().time_zone(), "Europe/Paris");
  EXPECT_EQ(schedule.spec().catch_up_policy(), CATCH_UP_POLICY_RUN_ALL);
  EXPECT_EQ(schedule.spec().catch_up_limit(), 3);

  ProcessResult taken = Ctl({"schedules", "create", "--every=1h", Queue("-weekdays"), Queue(), "builtin.noop"});
  EXPECT_EQ(taken.exit_code, kRejected) << taken;
  EXPECT_THAT(taken.stderr_text, StartsWith("cohortctl: ALREADY_EXISTS: "));
  ProcessResult bad_cron = Ctl({"schedules", "create", "--cron=0 9 * *", Queue("-four-fields"), Queue(), "builtin.noop"});
  EXPECT_EQ(bad_cron.exit_code, kRejected) << bad_cron;
  EXPECT_THAT(bad_cron.stderr_text, StartsWith("cohortctl: INVALID_ARGUMENT: "));
  ProcessResult bad_zone =
      Ctl({"schedules", "create", "--cron=0 9 * * *", "--tz=Mars/Olympus", Queue("-martian"), Queue(), "builtin.noop"});
  EXPECT_EQ(bad_zone.exit_code, kRejected) << bad_zone;
  ASSERT_EQ(Ctl({"schedules", "delete", Queue("-weekdays")}).exit_code, kOk);
}

// ---- exit codes on bad input ----

TEST_F(CliTest, UnknownJobIdExitsThreeWithNotFound) {
  const std::string unknown = "0123456789abcdef01234567";
  for (const char* command : {"get", "cancel", "wait-for", "gather"}) {
    ProcessResult r = Ctl({command, unknown});
    EXPECT_EQ(r.exit_code, kRejected) << command << ": " << r;
    EXPECT_THAT(r.stderr_text, StartsWith("cohortctl: NOT_FOUND: ")) << command;
    EXPECT_THAT(r.stderr_text, HasSubstr(unknown)) << command;
    EXPECT_EQ(Lines(r.stderr_text).size(), 1u) << command << ": " << r;
  }
}

TEST_F(CliTest, InvalidQueueNameExitsThreeAndWritesNothing) {
  // The refused job carries a label of this test's own: had anything been written, a
  // job with it would be listed, whatever the other tests do meanwhile.
  const std::string marker = "--label=cli-test=" + Queue();
  ProcessResult r = Ctl({"submit", marker, "Bad Queue", "builtin.echo", "x"});
  EXPECT_EQ(r.exit_code, kRejected) << r;
  EXPECT_EQ(r.stderr_text,
            "cohortctl: INVALID_ARGUMENT: jobs[0].queue \"Bad Queue\" is invalid: use [a-z0-9._-]{1,64}\n");
  EXPECT_EQ(r.stdout_text, "");
  // Nothing was written: no job, no queue.
  EXPECT_EQ(CountJobsLabelled("cli-test", Queue()), 0);
  ProcessResult queues = Ctl({"queues", "--output=json"});
  EXPECT_THAT(queues.stdout_text, ::testing::Not(HasSubstr("Bad Queue")));
  // The same submit to a good queue is listed: the check above can see a written job.
  Submit({marker, Queue(), "builtin.echo", "x"});
  EXPECT_EQ(CountJobsLabelled("cli-test", Queue()), 1);
}

TEST_F(CliTest, UnknownFlagOrCommandExitsTwoWithOneLine) {
  ProcessResult flag = Ctl({"submit", "--bogus", Queue(), "builtin.echo"});
  EXPECT_EQ(flag.exit_code, kUsage) << flag;
  EXPECT_EQ(flag.stderr_text, "cohortctl: unknown flag --bogus (see --help)\n");
  EXPECT_EQ(flag.stdout_text, "");

  ProcessResult command = Ctl({"frobnicate"});
  EXPECT_EQ(command.exit_code, kUsage) << command;
  EXPECT_EQ(command.stderr_text, "cohortctl: unknown command \"frobnicate\" (see cohortctl --help)\n");

  ProcessResult args = Ctl({"get"});
  EXPECT_EQ(args.exit_code, kUsage) << args;
  EXPECT_EQ(args.stderr_text, "cohortctl: expected 1 argument, got 0 (see --help)\n");

  ProcessResult value = Ctl({"submit", "--priority=high", Queue(), "builtin.echo"});
  EXPECT_EQ(value.exit_code, kUsage) << value;
  EXPECT_THAT(value.stderr_text, StartsWith("cohortctl: --priority \"high\" is invalid"));

  ProcessResult none = Run({});
  EXPECT_EQ(none.exit_code, kUsage) << none;
}

// A replicated broker group: only its leader listens, and --server lists every replica.
TEST_F(CliTest, AListOfServersReachesTheOneThatListens) {
  ProcessResult r = Run({"--server=127.0.0.1:1," + cluster_->address(), "submit", "--wait", Queue(), "builtin.echo",
                         "via the list"});
  EXPECT_EQ(r.exit_code, kOk) << r;
  EXPECT_EQ(r.stdout_text, "via the list\n");

  ProcessResult names = Run({"--server=127.0.0.1:1,localhost:1", "ls"});
  EXPECT_EQ(names.exit_code, kUsage) << names;
  EXPECT_THAT(names.stderr_text, HasSubstr("a list of addresses takes IP addresses only"));
}

TEST_F(CliTest, UnreachableServerExitsFourQuicklyAndSaysWhy) {
  ProcessResult r = Run({"--server=127.0.0.1:1", "ls"});
  EXPECT_EQ(r.exit_code, kUnreachable) << r;
  EXPECT_EQ(r.stderr_text, "cohortctl: cannot reach broker at 127.0.0.1:1: connection refused\n");
  EXPECT_LT(r.elapsed, absl::Seconds(3));

  // COHORT_SERVER is the default for --server; the scheduler defaults to the same.
  RunOptions env;
  env.env = {"COHORT_SERVER=127.0.0.1:1"};
  ProcessResult from_env = Run({"schedules", "list"}, env);
  EXPECT_EQ(from_env.exit_code, kUnreachable) << from_env;
  EXPECT_EQ(from_env.stderr_text, "cohortctl: cannot reach scheduler at 127.0.0.1:1: connection refused\n");

  ProcessResult malformed = Run({"--server=nowhere", "ls"});
  EXPECT_EQ(malformed.exit_code, kUsage) << malformed;
  EXPECT_THAT(malformed.stderr_text, StartsWith("cohortctl: --server \"nowhere\" is invalid"));
}

TEST_F(CliTest, ASilentServerExitsFourWithinTheTimeout) {
  // A listening socket that never answers: the TCP handshake completes, gRPC's does not.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string address = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  for (const char* command : {"get", "wait-for"}) {
    ProcessResult r = Run({"--server=" + address, "--timeout=300ms", command, "0123456789abcdef01234567"});
    EXPECT_EQ(r.exit_code, kUnreachable) << r;
    EXPECT_EQ(r.stderr_text, absl::StrCat("cohortctl: cannot reach broker at ", address, ": no answer within 300ms\n"));
    EXPECT_LT(r.elapsed, absl::Seconds(3));
  }
  close(fd);
}

// ---- help ----

TEST_F(CliTest, EveryCommandAnswersHelpWithItsFlags) {
  ProcessResult top = Run({"--help"});
  EXPECT_EQ(top.exit_code, kOk) << top;
  EXPECT_THAT(top.stdout_text, HasSubstr("exit codes:"));
  EXPECT_THAT(top.stdout_text, HasSubstr("--server=HOST:PORT"));
  const std::vector<std::vector<std::string>> commands = {
      {"submit"},          {"get"},           {"ls"},
      {"cancel"},          {"watch"},         {"gather"},
      {"wait"},            {"wait-for"},      {"as-completed"},
      {"queues"},          {"queues", "pause"}, {"queues", "resume"},
      {"queues", "limits"}, {"executors"},    {"schedules"},
      {"schedules", "create"}, {"schedules", "get"}, {"schedules", "delete"},
      {"schedules", "pause"}, {"schedules", "resume"}, {"schedules", "trigger"}};
  for (std::vector<std::string> command : commands) {
    const std::string name = absl::StrJoin(command, " ");
    command.push_back("--help");
    ProcessResult r = Run(command);
    EXPECT_EQ(r.exit_code, kOk) << name << ": " << r;
    EXPECT_THAT(r.stdout_text, StartsWith("usage: cohortctl " + name)) << r;
  }
  ProcessResult submit = Run({"submit", "--help"});
  for (const char* flag : {"--priority=N", "--delay=DURATION", "--attempts=N", "--depends-on=JOB_ID",
                           "--idempotency-key=KEY", "--label=KEY=VALUE", "--env=KEY=VALUE", "--wait"}) {
    EXPECT_THAT(submit.stdout_text, HasSubstr(flag));
  }
  EXPECT_THAT(Run({"wait", "--help"}).stdout_text, HasSubstr("--return-when=WHEN"));
  EXPECT_THAT(Run({"help", "wait-for"}).stdout_text, HasSubstr("--shield"));
}

TEST_F(CliTest, ScheduleCreateChecksItsTriggerBeforeCallingAnyone) {
  ProcessResult neither = Run({"--server=127.0.0.1:1", "schedules", "create", "nightly", "q", "builtin.noop"});
  EXPECT_EQ(neither.exit_code, kUsage) << neither;
  EXPECT_EQ(neither.stderr_text, "cohortctl: give exactly one of --every and --cron\n");
  ProcessResult tz = Run({"--server=127.0.0.1:1", "schedules", "create", "--every=1h", "--tz=Europe/Paris", "nightly",
                          "q", "builtin.noop"});
  EXPECT_EQ(tz.exit_code, kUsage) << tz;
  ProcessResult overlap = Run({"--server=127.0.0.1:1", "schedules", "create", "--every=1h", "--overlap=sometimes",
                               "nightly", "q", "builtin.noop"});
  EXPECT_EQ(overlap.exit_code, kUsage) << overlap;
  EXPECT_THAT(overlap.stderr_text, HasSubstr("use skip, allow, buffer-one"));
  ProcessResult unknown = Run({"schedules", "frob"});
  EXPECT_EQ(unknown.exit_code, kUsage) << unknown;
}

// ---- bounded waits, JSON text, schedules, completion, config ----

TEST_F(CliTest, SubmitWaitTimeoutExitsOneAndSaysTheJobIsStillGoing) {
  ProcessResult r = Ctl({"submit", "--wait", "--wait-timeout=300ms", Queue(), "builtin.sleep", "20s"});
  EXPECT_EQ(r.exit_code, kJobFailed) << r;
  EXPECT_THAT(r.stderr_text, HasSubstr("did not end within 300ms: it is still "));
  EXPECT_THAT(r.stderr_text, HasSubstr("(nothing was cancelled)"));
  EXPECT_EQ(Lines(r.stderr_text).size(), 1u) << r;
  // Not cancelled: it is still there, queued or running.
  ProcessResult ls = Ctl({"ls", "--output=json", "--queue=" + Queue()});
  ListJobsResponse jobs = FromJson<ListJobsResponse>(ls.stdout_text);
  ASSERT_EQ(jobs.jobs_size(), 1);
  EXPECT_THAT(JobState_Name(jobs.jobs(0).state()), ::testing::AnyOf("JOB_STATE_QUEUED", "JOB_STATE_RUNNING"));

  ProcessResult lone = Ctl({"submit", "--wait-timeout=1s", Queue(), "builtin.noop"});
  EXPECT_EQ(lone.exit_code, kUsage) << lone;
  EXPECT_EQ(lone.stderr_text, "cohortctl: --wait-timeout needs --wait\n");
}

TEST_F(CliTest, TheGlobalTimeoutBoundsWaitsWithoutTheirOwn) {
  const std::string id = Submit({Queue(), "builtin.sleep", "20s"});
  ProcessResult submit = Ctl({"--timeout=300ms", "submit", "--wait", Queue(), "builtin.sleep", "20s"});
  EXPECT_EQ(submit.exit_code, kJobFailed) << submit;
  EXPECT_THAT(submit.stderr_text, HasSubstr("did not end within 300ms"));
  ProcessResult gather = Ctl({"--timeout=300ms", "gather", id});
  EXPECT_EQ(gather.exit_code, kJobFailed) << gather;
  EXPECT_THAT(gather.stderr_text, HasSubstr("gather timed out after 300ms"));
  EXPECT_LT(gather.elapsed, absl::Seconds(10));
}

TEST_F(CliTest, JsonShowsTextResultsAsTextAndOtherBytesAsBase64) {
  ProcessResult text = Ctl({"--output=json", "submit", "--wait", Queue(), "builtin.echo", "héllo wörld"});
  EXPECT_EQ(text.exit_code, kOk) << text;
  EXPECT_THAT(text.stdout_text, HasSubstr("\"result\":\"héllo wörld\""));
  EXPECT_THAT(text.stdout_text, HasSubstr("\"resultEncoding\":\"text\""));
  ProcessResult binary = Ctl({"--output=json", "submit", "--wait", Queue(), "builtin.echo", "\xff\xfe"});
  EXPECT_EQ(binary.exit_code, kOk) << binary;
  EXPECT_THAT(binary.stdout_text, HasSubstr("\"result\":\"//4=\""));
  EXPECT_THAT(binary.stdout_text, HasSubstr("\"resultEncoding\":\"base64\""));
  // The payload inside a job, too.
  const std::string id = Submit({Queue(), "builtin.echo", "plain"});
  ProcessResult get = Ctl({"--output=json", "get", id});
  EXPECT_THAT(get.stdout_text, HasSubstr("\"payload\":\"plain\""));
  EXPECT_THAT(get.stdout_text, HasSubstr("\"payloadEncoding\":\"text\""));
}

TEST_F(CliTest, SchedulesAgainstAServerWithoutThemSayWhereToPointCohortctl) {
  TempDir dir("cli-broker");
  absl::StatusOr<std::unique_ptr<ServiceProcess>> broker = ServiceProcess::Start(
      BinaryPath("services/broker/cohort-broker"),
      {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir.Path("data")});
  ASSERT_TRUE(broker.ok()) << broker.status();
  ProcessResult r = Run({"--server=" + (*broker)->grpc_address(), "schedules", "list"});
  EXPECT_EQ(r.exit_code, kRejected) << r;
  EXPECT_THAT(r.stderr_text, HasSubstr("does not serve schedules"));
  EXPECT_THAT(r.stderr_text, HasSubstr("--scheduler=HOST:PORT, COHORT_SCHEDULER"));
  EXPECT_EQ(Lines(r.stderr_text).size(), 1u) << r;
}

TEST_F(CliTest, ACronThatCanNeverFireIsRejected) {
  ProcessResult r = Ctl({"schedules", "create", "--cron=0 2 30 2 *", Queue(), Queue(), "builtin.noop"});
  EXPECT_EQ(r.exit_code, kRejected) << r;
  EXPECT_EQ(r.stderr_text,
            "cohortctl: INVALID_ARGUMENT: spec.cron.expression \"0 2 30 2 *\" never fires: no date matches its "
            "day-of-month, month and day-of-week fields (e.g. February 30)\n");
  EXPECT_EQ(Ctl({"schedules", "get", Queue()}).exit_code, kRejected);
}

TEST_F(CliTest, SchedulesGetShowsTheCommand) {
  ProcessResult created =
      Ctl({"schedules", "create", "--every=1h", Queue(), Queue(), "exec", "--", "/bin/echo", "nightly", "report"});
  ASSERT_EQ(created.exit_code, kOk) << created;
  ProcessResult get = Ctl({"schedules", "get", Queue()});
  EXPECT_EQ(get.exit_code, kOk) << get;
  EXPECT_THAT(get.stdout_text, HasSubstr("command    /bin/echo nightly report"));
  EXPECT_EQ(Ctl({"schedules", "delete", Queue()}).exit_code, kOk);
}

TEST_F(CliTest, QueueLimitsRefuseNegativeValuesAndSayZeroIsUnlimited) {
  ProcessResult negative = Ctl({"queues", "limits", "--max-concurrency=-1", Queue()});
  EXPECT_EQ(negative.exit_code, kUsage) << negative;
  EXPECT_EQ(negative.stderr_text,
            "cohortctl: --max-concurrency -1 is invalid: use 0 (unlimited) or a positive number\n");
  EXPECT_THAT(Run({"queues", "limits", "--help"}).stdout_text, HasSubstr("0 means unlimited, not stopped"));
}

TEST_F(CliTest, BashCompletionLoadsAndCompletesCommandsSubcommandsAndFlags) {
  ProcessResult script = Run({"completion", "bash"});
  ASSERT_EQ(script.exit_code, kOk) << script;
  TempDir dir("cli-completion");
  const std::string path = dir.Path("cohortctl.bash");
  ASSERT_TRUE(WriteFile(path, script.stdout_text).ok());
  auto complete = [&](const std::string& words, int cword) {
    absl::StatusOr<ProcessResult> r = RunProcess(
        "/bin/bash", {"-c", absl::StrCat("source ", path, "; COMP_WORDS=(", words, "); COMP_CWORD=", cword,
                                         "; _cohortctl; echo \"${COMPREPLY[*]}\"")});
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 0) << *r;
    return Trimmed(r->stdout_text);
  };
  EXPECT_EQ(complete("cohortctl sch", 1), "schedules");
  EXPECT_EQ(complete("cohortctl w", 1), "watch wait wait-for");  // in the command table's order
  EXPECT_EQ(complete("cohortctl --output=json queues p", 3), "pause");
  EXPECT_EQ(complete("cohortctl schedules tr", 2), "trigger");
  EXPECT_EQ(complete("cohortctl --tls-s", 1), "--tls-server-name");
  EXPECT_EQ(complete("cohortctl completion z", 2), "zsh");

  ProcessResult zsh = Run({"completion", "zsh"});
  EXPECT_EQ(zsh.exit_code, kOk) << zsh;
  EXPECT_THAT(zsh.stdout_text, StartsWith("#compdef cohortctl\n"));
  ProcessResult fish = Run({"completion", "fish"});
  EXPECT_EQ(fish.exit_code, kUsage) << fish;
  EXPECT_EQ(fish.stderr_text, "cohortctl: completion for fish is not available: use bash or zsh\n");
}

// zsh (tools/setup.sh installs it): the script loads after compinit and registers
// _cohortctl; driven with compadd and _describe replaced by printers (zsh's own
// completion widgets need a terminal), it offers the commands, a command's
// subcommands and the global flags.
TEST_F(CliTest, ZshCompletionLoadsAndOffersCommandsSubcommandsAndFlags) {
  ProcessResult script = Run({"completion", "zsh"});
  ASSERT_EQ(script.exit_code, kOk) << script;
  TempDir dir("cli-zsh-completion");
  const std::string path = dir.Path("_cohortctl");
  ASSERT_TRUE(WriteFile(path, script.stdout_text).ok());
  auto complete = [&](const std::string& words, int current, const std::string& prefix) {
    absl::StatusOr<ProcessResult> r = RunProcess(
        "/usr/bin/zsh",
        {"-f", "-c",
         absl::StrCat("autoload -U compinit; compinit -u -d ", dir.Path("zcompdump"), "; source ", path,
                      "; [[ ${_comps[cohortctl]} == _cohortctl ]] || print unregistered",
                      "; compadd() { print -r -- \"${(j: :)@}\"; }",
                      "; _describe() { print -r -- \"${(j: :)${(@)${(P)2}%%:*}}\"; }",
                      "; words=(", words, "); CURRENT=", current, "; PREFIX=", prefix, "; _cohortctl")});
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 0) << *r;
    return Trimmed(r->stdout_text);
  };
  EXPECT_THAT(complete("cohortctl s", 2, "s"), StartsWith("submit get ls "));
  EXPECT_EQ(complete("cohortctl --output=json queues p", 4, "p"), "-- list create delete pause resume limits");
  EXPECT_EQ(complete("cohortctl schedules tr", 3, "tr"),
            "-- list create get update delete pause resume trigger");
  EXPECT_THAT(complete("cohortctl --tls-s", 2, "--tls-s"), HasSubstr(" --tls-server-name"));
}

TEST_F(CliTest, ConfigFileGivesTheServerAndEnvAndFlagsWin) {
  TempDir dir("cli-config");
  const std::string config = dir.Path("config");
  ASSERT_TRUE(WriteFile(config, absl::StrCat("# test cluster\nserver = ", cluster_->address(), "\n")).ok());
  RunOptions with_file;
  with_file.env = {"COHORT_CONFIG=" + config, "COHORT_SERVER="};
  EXPECT_EQ(Run({"ls", "--page-size=1"}, with_file).exit_code, kOk);
  // A flag beats the file...
  ProcessResult flag = Run({"--server=127.0.0.1:1", "ls"}, with_file);
  EXPECT_EQ(flag.exit_code, kUnreachable) << flag;
  EXPECT_THAT(flag.stderr_text, HasSubstr("127.0.0.1:1"));
  // ...and so does the environment.
  RunOptions env_too = with_file;
  env_too.env.push_back("COHORT_SERVER=127.0.0.1:1");
  EXPECT_EQ(Run({"ls"}, env_too).exit_code, kUnreachable);
  // The XDG location is read when COHORT_CONFIG is not set.
  ASSERT_TRUE(WriteFile(dir.Path("xdg/cohort/config"), absl::StrCat("server = ", cluster_->address(), "\n")).ok());
  RunOptions xdg;
  xdg.env = {"COHORT_CONFIG=", "COHORT_SERVER=", "XDG_CONFIG_HOME=" + dir.Path("xdg")};
  EXPECT_EQ(Run({"ls", "--page-size=1"}, xdg).exit_code, kOk);

  ASSERT_TRUE(WriteFile(config, "server = 127.0.0.1:7070\n\nsevrer = x\n").ok());
  ProcessResult bad = Run({"ls"}, with_file);
  EXPECT_EQ(bad.exit_code, kUsage) << bad;
  EXPECT_THAT(bad.stderr_text, StartsWith(absl::StrCat("cohortctl: ", config, ":3: unknown key \"sevrer\"")));
  EXPECT_EQ(Run({"--version"}, with_file).exit_code, kOk);
  RunOptions missing;
  missing.env = {"COHORT_CONFIG=" + dir.Path("nope")};
  ProcessResult gone = Run({"ls"}, missing);
  EXPECT_EQ(gone.exit_code, kUsage) << gone;
  EXPECT_THAT(gone.stderr_text, HasSubstr("nope cannot be read"));
}

TEST_F(CliTest, ConfigFileGivesTlsAndTheTokenRelativeToItselfAndEnvWins) {
  TempDir dir("cli-config-secure");
  ASSERT_TRUE(std::filesystem::create_directories(dir.Path("conf")));
  // A self-signed certificate for 127.0.0.1, its own CA.
  absl::StatusOr<ProcessResult> cert = RunProcess(
      "/usr/bin/openssl", {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                           "-keyout", dir.Path("conf/server.key"), "-out", dir.Path("conf/server.pem"), "-days", "2",
                           "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"});
  ASSERT_TRUE(cert.ok()) << cert.status();
  ASSERT_EQ(cert->exit_code, 0) << *cert;
  const std::string tokens = dir.Path("tokens");
  ASSERT_TRUE(WriteFile(tokens, "# the broker's tokens\n").ok());
  ProcessResult created = Run({"token", "create", "--principal=ops", "--scopes=admin", "--tokens-file=" + tokens});
  ASSERT_EQ(created.exit_code, kOk) << created;
  ASSERT_TRUE(WriteFile(dir.Path("conf/token"), created.stdout_text).ok());
  absl::StatusOr<std::unique_ptr<ServiceProcess>> broker = ServiceProcess::Start(
      BinaryPath("services/broker/cohort-broker"),
      {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir.Path("data"),
       "--auth-tokens=" + tokens, "--tls-cert=" + dir.Path("conf/server.pem"),
       "--tls-key=" + dir.Path("conf/server.key")});
  ASSERT_TRUE(broker.ok()) << broker.status();
  const std::string address = (*broker)->grpc_address();
  // tls_ca and token_file are read relative to the config file's directory.
  ASSERT_TRUE(
      WriteFile(dir.Path("conf/config"), absl::StrCat("server = ", address, "\ntls_ca = server.pem\ntoken_file = token\n"))
          .ok());
  RunOptions with_file;
  with_file.env = {"COHORT_CONFIG=" + dir.Path("conf/config"), "COHORT_SERVER=", "COHORT_TOKEN=",
                   "COHORT_TOKEN_FILE=", "COHORT_TLS_CA="};
  ProcessResult listed = Run({"queues", "create", "from-config"}, with_file);
  EXPECT_EQ(listed.exit_code, kOk) << listed;
  EXPECT_EQ(listed.stdout_text, "queue from-config created\n");
  // Without the file's token the broker refuses; a token in the environment beats it.
  ProcessResult bare = Run({"--server=" + address, "--tls-ca=" + dir.Path("conf/server.pem"), "queues"},
                           {.env = {"COHORT_CONFIG="}});
  EXPECT_EQ(bare.exit_code, kRejected) << bare;
  EXPECT_THAT(bare.stderr_text, StartsWith("cohortctl: UNAUTHENTICATED: "));
  RunOptions env_wins = with_file;
  env_wins.env.push_back("COHORT_TOKEN=cohort_not-a-real-token");
  ProcessResult wrong = Run({"queues"}, env_wins);
  EXPECT_EQ(wrong.exit_code, kRejected) << wrong;
  EXPECT_THAT(wrong.stderr_text, StartsWith("cohortctl: UNAUTHENTICATED: "));
  // Without the file's CA, plaintext cannot reach a TLS broker.
  ProcessResult plaintext = Run({"--server=" + address, "--timeout=2s", "queues"}, {.env = {"COHORT_CONFIG="}});
  EXPECT_EQ(plaintext.exit_code, kUnreachable) << plaintext;
}

// ---- following the broker across a restart ----

TEST_F(CliTest, WaitForResumesAfterABrokerRestart) {
  const std::string soon = Submit({"--delay=2s", Queue(), "builtin.echo", "after the restart"});
  ProcessResult wait_for;
  std::thread waiter([&] { wait_for = Ctl({"wait-for", "--timeout=60s", soon}); });
  // The restart must come while the call is waiting: the broker counts it.
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (absl::Now() < give_up) {
    absl::StatusOr<std::string> body = ScrapeMetrics(cluster_->metrics_address());
    if (body.ok() && MetricValue(*body, "cohort_broker_waiters").value_or(0) >= 1) break;
  }
  ASSERT_TRUE(cluster_->Restart().ok());
  waiter.join();
  EXPECT_EQ(wait_for.exit_code, kOk) << wait_for;
  EXPECT_EQ(wait_for.stdout_text, "after the restart\n");
  EXPECT_THAT(wait_for.stderr_text, HasSubstr("lost the broker at " + cluster_->address()));
}

TEST_F(CliTest, WatchResumesAfterABrokerRestartWithoutLosingOrRepeatingEvents) {
  const int64_t after = Sequence();
  const std::string before = Submit({Queue(), "builtin.echo", "before"});
  ASSERT_EQ(Outcome(before).state(), JOB_STATE_SUCCEEDED);
  // The restart comes once watch has printed the first job's three events.
  absl::Notification printed_first;
  RunOptions options;
  options.timeout = absl::Seconds(60);
  options.on_output = [&](pid_t, const ProcessResult& so_far) {
    if (!printed_first.HasBeenNotified() && Lines(so_far.stdout_text).size() >= 3) printed_first.Notify();
  };
  ProcessResult watch;
  std::thread watcher([&] {
    watch = Ctl({"watch", "--output=json", absl::StrCat("--from=", after), "--queue=" + Queue(), "--limit=6"}, options);
  });
  const bool printed = printed_first.WaitForNotificationWithTimeout(absl::Seconds(20));
  EXPECT_TRUE(printed);
  const absl::Status restarted = printed ? cluster_->Restart() : absl::CancelledError("not restarted");
  EXPECT_TRUE(restarted.ok()) << restarted;
  std::string later;
  if (restarted.ok()) {
    later = Submit({Queue(), "builtin.echo", "after"});
    EXPECT_EQ(Outcome(later).state(), JOB_STATE_SUCCEEDED);
  }
  watcher.join();  // --limit=6 ends it; without the restart's job, its timeout does
  ASSERT_EQ(watch.exit_code, kOk) << watch;
  const std::vector<std::string> lines = Lines(watch.stdout_text);
  ASSERT_EQ(lines.size(), 6u) << watch;
  int64_t last = after;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const JobEvent event = FromJson<JobEvent>(lines[i]);
    EXPECT_EQ(event.job_id(), i < 3 ? before : later) << lines[i];
    EXPECT_GT(event.sequence(), last) << "each event once, in order: " << watch;
    last = event.sequence();
  }
  EXPECT_THAT(watch.stderr_text, HasSubstr("watch: lost the broker at " + cluster_->address()));
  EXPECT_THAT(watch.stderr_text, HasSubstr("watch: reconnected"));
}

// ---- operating jobs: retry, delete, bulk, purge, filters, queues ----

TEST_F(CliTest, RetryRunsAFailedJobAgainKeepingItsFirstAttempt) {
  const std::string id = Submit({Queue(), "builtin.fail", "boom"});
  ASSERT_EQ(Outcome(id).state(), JOB_STATE_FAILED);
  ProcessResult retried = Ctl({"retry", id});
  EXPECT_EQ(retried.exit_code, kOk) << retried;
  EXPECT_THAT(retried.stdout_text, StartsWith(id + " retried: "));
  EXPECT_EQ(Outcome(id).state(), JOB_STATE_FAILED);  // builtin.fail fails every time
  EXPECT_EQ(Get(id).attempts_size(), 2);

  const std::string ok = Submit({Queue(), "builtin.echo", "fine"});
  ASSERT_EQ(Outcome(ok).state(), JOB_STATE_SUCCEEDED);
  ProcessResult succeeded = Ctl({"retry", ok});
  EXPECT_EQ(succeeded.exit_code, kRejected) << succeeded;
  EXPECT_THAT(succeeded.stderr_text, StartsWith("cohortctl: FAILED_PRECONDITION: "));
  ProcessResult unknown = Ctl({"retry", "0123456789abcdef01234567"});
  EXPECT_EQ(unknown.exit_code, kRejected) << unknown;
  EXPECT_THAT(unknown.stderr_text, StartsWith("cohortctl: NOT_FOUND: "));
  EXPECT_EQ(Ctl({"retry", "--expected-attempt=-1", id}).exit_code, kUsage);
}

TEST_F(CliTest, DeleteRemovesAJobForGood) {
  const std::string id = Submit({Queue(), "builtin.echo", "bye"});
  ASSERT_EQ(Outcome(id).state(), JOB_STATE_SUCCEEDED);
  ProcessResult deleted = Ctl({"delete", id});
  EXPECT_EQ(deleted.exit_code, kOk) << deleted;
  EXPECT_EQ(deleted.stdout_text, id + " deleted (it was SUCCEEDED)\n");
  EXPECT_EQ(Ctl({"get", id}).exit_code, kRejected);
  ProcessResult again = Ctl({"delete", id});
  EXPECT_EQ(again.exit_code, kRejected) << again;
  EXPECT_THAT(again.stderr_text, StartsWith("cohortctl: NOT_FOUND: "));
}

TEST_F(CliTest, BulkRetryByLabelCountsFirstAndNeedsYesWithoutATerminal) {
  const std::string selector = "--label=batch=" + Queue();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Submit({"--label=batch=" + Queue(), Queue(), "builtin.fail", "x"}));
  for (const std::string& id : ids) ASSERT_EQ(Outcome(id).state(), JOB_STATE_FAILED);

  ProcessResult dry = Ctl({"bulk", "retry", selector, "--dry-run"});
  EXPECT_EQ(dry.exit_code, kOk) << dry;
  EXPECT_EQ(dry.stdout_text, "5 job(s) match: retry would apply to them (dry run: nothing changed)\n");
  ProcessResult unconfirmed = Ctl({"bulk", "retry", selector});
  EXPECT_EQ(unconfirmed.exit_code, kUsage) << unconfirmed;
  EXPECT_THAT(unconfirmed.stderr_text, HasSubstr("add --yes"));

  ProcessResult done = Ctl({"bulk", "retry", selector, "--state=failed", "--yes"});
  EXPECT_EQ(done.exit_code, kOk) << done;
  EXPECT_THAT(done.stdout_text, HasSubstr("retry done: 5 matched, 5 changed, 0 skipped"));
  for (const std::string& id : ids) EXPECT_EQ(Outcome(id).state(), JOB_STATE_FAILED);
  EXPECT_EQ(Get(ids[0]).attempts_size(), 2);

  const std::string op_id = Lines(done.stdout_text)[0].substr(0, Lines(done.stdout_text)[0].find(' '));
  ProcessResult status = Ctl({"bulk", "status", op_id});
  EXPECT_EQ(status.exit_code, kOk) << status;
  EXPECT_THAT(status.stdout_text, HasSubstr("5 changed"));
  ProcessResult list = Ctl({"bulk", "ls"});
  EXPECT_EQ(list.exit_code, kOk) << list;
  EXPECT_THAT(list.stdout_text, HasSubstr(op_id));
  EXPECT_EQ(Ctl({"bulk", "status", "nosuchoperation"}).exit_code, kRejected);
}

TEST_F(CliTest, BulkAsksOnATerminalAndChangesNothingUnlessConfirmed) {
  const std::string selector = "--label=confirm=" + Queue();
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(Submit({selector, Queue(), "builtin.fail", "x"}));
  for (const std::string& id : ids) ASSERT_EQ(Outcome(id).state(), JOB_STATE_FAILED);
  RunOptions refuse;
  refuse.stdin_is_terminal = true;
  refuse.stdin_data = "n\n";
  ProcessResult refused = Ctl({"bulk", "retry", selector}, refuse);
  EXPECT_EQ(refused.exit_code, kUsage) << refused;
  EXPECT_EQ(refused.stderr_text,
            "retry 3 job(s) that match now? [y/N] cohortctl: not confirmed: nothing changed\n");
  for (const std::string& id : ids) EXPECT_EQ(Get(id).attempts_size(), 1) << id;

  RunOptions confirm = refuse;
  confirm.stdin_data = "y\n";
  ProcessResult confirmed = Ctl({"bulk", "retry", selector}, confirm);
  EXPECT_EQ(confirmed.exit_code, kOk) << confirmed;
  EXPECT_THAT(confirmed.stderr_text, StartsWith("retry 3 job(s) that match now? [y/N] "));
  EXPECT_THAT(confirmed.stdout_text, HasSubstr("retry done: 3 matched, 3 changed, 0 skipped"));
  for (const std::string& id : ids) EXPECT_EQ(Outcome(id).state(), JOB_STATE_FAILED);  // builtin.fail fails again
  EXPECT_EQ(Get(ids[0]).attempts_size(), 2);
}

TEST_F(CliTest, PurgeDeletesWhatItsDryRunCounted) {
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Outcome(Submit({Queue(), "builtin.echo", "x"})).state(), JOB_STATE_SUCCEEDED);
  ProcessResult dry = Ctl({"purge", "--queue=" + Queue(), "--dry-run"});
  EXPECT_EQ(dry.exit_code, kOk) << dry;
  EXPECT_THAT(dry.stdout_text, StartsWith("3 job(s) match"));
  ProcessResult purged = Ctl({"purge", "--queue=" + Queue(), "--yes", "--output=json"});
  EXPECT_EQ(purged.exit_code, kOk) << purged;
  BulkOperation op = FromJson<BulkOperation>(purged.stdout_text);
  EXPECT_EQ(op.changed(), 3);
  EXPECT_EQ(op.state(), BulkOperation::STATE_DONE);
  ProcessResult left = Ctl({"ls", "--output=json", "--queue=" + Queue()});
  EXPECT_EQ(FromJson<ListJobsResponse>(left.stdout_text).jobs_size(), 0);

  ProcessResult everything = Ctl({"purge", "--yes"});
  EXPECT_EQ(everything.exit_code, kUsage) << everything;
  EXPECT_THAT(everything.stderr_text, HasSubstr("no filter flag given"));
  ProcessResult unknown = Ctl({"bulk", "frob"});
  EXPECT_EQ(unknown.exit_code, kUsage) << unknown;
}

TEST_F(CliTest, LsListsNewestFirstFiltersAndShowsErrors) {
  const std::string failed = Submit({"--label=tier=gold", Queue(), "builtin.fail", "kaput"});
  ASSERT_EQ(Outcome(failed).state(), JOB_STATE_FAILED);
  const std::string ok = Submit({Queue(), "builtin.echo", "fine"});
  ASSERT_EQ(Outcome(ok).state(), JOB_STATE_SUCCEEDED);
  auto ids = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"ls", "--output=json", "--queue=" + Queue()});
    ProcessResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, kOk) << r;
    std::vector<std::string> out;
    const ListJobsResponse page = FromJson<ListJobsResponse>(r.stdout_text);
    for (const Job& job : page.jobs()) out.push_back(job.id());
    return out;
  };
  EXPECT_THAT(ids({}), ElementsAre(failed, ok));
  EXPECT_THAT(ids({"--newest"}), ElementsAre(ok, failed));
  EXPECT_THAT(ids({"--kind=builtin.fail"}), ElementsAre(failed));
  EXPECT_THAT(ids({"--label=tier=gold"}), ElementsAre(failed));
  EXPECT_THAT(ids({"--label=!tier"}), ElementsAre(ok));
  EXPECT_THAT(ids({"--since=1h"}), ElementsAre(failed, ok));
  EXPECT_THAT(ids({"--until=1h"}), ElementsAre());
  EXPECT_THAT(ids({"--error-code=handler"}), ElementsAre(failed));
  EXPECT_THAT(ids({"--finished-until=1h"}), ElementsAre());
  const std::string pending = Submit({"--delay=1h", Queue(), "builtin.echo", "later"});
  EXPECT_THAT(ids({"--finished-since=1h"}), ElementsAre(failed, ok));  // not the job that has not ended
  EXPECT_THAT(ids({"--newest"}), ElementsAre(pending, ok, failed));
  ProcessResult table = Ctl({"ls", "--queue=" + Queue(), "--state=failed"});
  ASSERT_EQ(table.exit_code, kOk) << table;
  EXPECT_THAT(Lines(table.stdout_text)[1], HasSubstr("kaput"));

  ProcessResult since = Ctl({"ls", "--since=yesterday-ish"});
  EXPECT_EQ(since.exit_code, kUsage) << since;
  EXPECT_THAT(since.stderr_text, HasSubstr("--since \"yesterday-ish\" is invalid: use RFC 3339"));
  ProcessResult finished = Ctl({"ls", "--finished-until=soonish"});
  EXPECT_EQ(finished.exit_code, kUsage) << finished;
  EXPECT_THAT(finished.stderr_text, HasSubstr("--finished-until \"soonish\" is invalid: use RFC 3339"));
  ProcessResult selector = Ctl({"ls", "--label=a in (b"});
  EXPECT_EQ(selector.exit_code, kRejected) << selector;
  EXPECT_THAT(selector.stderr_text, StartsWith("cohortctl: INVALID_ARGUMENT: "));
}

TEST_F(CliTest, QueuesCreateAndDeleteWithAndWithoutJobs) {
  ProcessResult created = Ctl({"queues", "create", "--paused", "--max-concurrency=2", Queue()});
  EXPECT_EQ(created.exit_code, kOk) << created;
  EXPECT_EQ(created.stdout_text, "queue " + Queue() + " created\n");
  EXPECT_EQ(Ctl({"queues", "create", Queue()}).stdout_text, "queue " + Queue() + " already existed (left unchanged)\n");
  Submit({Queue(), "builtin.echo", "waits"});
  ProcessResult busy = Ctl({"queues", "delete", Queue()});
  EXPECT_EQ(busy.exit_code, kRejected) << busy;
  EXPECT_THAT(busy.stderr_text, HasSubstr("(--with-jobs deletes them too)"));
  ProcessResult deleted = Ctl({"queues", "delete", "--with-jobs", Queue()});
  EXPECT_EQ(deleted.exit_code, kOk) << deleted;
  EXPECT_EQ(deleted.stdout_text, "queue " + Queue() + " deleted, with 1 job(s)\n");
  ProcessResult gone = Ctl({"queues", "delete", Queue()});
  EXPECT_EQ(gone.exit_code, kRejected) << gone;
  EXPECT_THAT(gone.stderr_text, StartsWith("cohortctl: NOT_FOUND: "));
  EXPECT_EQ(Ctl({"queues", "create", "Bad Name"}).exit_code, kRejected);
}

TEST_F(CliTest, SubmitWarnsWhenNoConnectedExecutorRunsTheKind) {
  ProcessResult r = Ctl({"submit", Queue(), "python.upper", "x"});
  EXPECT_EQ(r.exit_code, kOk) << r;
  EXPECT_THAT(r.stderr_text, HasSubstr("warning: no connected executor runs kind \"python.upper\" from queue"));
  // get says why the job waits, in the table and in JSON.
  const std::string waiting = Trimmed(r.stdout_text);
  ProcessResult get = Ctl({"get", waiting});
  EXPECT_EQ(get.exit_code, kOk) << get;
  EXPECT_THAT(get.stdout_text, HasSubstr("state     QUEUED (no connected executor runs its kind"));
  ProcessResult json = Ctl({"get", "--output=json", waiting});
  EXPECT_TRUE(FromJson<GetJobResponse>(json.stdout_text).unserved()) << json;
  // queues counts it, with its kind.
  ProcessResult queues = Ctl({"queues"});
  EXPECT_THAT(queues.stdout_text, MatchesRegex("(.|\n)*" + Queue() + " +active .* 1 +1 \\(python.upper\\)\n(.|\n)*"))
      << queues;
  ProcessResult served = Ctl({"submit", Queue(), "builtin.noop"});
  EXPECT_EQ(served.exit_code, kOk) << served;
  EXPECT_EQ(served.stderr_text, "");
  ASSERT_EQ(Outcome(Trimmed(served.stdout_text)).state(), JOB_STATE_SUCCEEDED);
  EXPECT_THAT(Ctl({"get", Trimmed(served.stdout_text)}).stdout_text, ::testing::Not(HasSubstr("no connected executor")));
}

}  // namespace
}  // namespace cohort::testing
