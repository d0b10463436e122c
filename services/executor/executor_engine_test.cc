// ExecutorEngine against a broker played by the test: a real gRPC server on
// 127.0.0.1 whose Connect handler runs a script per stream on gRPC's threads, while the
// engine runs on the test's loop.
#include "services/executor/executor_engine.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace cohort::executor {
namespace {

using cohort::v1::BrokerMessage;
using cohort::v1::ExecutorMessage;
using BrokerSide = grpc::ServerReaderWriter<BrokerMessage, ExecutorMessage>;

// Kinds for these tests:
//   test.chatty  reports progress 1000 times without suspending, then succeeds
//   test.slow    succeeds after 20 ms
//   test.hang    runs until cancelled
//   test.gate    reports progress "started", then succeeds once `gate` is set
class TestRunner final : public JobRunner {
 public:
  runtime::Task<Outcome> Run(const cohort::v1::Job& job, int attempt, ProgressSink& progress) override {
    if (job.spec().kind() == "test.gate") {
      progress.Report(0, "started");
      co_await gate.Wait();
      co_return Outcome::Success("gated");
    }
    if (job.spec().kind() == "test.chatty") {
      for (int i = 1; i <= 1000; ++i) progress.Report(i / 1000.0, absl::StrCat("step ", i));
      co_return Outcome::Success("chatty");
    }
    if (job.spec().kind() == "test.instant") co_return Outcome::Success("instant");
    if (job.spec().kind() == "test.hang") {
      runtime::Event never;
      co_await never.Wait();
    }
    co_await runtime::Sleep(std::chrono::milliseconds(20));
    co_return Outcome::Success("slow");
  }
  runtime::Event gate;  // loop thread only
};

// The broker's side of the protocol: one script per Connect stream, in order.
class FakeBroker final : public cohort::v1::Broker::Service {
 public:
  using Script = std::function<void(BrokerSide&)>;
  explicit FakeBroker(std::vector<Script> scripts) : scripts_(std::move(scripts)) {}

  grpc::Status Connect(grpc::ServerContext*, BrokerSide* stream) override {
    Script script;
    {
      absl::MutexLock lock(&mu_);
      if (connects_ < scripts_.size()) script = scripts_[connects_];
      ++connects_;
    }
    if (!script) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no script for this stream");
    script(*stream);
    return grpc::Status::OK;
  }

  std::size_t connects() {
    absl::MutexLock lock(&mu_);
    return connects_;
  }

 private:
  const std::vector<Script> scripts_;
  absl::Mutex mu_;
  std::size_t connects_ ABSL_GUARDED_BY(mu_) = 0;
};

BrokerMessage Welcome() {
  BrokerMessage m;
  m.mutable_welcome()->mutable_heartbeat_interval()->set_seconds(3600);  // no heartbeats in the way
  return m;
}

// A welcome asking for a heartbeat every `interval`.
BrokerMessage WelcomeEvery(std::chrono::seconds interval) {
  BrokerMessage m;
  m.mutable_welcome()->mutable_heartbeat_interval()->set_seconds(interval.count());
  return m;
}

BrokerMessage LeaseExtended() {
  BrokerMessage m;
  m.mutable_lease_extended()->mutable_lease()->set_seconds(30);
  return m;
}

BrokerMessage Assign(const std::string& id, const std::string& kind, int attempt = 1) {
  BrokerMessage m;
  m.mutable_assign()->mutable_job()->set_id(id);
  m.mutable_assign()->mutable_job()->set_attempt(attempt);
  m.mutable_assign()->mutable_job()->mutable_spec()->set_kind(kind);
  m.mutable_assign()->set_attempt(attempt);
  m.mutable_assign()->mutable_lease()->set_seconds(30);
  return m;
}

BrokerMessage Cancel(const std::string& id, int attempt) {
  BrokerMessage m;
  m.mutable_cancel()->set_job_id(id);
  m.mutable_cancel()->set_attempt(attempt);
  m.mutable_cancel()->set_reason("this attempt is not leased to this executor");
  return m;
}

// A welcome from a broker that takes credit on Complete and batches of completions.
BrokerMessage PipelinedWelcome() {
  BrokerMessage m = Welcome();
  m.mutable_welcome()->set_complete_carries_credit(true);
  m.mutable_welcome()->set_accepts_complete_batches(true);
  return m;
}

BrokerMessage Assigns(const std::vector<BrokerMessage>& singles) {
  BrokerMessage m;
  for (const BrokerMessage& one : singles) *m.mutable_assigns()->add_assigns() = one.assign();
  return m;
}

// The Completes of `m`, batched or not.
std::vector<ExecutorMessage::Complete> CompletesOf(const ExecutorMessage& m) {
  if (m.has_complete()) return {m.complete()};
  return {m.completes().completes().begin(), m.completes().completes().end()};
}

// Every message the executor sends on `stream` until it half-closes.
std::vector<ExecutorMessage> ReadUntilHalfClose(BrokerSide& stream) {
  std::vector<ExecutorMessage> all;
  ExecutorMessage m;
  while (stream.Read(&m)) all.push_back(m);
  return all;
}

// Reads until the executor's next heartbeat; false if the stream ended first.
bool ReadUntilHeartbeat(BrokerSide& stream) {
  ExecutorMessage m;
  while (stream.Read(&m)) {
    if (m.has_heartbeat()) return true;
  }
  return false;
}

class ExecutorEngineTest : public ::testing::Test {
 protected:
  explicit ExecutorEngineTest(runtime::Clock* clock = runtime::SteadyClock::Get()) : loop_(clock) {
    options_.reconnect_initial = std::chrono::milliseconds(10);
  }

