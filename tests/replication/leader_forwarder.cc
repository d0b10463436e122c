#include "tests/replication/leader_forwarder.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace cohort::testing {
namespace {

bool ToAddress(const std::string& host_port, sockaddr_in& out) {
  const std::size_t colon = host_port.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(host_port.substr(colon + 1), &port)) return false;
  out = {};
  out.sin_family = AF_INET;
  out.sin_port = htons(static_cast<std::uint16_t>(port));
  return inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &out.sin_addr) == 1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LeaderForwarder>> LeaderForwarder::Start(std::vector<std::string> targets) {
  for (const std::string& t : targets) {
    sockaddr_in unused;
    if (!ToAddress(t, unused)) return absl::InvalidArgumentError(absl::StrCat("not an IPv4 HOST:PORT: ", t));
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof addr;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 64) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size) != 0) {
    const int error = errno;
    if (fd >= 0) close(fd);
    return absl::ErrnoToStatus(error, "LeaderForwarder: listen");
  }
  const int stop = eventfd(0, EFD_CLOEXEC);
  std::unique_ptr<LeaderForwarder> forwarder(new LeaderForwarder(
      fd, stop, absl::StrCat("127.0.0.1:", ntohs(addr.sin_port)), std::move(targets)));
  forwarder->acceptor_ = std::thread([f = forwarder.get()] { f->Accept(); });
  return forwarder;
}

LeaderForwarder::LeaderForwarder(int listen_fd, int stop_fd, std::string address, std::vector<std::string> targets)
    : listen_fd_(listen_fd), stop_fd_(stop_fd), address_(std::move(address)), targets_(std::move(targets)) {}

LeaderForwarder::~LeaderForwarder() {
  const std::uint64_t one = 1;
  if (write(stop_fd_, &one, sizeof one) != sizeof one) std::abort();
  acceptor_.join();
  std::vector<std::thread> forwarders;
  {
    absl::MutexLock lock(&mu_);
    forwarders.swap(forwarders_);
  }
  for (std::thread& t : forwarders) t.join();
  close(listen_fd_);
  close(stop_fd_);
}

void LeaderForwarder::Accept() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    absl::MutexLock lock(&mu_);
    forwarders_.emplace_back([this, client] { Forward(client); });
  }
}

int LeaderForwarder::ConnectToAny() const {
  for (const std::string& target : targets_) {
    sockaddr_in addr;
    ToAddress(target, addr);
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    if (fd >= 0) close(fd);
  }
  return -1;
}

void LeaderForwarder::Forward(int client) {
  const int server = ConnectToAny();
  if (server < 0) {
    close(client);  // no leader now: the client sees a closed connection and redials
    return;
  }
  char buffer[64 << 10];
  bool open = true;
  while (open) {
    pollfd fds[3] = {{client, POLLIN, 0}, {server, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 3, -1) < 0 && errno != EINTR) break;
    if (fds[2].revents != 0) break;
    for (int i = 0; i < 2 && open; ++i) {
      if (fds[i].revents == 0) continue;
      const int from = fds[i].fd;
      const int to = from == client ? server : client;
      const ssize_t n = read(from, buffer, sizeof buffer);
      if (n <= 0) {
        open = false;
        break;
      }
      for (ssize_t sent = 0; sent < n;) {
        const ssize_t w = send(to, buffer + sent, static_cast<std::size_t>(n - sent), MSG_NOSIGNAL);
        if (w <= 0) {
          open = false;
          break;
        }
        sent += w;
      }
    }
  }
  close(client);
  close(server);
}

}  // namespace cohort::testing
