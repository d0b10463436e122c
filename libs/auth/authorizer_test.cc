// The authorizer on a real gRPC server (plaintext on 127.0.0.1; TLS is covered by
// tests/security): a generic service answers any method, so every row of the scope
// table can be called without the Broker behind it.
#include "libs/auth/authorizer.h"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/server_callback.h"
#include "libs/auth/channel_credentials.h"
#include "libs/auth/principal.h"
#include "libs/auth/scope_table.h"
#include "libs/auth/server_security.h"
#include "libs/auth/token_store.h"
#include "libs/rpc/server.h"
#include "protos/cohort/v1/broker.pb.h"
#include "protos/cohort/v1/replicas.pb.h"
#include "protos/cohort/v1/scheduler.pb.h"

namespace cohort::auth {
namespace {

// Answers every call OK after one request message, remembering who called.
class RecordingService final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* context) override {
    {
      absl::MutexLock lock(&mu_);
      ++calls_;
      last_principal_ = CallerPrincipal(context->auth_context().get());
      last_may_be_worker_a1_ = MayActAsExecutor(context->auth_context().get(), "worker-a-1");
      max_principals_ = std::max(max_principals_,
                                 context->auth_context()->FindPropertyValues(kPrincipalProperty).size());
    }
    class Reactor final : public grpc::ServerGenericBidiReactor {
     public:
      Reactor() { Finish(grpc::Status::OK); }
      void OnDone() override { delete this; }
    };
    return new Reactor();
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  std::string last_principal() {
    absl::MutexLock lock(&mu_);
    return last_principal_;
  }
  bool last_may_be_worker_a1() {
    absl::MutexLock lock(&mu_);
    return last_may_be_worker_a1_;
  }
  // The most principal properties any call's AuthContext held (one per connection).
  std::size_t max_principals() {
    absl::MutexLock lock(&mu_);
    return max_principals_;
  }

 private:
  absl::Mutex mu_;
  int calls_ = 0;
  std::string last_principal_;
  bool last_may_be_worker_a1_ = false;
  std::size_t max_principals_ = 0;
};

const common::HostPort kLoopback{"127.0.0.1", 0};

class AuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokens_path_ = std::string(std::getenv("TEST_TMPDIR")) + "/tokens";
    Principal submitter{"ci-bot", ScopesOf({Scope::kSubmit, Scope::kRead}), "", {}};
    Principal worker{"worker-a", ScopesOf({Scope::kExecute}), "worker-a-*", {}};
    Principal everything{"root", ParseScopes("*").value(), "", {}};
    std::ofstream(tokens_path_) << "# test tokens\n"
                                << TokenFileLine("submit-token", submitter) << "\n"
                                << TokenFileLine("worker-token", worker) << "\n"
                                << TokenFileLine("root-token", everything) << "\n";
    std::ofstream more(tokens_path_, std::ios::app);
    for (int i = 0; i < kScopeCount; ++i) {
      ScopeSet held;
      held.set();
      held.reset(i);
      std::string name(ScopeName(static_cast<Scope>(i)));
      more << TokenFileLine("all-but " + name, Principal{"all-but-" + name, held, "", {}}) << "\n";
    }
    for (const MethodRule& rule : AllMethodRules()) {
      if (rule.required.none()) continue;
      more << TokenFileLine("exact " + std::string(rule.path), Principal{"exact", rule.required, "", {}}) << "\n";
    }
    more.close();
    ServerSecurityOptions options;
    options.tokens_file = tokens_path_;
    auto credentials = MakeServerCredentials(options, kLoopback, registry_, "test");
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    grpc::ServerBuilder builder;
    builder.RegisterCallbackGenericService(&service_);
    auto started = rpc::StartServer(builder, kLoopback, *credentials);
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = std::move(started->server);
    address_ = started->bound.ToString();
  }
  void TearDown() override {
    if (server_ != nullptr) rpc::StopServer(*server_);
  }

  grpc::Status Call(const std::string& method, const std::string& token) {
    ClientSecurityOptions options;
    options.token = token;
    auto channel = MakeChannel(address_, options);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return CallOn(*channel, method, "");
  }

  // A call on `channel`, with `token` added to this call only when not empty.
  grpc::Status CallOn(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                      const std::string& token) {
    grpc::GenericStub stub(channel);
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1), response;
    grpc::Status status;
    absl::Notification done;
    stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
      status = std::move(s);
      done.Notify();
    });
    done.WaitForNotification();
    return status;
  }

  double Denied(const std::string& method, const std::string& reason) {
    for (const auto& family : registry_.Collect()) {
      if (family.name != "cohort_test_auth_denied_total") continue;
      for (const auto& metric : family.metric) {
        std::map<std::string, std::string> labels;
        for (const auto& l : metric.label) labels[l.name] = l.value;
        if (labels["method"] == method && labels["reason"] == reason) return metric.counter.value;
      }
    }
    return 0;
  }

  std::string tokens_path_;
  prometheus::Registry registry_;
  RecordingService service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

