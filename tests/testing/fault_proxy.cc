#include "tests/testing/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <deque>
#include <list>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace cohort::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Per direction, the most bytes read but not yet written: beyond it the proxy stops
// reading from the sender, so a slow or stalled side pushes back like a real link.
constexpr size_t kMaxBuffered = 1 << 20;
constexpr size_t kMaxRecorded = 16 << 20;  // Record()

// Closes `fd` with a reset instead of an orderly FIN: the peer sees ECONNRESET.
void ResetAndClose(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

}  // namespace

// One proxied connection: side 0 is the client, side 1 the target. Bytes read from
// side i wait in side[1 - i].out until they are due and written.
struct FaultProxy::Connection {
  struct Chunk {
    std::string data;
    size_t written = 0;
    Clock::time_point due;
  };
  struct Side {
    int fd = -1;
    std::deque<Chunk> out;
    size_t out_bytes = 0;
    bool read_eof = false;  // the peer on this side will send nothing more
    bool shut_wr = false;   // we half-closed towards this side
  };
  Side side[2];
  bool dead = false;  // an error: reset both sides
  bool lost = false;  // Blackhole(): frozen for good, sockets left open
};

absl::StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::Start(const std::string& target) {
  const size_t colon = target.rfind(':');
  int port = 0;
  in_addr ip{};
  if (colon == std::string::npos || !absl::SimpleAtoi(target.substr(colon + 1), &port) || port <= 0 ||
      port > 65535 || inet_pton(AF_INET, target.substr(0, colon).c_str(), &ip) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("proxy target \"", target, "\" is not IPV4:PORT"));
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 128) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int error = errno;
    close(fd);
    return absl::ErrnoToStatus(error, "bind/listen on 127.0.0.1:0");
  }
  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    const int error = errno;
    close(fd);
    return absl::ErrnoToStatus(error, "eventfd");
  }
  std::unique_ptr<FaultProxy> proxy(new FaultProxy(fd, wake, absl::StrCat("127.0.0.1:", ntohs(addr.sin_port)),
                                                   ip.s_addr, static_cast<uint16_t>(port)));
  proxy->thread_ = std::thread([p = proxy.get()] { p->Run(); });
  return proxy;
}

FaultProxy::FaultProxy(int listen_fd, int wake_fd, std::string address, uint32_t target_ip, uint16_t target_port)
    : listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      address_(std::move(address)),
      target_ip_(target_ip),
      target_port_(target_port) {}

FaultProxy::~FaultProxy() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  eventfd_write(wake_fd_, 1);
  thread_.join();
  close(listen_fd_);
  close(wake_fd_);
}

template <typename Change>
void FaultProxy::Apply(Change change) {
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    change(command_);
    generation = ++requested_;
  }
  eventfd_write(wake_fd_, 1);
  struct Waiting {
    FaultProxy* proxy;
    uint64_t generation;
  } waiting{this, generation};
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](Waiting* w) ABSL_NO_THREAD_SAFETY_ANALYSIS { return w->proxy->applied_ >= w->generation; }, &waiting));
}

void FaultProxy::Cut() {
  Apply([](Command& c) { c.cut = true; });
}
void FaultProxy::Partition() {
  Apply([](Command& c) { c.mode = Mode::kPartition; });
}
void FaultProxy::Stall() {
  Apply([](Command& c) { c.mode = Mode::kStall; });
}
void FaultProxy::Blackhole() {
  Apply([](Command& c) { c.blackhole = true; });
}
void FaultProxy::Drop() {
  Apply([](Command& c) { c.mode = Mode::kDrop; });
}
void FaultProxy::Heal() {
  Apply([](Command& c) { c.mode = Mode::kForward; });
}
void FaultProxy::SetDelay(absl::Duration delay) {
  Apply([delay](Command& c) { c.delay = std::max(delay, absl::ZeroDuration()); });
}

void FaultProxy::Record() {
  absl::MutexLock lock(&mu_);
  recording_ = true;
}

std::string FaultProxy::Recorded() const {
  absl::MutexLock lock(&mu_);
  return recorded_;
}

int FaultProxy::open_connections() const {
  absl::MutexLock lock(&mu_);
  return open_;
}

int64_t FaultProxy::accepted() const {
  absl::MutexLock lock(&mu_);
  return accepted_;
}