  void Serve(std::vector<FakeBroker::Script> scripts) {
    broker_ = std::make_unique<FakeBroker>(std::move(scripts));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(broker_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    stub_ = cohort::v1::Broker::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
    options_.executor_id = "engine-under-test";
    options_.capacity = 2;
    engine_ = std::make_unique<ExecutorEngine>(loop_, *stub_, metrics_, options_, runner_, nullptr);
  }

  // Runs the engine until it has drained; the scripts call DrainFromBroker() to end it.
  void RunEngine() { runtime::RunUntilComplete(loop_, engine_->Run()); }
  // From a script's thread.
  void DrainFromBroker() {
    loop_.Post([this] { engine_->Drain(); });
  }
  void OpenGate() {
    loop_.Post([this] { runner_.gate.Set(); });
  }

  // The value of an unlabelled counter, or -1 if it is not registered.
  double Counter(const std::string& name) {
    for (const auto& family : registry_.Collect()) {
      if (family.name == name && !family.metric.empty()) return family.metric[0].counter.value;
    }
    return -1;
  }

  double Counter(const std::string& name, const std::string& outcome) {
    for (const auto& family : registry_.Collect()) {
      if (family.name != name) continue;
      for (const auto& metric : family.metric) {
        for (const auto& label : metric.label) {
          if (label.name == "outcome" && label.value == outcome) return metric.counter.value;
        }
      }
    }
    return -1;
  }

  // The value of an unlabelled gauge, or -1 if it is not registered (any thread:
  // prometheus-cpp's gauges are atomic).
  double Gauge(const std::string& name) {
    for (const auto& family : registry_.Collect()) {
      if (family.name == name && !family.metric.empty()) return family.metric[0].gauge.value;
    }
    return -1;
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }

  runtime::EventLoop loop_;
  prometheus::Registry registry_;
  ExecutorMetrics metrics_{registry_};
  TestRunner runner_;
  ExecutorOptions options_;
  std::unique_ptr<FakeBroker> broker_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<cohort::v1::Broker::Stub> stub_;
  std::unique_ptr<ExecutorEngine> engine_;
};

TEST_F(ExecutorEngineTest, ProgressReportedFasterThanItCanBeSentIsCoalescedToTheLatest) {
  std::vector<ExecutorMessage> seen;
  Serve({[&](BrokerSide& stream) {
    ExecutorMessage hello;
    ASSERT_TRUE(stream.Read(&hello));
    stream.Write(Welcome());
    stream.Write(Assign("job-1", "test.chatty"));
    ExecutorMessage m;
    while (stream.Read(&m)) {
      seen.push_back(m);
      if (m.has_complete()) break;
    }
    DrainFromBroker();
    ReadUntilHalfClose(stream);
  }});
  RunEngine();
  std::vector<ExecutorMessage::ProgressReport> progress;
  for (const ExecutorMessage& m : seen) {
    if (m.has_progress()) progress.push_back(m.progress());
  }
  ASSERT_EQ(progress.size(), 1u);
  EXPECT_EQ(progress[0].job_id(), "job-1");
  EXPECT_EQ(progress[0].attempt(), 1);
  EXPECT_EQ(progress[0].progress().fraction(), 1.0);
  EXPECT_EQ(progress[0].progress().message(), "step 1000");
  ASSERT_FALSE(seen.empty());
  EXPECT_TRUE(seen.back().has_complete());  // the progress went out before the completion
  EXPECT_EQ(Counter("cohort_executor_progress_reports_total", "sent"), 1);
  EXPECT_EQ(Counter("cohort_executor_progress_reports_total", "superseded"), 999);
}

TEST_F(ExecutorEngineTest, HelloDeclaresTheKindsAndACompletionCarriesItsCreditWhenTheBrokerTakesIt) {
  options_.kinds = {"test.slow", "test.gate"};
  ExecutorMessage hello;
  std::vector<ExecutorMessage> after;
  Serve({[&](BrokerSide& stream) {
    ASSERT_TRUE(stream.Read(&hello));
    BrokerMessage welcome = Welcome();
    welcome.mutable_welcome()->set_complete_carries_credit(true);
    stream.Write(welcome);
    stream.Write(Assign("job-1", "test.slow"));
    ExecutorMessage m;
    while (stream.Read(&m)) {
      if (m.has_heartbeat() || m.has_progress()) continue;
      if (m.has_credit() && after.empty()) continue;  // the first grant, before any work
      after.push_back(m);
      if (m.has_complete()) break;
    }
    // Anything else it sends before half-closing (a separate grant would be here).
    DrainFromBroker();
    for (const ExecutorMessage& rest : ReadUntilHalfClose(stream)) {
      if (!rest.has_heartbeat()) after.push_back(rest);
    }
  }});
  RunEngine();
  EXPECT_EQ(std::vector<std::string>(hello.hello().kinds().begin(), hello.hello().kinds().end()),
            (std::vector<std::string>{"test.slow", "test.gate"}));
  ASSERT_EQ(after.size(), 1u);
  EXPECT_TRUE(after[0].has_complete());
  EXPECT_EQ(after[0].complete().credit(), 1);
}

TEST_F(ExecutorEngineTest, AgainstABrokerThatDoesNotTakeCompleteCreditACreditGrantFollows) {
  std::vector<ExecutorMessage> after;
  Serve({[&](BrokerSide& stream) {
    ExecutorMessage hello;
    ASSERT_TRUE(stream.Read(&hello));
    stream.Write(Welcome());
    stream.Write(Assign("job-1", "test.slow"));
    ExecutorMessage m;
    bool completed = false;
    while (stream.Read(&m)) {
      if (m.has_complete()) completed = true;
      if (!completed || m.has_heartbeat() || m.has_progress()) continue;
      after.push_back(m);
      if (m.has_credit()) break;
    }
    DrainFromBroker();
    ReadUntilHalfClose(stream);
  }});
  RunEngine();
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].complete().credit(), 0);
  EXPECT_EQ(after[1].credit().credits(), 1);
}

