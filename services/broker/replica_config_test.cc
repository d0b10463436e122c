// cohort-broker's replicated-mode flags: what is accepted, and the one clear line for
// each mistake (cohort-broker prints it and exits 2).
#include "services/broker/replica_config.h"

#include <string>

#include "gtest/gtest.h"

namespace cohort::broker {
namespace {

constexpr char kThree[] = "1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103";

TEST(ReplicaConfig, WithoutTheFlagsTheBrokerIsASingleNode) {
  absl::StatusOr<std::optional<ReplicaConfig>> config = ParseReplicaConfig(0, "", "", "data");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->has_value());
}

TEST(ReplicaConfig, NamesSelfTheGroupAndTwoDirectories) {
  absl::StatusOr<std::optional<ReplicaConfig>> config = ParseReplicaConfig(2, kThree, "", "/var/cohort/");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->has_value());
  const ReplicaConfig& c = **config;
  EXPECT_EQ(c.self, (replication::Member{2, "127.0.0.1:7102"}));
  ASSERT_EQ(c.members.size(), 3u);
  EXPECT_EQ(c.members[0], (replication::Member{1, "127.0.0.1:7101"}));
  EXPECT_EQ(c.members[2], (replication::Member{3, "127.0.0.1:7103"}));
  EXPECT_EQ(c.store_dir, "/var/cohort/jobs");
  EXPECT_EQ(c.raft_dir, "/var/cohort/raft");

  config = ParseReplicaConfig(1, "1=broker-0.peers.ns.svc:7071,2=broker-1.peers.ns.svc:7071", "/raft", "/data");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->self.address, "broker-0.peers.ns.svc:7071");
  EXPECT_EQ((*config)->raft_dir, "/raft");
}

TEST(ReplicaConfig, RefusesEachMistakeWithOneClearLine) {
  const struct {
    std::int64_t id;
    const char* replicas;
    const char* raft_dir;
    const char* says;
  } cases[] = {
      {2, "", "", "--replica-id needs --replicas"},
      {0, kThree, "", "--replicas needs --replica-id"},
      {-1, kThree, "", "--replica-id=-1 is invalid"},
      {4, kThree, "", "--replica-id=4 is not one of the ids in --replicas: give its raft address"},
      {1, "1=127.0.0.1:7101,1=127.0.0.1:7102", "", "lists id 1 twice"},
      {1, "1=127.0.0.1:7101,2=127.0.0.1:7101", "", "lists 127.0.0.1:7101 twice"},
      {1, "1=127.0.0.1:7101,x=127.0.0.1:7102", "", "entry \"x=127.0.0.1:7102\" is invalid"},
      {1, "1=127.0.0.1:7101,127.0.0.1:7102", "", "is invalid: use ID=HOST:PORT"},
      {1, "1=127.0.0.1:0", "", "port in 1..65535"},
      {1, "1=a:1,2=a:2,3=a:3,4=a:4,5=a:5,6=a:6,7=a:7,8=a:8,9=a:9,10=a:10", "", "at most 9"},
      {1, kThree, "data/jobs/raft", "--raft-dir must not be the store directory"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<std::optional<ReplicaConfig>> config = ParseReplicaConfig(c.id, c.replicas, c.raft_dir, "data");
    ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << c.says;
    EXPECT_NE(config.status().message().find(c.says), std::string::npos) << config.status();
  }
}

TEST(ReplicaConfig, AReplicaNotInTheStartingGroupJoinsAtItsOwnAddress) {
  absl::StatusOr<std::optional<ReplicaConfig>> config =
      ParseReplicaConfig(4, kThree, "", "data", "broker-3.peers.ns.svc:7101");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->self, (replication::Member{4, "broker-3.peers.ns.svc:7101"}));
  EXPECT_TRUE((*config)->join);
  EXPECT_EQ((*config)->members.size(), 3u);
  // A listed replica may repeat its own address; it starts (or bootstraps) as before.
  config = ParseReplicaConfig(2, kThree, "", "data", "127.0.0.1:7102");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE((*config)->join);

  const struct {
    std::int64_t id;
    const char* address;
    const char* says;
  } refused[] = {
      {4, "", "give its raft address in --replica-address"},
      {2, "127.0.0.1:7999", "differs from 127.0.0.1:7102"},
      {4, "127.0.0.1:7103", "is another replica's address"},
      {4, "127.0.0.1:0", "port in 1..65535"},
      {4, "nope", "--replica-address"},
  };
  for (const auto& c : refused) {
    config = ParseReplicaConfig(c.id, kThree, "", "data", c.address);
    ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << c.says;
    EXPECT_NE(config.status().message().find(c.says), std::string::npos) << config.status();
  }
}

TEST(ReplicaConfig, JoinThroughNamesTheReplicasHealthPorts) {
  EXPECT_TRUE(ParseJoinThrough("rel-cohort-broker-headless.ns.svc:7073").ok());
  EXPECT_TRUE(ParseJoinThrough("127.0.0.1:7201,127.0.0.1:7202,127.0.0.1:7203").ok());
  for (const char* bad : {"", "host", "a:1,,b:2", "a:0", "a:1,a:2,a:3,a:4,a:5,a:6,a:7,a:8,a:9,a:10"}) {
    absl::StatusOr<std::string> parsed = ParseJoinThrough(bad);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(parsed.status().message().find("--join-through"), std::string::npos) << parsed.status();
  }
}

TEST(ReplicaConfig, AStatefulSetPodIsTheReplicaAfterItsOrdinal) {
  EXPECT_EQ(*ReplicaIdFromPodName("rel-cohort-broker-0"), 1);
  EXPECT_EQ(*ReplicaIdFromPodName("rel-cohort-broker-2"), 3);
  for (const char* name : {"broker", "broker-", "broker-x", "broker-+1", "broker-99999999999"}) {
    absl::StatusOr<std::int64_t> id = ReplicaIdFromPodName(name);
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_NE(id.status().message().find("--replica-pod-name"), std::string::npos) << id.status();
  }
}

}  // namespace
}  // namespace cohort::broker
