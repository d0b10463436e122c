#include "services/broker/replica_readiness.h"

#include <chrono>

#include "gtest/gtest.h"

namespace cohort::broker {
namespace {

using replication::LogStatus;
using replication::ReplicationProgress;
using replication::Role;
using Clock = std::chrono::steady_clock;

class ReadinessTest : public ::testing::Test {
 protected:
  ReadinessTest() {
    rule_.max_lag_entries = 100;
    rule_.leaderless_grace = absl::Seconds(3);
    status_.role = Role::kFollower;
    status_.last_applied = 1000;
    progress_.leader_commit = 1000;
    progress_.leader_contact = now_;
  }
  Readiness Evaluate() { return EvaluateReadiness(rule_, status_, progress_, now_); }

  ReadinessRule rule_;
  LogStatus status_;
  ReplicationProgress progress_;
  Clock::time_point now_ = Clock::time_point() + std::chrono::hours(1);
};

TEST_F(ReadinessTest, TheLeaderIsReady) {
  status_.role = Role::kLeader;
  progress_.leader_contact.reset();
  EXPECT_EQ(Evaluate(), (Readiness{true, "leader"}));
}

TEST_F(ReadinessTest, AStoppedReplicaIsNotReady) {
  status_.role = Role::kStopped;
  EXPECT_FALSE(Evaluate().ready);
}

TEST_F(ReadinessTest, AFollowerThatHeardNoLeaderSinceItStartedIsNotReady) {
  progress_.leader_contact.reset();
  EXPECT_EQ(Evaluate(), (Readiness{false, "no leader heard since the start"}));
}

TEST_F(ReadinessTest, AFollowerWithinTheLagBoundIsReadyAndOneBeyondItIsCatchingUp) {
  status_.last_applied = 900;  // exactly max_lag_entries behind
  EXPECT_EQ(Evaluate(), (Readiness{true, "caught up with the leader"}));
  status_.last_applied = 899;
  EXPECT_EQ(Evaluate(), (Readiness{false, "catching up: applied 899 of the leader's 1000 (101 entries behind)"}));
  status_.last_applied = 0;
  EXPECT_FALSE(Evaluate().ready);
}

TEST_F(ReadinessTest, AFollowerAheadOfTheAnnouncedCommitIndexIsReady) {
  status_.last_applied = 1200;  // the announcement it holds is older than what it applied since
  EXPECT_TRUE(Evaluate().ready);
}

TEST_F(ReadinessTest, AReplicaStaysReadyDuringAShortElectionAndNotBeyondTheGrace) {
  status_.role = Role::kCandidate;
  now_ += std::chrono::seconds(3);
  EXPECT_TRUE(Evaluate().ready);
  now_ += std::chrono::milliseconds(1);
  EXPECT_EQ(Evaluate(), (Readiness{false, "no leader heard for 3s"}));
  status_.role = Role::kFollower;  // a follower that hears nothing either
  EXPECT_FALSE(Evaluate().ready);
}

}  // namespace
}  // namespace cohort::broker