TEST_F(ExecutorEngineTest, BrokerDrainEndsTheStreamAfterTheReportsAndTheExecutorReconnects) {
  std::vector<ExecutorMessage> first_stream;
  ExecutorMessage second_hello;
  int welcomes = 0;
  options_.on_welcome = [&welcomes] { ++welcomes; };
  Serve({[&](BrokerSide& stream) {
           ExecutorMessage hello;
           ASSERT_TRUE(stream.Read(&hello));
           stream.Write(Welcome());
           stream.Write(Assign("job-1", "test.slow"));
           BrokerMessage drain;
           drain.mutable_drain()->set_reason("broker shutting down");
           stream.Write(drain);
           first_stream = ReadUntilHalfClose(stream);  // ends only once the executor half-closes
         },
         [&](BrokerSide& stream) {
           ASSERT_TRUE(stream.Read(&second_hello));
           stream.Write(Welcome());
           DrainFromBroker();
           ReadUntilHalfClose(stream);
         }});
  RunEngine();
  EXPECT_EQ(broker_->connects(), 2u);
  EXPECT_EQ(welcomes, 2);  // every session's welcome is told
  int completions = 0;
  for (const ExecutorMessage& m : first_stream) {
    if (m.has_complete()) {
      ++completions;
      EXPECT_EQ(m.complete().job_id(), "job-1");
      EXPECT_EQ(m.complete().result(), "slow");
    }
  }
  EXPECT_EQ(completions, 1);
  ASSERT_TRUE(second_hello.has_hello());
  EXPECT_EQ(second_hello.hello().running_size(), 0);  // nothing was left running
}

// executor.proto, seq: the executor numbers what it writes from 1 on each stream, and
// a broker message whose number is not the next (one was lost on a connection that
// stayed up) closes the stream; the executor reconnects and numbers afresh.
TEST_F(ExecutorEngineTest, AMissingBrokerMessageNumberClosesTheStreamAndTheExecutorReconnects) {
  ExecutorMessage first_hello;
  ExecutorMessage first_credit;
  ExecutorMessage second_hello;
  bool first_stream_ended = false;
  Serve({[&](BrokerSide& stream) {
           ASSERT_TRUE(stream.Read(&first_hello));
           ASSERT_TRUE(stream.Read(&first_credit));
           BrokerMessage welcome = Welcome();
           welcome.set_seq(1);
           stream.Write(welcome);
           BrokerMessage extended;
           extended.mutable_lease_extended();
           extended.set_seq(3);  // 2 was lost
           stream.Write(extended);
           ReadUntilHalfClose(stream);  // ends when the executor cancels the stream
           first_stream_ended = true;
         },
         [&](BrokerSide& stream) {
           ASSERT_TRUE(stream.Read(&second_hello));
           stream.Write(Welcome());
           DrainFromBroker();
           ReadUntilHalfClose(stream);
         }});
  RunEngine();
  EXPECT_TRUE(first_stream_ended);
  EXPECT_EQ(broker_->connects(), 2u);
  EXPECT_EQ(first_hello.seq(), 1u);
  EXPECT_TRUE(first_credit.has_credit());
  EXPECT_EQ(first_credit.seq(), 2u);
  EXPECT_EQ(second_hello.seq(), 1u) << "each stream is numbered from 1";
  EXPECT_EQ(Counter("cohort_executor_stream_gaps_total"), 1);
}

