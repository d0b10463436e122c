// Throughput of one pipelined bidi stream through libs/rpc: the server handler is a
// coroutine on a loop that echoes every message; the client writes from one thread
// and reads on another. Prints messages per second (one direction).
//
//   bazel run -c opt //bench:rpc_stream_bench [-- MESSAGES]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "libs/rpc/bidi_server.h"
#include "libs/rpc/testdata/echo.grpc.pb.h"
#include "libs/runtime/runtime.h"

namespace {

using cohort::rpc::testing::Echo;
using cohort::rpc::testing::EchoMessage;
using cohort::runtime::EventLoop;
using cohort::runtime::Task;

class EchoService final : public Echo::CallbackService {
 public:
  explicit EchoService(EventLoop& loop) : loop_(loop) {}
  grpc::ServerBidiReactor<EchoMessage, EchoMessage>* Chat(grpc::CallbackServerContext* ctx) override {
    return cohort::rpc::ServeBidi<EchoMessage, EchoMessage>(
        loop_, ctx, [](cohort::rpc::ServerBidiStream<EchoMessage, EchoMessage>& s) -> Task<grpc::Status> {
          while (std::optional<EchoMessage> m = co_await s.Read()) {
            bool ok = co_await s.Write(std::move(*m));
            if (!ok) break;
          }
          co_return grpc::Status::OK;
        });
  }

 private:
  EventLoop& loop_;
};

}  // namespace

int main(int argc, char** argv) {
  const long messages = argc > 1 ? std::atol(argv[1]) : 300'000;
  EventLoop loop;
  std::thread loop_thread([&] { loop.Run(); });
  EchoService service(loop);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  auto stub = Echo::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));

  grpc::ClientContext ctx;
  auto stream = stub->Chat(&ctx);
  auto start = std::chrono::steady_clock::now();
  std::thread writer([&] {
    EchoMessage m;
    m.set_text(std::string(64, 'x'));
    for (long i = 0; i < messages; ++i) {
      m.set_n(i);
      if (!stream->Write(m)) return;
    }
    stream->WritesDone();
  });
  long received = 0;
  EchoMessage m;
  while (stream->Read(&m)) {
    if (m.n() != received++) {
      std::fprintf(stderr, "out of order at %ld\n", received);
      return 1;
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  writer.join();
  grpc::Status s = stream->Finish();
  server->Shutdown();
  loop.Stop();
  loop_thread.join();
  if (!s.ok() || received != messages) {
    std::fprintf(stderr, "stream failed: %s, %ld of %ld\n", s.error_message().c_str(), received, messages);
    return 1;
  }
  std::printf("bidi_echo messages=%ld seconds=%.3f msgs_per_s=%.0f\n", messages, seconds, messages / seconds);
  return 0;
}
