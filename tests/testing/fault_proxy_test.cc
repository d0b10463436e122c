#include "tests/testing/fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace cohort::testing {
namespace {

// A listening socket on 127.0.0.1 that the test accepts from by hand: the proxy's target.
class Target {
 public:
  Target() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(fd_, 16), 0);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    address_ = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  }
  ~Target() { close(fd_); }
  const std::string& address() const { return address_; }
  // The next connection the proxy made to the target (blocks).
  int Accept() { return accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC); }

 private:
  int fd_;
  std::string address_;
};

int Connect(const std::string& address) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port));
  addr.sin_port = htons(static_cast<uint16_t>(port));
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << strerror(errno);
  return fd;
}

void Send(int fd, const std::string& bytes) {
  ASSERT_EQ(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
}

// Reads exactly `n` bytes, waiting at most `timeout` for each read; fewer if the
// stream ends, fails or stays silent.
std::string Receive(int fd, size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  std::string got;
  while (got.size() < n) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) break;
    char buf[4096];
    const ssize_t r = read(fd, buf, std::min(sizeof buf, n - got.size()));
    if (r <= 0) break;
    got.append(buf, static_cast<size_t>(r));
  }
  return got;
}

// What a read on `fd` says once the peer has gone: 0 for EOF, -errno for an error.
int EndOf(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 10'000) <= 0) return 1;  // still open
  char c;
  const ssize_t r = read(fd, &c, 1);
  return r < 0 ? -errno : static_cast<int>(r);
}

// How long a silence must last to count as "nothing arrived". Only used to check that
// bytes do NOT arrive while a fault holds; arrival is always awaited as an event.
constexpr auto kSilence = std::chrono::milliseconds(200);

struct Pair {
  std::unique_ptr<FaultProxy> proxy;
  int client = -1;
  int server = -1;
};

Pair Open(Target& target) {
  Pair p;
  auto proxy = FaultProxy::Start(target.address());
  EXPECT_TRUE(proxy.ok()) << proxy.status();
  p.proxy = std::move(*proxy);
  p.client = Connect(p.proxy->address());
  p.server = target.Accept();
  return p;
}

TEST(FaultProxy, ForwardsBytesBothWays) {
  Target target;
  Pair p = Open(target);
  Send(p.client, "ping");
  EXPECT_EQ(Receive(p.server, 4), "ping");
  Send(p.server, "pong!");
  EXPECT_EQ(Receive(p.client, 5), "pong!");
  EXPECT_EQ(p.proxy->open_connections(), 1);
  close(p.client);
  EXPECT_EQ(EndOf(p.server), 0);  // the client's FIN is passed on
  close(p.server);
}

TEST(FaultProxy, CutResetsEveryConnectionBeforeReturningAndNewOnesWork) {
  Target target;
  Pair p = Open(target);
  p.proxy->Cut();
  EXPECT_EQ(p.proxy->open_connections(), 0);
  EXPECT_EQ(EndOf(p.client), -ECONNRESET);
  EXPECT_EQ(EndOf(p.server), -ECONNRESET);
  close(p.client);
  close(p.server);

  const int client = Connect(p.proxy->address());
  const int server = target.Accept();
  Send(client, "again");
  EXPECT_EQ(Receive(server, 5), "again");
  close(client);
  close(server);
}

TEST(FaultProxy, PartitionResetsOpenAndNewConnectionsUntilHealed) {
  Target target;
  Pair p = Open(target);
  p.proxy->Partition();
  EXPECT_EQ(EndOf(p.client), -ECONNRESET);
  close(p.client);
  close(p.server);

  const int refused = Connect(p.proxy->address());  // the kernel completes the handshake
  EXPECT_EQ(EndOf(refused), -ECONNRESET);
  close(refused);
  EXPECT_EQ(p.proxy->accepted(), 2);

  p.proxy->Heal();
  const int client = Connect(p.proxy->address());
  const int server = target.Accept();
  Send(client, "healed");
  EXPECT_EQ(Receive(server, 6), "healed");
  close(client);
  close(server);
}

TEST(FaultProxy, StallHoldsBytesWithSocketsOpenUntilHealed) {
  Target target;
  Pair p = Open(target);
  p.proxy->Stall();
  Send(p.client, "held");
  EXPECT_EQ(Receive(p.server, 4, kSilence), "");
  EXPECT_EQ(p.proxy->open_connections(), 1);
  p.proxy->Heal();
  EXPECT_EQ(Receive(p.server, 4), "held");
  close(p.client);
  close(p.server);
}

TEST(FaultProxy, BlackholeFreezesOpenConnectionsForGoodWhileNewOnesWork) {
  Target target;
  Pair p = Open(target);
  p.proxy->Blackhole();
  Send(p.client, "lost");
  EXPECT_EQ(Receive(p.server, 4, kSilence), "");
  EXPECT_EQ(p.proxy->open_connections(), 1) << "the frozen connection must stay open";

  const int client = Connect(p.proxy->address());
  const int server = target.Accept();
  Send(client, "fresh");
  EXPECT_EQ(Receive(server, 5), "fresh");
  p.proxy->Heal();  // revives nothing
  EXPECT_EQ(Receive(p.server, 4, kSilence), "");
  EXPECT_EQ(p.proxy->open_connections(), 2);
  for (int fd : {client, server, p.client, p.server}) close(fd);
}

TEST(FaultProxy, DropLosesBytesSentDuringIt) {
  Target target;
  Pair p = Open(target);
  p.proxy->Drop();
  Send(p.client, "lost");
  EXPECT_EQ(Receive(p.server, 4, kSilence), "");
  p.proxy->Heal();
  Send(p.client, "kept");
  EXPECT_EQ(Receive(p.server, 4), "kept");
  close(p.client);
  close(p.server);
}

TEST(FaultProxy, DelayHoldsEachChunkForTheDelay) {
  Target target;
  Pair p = Open(target);
  p.proxy->SetDelay(absl::Milliseconds(300));
  const auto start = std::chrono::steady_clock::now();
  Send(p.client, "slow");
  EXPECT_EQ(Receive(p.server, 4), "slow");
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
  close(p.client);
  close(p.server);
}

TEST(FaultProxy, DestructionClosesEveryConnection) {
  Target target;
  Pair p = Open(target);
  p.proxy.reset();
  EXPECT_EQ(EndOf(p.client), -ECONNRESET);
  EXPECT_EQ(EndOf(p.server), -ECONNRESET);
  close(p.client);
  close(p.server);
}

TEST(FaultProxy, RejectsATargetThatIsNotAnAddress) {
  EXPECT_EQ(FaultProxy::Start("localhost").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FaultProxy::Start("127.0.0.1:99999").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cohort::testing