TEST_F(ExecutorEngineTest, ANewAttemptOfAJobRunsWhileItsStaleAttemptIsBeingStopped) {
  std::vector<ExecutorMessage::Complete> completions;
  Serve({[&](BrokerSide& stream) {
    ExecutorMessage hello;
    ASSERT_TRUE(stream.Read(&hello));
    stream.Write(Welcome());
    stream.Write(Assign("job-1", "test.hang", 1));
    // As after a reconnect: the job was redelivered to this executor, and the broker
    // stops the attempt it no longer leases.
    stream.Write(Assign("job-1", "test.slow", 2));
    stream.Write(Cancel("job-1", 1));
    ExecutorMessage m;
    while (completions.size() < 2 && stream.Read(&m)) {
      if (m.has_complete()) completions.push_back(m.complete());
    }
    DrainFromBroker();
    ReadUntilHalfClose(stream);
  }});
  RunEngine();
  ASSERT_EQ(completions.size(), 2u);
  std::sort(completions.begin(), completions.end(),
            [](const auto& a, const auto& b) { return a.attempt() < b.attempt(); });
  EXPECT_EQ(completions[0].attempt(), 1);
  EXPECT_EQ(completions[0].error().code(), "cancelled");
  EXPECT_EQ(completions[1].attempt(), 2);
  EXPECT_EQ(completions[1].result(), "slow");
}

TEST_F(ExecutorEngineTest, AnIdleExecutorSendsEmptyHeartbeats) {
  ExecutorMessage heartbeat;
  Serve({[&](BrokerSide& stream) {
    ExecutorMessage m;
    ASSERT_TRUE(stream.Read(&m));
    BrokerMessage welcome;
    welcome.mutable_welcome()->mutable_heartbeat_interval()->set_nanos(10'000'000);
    stream.Write(welcome);
    while (stream.Read(&m)) {
      if (m.body_case() != ExecutorMessage::kCredit) break;
    }
    heartbeat = m;
    DrainFromBroker();
    ReadUntilHalfClose(stream);
  }});
  RunEngine();
  EXPECT_TRUE(heartbeat.has_heartbeat()) << heartbeat.DebugString();
  EXPECT_EQ(heartbeat.heartbeat().running_size(), 0);
}

