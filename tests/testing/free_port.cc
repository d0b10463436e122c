#include "tests/testing/free_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>

namespace cohort::testing {
namespace {

// The kernel's pick for port 0, released before returning.
int KernelPick() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::fprintf(stderr, "FreePort: %s\n", std::strerror(errno));
    std::abort();
  }
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace

int FreePort() {
  // A port is only reserved once its server binds it, so the kernel may pick a released
  // one again (seen: a replica group given the same client port twice).
  static std::mutex mu;
  static std::set<int> returned;
  std::lock_guard lock(mu);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = KernelPick();
    if (returned.insert(port).second) return port;
  }
  std::fprintf(stderr, "FreePort: the kernel picked only ports returned before in 1000 attempts\n");
  std::abort();
}

}  // namespace cohort::testing
