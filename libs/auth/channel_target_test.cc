// ChannelTarget's parsing of server address lists, and a channel made by MakeChannel
// over a list connecting to whichever address listens (a broker group's leader) and
// following it when it moves to another address.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "libs/auth/channel_credentials.h"
#include "tests/testing/free_port.h"

namespace cohort::auth {
namespace {

// A port nothing listens on right now (the kernel's pick, released at once).
using ::cohort::testing::FreePort;

std::unique_ptr<grpc::Server> ServeOn(int port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials());
  return builder.BuildAndStart();
}

TEST(ChannelTarget, KeepsASingleAddress) {
  EXPECT_EQ(*ChannelTarget("--broker", "127.0.0.1:7070"), "127.0.0.1:7070");
  EXPECT_EQ(*ChannelTarget("--broker", "broker.cohort:7070"), "broker.cohort:7070");
  EXPECT_EQ(*ChannelTarget("--broker", "[::1]:7070"), "[::1]:7070");
}

TEST(ChannelTarget, TurnsAListIntoAnAddressListTarget) {
  EXPECT_EQ(*ChannelTarget("--broker", "127.0.0.1:7001,127.0.0.1:7002,10.0.0.3:7003"),
            "ipv4:127.0.0.1:7001,127.0.0.1:7002,10.0.0.3:7003");
  EXPECT_EQ(*ChannelTarget("--broker", "[::1]:7001,[::1]:7002"), "ipv6:[::1]:7001,[::1]:7002");
}

TEST(ChannelTarget, RefusesMalformedLists) {
  const struct {
    const char* text;
    const char* says;
  } cases[] = {
      {"127.0.0.1:7001,", "is invalid"},
      {"127.0.0.1:7001,127.0.0.1:0", "port in 1..65535"},
      {"127.0.0.1:7001,broker-1.cohort:7002", "IP addresses only"},
      {"127.0.0.1:7001,[::1]:7002", "all IPv4 or all IPv6"},
      {"127.0.0.1:7001,127.0.0.1:7001", "127.0.0.1:7001 twice"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<std::string> target = ChannelTarget("--broker", c.text);
    ASSERT_EQ(target.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(target.status().message().find(c.says), std::string::npos) << target.status();
    EXPECT_NE(target.status().message().find("--broker"), std::string::npos) << target.status();
  }
  std::string many;
  for (int i = 0; i <= static_cast<int>(kMaxTargetAddresses); ++i) absl::StrAppend(&many, i ? "," : "", "10.0.0.1:", 7000 + i);
  EXPECT_EQ(ChannelTarget("--broker", many).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MakeChannel, RefusesAMalformedList) {
  EXPECT_EQ(MakeChannel("127.0.0.1:1,broker:2", {}).status().code(), absl::StatusCode::kInvalidArgument);
}

// Only one replica of a broker group listens at a time; the channel connects to it,
// and to its successor on another address once it goes away.
TEST(MakeChannel, ConnectsToWhicheverListedAddressListensAndFollowsIt) {
  const int first = FreePort();
  const int second = FreePort();
  std::unique_ptr<grpc::Server> serving = ServeOn(second);
  ASSERT_NE(serving, nullptr);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeChannel(absl::StrCat("127.0.0.1:", first, ",127.0.0.1:", second), {});
  ASSERT_TRUE(channel.ok()) << channel.status();
  EXPECT_TRUE((*channel)->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(10))));

  serving->Shutdown(absl::ToChronoTime(absl::Now()));
  serving.reset();
  serving = ServeOn(first);
  ASSERT_NE(serving, nullptr);
  // Redialled after at most kMaxReconnectBackoff, not gRPC's default of up to 120 s.
  const absl::Time moved = absl::Now();
  (*channel)->GetState(/*try_to_connect=*/true);
  EXPECT_TRUE((*channel)->WaitForConnected(absl::ToChronoTime(moved + absl::Seconds(10))));
  EXPECT_LT(absl::Now() - moved, kMaxReconnectBackoff + absl::Seconds(1));
}

}  // namespace
}  // namespace cohort::auth