TEST_F(ExecutorEngineTest, AHugeTimeoutDoesNotFireAtOnce) {
  ExecutorMessage::Complete completion;
  Serve({[&](BrokerSide& stream) {
    ExecutorMessage m;
    ASSERT_TRUE(stream.Read(&m));
    stream.Write(Welcome());
    BrokerMessage assign = Assign("job-1", "test.slow");
    // 2,777,778 h: valid, but its nanoseconds overflow an int64 when converted by hand.
    assign.mutable_assign()->mutable_job()->mutable_spec()->mutable_timeout()->set_seconds(10'000'000'000);
    stream.Write(assign);
    while (stream.Read(&m)) {
      if (m.has_complete()) {
        completion = m.complete();
        break;
      }
    }
    DrainFromBroker();
    ReadUntilHalfClose(stream);
  }});
  RunEngine();
  EXPECT_EQ(completion.job_id(), "job-1");
  EXPECT_EQ(completion.result(), "slow") << completion.DebugString();
}

TEST_F(ExecutorEngineTest, AnAttemptRunningWhenTheStreamBreaksIsListedInHelloAndReportedOnTheNextStream) {
  ExecutorMessage second_hello;
  std::vector<ExecutorMessage::Complete> first_completions;
  std::vector<ExecutorMessage::Complete> second_completions;
  Serve({[&](BrokerSide& stream) {
           ExecutorMessage m;
           ASSERT_TRUE(stream.Read(&m));
           stream.Write(Welcome());
           stream.Write(Assign("job-1", "test.gate"));
           while (stream.Read(&m)) {  // until the attempt runs
             if (m.has_complete()) first_completions.push_back(m.complete());
             if (m.has_progress()) break;
           }
           // Returning ends the stream under the running attempt: the network blipped.
         },
         [&](BrokerSide& stream) {
           ASSERT_TRUE(stream.Read(&second_hello));
           stream.Write(Welcome());
           OpenGate();  // the attempt finishes only now, on this stream's watch
           ExecutorMessage m;
           while (stream.Read(&m)) {
             if (m.has_complete()) {
               second_completions.push_back(m.complete());
               break;
             }
           }
           DrainFromBroker();
           ReadUntilHalfClose(stream);
         }});
  RunEngine();
  EXPECT_EQ(broker_->connects(), 2u);
  EXPECT_TRUE(first_completions.empty());
  ASSERT_TRUE(second_hello.has_hello());
  ASSERT_EQ(second_hello.hello().running_size(), 1);
  EXPECT_EQ(second_hello.hello().running(0).job_id(), "job-1");
  EXPECT_EQ(second_hello.hello().running(0).attempt(), 1);
  ASSERT_EQ(second_completions.size(), 1u);
  EXPECT_EQ(second_completions[0].job_id(), "job-1");
  EXPECT_EQ(second_completions[0].attempt(), 1);
  EXPECT_EQ(second_completions[0].result(), "gated");  // kept running, not cancelled
}

TEST_F(ExecutorEngineTest, APrefetchedAttemptStartsAsASlotFreesWithNoMessageFromTheBroker) {
  options_.prefetch = 1;  // capacity 2 (Serve): three held at most
  ExecutorMessage hello;
  ExecutorMessage grant;
  std::vector<ExecutorMessage> seen;
  Serve({[&](BrokerSide& stream) {
    ASSERT_TRUE(stream.Read(&hello));
    ASSERT_TRUE(stream.Read(&grant));
    stream.Write(PipelinedWelcome());
    stream.Write(Assigns({Assign("job-1", "test.gate"), Assign("job-2", "test.gate"), Assign("job-3", "test.gate")}));
    // Nothing more from the broker: job-3 must start on its own once a slot frees.
    ExecutorMessage m;
    int started = 0;
    while (started < 2 && stream.Read(&m)) {
      if (m.has_progress()) ++started;
    }
    OpenGate();
    std::set<std::string> done;
    while (done.size() < 3 && stream.Read(&m)) {
      seen.push_back(m);
      for (const auto& c : CompletesOf(m)) done.insert(c.job_id());
    }
    DrainFromBroker();
    ReadUntilHalfClose(stream);
  }});
  RunEngine();
  EXPECT_EQ(hello.hello().prefetch(), 1);
  EXPECT_TRUE(hello.hello().accepts_assign_batches());
  EXPECT_EQ(grant.credit().credits(), 3);  // capacity + prefetch
  // job-3 started (its progress) only after a slot freed (a completion), and every
  // completion gives its slot's credit back.
  int completions_before_job3 = -1;
  int completions = 0;
  for (const ExecutorMessage& m : seen) {
    if (m.has_progress() && m.progress().job_id() == "job-3") completions_before_job3 = completions;
    for (const auto& c : CompletesOf(m)) {
      ++completions;
      EXPECT_EQ(c.result(), "gated") << c.job_id();
      EXPECT_EQ(c.credit(), 1);
    }
  }
  EXPECT_EQ(completions, 3);
  EXPECT_GE(completions_before_job3, 1);
}

TEST_F(ExecutorEngineTest, CompletionsThatEndTogetherGoOutAsOneBatchOnlyToABrokerThatTakesIt) {
  for (const bool broker_takes_batches : {false, true}) {
    std::vector<ExecutorMessage> seen;
    Serve({[&](BrokerSide& stream) {
      ExecutorMessage m;
      ASSERT_TRUE(stream.Read(&m));
      BrokerMessage welcome = PipelinedWelcome();
      welcome.mutable_welcome()->set_accepts_complete_batches(broker_takes_batches);
      stream.Write(welcome);
      stream.Write(Assign("job-1", "test.gate"));
      stream.Write(Assign("job-2", "test.gate"));
      int started = 0;
      while (started < 2 && stream.Read(&m)) {
        if (m.has_progress()) ++started;
      }
      OpenGate();  // both finish in the same loop turn
      int done = 0;
      while (done < 2 && stream.Read(&m)) {
        if (m.has_complete() || m.has_completes()) seen.push_back(m);
        done += static_cast<int>(CompletesOf(m).size());
      }
      DrainFromBroker();
      ReadUntilHalfClose(stream);
    }});
    RunEngine();
    if (broker_takes_batches) {
      ASSERT_EQ(seen.size(), 1u);
      EXPECT_EQ(seen[0].completes().completes_size(), 2);
    } else {
      ASSERT_EQ(seen.size(), 2u);
      for (const ExecutorMessage& m : seen) EXPECT_TRUE(m.has_complete());
    }
    server_->Shutdown(std::chrono::system_clock::now());
    runner_.gate.Clear();
  }
}

TEST_F(ExecutorEngineTest, PrefetchedAttemptsThatEndInTheSameBurstTravelInTheSameBatch) {
  // Two running (capacity 2, Serve) end together and start the two held ones, which end
  // at once: the writer lets them finish before it writes, so the broker gets the four
  // completions in one message (one commit) rather than two and two.
  options_.prefetch = 2;
  std::vector<ExecutorMessage> seen;
  Serve({[&](BrokerSide& stream) {
    ExecutorMessage m;
    ASSERT_TRUE(stream.Read(&m));
    stream.Write(PipelinedWelcome());
    stream.Write(Assigns({Assign("job-1", "test.gate"), Assign("job-2", "test.gate"), Assign("job-3", "test.instant"),
                          Assign("job-4", "test.instant")}));
    int started = 0;
    while (started < 2 && stream.Read(&m)) {
      if (m.has_progress()) ++started;
    }
    OpenGate();  // job-1 and job-2 end in the same loop turn
    int done = 0;
    while (done < 4 && stream.Read(&m)) {
      if (m.has_complete() || m.has_completes()) seen.push_back(m);
      done += static_cast<int>(CompletesOf(m).size());
    }
    DrainFromBroker();
    ReadUntilHalfClose(stream);
  }});
  RunEngine();
  ASSERT_EQ(seen.size(), 1u);
  std::set<std::string> ids;
  for (const auto& c : CompletesOf(seen[0])) ids.insert(c.job_id());
  EXPECT_EQ(ids, (std::set<std::string>{"job-1", "job-2", "job-3", "job-4"}));
}

TEST_F(ExecutorEngineTest, ACancelledPrefetchedAttemptIsReportedCancelledWithoutRunning) {
  options_.prefetch = 1;
  std::vector<ExecutorMessage::Complete> completions;
  Serve({[&](BrokerSide& stream) {
    ExecutorMessage m;
    ASSERT_TRUE(stream.Read(&m));
    stream.Write(PipelinedWelcome());
    stream.Write(Assigns({Assign("job-1", "test.hang"), Assign("job-2", "test.hang"), Assign("job-3", "test.slow")}));
    stream.Write(Cancel("job-3", 1));
    while (completions.empty() && stream.Read(&m)) {
      for (const auto& c : CompletesOf(m)) completions.push_back(c);
    }
    stream.Write(Cancel("job-1", 1));
    stream.Write(Cancel("job-2", 1));
    while (completions.size() < 3 && stream.Read(&m)) {
      for (const auto& c : CompletesOf(m)) completions.push_back(c);
    }
    DrainFromBroker();
    ReadUntilHalfClose(stream);
  }});
  RunEngine();
  ASSERT_EQ(completions.size(), 3u);
  EXPECT_EQ(completions[0].job_id(), "job-3");
  EXPECT_EQ(completions[0].error().code(), "cancelled");
  EXPECT_EQ(completions[0].credit(), 1);
  for (const auto& c : completions) EXPECT_EQ(c.error().code(), "cancelled") << c.job_id();
  EXPECT_EQ(Counter("cohort_executor_progress_reports_total", "sent"), 0);  // job-3 never ran
}

TEST_F(ExecutorEngineTest, PrefetchedAttemptsSurviveABrokenStreamAndADrainHandsThemBackUnstarted) {
  options_.prefetch = 1;
  ExecutorMessage second_hello;
  std::vector<ExecutorMessage> second_stream;
  Serve({[&](BrokerSide& stream) {
           ExecutorMessage m;
           ASSERT_TRUE(stream.Read(&m));
           stream.Write(PipelinedWelcome());
           stream.Write(
               Assigns({Assign("job-1", "test.gate"), Assign("job-2", "test.gate"), Assign("job-3", "test.slow")}));
           int started = 0;
           while (started < 2 && stream.Read(&m)) {
             if (m.has_progress()) ++started;
           }
           // Returning ends the stream: the network blipped under two running and one
           // prefetched attempt.
         },
         [&](BrokerSide& stream) {
           ASSERT_TRUE(stream.Read(&second_hello));
           stream.Write(PipelinedWelcome());
           // The executor drains before a slot frees: job-3 must never start.
           DrainFromBroker();
           OpenGate();
           second_stream = ReadUntilHalfClose(stream);
         }});
  RunEngine();
  EXPECT_EQ(broker_->connects(), 2u);  // the clean close handed job-3 back: no third stream
  std::set<std::string> listed;
  for (const auto& ref : second_hello.hello().running()) listed.insert(ref.job_id());
  EXPECT_EQ(listed, (std::set<std::string>{"job-1", "job-2", "job-3"}));
  std::set<std::string> completed;
  for (const ExecutorMessage& m : second_stream) {
    for (const auto& c : CompletesOf(m)) {
      completed.insert(c.job_id());
      EXPECT_EQ(c.result(), "gated");
      EXPECT_EQ(c.credit(), 0);  // draining: no more work wanted
    }
    EXPECT_FALSE(m.has_credit() && m.credit().credits() > 0);  // Greet's grant is 3 - 3 held
    EXPECT_FALSE(m.has_progress() && m.progress().job_id() == "job-3");
  }
  EXPECT_EQ(completed, (std::set<std::string>{"job-1", "job-2"}));
  EXPECT_EQ(engine_->prefetched(), 0);
}

// What a broker that keeps to the credit saw while it fed an executor jobs.
struct Fed {
  int first_grant = 0;
  int most_held = 0;      // assigned and not yet completed, at any moment
  int most_promised = 0;  // held plus unused credit: what the executor asked for
  std::vector<int> completion_credits;
};

// Plays a broker with an endless queue of `kind` that assigns against credit exactly,
// as the real one does (clamped at zero, never above `bound`), until `jobs` have
// completed. The Hello and the first grant must not have been read yet.
Fed FeedJobs(BrokerSide& stream, const std::string& kind, int jobs, int bound, int* credit_left = nullptr) {
  Fed fed;
  ExecutorMessage m;
  if (!stream.Read(&m) || !m.has_hello() || !stream.Read(&m) || !m.has_credit()) {
    ADD_FAILURE() << "no Hello and grant";
    return fed;
  }
  fed.first_grant = m.credit().credits();
  int credit = std::clamp(fed.first_grant, 0, bound);
  stream.Write(PipelinedWelcome());
  int sent = 0;
  int completed = 0;
  while (true) {
    BrokerMessage batch;
    while (credit > 0 && sent < jobs) {
      *batch.mutable_assigns()->add_assigns() = Assign(absl::StrCat("job-", sent++), kind).assign();
      --credit;
    }
    if (batch.assigns().assigns_size() > 0) stream.Write(batch);
    fed.most_held = std::max(fed.most_held, sent - completed);
    if (completed == jobs || !stream.Read(&m)) break;
    if (m.has_credit()) credit = std::max(0, credit + m.credit().credits());
    for (const auto& c : CompletesOf(m)) {
      ++completed;
      fed.completion_credits.push_back(c.credit());
      credit = std::max(0, credit + c.credit());
    }
    fed.most_promised = std::max(fed.most_promised, sent - completed + credit);
  }
  if (credit_left != nullptr) *credit_left = credit;
  return fed;
}

TEST_F(ExecutorEngineTest, AnAdaptiveWindowOpensToItsBoundForShortJobs) {
  options_.adaptive_prefetch = true;
  options_.prefetch = 6;  // capacity 2 (Serve): eight held at most
  Fed fed;
  Serve({[&](BrokerSide& stream) {
    fed = FeedJobs(stream, "test.instant", 200, 8);
    DrainFromBroker();
    ReadUntilHalfClose(stream);
  }});
  RunEngine();
  EXPECT_EQ(fed.first_grant, 2);  // nothing learned yet: only what it can start
  EXPECT_EQ(fed.most_held, 8);    // the window opened to the bound...
  EXPECT_EQ(fed.most_promised, 8);  // ...and never asked beyond it
  EXPECT_EQ(engine_->prefetch_window(), 6);
  // While it opened, completions asked for more than their own slot.
  EXPECT_GT(*std::max_element(fed.completion_credits.begin(), fed.completion_credits.end()), 1);
}

TEST_F(ExecutorEngineTest, AnAdaptiveWindowStaysClosedForJobsLongerThanItsHorizon) {
  options_.adaptive_prefetch = true;
  options_.prefetch = 6;
  options_.prefetch_horizon = std::chrono::milliseconds(5);  // test.slow runs 20 ms: 2 x 5 / 20 < 1
  Fed fed;
  Serve({[&](BrokerSide& stream) {
    fed = FeedJobs(stream, "test.slow", 12, 8);
    DrainFromBroker();
    ReadUntilHalfClose(stream);
  }});
  RunEngine();
  EXPECT_EQ(fed.first_grant, 2);
  EXPECT_EQ(fed.most_held, 2);  // nothing held behind the busy slots
  EXPECT_EQ(fed.most_promised, 2);
  for (int credit : fed.completion_credits) EXPECT_EQ(credit, 1);
  EXPECT_EQ(engine_->prefetch_window(), 0);
}

TEST_F(ExecutorEngineTest, AnAdaptiveWindowThatSeesNothingFinishWithdrawsItsUnusedCredit) {
  options_.adaptive_prefetch = true;
  options_.prefetch = 6;
  options_.prefetch_forget_after = std::chrono::milliseconds(50);
  int credit_left = 0;
  int withdrawn = 0;
  double gauge_open = -1;
  Serve({[&](BrokerSide& stream) {
    const Fed fed = FeedJobs(stream, "test.instant", 40, 8, &credit_left);
    EXPECT_EQ(fed.most_held, 8);
    gauge_open = Gauge("cohort_executor_prefetch_window");
    // The queue is empty now: the executor's unused credit sits with the broker until
    // the window forgets and withdraws all of it beyond its capacity.
    ExecutorMessage m;
    while (stream.Read(&m)) {
      if (m.has_credit() && m.credit().credits() < 0) {
        withdrawn = m.credit().credits();
        break;
      }
    }
    DrainFromBroker();
    ReadUntilHalfClose(stream);
  }});
  RunEngine();
  EXPECT_EQ(credit_left, 8);  // every slot and the whole window, unused
  EXPECT_EQ(withdrawn, -6);   // back to the capacity
  EXPECT_EQ(gauge_open, 6);
  EXPECT_EQ(engine_->prefetch_window(), 0);
  EXPECT_EQ(Gauge("cohort_executor_prefetch_window"), 0);
}

// The watchdog, on a manual clock that only the broker's script moves (from its gRPC
// thread), one heartbeat interval at a time.
struct ManualTime {
  runtime::ManualClock clock{/*auto_advance=*/false};
};

class ExecutorWatchdogTest : private ManualTime, public ExecutorEngineTest {
 protected:
  ExecutorWatchdogTest() : ExecutorEngineTest(&clock) {
    options_.reconnect_initial = runtime::Duration::zero();  // redial at once: no time passes unless a script says so
  }

  // From a script's thread: moves the clock and wakes the loop to fire what is due.
  void Tick(runtime::Duration d) {
    clock.Advance(d);
    loop_.Post([] {});
  }
  runtime::Duration Elapsed() const { return clock.Now().time_since_epoch(); }

  // From a script's thread: polls `done` on the loop until it holds (true) or 10 s of
  // real time have passed (false).
  bool AwaitOnLoop(std::function<bool()> done) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < give_up) {
      std::promise<bool> held;
      loop_.Post([&] { held.set_value(done()); });
      if (held.get_future().get()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the poll's period
    }
    return false;
  }
  // The engine has read a message at the clock's current time (the broker's last
  // answer), so the next Tick cannot outrun it.
  bool AwaitHeardNow() {
    const runtime::TimePoint now = clock.Now();
    return AwaitOnLoop([this, now] { return engine_->last_heard() >= now; });
  }
  // Waits until the executor has opened its `n`th stream. Each poll wakes the loop: a
  // loop on a manual clock that does not auto-advance fires a due timer (here the zero
  // backoff) only when something wakes it. The engine must not be drained before this
  // returns (a poll posted to a loop that has stopped would never be answered).
  bool AwaitConnects(std::size_t n) {
    return AwaitOnLoop([this, n] { return broker_->connects() >= n; });
  }
  // Every timer due at the clock's current time has fired and what it woke has run:
  // two loop iterations, each a round trip.
  void SettleLoop() {
    for (int i = 0; i < 2; ++i) AwaitOnLoop([] { return true; });
  }
};