TEST_F(AuthorizerTest, AdmitsAScopedTokenAndNamesItsPrincipalToTheHandler) {
  grpc::Status s = Call("/cohort.v1.Broker/Submit", "submit-token");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OK) << s.error_message();
  EXPECT_EQ(service_.calls(), 1);
  EXPECT_EQ(service_.last_principal(), "ci-bot");
}

TEST_F(AuthorizerTest, RefusesAMissingScopeBeforeTheHandlerAndNamesTheScope) {
  grpc::Status s = Call("/cohort.v1.Broker/ReleaseJobs", "submit-token");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("lacks scope release"), std::string::npos) << s.error_message();
  EXPECT_EQ(s.error_message().find("submit-token"), std::string::npos);
  EXPECT_EQ(service_.calls(), 0);
  EXPECT_EQ(Denied("/cohort.v1.Broker/ReleaseJobs", "missing_scope"), 1);
}

TEST_F(AuthorizerTest, RefusesACallWithoutAToken) {
  grpc::Status s = Call("/cohort.v1.Broker/GetJob", "");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(s.error_message().find("needs scope read"), std::string::npos) << s.error_message();
  EXPECT_EQ(service_.calls(), 0);
  EXPECT_EQ(Denied("/cohort.v1.Broker/GetJob", "unauthenticated"), 1);
}

TEST_F(AuthorizerTest, RefusesAnUnknownTokenWithoutQuotingIt) {
  grpc::Status s = Call("/cohort.v1.Broker/GetJob", "cohort_not-a-real-token");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message().find("not-a-real-token"), std::string::npos) << s.error_message();
  EXPECT_EQ(Denied("/cohort.v1.Broker/GetJob", "unknown_token"), 1);
}

TEST_F(AuthorizerTest, RefusesAMethodOutsideTheScopeTableEvenForEveryScope) {
  grpc::Status s = Call("/cohort.v1.Broker/Undocumented", "root-token");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Denied("other", "unknown_method"), 1);
}

TEST_F(AuthorizerTest, LetsHealthChecksThroughWithoutACredential) {
  EXPECT_EQ(Call("/grpc.health.v1.Health/Check", "").error_code(), grpc::StatusCode::OK);
}

TEST_F(AuthorizerTest, EachCallOnOneChannelIsJudgedByItsOwnToken) {
  // Properties added for one call must not leak into the next call on the connection.
  EXPECT_EQ(Call("/cohort.v1.Broker/Connect", "worker-token").error_code(), grpc::StatusCode::OK);
  EXPECT_EQ(service_.last_principal(), "worker-a");
  EXPECT_TRUE(service_.last_may_be_worker_a1());
  EXPECT_EQ(Call("/cohort.v1.Broker/Connect", "root-token").error_code(), grpc::StatusCode::OK);
  EXPECT_EQ(service_.last_principal(), "root");
  EXPECT_FALSE(service_.last_may_be_worker_a1());  // root has no executor pattern
}

