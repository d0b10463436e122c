#include "libs/common/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cohort::common {
namespace {

using ::testing::HasSubstr;

TEST(ParseHostPort, AcceptsIPv4WithAnyPortIncludingZero) {
  auto parsed = ParseHostPort("--listen", "127.0.0.1:7070");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->host, "127.0.0.1");
  EXPECT_EQ(parsed->port, 7070);
  EXPECT_EQ(parsed->kind, HostPort::Kind::kIPv4);

  parsed = ParseHostPort("--listen", "0.0.0.0:0");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->port, 0);

  parsed = ParseHostPort("--listen", "10.1.2.3:65535");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->port, 65535);
}

TEST(ParseHostPort, AcceptsBracketedIPv6AndStoresItWithoutBrackets) {
  auto parsed = ParseHostPort("--listen", "[::1]:9470");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->host, "::1");
  EXPECT_EQ(parsed->port, 9470);
  EXPECT_EQ(parsed->kind, HostPort::Kind::kIPv6);
  EXPECT_EQ(parsed->ToString(), "[::1]:9470");

  parsed = ParseHostPort("--listen", "[2001:db8::42]:0");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->host, "2001:db8::42");
}

TEST(ParseHostPort, AcceptsHostnames) {
  for (const char* text : {"localhost:7070", "broker.cohort.svc.cluster.local:7070",
                           "cohort-broker-0.cohort-broker:7070", "a:1", "x1.y-2.z:80"}) {
    auto parsed = ParseHostPort("--broker", text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status();
    EXPECT_EQ(parsed->kind, HostPort::Kind::kHostname) << text;
    EXPECT_EQ(parsed->ToString(), text);
  }
}

TEST(ParseHostPort, ToStringRoundTrips) {
  for (const char* text : {"127.0.0.1:0", "[::]:7071", "broker:7070"}) {
    auto parsed = ParseHostPort("--listen", text);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    auto again = ParseHostPort("--listen", parsed->ToString());
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(*again, *parsed);
  }
}

TEST(ParseHostPort, RejectsMissingOrMalformedPortNamingTheFlagAndTheRule) {
  auto parsed = ParseHostPort("--listen", "abc");
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(parsed.status().message(),
            "--listen \"abc\" is invalid: use HOST:PORT with a port in 0..65535");

  for (const char* text : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:99999",
                           "127.0.0.1:123456", "127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1:8o",
                           "127.0.0.1: 80", "[::1]", "[::1]80", "[::1]:", "[::1:80"}) {
    parsed = ParseHostPort("--listen", text);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(parsed.status().message(), HasSubstr("with a port in 0..65535")) << text;
    EXPECT_THAT(parsed.status().message(), HasSubstr("--listen \"")) << text;
  }
}

TEST(ParseHostPort, RejectsPortZeroWhenTheCallerNeedsARealPort) {
  auto parsed = ParseHostPort("--broker", "127.0.0.1:0", PortZero::kRejected);
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(parsed.status().message(),
            "--broker \"127.0.0.1:0\" is invalid: use HOST:PORT with a port in 1..65535");
  EXPECT_TRUE(ParseHostPort("--broker", "127.0.0.1:1", PortZero::kRejected).ok());
}

TEST(ParseHostPort, RejectsBadHosts) {
  for (const char* text : {":7070", "256.1.1.1:80", "1.2.3:80", "01.2.3.4:80", "a_b:80",
                           "-a:80", "a-:80", "a..b:80", ".a:80", "a.:80", "a b:80",
                           "[127.0.0.1]:80", "[fe80::1%eth0]:80", "[]:80", "[x]:80"}) {
    auto parsed = ParseHostPort("--listen", text);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(parsed.status().message(), HasSubstr(" is invalid: ")) << text;
  }
  EXPECT_EQ(ParseHostPort("--listen", "a_b:80").status().message(),
            "--listen \"a_b:80\" is invalid: \"a_b\" is not an IPv4 address, a bracketed IPv6 "
            "address or a hostname (letters, digits, '-' and '.')");
  EXPECT_EQ(ParseHostPort("--listen", "300.1.1.1:80").status().message(),
            "--listen \"300.1.1.1:80\" is invalid: \"300.1.1.1\" is not an IPv4 address");
}

TEST(ParseHostPort, RejectsUnbracketedIPv6WithAHint) {
  auto parsed = ParseHostPort("--listen", "::1:80");
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(parsed.status().message(),
            "--listen \"::1:80\" is invalid: write an IPv6 host in brackets, as in [::1]:7070");
}

TEST(ParseHostPort, RejectsOverlongHostnameLabels) {
  const std::string label64(64, 'a');
  EXPECT_EQ(ParseHostPort("--listen", label64 + ":80").status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::string label63(63, 'a');
  EXPECT_TRUE(ParseHostPort("--listen", label63 + ":80").ok());
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += label63 + ".";
  long_name += "a";  // 321 characters
  EXPECT_EQ(ParseHostPort("--listen", long_name + ":80").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ParseHostPort, EscapesAndTruncatesTheEchoedInput) {
  const std::string garbage = "\n\x01" + std::string(200, 'x');
  auto parsed = ParseHostPort("--listen", garbage);
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(parsed.status().message(), HasSubstr("\"\\n\\x01xxx"));
  EXPECT_THAT(parsed.status().message(), HasSubstr("...\" is invalid"));
  EXPECT_LT(parsed.status().message().size(), 200u);
}

// A socket listening on 127.0.0.1 on a free port, with SO_REUSEPORT set as gRPC sets it
// by default: the case where a second server could otherwise share the port.
class ListeningSocket {
 public:
  ListeningSocket() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
    listen(fd_, 1);
    socklen_t length = sizeof sin;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &length);
    port_ = ntohs(sin.sin_port);
  }
  ~ListeningSocket() { Close(); }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

TEST(ProbeListen, SaysTheAddressIsInUseWhileAnotherSocketListensOnIt) {
  ListeningSocket taken;
  ASSERT_GT(taken.port(), 0);
  const HostPort address{"127.0.0.1", taken.port(), HostPort::Kind::kIPv4};
  absl::Status probed = ProbeListen("gRPC", address);
  EXPECT_EQ(probed.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(probed.message(),
            "cannot serve gRPC on " + address.ToString() + ": the address is already in use");
  taken.Close();
  EXPECT_TRUE(ProbeListen("gRPC", address).ok());
}

TEST(ProbeListen, AcceptsPortZeroAndRejectsAHostThatIsNotOurs) {
  EXPECT_TRUE(ProbeListen("gRPC", HostPort{"127.0.0.1", 0, HostPort::Kind::kIPv4}).ok());
  // 192.0.2.0/24 is TEST-NET-1: never an address of this machine.
  EXPECT_EQ(ProbeListen("gRPC", HostPort{"192.0.2.1", 7070, HostPort::Kind::kIPv4}).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cohort::common