void FaultProxy::Run() {
  std::list<Connection> connections;
  Command command;
  uint64_t seen = 0;
  auto reset = [](Connection& c) {
    for (Connection::Side& s : c.side) {
      if (s.fd >= 0) ResetAndClose(s.fd);
      s.fd = -1;
    }
  };
  std::vector<pollfd> fds;
  std::vector<std::pair<Connection*, int>> owners;  // fds[i + 2] belongs to owners[i]
  for (;;) {
    // Take a new command, apply it, and only then say so.
    {
      absl::MutexLock lock(&mu_);
      if (stop_) break;
      if (requested_ != seen) {
        const bool cut = command_.cut || (command_.mode == Mode::kPartition && command.mode != Mode::kPartition);
        command = command_;
        command_.cut = false;
        command_.blackhole = false;
        if (command.blackhole) {
          for (Connection& c : connections) c.lost = true;
        }
        seen = requested_;
        if (cut) {
          for (Connection& c : connections) reset(c);
          connections.clear();
        }
        if (command.mode == Mode::kDrop) {
          for (Connection& c : connections) {
            for (Connection::Side& s : c.side) {
              s.out.clear();
              s.out_bytes = 0;
            }
          }
        }
        open_ = static_cast<int>(connections.size());
        applied_ = seen;
      }
    }
    const Clock::time_point now = Clock::now();
    const bool frozen = command.mode == Mode::kStall;
    fds.clear();
    owners.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({frozen ? -1 : listen_fd_, POLLIN, 0});
    Clock::time_point next_due = Clock::time_point::max();
    for (Connection& c : connections) {
      for (int i = 0; i < 2; ++i) {
        Connection::Side& s = c.side[i];
        const Connection::Side& other = c.side[1 - i];
        short events = 0;
        if (c.lost) {
          fds.push_back({-1, 0, 0});
          owners.emplace_back(&c, i);
          continue;
        }
        if (!frozen && !s.read_eof && (command.mode == Mode::kDrop || other.out_bytes < kMaxBuffered)) {
          events |= POLLIN;
        }
        if (command.mode == Mode::kForward && !s.out.empty()) {
          if (s.out.front().due <= now) {
            events |= POLLOUT;
          } else {
            next_due = std::min(next_due, s.out.front().due);
          }
        }
        // An fd with no events would still report POLLHUP at once: leave it out.
        fds.push_back({events == 0 ? -1 : s.fd, events, 0});
        owners.emplace_back(&c, i);
      }
    }
    int timeout_ms = -1;
    if (next_due != Clock::time_point::max()) {
      timeout_ms = static_cast<int>(std::clamp<int64_t>(
          std::chrono::ceil<std::chrono::milliseconds>(next_due - now).count(), 0, INT_MAX));
    }
    if (poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) break;

    if (fds[0].revents != 0) {
      eventfd_t ignored;
      eventfd_read(wake_fd_, &ignored);
    }
    if (fds[1].revents != 0) {
      for (;;) {
        const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client < 0) break;
        {
          absl::MutexLock lock(&mu_);
          ++accepted_;
        }
        if (command.mode == Mode::kPartition) {
          ResetAndClose(client);
          continue;
        }
        const int upstream = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = target_ip_;
        addr.sin_port = htons(target_port_);
        // Loopback: a blocking connect ends at once (connected or refused).
        if (upstream < 0 || connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
          if (upstream >= 0) close(upstream);
          ResetAndClose(client);
          continue;
        }
        SetNonBlocking(upstream);
        const int one = 1;
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        Connection& c = connections.emplace_back();
        c.side[0].fd = client;
        c.side[1].fd = upstream;
      }
    }
    const Clock::time_point after_poll = Clock::now();
    for (size_t k = 0; k < owners.size(); ++k) {
      const short revents = fds[k + 2].revents;
      if (revents == 0) continue;
      Connection& c = *owners[k].first;
      if (c.dead) continue;
      const int i = owners[k].second;
      Connection::Side& s = c.side[i];
      Connection::Side& other = c.side[1 - i];
      if (revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[65536];
        const ssize_t n = read(s.fd, buf, sizeof buf);
        if (n > 0 && i == 0) {
          absl::MutexLock lock(&mu_);
          if (recording_) recorded_.append(buf, std::min(static_cast<size_t>(n), kMaxRecorded - recorded_.size()));
        }
        if (n > 0 && command.mode != Mode::kDrop) {
          other.out.push_back({std::string(buf, static_cast<size_t>(n)), 0,
                               after_poll + absl::ToChronoNanoseconds(command.delay)});
          other.out_bytes += static_cast<size_t>(n);
        } else if (n == 0) {
          s.read_eof = true;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
          c.dead = true;
          continue;
        }
      }
      if (revents & POLLOUT) {
        while (!s.out.empty() && s.out.front().due <= after_poll) {
          Connection::Chunk& chunk = s.out.front();
          const ssize_t n = send(s.fd, chunk.data.data() + chunk.written, chunk.data.size() - chunk.written,
                                 MSG_NOSIGNAL);
          if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) c.dead = true;
            break;
          }
          chunk.written += static_cast<size_t>(n);
          s.out_bytes -= static_cast<size_t>(n);
          if (chunk.written < chunk.data.size()) break;
          s.out.pop_front();
        }
      }
    }
    // Pass each end of stream on once what came before it is written; forget
    // connections that are over.
    for (auto it = connections.begin(); it != connections.end();) {
      Connection& c = *it;
      if (!c.dead) {
        for (int i = 0; i < 2; ++i) {
          Connection::Side& to = c.side[1 - i];
          if (c.side[i].read_eof && to.out.empty() && !to.shut_wr) {
            shutdown(to.fd, SHUT_WR);
            to.shut_wr = true;
          }
        }
      }
      if (c.dead) {
        reset(c);
        it = connections.erase(it);
      } else if (c.side[0].shut_wr && c.side[1].shut_wr) {
        close(c.side[0].fd);
        close(c.side[1].fd);
        it = connections.erase(it);
      } else {
        ++it;
      }
    }
    absl::MutexLock lock(&mu_);
    open_ = static_cast<int>(connections.size());
  }
  for (Connection& c : connections) reset(c);
}

}  // namespace cohort::testing
