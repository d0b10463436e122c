// The gRPC <-> runtime bridge against a real gRPC server on 127.0.0.1.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "libs/rpc/bidi_client.h"
#include "libs/rpc/bidi_server.h"
#include "libs/rpc/internal/inbox.h"
#include "libs/rpc/internal/outbox.h"
#include "libs/rpc/observed_unary.h"
#include "libs/rpc/read_client.h"
#include "libs/rpc/server.h"
#include "libs/rpc/server_stream.h"
#include "libs/rpc/status.h"
#include "libs/rpc/unary_client.h"
#include "libs/rpc/unary_server.h"
#include "libs/rpc/testdata/echo.grpc.pb.h"
#include "libs/runtime/runtime.h"

namespace cohort::rpc {
namespace {

using namespace std::chrono_literals;
using runtime::EventLoop;
using runtime::Task;
using testing::Echo;
using testing::EchoMessage;

// Counts handlers that are running and handlers that were cancelled; tests wait on
// it (with a bound) instead of sleeping.
class HandlerCounts {
 public:
  void Enter() { Update([this] { ++active_; }); }
  void Leave(bool cancelled) {
    Update([&] {
      --active_;
      cancelled_ += cancelled ? 1 : 0;
    });
  }
  // Waits up to 10 s for `n` handlers to be running.
  bool AwaitActive(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return active_ == n; });
  }
  // Waits up to 10 s for `active == 0 && cancelled == n`.
  bool AwaitIdleWithCancelled(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return active_ == 0 && cancelled_ == n; });
  }

 private:
  template <typename Fn>
  void Update(Fn fn) {
    std::lock_guard<std::mutex> lock(mu_);
    fn();
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;
  int cancelled_ = 0;
};

// The outcomes ServeObservedUnary reported (any thread reads, the loop writes).
class Outcomes {
 public:
  void Add(const UnaryOutcome& o) {
    std::lock_guard<std::mutex> lock(mu_);
    codes_.push_back(o.code);
    EXPECT_EQ(o.method, "Unary");
    EXPECT_GE(o.elapsed.count(), 0);
    cv_.notify_all();
  }
  // Waits up to 10 s for `n` outcomes, then returns every one so far.
  std::vector<grpc::StatusCode> Await(std::size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, 10s, [&] { return codes_.size() >= n; });
    return codes_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<grpc::StatusCode> codes_;
};

class EchoService final : public Echo::CallbackService {
 public:
  EchoService(EventLoop& loop, HandlerCounts& counts, Outcomes& outcomes)
      : loop_(loop), counts_(counts), outcomes_(outcomes) {}

  // Observed: every call's outcome goes to outcomes_. Text "not-found" answers NOT_FOUND.
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, const EchoMessage* req,
                                  EchoMessage* resp) override {
    last_context_.store(ctx);
    return ServeObservedUnary(loop_, "Unary", [this](const UnaryOutcome& o) { outcomes_.Add(o); },
                              [this, req, resp]() -> Task<grpc::Status> {
      loop_.CheckInLoopThread();
      if (req->text() == "not-found") co_return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such thing");
      counts_.Enter();
      bool cancelled = true;
      try {
        co_await runtime::Sleep(std::chrono::milliseconds(req->delay_ms()));
        cancelled = false;
      } catch (const runtime::CancelledError&) {
      }
      counts_.Leave(cancelled);
      if (cancelled) throw runtime::CancelledError();
      *resp = *req;
      co_return grpc::Status::OK;
    });
  }

  grpc::ServerBidiReactor<EchoMessage, EchoMessage>* Chat(grpc::CallbackServerContext* ctx) override {
    return ServeBidi<EchoMessage, EchoMessage>(
        loop_, ctx, [this](ServerBidiStream<EchoMessage, EchoMessage>& stream) -> Task<grpc::Status> {
          counts_.Enter();
          bool cancelled = false;
          while (true) {
            std::optional<EchoMessage> msg = co_await stream.Read();
            if (!msg) break;
            bool written = co_await stream.Write(*msg);
            if (!written) {
              cancelled = true;
              break;
            }
          }
          cancelled = cancelled || stream.context()->IsCancelled();
          counts_.Leave(cancelled);
          co_return grpc::Status::OK;
        });
  }

  grpc::ServerWriteReactor<EchoMessage>* Count(grpc::CallbackServerContext* ctx, const EchoMessage* req) override {
    return ServeStream<EchoMessage>(loop_, ctx, [this, req](ServerWriteStream<EchoMessage>& stream) -> Task<grpc::Status> {
      counts_.Enter();
      bool cancelled = false;
      for (int64_t i = 0; i < req->n() && !cancelled; ++i) {
        EchoMessage m;
        m.set_n(i);
        bool written = co_await stream.Write(std::move(m));
        cancelled = !written;
        if (req->delay_ms() > 0 && !cancelled) {
          try {
            co_await runtime::Sleep(std::chrono::milliseconds(req->delay_ms()));
          } catch (const runtime::CancelledError&) {
            cancelled = true;
          }
        }
      }
      counts_.Leave(cancelled);
      co_return grpc::Status::OK;
    });
  }

  // The context of the latest unary call (any thread).
  grpc::CallbackServerContext* last_context() const { return last_context_.load(); }

 private:
  EventLoop& loop_;
  HandlerCounts& counts_;
  Outcomes& outcomes_;
  std::atomic<grpc::CallbackServerContext*> last_context_{nullptr};
};