TEST_F(ExecutorWatchdogTest, ABrokerThatStopsAnsweringIsRedialledAfterThreeIntervalsKeepingTheRunningAttempt) {
  runtime::Duration first_stream_ended_after{};
  absl::Notification first_script_done;  // the second script drains only after it
  ExecutorMessage second_hello;
  std::vector<ExecutorMessage::Complete> completions;
  Serve({[&](BrokerSide& stream) {
           ExecutorMessage m;
           ASSERT_TRUE(stream.Read(&m));
           stream.Write(WelcomeEvery(std::chrono::seconds(1)));
           stream.Write(Assign("job-1", "test.gate"));
           while (stream.Read(&m) && !m.has_progress()) {
           }  // the attempt runs: the welcome and the assign were heard at time 0
           // Wedged from now on: heartbeats arrive, nothing comes back.
           do {
             Tick(std::chrono::seconds(1));
           } while (ReadUntilHeartbeat(stream));
           first_stream_ended_after = Elapsed();
           EXPECT_TRUE(AwaitConnects(2));
           first_script_done.Notify();
         },
         [&](BrokerSide& stream) {
           ASSERT_TRUE(stream.Read(&second_hello));
           stream.Write(WelcomeEvery(std::chrono::seconds(1)));
           OpenGate();
           ExecutorMessage m;
           while (stream.Read(&m)) {
             if (m.has_complete()) {
               completions.push_back(m.complete());
               break;
             }
           }
           ASSERT_TRUE(first_script_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
           DrainFromBroker();
           ReadUntilHalfClose(stream);
         }});
  RunEngine();
  EXPECT_EQ(broker_->connects(), 2u);
  // Cancelled once 3 intervals had passed unanswered (the third heartbeat may or may
  // not have been written first, so the script may have ticked once more).
  EXPECT_GE(first_stream_ended_after, std::chrono::seconds(3));
  EXPECT_LE(first_stream_ended_after, std::chrono::seconds(4));
  EXPECT_EQ(Counter("cohort_executor_stream_stalls_total"), 1);
  ASSERT_EQ(second_hello.hello().running_size(), 1);
  EXPECT_EQ(second_hello.hello().running(0).job_id(), "job-1");
  ASSERT_EQ(completions.size(), 1u);
  EXPECT_EQ(completions[0].job_id(), "job-1");
  EXPECT_EQ(completions[0].result(), "gated");  // kept running across the redial
}

TEST_F(ExecutorWatchdogTest, ABrokerThatAnswersEveryHeartbeatKeepsTheStream) {
  int answered = 0;
  int welcomes = 0;  // loop thread only
  options_.on_welcome = [&welcomes] { ++welcomes; };
  Serve({[&](BrokerSide& stream) {
    ExecutorMessage m;
    ASSERT_TRUE(stream.Read(&m));
    stream.Write(WelcomeEvery(std::chrono::seconds(1)));
    ASSERT_TRUE(AwaitOnLoop([&welcomes] { return welcomes == 1; }));  // heartbeats count from here
    for (int i = 0; i < 10; ++i) {  // over three times the watchdog's bound
      Tick(std::chrono::seconds(1));
      ASSERT_TRUE(ReadUntilHeartbeat(stream));
      stream.Write(LeaseExtended());  // empty: the executor runs nothing
      ASSERT_TRUE(AwaitHeardNow());
      ++answered;
    }
    DrainFromBroker();
    ReadUntilHalfClose(stream);
  }});
  RunEngine();
  EXPECT_EQ(answered, 10);
  EXPECT_EQ(broker_->connects(), 1u);
  EXPECT_EQ(Counter("cohort_executor_stream_stalls_total"), 0);
}

TEST_F(ExecutorWatchdogTest, AStreamTheBrokerNeverWelcomesIsRedialledAfterThreeDefaultIntervals) {
  runtime::Duration unwelcomed_for{};
  absl::Notification first_script_done;  // the second script drains only after it
  Serve({[&](BrokerSide& stream) {
           ExecutorMessage m;
           ASSERT_TRUE(stream.Read(&m));  // Hello, then silence
           Tick(std::chrono::seconds(14));
           SettleLoop();
           EXPECT_EQ(Counter("cohort_executor_stream_stalls_total"), 0) << "gave up before 15 s";
           Tick(std::chrono::seconds(1));  // 3 x the 5 s assumed before any Welcome
           ReadUntilHalfClose(stream);     // ends when the executor cancels
           unwelcomed_for = Elapsed();
           EXPECT_TRUE(AwaitConnects(2));
           first_script_done.Notify();
         },
         [&](BrokerSide& stream) {
           ExecutorMessage m;
           ASSERT_TRUE(stream.Read(&m));
           stream.Write(Welcome());
           ASSERT_TRUE(first_script_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
           DrainFromBroker();
           ReadUntilHalfClose(stream);
         }});
  RunEngine();
  EXPECT_EQ(broker_->connects(), 2u);
  EXPECT_EQ(unwelcomed_for, std::chrono::seconds(15));
  EXPECT_EQ(Counter("cohort_executor_stream_stalls_total"), 1);
}

}  // namespace
}  // namespace cohort::executor
