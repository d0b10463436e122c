// ReplicaPeersService.Join's proof of the group's secret (replica_join_auth.h), over an
// in-process gRPC channel, and a ReplicaJoiner proving it over TCP on 127.0.0.1.
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
  // Serves ReplicaPeers with `secret`, on the clock `now` (kNow unless given).
  void Serve(std::string secret, std::function<absl::Time()> now = [] { return kNow; }) {
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

  static cohort::v1::JoinRequest Request(std::uint64_t id = 4) {
    cohort::v1::JoinRequest request;
    request.set_id(id);
    request.set_address("cohort-broker-3.cohort-broker-peers.ns.svc:7071");
    return request;
  }

  // Calls Join with the given metadata values (nullopt: left out).
  grpc::Status Join(const cohort::v1::JoinRequest& request, std::optional<std::string> mac,
                    std::optional<std::string> seconds) {
    grpc::ClientContext ctx;
    if (mac.has_value()) ctx.AddMetadata(kJoinAuthKey, *mac);
    if (seconds.has_value()) ctx.AddMetadata(kJoinAuthTimeKey, *seconds);
    cohort::v1::JoinResponse response;
    return stub_->Join(&ctx, request, &response);
  }

  grpc::Status JoinWith(const JoinProof& proof, const cohort::v1::JoinRequest& request) {
    return Join(request, proof.mac_hex, proof.unix_seconds);
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
  std::vector<replication::Member> added_;
};

TEST_F(ReplicaPeersTest, AJoinWithoutAValidProofIsRefusedUnauthenticatedBeforeAnythingIsAdded) {
  Serve(kSecret);
  const JoinProof good = MakeJoinProof(kSecret, Request(), kNow);
  struct Case {
    const char* what;
    std::optional<std::string> mac;
    std::optional<std::string> seconds;
    cohort::v1::JoinRequest request = Request();
  };
  std::vector<Case> cases = {
      {"no proof", std::nullopt, std::nullopt},
      {"no time", good.mac_hex, std::nullopt},
      {"no MAC", std::nullopt, good.unix_seconds},
      {"MAC not hex", std::string(64, 'z'), good.unix_seconds},
      {"MAC too short", good.mac_hex.substr(0, 62), good.unix_seconds},
      {"MAC too long", std::string(100'000, 'a'), good.unix_seconds},
      {"time not a number", good.mac_hex, "-1"},
      {"time too long", good.mac_hex, std::string(40, '9')},
      {"another secret", MakeJoinProof("another-secret-of-32-bytes-at-least!!", Request(), kNow).mac_hex,
       good.unix_seconds},
      {"another request", good.mac_hex, good.unix_seconds, Request(5)},
      {"another time", good.mac_hex, absl::StrCat(absl::ToUnixSeconds(kNow) + 1)},
  };
  const JoinProof stale = MakeJoinProof(kSecret, Request(), kNow - absl::Minutes(5) - absl::Seconds(1));
  cases.push_back({"older than 5 minutes", stale.mac_hex, stale.unix_seconds});
  const JoinProof early = MakeJoinProof(kSecret, Request(), kNow + absl::Minutes(5) + absl::Seconds(1));
  cases.push_back({"newer than 5 minutes", early.mac_hex, early.unix_seconds});
  for (const Case& c : cases) {
    const grpc::Status status = Join(c.request, c.mac, c.seconds);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << c.what;
    EXPECT_LE(status.error_message().size(), 200u) << c.what;
  }
  EXPECT_TRUE(added().empty());
  EXPECT_EQ(JoinRequests(registry_, "UNAUTHENTICATED"), static_cast<double>(cases.size()));
}

TEST_F(ReplicaPeersTest, AJoinProvingTheSecretWithinFiveMinutesIsAdded) {
  Serve(kSecret);
  const cohort::v1::JoinRequest request = Request();
  ASSERT_TRUE(JoinWith(MakeJoinProof(kSecret, request, kNow), request).ok());
  ASSERT_TRUE(JoinWith(MakeJoinProof(kSecret, request, kNow - absl::Minutes(5)), request).ok());
  ASSERT_TRUE(JoinWith(MakeJoinProof(kSecret, request, kNow + absl::Minutes(5)), request).ok());
  const std::vector<replication::Member> members = added();
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(members[0], (replication::Member{4, request.address()}));
  EXPECT_EQ(JoinRequests(registry_, "OK"), 3);
}

TEST_F(ReplicaPeersTest, WithoutASecretAJoinNeedsNoProof) {
  Serve("");
  ASSERT_TRUE(Join(Request(), std::nullopt, std::nullopt).ok());
  EXPECT_EQ(added().size(), 1u);
}

TEST_F(ReplicaPeersTest, AJoinerProvesTheGroupsSecretAndOneWithAnotherSecretIsRefused) {
  Serve(kSecret, [] { return absl::Now(); });  // the joiners prove the real time
  const std::string through = absl::StrCat("127.0.0.1:", port_);

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