// gRPC shares one AuthContext between the calls of a connection; a call must not act
// with the grants an earlier call of another principal left there.
TEST_F(AuthorizerTest, ACallCannotUseAnotherPrincipalsGrantsThroughItsConnection) {
  auto channel = grpc::CreateChannel(address_, grpc::experimental::LocalCredentials(LOCAL_TCP));
  ASSERT_EQ(CallOn(channel, "/cohort.v1.Broker/Connect", "root-token").error_code(), grpc::StatusCode::OK);
  ASSERT_EQ(service_.calls(), 1);
  grpc::Status s = CallOn(channel, "/cohort.v1.Broker/Connect", "worker-token");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("principal \"root\""), std::string::npos) << s.error_message();
  EXPECT_EQ(s.error_message().find("worker-token"), std::string::npos) << s.error_message();
  EXPECT_EQ(service_.calls(), 1);
  EXPECT_EQ(Denied("/cohort.v1.Broker/Connect", "connection_bound"), 1);
  // Each call is still judged on its own token: the connection's principal is no credential.
  EXPECT_EQ(CallOn(channel, "/cohort.v1.Broker/Connect", "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CallOn(channel, "/cohort.v1.Broker/ReleaseJobs", "submit-token").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(CallOn(channel, "/cohort.v1.Broker/Connect", "root-token").error_code(), grpc::StatusCode::OK);
  EXPECT_EQ(service_.last_principal(), "root");
  EXPECT_EQ(service_.calls(), 2);
}

// Concurrent calls on one connection, their handlers reading the AuthContext while
// later calls are authorized: the principal is written once, not once per call.
TEST_F(AuthorizerTest, ManyConcurrentCallsOnOneConnectionBindItOnce) {
  ClientSecurityOptions options;
  options.token = "submit-token";
  auto channel = MakeChannel(address_, options);
  ASSERT_TRUE(channel.ok()) << channel.status();
  constexpr int kThreads = 4, kCalls = 100;
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kCalls; ++i) {
        if (!CallOn(*channel, "/cohort.v1.Broker/Submit", "").ok()) ++failed;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(service_.calls(), kThreads * kCalls);
  EXPECT_EQ(service_.max_principals(), 1u);
  EXPECT_EQ(service_.last_principal(), "ci-bot");
}

TEST_F(AuthorizerTest, EveryRowOfTheScopeTableAdmitsExactlyItsScopes) {
  int rows = 0;
  for (const MethodRule& rule : AllMethodRules()) {
    if (rule.required.none()) continue;
    std::string path(rule.path);
    ++rows;
    EXPECT_EQ(Call(path, "exact " + path).error_code(), grpc::StatusCode::OK) << path;
    for (int i = 0; i < kScopeCount; ++i) {
      if (!rule.required.test(i)) continue;
      grpc::Status s = Call(path, std::string("all-but ") + std::string(ScopeName(static_cast<Scope>(i))));
      EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << path;
      EXPECT_NE(s.error_message().find(std::string("lacks scope ") + std::string(ScopeName(static_cast<Scope>(i)))),
                std::string::npos)
          << s.error_message();
    }
  }
  // Every method of the three services has its row, and so do the 2 reflection services.
  const int methods = cohort::v1::SubmitRequest::descriptor()->file()->FindServiceByName("Broker")->method_count() +
                      cohort::v1::CreateScheduleRequest::descriptor()->file()->FindServiceByName("Scheduler")->method_count() +
                      cohort::v1::AddReplicaRequest::descriptor()->file()->FindServiceByName("ReplicaAdmin")->method_count();
  EXPECT_EQ(rows, methods + 2);
}

}  // namespace
}  // namespace cohort::auth
