// ReplicaPeersService.Join's challenge-response proof of the group's secret
// (replica_join_auth.h), over in-process gRPC channels, and a ReplicaJoiner proving it
// over TCP on 127.0.0.1.
#include "services/broker/replica_join.h"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "services/broker/replica_join_auth.h"

namespace cohort::broker {
namespace {

constexpr char kSecret[] = "0123456789abcdef0123456789abcdef-the-group";
const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

double JoinRequests(prometheus::Registry& registry, const std::string& code) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != "cohort_broker_replica_join_requests_total") continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      if (metric.label.size() == 1 && metric.label[0].value == code) return metric.counter.value;
    }
  }
  return 0;
}

// A leading replica's ReplicaPeers service whose additions are recorded, not made.
class ReplicaPeersTest : public ::testing::Test {
 protected:
  // Serves ReplicaPeers with `secret`, on the clock `now` (the test's clock_ unless given).
  void Serve(std::string secret, std::function<absl::Time()> now = nullptr) {
    if (now == nullptr) now = [this] { return Clock(); };
    service_ = std::make_unique<ReplicaPeersService>(
        [] { return true; },
        [this](const replication::Member& member) {
          std::lock_guard lock(mu_);
          added_.push_back(member);
          return absl::OkStatus();
        },
        metrics_, std::move(secret), std::move(now));
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = cohort::v1::ReplicaPeers::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  absl::Time Clock() {
    std::lock_guard lock(mu_);
    return clock_;
  }
  void Advance(absl::Duration by) {
    std::lock_guard lock(mu_);
    clock_ += by;
  }

  static cohort::v1::JoinRequest Request(std::uint64_t id = 4) {
    cohort::v1::JoinRequest request;
    request.set_id(id);
    request.set_address("cohort-broker-3.cohort-broker-peers.ns.svc:7071");
    return request;
  }

  // Calls Join with the given metadata values (nullopt: left out); the challenge the
  // refusal carried, if any, in `*issued`.
  grpc::Status Join(const cohort::v1::JoinRequest& request, std::optional<std::string> challenge,
                    std::optional<std::string> mac, std::string* issued = nullptr,
                    cohort::v1::ReplicaPeers::Stub* stub = nullptr) {
    grpc::ClientContext ctx;
    if (challenge.has_value()) ctx.AddMetadata(kJoinChallengeKey, *challenge);
    if (mac.has_value()) ctx.AddMetadata(kJoinAuthKey, *mac);
    cohort::v1::JoinResponse response;
    grpc::Status status = (stub != nullptr ? stub : stub_.get())->Join(&ctx, request, &response);
    const auto it = ctx.GetServerTrailingMetadata().find(kJoinChallengeKey);
    if (issued != nullptr) *issued = it == ctx.GetServerTrailingMetadata().end() ? "" : std::string(it->second.data(), it->second.size());
    return status;
  }

  // A challenge from the service (`stub`: another one's).
  std::string Challenge(cohort::v1::ReplicaPeers::Stub* stub = nullptr) {
    std::string issued;
    const grpc::Status status = Join(Request(), std::nullopt, std::nullopt, &issued, stub);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(issued.size(), 64u) << "no challenge in the refusal";
    return issued;
  }

  std::vector<replication::Member> added() {
    std::lock_guard lock(mu_);
    return added_;
  }

  prometheus::Registry registry_;
  ReplicaMetrics metrics_{registry_};
  std::unique_ptr<ReplicaPeersService> service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<cohort::v1::ReplicaPeers::Stub> stub_;
  std::mutex mu_;
  absl::Time clock_ = kNow;
  std::vector<replication::Member> added_;
};

TEST_F(ReplicaPeersTest, AJoinWithoutAValidProofIsRefusedUnauthenticatedBeforeAnythingIsAdded) {
  Serve(kSecret);
  struct Case {
    const char* what;
    bool with_challenge;  // a fresh one from the service
    std::optional<std::string> challenge;
    std::function<std::optional<std::string>(const std::string& challenge)> mac;
    cohort::v1::JoinRequest request = Request();
  };
  const auto good = [](const std::string& c) -> std::optional<std::string> { return MakeJoinProof(kSecret, c, Request()); };
  const std::vector<Case> cases = {
      {"a proof without its challenge", false, std::nullopt, [](const std::string&) -> std::optional<std::string> { return std::string(64, 'a'); }},
      {"a challenge without a proof", true, std::nullopt, [](const std::string&) -> std::optional<std::string> { return std::nullopt; }},
      {"a challenge not hex", false, std::string(64, 'z'), [](const std::string&) -> std::optional<std::string> { return std::string(64, 'a'); }},
      {"a challenge never issued", false, std::string(64, '0'), good},
      {"a proof not hex", true, std::nullopt, [](const std::string&) -> std::optional<std::string> { return std::string(64, 'z'); }},
      {"a proof too short", true, std::nullopt, [&](const std::string& c) -> std::optional<std::string> { return good(c)->substr(0, 62); }},
      {"a proof too long", true, std::nullopt, [](const std::string&) -> std::optional<std::string> { return std::string(100'000, 'a'); }},
      {"another secret", true, std::nullopt,
       [](const std::string& c) -> std::optional<std::string> {
         return MakeJoinProof("another-secret-of-32-bytes-at-least!!", c, Request());
       }},
      {"another request", true, std::nullopt, good, Request(5)},
  };
  for (const Case& c : cases) {
    const std::string challenge = c.with_challenge ? Challenge() : c.challenge.value_or("");
    const std::optional<std::string> sent_challenge =
        c.with_challenge || c.challenge.has_value() ? std::optional<std::string>(challenge) : std::nullopt;
    const grpc::Status status = Join(c.request, sent_challenge, c.mac(challenge));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << c.what;
    EXPECT_LE(status.error_message().size(), 200u) << c.what;
  }
  EXPECT_TRUE(added().empty());
  // Refusals are counted; the challenges handed out (the protocol's first step) are not.
  EXPECT_EQ(JoinRequests(registry_, "UNAUTHENTICATED"), static_cast<double>(cases.size()));
}

// A challenge is good for one Join, at the replica that issued it, within 30 seconds,
// while fewer than 64 newer ones are outstanding: a captured proof cannot be replayed.
TEST_F(ReplicaPeersTest, AChallengeIsGoodForOneJoinAtTheReplicaThatIssuedItForThirtySeconds) {
  Serve(kSecret);
  const cohort::v1::JoinRequest request = Request();
  const std::string challenge = Challenge();
  const std::string proof = MakeJoinProof(kSecret, challenge, request);
  ASSERT_TRUE(Join(request, challenge, proof).ok());
  EXPECT_EQ(added().size(), 1u);
  EXPECT_EQ(Join(request, challenge, proof).error_code(), grpc::StatusCode::UNAUTHENTICATED) << "replayed";

  // Another replica of the group never issued it.
  prometheus::Registry other_registry;
  ReplicaMetrics other_metrics(other_registry);
  ReplicaPeersService other([] { return true; }, [](const replication::Member&) { return absl::OkStatus(); },
                            other_metrics, kSecret, [this] { return Clock(); });
  grpc::ServerBuilder builder;
  builder.RegisterService(&other);
  std::unique_ptr<grpc::Server> other_server = builder.BuildAndStart();
  std::unique_ptr<cohort::v1::ReplicaPeers::Stub> other_stub =
      cohort::v1::ReplicaPeers::NewStub(other_server->InProcessChannel(grpc::ChannelArguments()));
  const std::string elsewhere = Challenge();
  EXPECT_EQ(Join(request, elsewhere, MakeJoinProof(kSecret, elsewhere, request), nullptr, other_stub.get())
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED)
      << "a challenge answered at another replica";
  other_server->Shutdown();

  const std::string late = Challenge();
  Advance(kJoinChallengeTtl);
  EXPECT_EQ(Join(request, late, MakeJoinProof(kSecret, late, request)).error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << "expired";
  const std::string in_time = Challenge();
  Advance(kJoinChallengeTtl - absl::Seconds(1));
  EXPECT_TRUE(Join(request, in_time, MakeJoinProof(kSecret, in_time, request)).ok());

  const std::string oldest = Challenge();
  for (std::size_t i = 0; i < kMaxJoinChallenges; ++i) Challenge();
  EXPECT_EQ(Join(request, oldest, MakeJoinProof(kSecret, oldest, request)).error_code(),
            grpc::StatusCode::UNAUTHENTICATED)
      << "forgotten behind 64 newer ones";
  EXPECT_EQ(added().size(), 2u);
  EXPECT_EQ(JoinRequests(registry_, "OK"), 2);
}

TEST_F(ReplicaPeersTest, WithoutASecretAJoinNeedsNoProof) {
  Serve("");
  std::string issued;
  ASSERT_TRUE(Join(Request(), std::nullopt, std::nullopt, &issued).ok());
  EXPECT_EQ(issued, "") << "no challenge without a secret";
  EXPECT_EQ(added().size(), 1u);
}

TEST_F(ReplicaPeersTest, AJoinerProvesTheGroupsSecretAndOneWithAnotherSecretIsRefused) {
  Serve(kSecret, [] { return absl::Now(); });
  const std::string through = absl::StrCat("localhost:", port_);  // a name: resolved by the joiner

  prometheus::Registry joiner_registry;
  ReplicaMetrics joiner_metrics(joiner_registry);
  {
    // Another secret: asked again and again, refused every time, never added.
    ReplicaJoiner intruder(replication::Member{5, "127.0.0.1:7075"}, through, [] { return false; }, joiner_metrics,
                           "another-secret-of-32-bytes-at-least!!");
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (JoinRequests(registry_, "UNAUTHENTICATED") < 2 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    EXPECT_GE(JoinRequests(registry_, "UNAUTHENTICATED"), 2);
  }
  EXPECT_TRUE(added().empty());
  {
    ReplicaJoiner joiner(replication::Member{4, "127.0.0.1:7074"}, through, [] { return false; }, joiner_metrics,
                         kSecret);
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (added().empty() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(added().size(), 1u);
  EXPECT_EQ(added()[0], (replication::Member{4, "127.0.0.1:7074"}));
}

}  // namespace
}  // namespace cohort::broker