// A server whose handlers run on a loop in its own thread.
class RpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_thread_ = std::thread([this] { server_loop_.Run(); });
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    absl::StatusOr<StartedServer> started = StartServer(builder, kAnyPort);
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = std::move(started->server);
    address_ = started->bound;
    channel_ = grpc::CreateChannel(address_.ToString(), grpc::InsecureChannelCredentials());
    stub_ = Echo::NewStub(channel_);
  }
  void TearDown() override {
    StopServer(*server_);
    server_loop_.Stop();
    loop_thread_.join();
  }

  EventLoop server_loop_;
  std::thread loop_thread_;
  HandlerCounts counts_;
  Outcomes outcomes_;
  EchoService service_{server_loop_, counts_, outcomes_};
  static inline const common::HostPort kAnyPort{"127.0.0.1", 0, common::HostPort::Kind::kIPv4};
  std::unique_ptr<grpc::Server> server_;
  common::HostPort address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Echo::Stub> stub_;
};

TEST_F(RpcTest, UnaryCallIsServedByACoroutineOnTheServiceLoop) {
  grpc::ClientContext ctx;
  EchoMessage req;
  req.set_text("hello");
  EchoMessage resp;
  grpc::Status s = stub_->Unary(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.text(), "hello");
}

TEST_F(RpcTest, AnObservedUnaryCallReportsEachOutcomeOnceWithTheClientsCode) {
  EchoMessage req;
  EchoMessage resp;
  {
    grpc::ClientContext ctx;
    req.set_text("hello");
    ASSERT_TRUE(stub_->Unary(&ctx, req, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    req.set_text("not-found");
    EXPECT_EQ(stub_->Unary(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 200ms);
    req.set_text("slow");
    req.set_delay_ms(3'600'000);
    EXPECT_EQ(stub_->Unary(&ctx, req, &resp).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  EXPECT_TRUE(counts_.AwaitIdleWithCancelled(1));
  EXPECT_EQ(outcomes_.Await(3), (std::vector<grpc::StatusCode>{grpc::StatusCode::OK, grpc::StatusCode::NOT_FOUND,
                                                                grpc::StatusCode::CANCELLED}));
}

TEST(CodeName, NamesEveryCanonicalCodeAndUnknownBeyond) {
  EXPECT_EQ(CodeName(grpc::StatusCode::OK), "OK");
  EXPECT_EQ(CodeName(grpc::StatusCode::NOT_FOUND), "NOT_FOUND");
  EXPECT_EQ(CodeName(grpc::StatusCode::UNAUTHENTICATED), "UNAUTHENTICATED");
  EXPECT_EQ(CodeName(99), "UNKNOWN");
  EXPECT_EQ(CodeName(static_cast<grpc::StatusCode>(-1)), "UNKNOWN");
  for (int c = 0; c <= 16; ++c) {
    EXPECT_EQ(CodeName(static_cast<grpc::StatusCode>(c)),
              absl::StatusCodeToString(static_cast<absl::StatusCode>(c)));
  }
}

TEST_F(RpcTest, AwaitableClientCallResumesOnTheCallersLoop) {
  EventLoop client_loop;
  const std::thread::id caller = std::this_thread::get_id();
  std::string text = runtime::RunUntilComplete(client_loop, [](Echo::Stub* stub, std::thread::id caller) -> Task<std::string> {
    grpc::ClientContext ctx;
    EchoMessage req;
    req.set_text("awaited");
    EchoMessage resp;
    grpc::Status s = co_await Call(stub->async(), &Echo::Stub::async::Unary, &ctx, req, &resp);
    EXPECT_TRUE(s.ok());
    EXPECT_EQ(std::this_thread::get_id(), caller);
    co_return resp.text();
  }(stub_.get(), caller));
  EXPECT_EQ(text, "awaited");
}

TEST_F(RpcTest, ClientDeadlineCancelsTheServerHandler) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 200ms);
  EchoMessage req;
  req.set_delay_ms(3'600'000);
  EchoMessage resp;
  grpc::Status s = stub_->Unary(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(counts_.AwaitIdleWithCancelled(1));  // no handler left behind
}

// A call whose deadline passes while the loop is busy is cancelled before its handler
// starts. The handler still runs and sees the cancellation at its first suspension point
// (so its cleanup runs: WaitFor cancels its job), and the call still finishes: before,
// the handler never ran and the reactor was never finished.
TEST_F(RpcTest, ACallCancelledBeforeItsHandlerStartedStillRunsTheHandlerCancelled) {
  std::mutex mu;
  std::condition_variable cv;
  bool client_done = false;
  server_loop_.Post([&] {  // the loop is busy until the call was cancelled on the server
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, 10s, [&] { return client_done; });
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < give_up &&
           (service_.last_context() == nullptr || !service_.last_context()->IsCancelled())) {
      std::this_thread::yield();
    }
  });
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 200ms);
  EchoMessage req;
  req.set_delay_ms(3'600'000);
  EchoMessage resp;
  EXPECT_EQ(stub_->Unary(&ctx, req, &resp).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  {
    std::lock_guard<std::mutex> lock(mu);
    client_done = true;
  }
  cv.notify_all();
  EXPECT_TRUE(counts_.AwaitIdleWithCancelled(1));
  EXPECT_EQ(outcomes_.Await(1), std::vector<grpc::StatusCode>{grpc::StatusCode::CANCELLED});
}

TEST_F(RpcTest, CancellingTheAwaitingTaskCancelsTheCall) {
  EventLoop client_loop;
  runtime::RunUntilComplete(client_loop, [](Echo::Stub* stub) -> Task<void> {
    auto slow_call = [](Echo::Stub* stub) -> Task<grpc::Status> {
      grpc::ClientContext ctx;
      EchoMessage req;
      req.set_delay_ms(3'600'000);
      EchoMessage resp;
      co_return co_await Call(stub->async(), &Echo::Stub::async::Unary, &ctx, req, &resp);
    };
    runtime::TaskHandle<grpc::Status> call = runtime::Spawn(slow_call(stub));
    co_await runtime::Sleep(50ms);
    call.Cancel();
    EXPECT_THROW(co_await call, runtime::CancelledError);
  }(stub_.get()));
  EXPECT_TRUE(counts_.AwaitIdleWithCancelled(1));
}

TEST_F(RpcTest, BidiStreamEchoesEveryMessageInOrder) {
  constexpr int kMessages = 10'000;
  grpc::ClientContext ctx;
  auto stream = stub_->Chat(&ctx);
  std::thread writer([&] {
    for (int i = 0; i < kMessages; ++i) {
      EchoMessage m;
      m.set_n(i);
      ASSERT_TRUE(stream->Write(m));
    }
    stream->WritesDone();
  });
  int received = 0;
  bool in_order = true;
  EchoMessage m;
  while (stream->Read(&m)) in_order = in_order && m.n() == received++;
  writer.join();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(received, kMessages);
  EXPECT_TRUE(in_order);
  EXPECT_TRUE(counts_.AwaitIdleWithCancelled(0));
}

TEST_F(RpcTest, ClientCancellationEndsTheBidiHandler) {
  grpc::ClientContext ctx;
  auto stream = stub_->Chat(&ctx);
  EchoMessage m;
  m.set_n(1);
  ASSERT_TRUE(stream->Write(m));
  ASSERT_TRUE(stream->Read(&m));  // the handler is running
  ctx.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(counts_.AwaitIdleWithCancelled(1));
}

TEST_F(RpcTest, ServerStreamSendsEveryMessageInOrderThenTheStatus) {
  grpc::ClientContext ctx;
  EchoMessage req;
  req.set_n(5'000);
  auto reader = stub_->Count(&ctx, req);
  EchoMessage m;
  int64_t next = 0;
  bool in_order = true;
  while (reader->Read(&m)) in_order = in_order && m.n() == next++;
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(next, 5'000);
  EXPECT_TRUE(in_order);
  EXPECT_TRUE(counts_.AwaitIdleWithCancelled(0));
}

TEST_F(RpcTest, ClientLeavingAServerStreamCancelsItsHandler) {
  grpc::ClientContext ctx;
  EchoMessage req;
  req.set_n(1'000'000);
  req.set_delay_ms(10);
  auto reader = stub_->Count(&ctx, req);
  EchoMessage m;
  ASSERT_TRUE(reader->Read(&m));
  ctx.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(counts_.AwaitIdleWithCancelled(1));
}

TEST_F(RpcTest, PipelinedClientStreamWritesAndReadsFromOneCoroutine) {
  constexpr int kMessages = 5'000;
  EventLoop client_loop;
  auto body = [](Echo::Stub* stub, EventLoop* loop) -> Task<int> {
    ClientBidiStream<EchoMessage, EchoMessage> stream(*loop);
    stub->async()->Chat(stream.context(), &stream);
    stream.Start();
    auto reader = [](ClientBidiStream<EchoMessage, EchoMessage>* s) -> Task<int> {
      int received = 0;
      while (std::optional<EchoMessage> m = co_await s->Read()) {
        if (m->n() != received) co_return -1;
        ++received;
      }
      co_return received;
    };
    runtime::TaskHandle<int> read_all = runtime::Spawn(reader(&stream));
    for (int i = 0; i < kMessages; ++i) {
      EchoMessage m;
      m.set_n(i);
      bool written = co_await stream.Write(std::move(m));
      EXPECT_TRUE(written);
    }
    stream.CloseWrites();
    int received = co_await read_all;
    grpc::Status status = co_await stream.Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    co_return received;
  };
  EXPECT_EQ(runtime::RunUntilComplete(client_loop, body(stub_.get(), &client_loop)), kMessages);
  EXPECT_TRUE(counts_.AwaitIdleWithCancelled(0));
}

TEST_F(RpcTest, ClientReadStreamReadsEveryMessageInOrderThenTheStatus) {
  EventLoop client_loop;
  auto body = [](Echo::Stub* stub, EventLoop* loop) -> Task<int> {
    EchoMessage req;
    req.set_n(5'000);
    ClientReadStream<EchoMessage, EchoMessage> stream(*loop, req);
    stub->async()->Count(stream.context(), &stream.request(), &stream);
    stream.Start();
    int received = 0;
    while (true) {
      std::optional<EchoMessage> m = co_await stream.Read();
      if (!m.has_value()) break;
      if (m->n() != received) received = -1'000'000;
      ++received;
    }
    grpc::Status status = co_await stream.Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    co_return received;
  };
  EXPECT_EQ(runtime::RunUntilComplete(client_loop, body(stub_.get(), &client_loop)), 5'000);
  EXPECT_TRUE(counts_.AwaitIdleWithCancelled(0));
}

TEST_F(RpcTest, CancellingAClientReadStreamEndsItAndItsHandler) {
  EventLoop client_loop;
  auto body = [](Echo::Stub* stub, EventLoop* loop) -> Task<grpc::StatusCode> {
    EchoMessage req;
    req.set_n(1'000'000);
    req.set_delay_ms(10);
    ClientReadStream<EchoMessage, EchoMessage> stream(*loop, req);
    stub->async()->Count(stream.context(), &stream.request(), &stream);
    stream.Start();
    std::optional<EchoMessage> first = co_await stream.Read();
    EXPECT_TRUE(first.has_value());
    stream.Cancel();
    while (true) {
      std::optional<EchoMessage> m = co_await stream.Read();
      if (!m.has_value()) break;
    }
    grpc::Status status = co_await stream.Finish();
    co_return status.error_code();
  };
  EXPECT_EQ(runtime::RunUntilComplete(client_loop, body(stub_.get(), &client_loop)), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(counts_.AwaitIdleWithCancelled(1));
}


TEST_F(RpcTest, ASecondServerOnATakenPortFailsToStartInsteadOfSharingIt) {
  grpc::ServerBuilder builder;
  EchoService second_service(server_loop_, counts_, outcomes_);
  builder.RegisterService(&second_service);
  absl::StatusOr<StartedServer> second = StartServer(builder, address_);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(second.status().message(),
            "cannot serve gRPC on " + address_.ToString() + ": the address is already in use");
}

TEST_F(RpcTest, TheServerDoesNotLetAnotherSocketShareItsPort) {
  // What a second server built without StartServer would do: gRPC's default sets
  // SO_REUSEPORT; with the first server's port not reusable, its bind fails.
  grpc::ServerBuilder builder;
  EchoService second_service(server_loop_, counts_, outcomes_);
  builder.RegisterService(&second_service);
  int port = 0;
  builder.AddListeningPort(address_.ToString(), grpc::InsecureServerCredentials(), &port);
  std::unique_ptr<grpc::Server> second = builder.BuildAndStart();
  EXPECT_TRUE(second == nullptr || port == 0);
  if (second != nullptr) second->Shutdown();
}

// Sends `body` as the raw request of `method` and returns the call's status.
grpc::Status CallWithRawBody(grpc::Channel* channel, const std::string& method, const std::string& body) {
  grpc::GenericStub stub(channel->shared_from_this());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  grpc::Slice slice(body);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable cv;
  std::optional<grpc::Status> status;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    status = std::move(s);
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return status.has_value(); });
  return *status;
}

TEST_F(RpcTest, AnUnparseableRequestGetsInvalidArgumentNamingTheMethod) {
  // Field 1 (text) as a length-delimited field claiming 100 bytes it does not have.
  const std::string truncated("\x0a\x64" "abc", 5);
  for (const char* method : {"/cohort.rpc.testing.Echo/Unary", "/cohort.rpc.testing.Echo/Count"}) {
    grpc::Status s = CallWithRawBody(channel_.get(), method, truncated);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method << ": " << s.error_message();
    EXPECT_EQ(s.error_message(),
              std::string("the request body is not a valid protobuf message for ") + method);
  }
  // A body that parses still reaches the handler.
  EchoMessage hello;
  hello.set_text("hello");
  grpc::Status ok = CallWithRawBody(channel_.get(), "/cohort.rpc.testing.Echo/Unary", hello.SerializeAsString());
  EXPECT_TRUE(ok.ok()) << ok.error_message();
}

TEST_F(RpcTest, AManualClockDoesNotJumpAheadWhileAUnaryCallIsInFlight) {
  // A call in flight is the loop's external work: with nothing else ready, an
  // auto-advancing manual clock waits for it instead of jumping to the next timer
  // (which here would time the call out at once).
  runtime::ManualClock clock(/*auto_advance=*/true);
  EventLoop client_loop(&clock);
  std::string text = runtime::RunUntilComplete(client_loop, [](Echo::Stub* stub) -> Task<std::string> {
    auto call = [](Echo::Stub* stub) -> Task<std::string> {
      grpc::ClientContext ctx;
      EchoMessage req;
      req.set_text("in time");
      req.set_delay_ms(100);
      EchoMessage resp;
      grpc::Status s = co_await Call(stub->async(), &Echo::Stub::async::Unary, &ctx, req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      co_return resp.text();
    };
    co_return co_await runtime::WaitFor(call(stub), std::chrono::seconds(1));
  }(stub_.get()));
  EXPECT_EQ(text, "in time");
}

TEST_F(RpcTest, DestroyingTheLoopWaitsForAUnaryCallInFlightAndUnwindsItsTask) {
  // Without the call counted as external work, the loop's teardown destroyed the
  // task's frame at once, and gRPC's callback later wrote into it and posted to a
  // destroyed loop.
  auto unwound = std::make_shared<std::atomic<bool>>(false);
  {
    EventLoop client_loop;
    runtime::TaskHandle<void> call = runtime::Spawn(
        client_loop, [](Echo::Stub* stub, std::shared_ptr<std::atomic<bool>> unwound) -> Task<void> {
          grpc::ClientContext ctx;
          EchoMessage req;
          req.set_delay_ms(3'600'000);
          EchoMessage resp;
          try {
            co_await Call(stub->async(), &Echo::Stub::async::Unary, &ctx, req, &resp);
          } catch (const runtime::CancelledError&) {
            *unwound = true;  // resumed by gRPC's completion, not abandoned
            throw;
          }
        }(stub_.get(), unwound));
    client_loop.RunUntilIdle();  // the call is in flight
    ASSERT_TRUE(counts_.AwaitActive(1));
    ASSERT_FALSE(call.Done());
  }
  EXPECT_TRUE(*unwound);
  EXPECT_TRUE(counts_.AwaitIdleWithCancelled(1));
}

// A ReadStarter that only counts the reads it was asked to start (any thread).
class CountingReadStarter final : public internal::ReadStarter<EchoMessage> {
 public:
  void StartReadOp(EchoMessage*) override { started_.fetch_add(1); }
  int started() const { return started_.load(); }

 private:
  std::atomic<int> started_{0};
};

TEST(Inbox, DeliversToAParkedReaderWhileTheLoopsPostRingIsFullAndTheLoopWantsTheMutex) {
  // The interleaving that deadlocked when the wake-up was posted under the stream's
  // mutex: the loop's post ring is full, a gRPC thread delivers a message to the
  // parked reader (its Post waits for room), and the loop thread, the only one that
  // makes room, waits for the stream's mutex.
  struct State {
    EventLoop loop;
    std::mutex mu;
    CountingReadStarter starter;
    internal::Inbox<EchoMessage> inbox{mu, loop, &starter, kStreamInbox};
    std::atomic<bool> received{false};
    std::thread delivering;
    std::mutex done_mu;
    std::condition_variable done_cv;
    bool done = false;
  };
  auto* state = new State;  // leaked if the test deadlocks: stuck threads still use it
  state->inbox.Begin();
  runtime::TaskHandle<void> reader =
      runtime::Spawn(state->loop, [](State* state) -> Task<void> {
        std::optional<EchoMessage> msg = co_await state->inbox.Read();
        state->received = msg.has_value();
      }(state));
  state->loop.RunUntilIdle();  // the reader is parked: nothing to read yet
  ASSERT_FALSE(reader.Done());
  state->loop.CallSoon([state] {
    // Fill the ring while this thread, the only one that drains it, is busy here.
    std::thread([state] {
      for (std::size_t i = 0; i < EventLoop::kPostCapacity; ++i) state->loop.Post([] {});
    }).join();
    const int reads = state->starter.started();
    state->delivering = std::thread([state] { state->inbox.OnReadDone(true); });
    // Until the delivering thread holds the mutex, or has released it again (it then
    // starts the next read before posting the wake-up).
    while (state->starter.started() == reads && state->mu.try_lock()) {
      state->mu.unlock();
      std::this_thread::yield();
    }
    std::lock_guard<std::mutex> lock(state->mu);  // as the loop's stream code does
  });
  std::thread runner([state] {
    state->loop.RunUntil([state] { return state->received.load(); });
    std::lock_guard<std::mutex> lock(state->done_mu);
    state->done = true;
    state->done_cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(state->done_mu);
  if (!state->done_cv.wait_for(lock, 20s, [state] { return state->done; })) {
    ADD_FAILURE() << "deadlock: the loop waits for the stream's mutex, held by a thread waiting for the loop";
    lock.release();
    runner.detach();
    state->delivering.detach();
    return;
  }
  lock.unlock();
  runner.join();
  state->delivering.join();
  EXPECT_TRUE(state->received);
  delete state;
}

// A WriteStarter whose writes complete only when the test calls OnWriteDone: a client
// that does not read.
class HeldWriteStarter final : public internal::WriteStarter<EchoMessage> {
 public:
  void StartWriteOp(const EchoMessage*) override { started_.fetch_add(1); }
  int started() const { return started_.load(); }

 private:
  std::atomic<int> started_{0};
};

TEST(Outbox, WriteWaitsOnceTheBufferedBytesReachTheBoundAndFailsAtOnceWhenThePeerLeaves) {
  EventLoop loop;
  std::mutex mu;
  HeldWriteStarter starter;
  internal::Outbox<EchoMessage> outbox(mu, loop, &starter, kStreamOutbox, kStreamOutboxBytes);
  EchoMessage big;
  big.set_text(std::string(kStreamOutboxBytes * 3 / 10, 'x'));  // 30% of the bound
  int written = 0;
  bool last = true;
  runtime::TaskHandle<void> writer = runtime::Spawn(
      loop, [](internal::Outbox<EchoMessage>* outbox, EchoMessage big, int* written, bool* last) -> Task<void> {
        while ((*last = co_await outbox->Write(big))) ++*written;
      }(&outbox, big, &written, &last));
  loop.RunUntilIdle();
  // One being written and three queued (1.2 times the bound): the fifth write waits,
  // far below the 64-message count bound.
  EXPECT_EQ(written, 4);
  EXPECT_EQ(starter.started(), 1);
  EXPECT_FALSE(writer.Done());

  outbox.OnWriteDone(true);  // the client took one: room for one more
  loop.RunUntilIdle();
  EXPECT_EQ(written, 5);
  EXPECT_EQ(starter.started(), 2);

  internal::Wakeup wake;  // the client leaves (OnCancel): the waiting write fails now
  {
    std::lock_guard<std::mutex> lock(mu);
    wake = outbox.BreakLocked();
  }
  wake.Post();
  loop.RunUntilIdle();
  EXPECT_TRUE(writer.Done());
  EXPECT_FALSE(last);
  EXPECT_EQ(written, 5);
}

TEST(Outbox, AMessageLargerThanTheByteBoundStillGoesAlone) {
  EventLoop loop;
  std::mutex mu;
  HeldWriteStarter starter;
  internal::Outbox<EchoMessage> outbox(mu, loop, &starter, kStreamOutbox, kStreamOutboxBytes);
  EchoMessage huge;
  huge.set_text(std::string(kStreamOutboxBytes * 2, 'x'));
  int written = 0;
  runtime::TaskHandle<void> writer = runtime::Spawn(
      loop, [](internal::Outbox<EchoMessage>* outbox, EchoMessage huge, int* written) -> Task<void> {
        for (int i = 0; i < 2; ++i) {
          if (co_await outbox->Write(huge)) ++*written;
        }
      }(&outbox, huge, &written));
  loop.RunUntilIdle();
  EXPECT_EQ(written, 1);  // being written; the second waits for it
  outbox.OnWriteDone(true);
  loop.RunUntilIdle();
  EXPECT_EQ(written, 2);
  EXPECT_TRUE(writer.Done());
  outbox.OnWriteDone(true);
}

TEST(Status, ConvertsOneToOneBetweenAbslAndGrpc) {
  absl::Status s = absl::InvalidArgumentError("queue \"A B\" is invalid");
  grpc::Status g = ToGrpc(s);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(g.error_message(), "queue \"A B\" is invalid");
  EXPECT_EQ(FromGrpc(g), s);
  EXPECT_TRUE(ToGrpc(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace cohort::rpc
