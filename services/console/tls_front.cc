#include "services/console/tls_front.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "openssl/err.h"
#include "openssl/ssl.h"

namespace cohort::console {

struct TlsFront::Shared {
  int wake[2] = {-1, -1};  // a pipe Stop() writes to: readable from then on, it ends every poll()
  absl::Mutex mu;
  int open ABSL_GUARDED_BY(mu) = 0;  // relay threads running

  ~Shared() {
    if (wake[0] >= 0) close(wake[0]);
    if (wake[1] >= 0) close(wake[1]);
  }
};

namespace {

constexpr int kHandshakeTimeoutSeconds = 10;

sockaddr_in SocketAddress(const common::HostPort& address) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(address.port);
  inet_pton(AF_INET, address.host.c_str(), &sa.sin_addr);
  return sa;
}

bool WriteAll(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// One connection: the TLS handshake, then bytes both ways until either side closes or
// the front stops. Takes over the reference to `ctx` (the SSL object keeps its own).
void RelayConnection(SSL_CTX* ctx, int client, const common::HostPort& backend, int wake) {
  timeval timeout{kHandshakeTimeoutSeconds, 0};
  setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  SSL* ssl = SSL_new(ctx);
  SSL_CTX_free(ctx);
  int plain = -1;
  if (ssl != nullptr && SSL_set_fd(ssl, client) == 1 && SSL_accept(ssl) == 1) {
    timeval none{0, 0};
    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    plain = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const sockaddr_in sa = SocketAddress(backend);
    if (plain >= 0 && connect(plain, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0) {
      char buffer[16 * 1024];
      bool open = true;
      while (open) {
        // Bytes OpenSSL has already decrypted are not visible to poll().
        if (SSL_pending(ssl) == 0) {
          pollfd fds[3] = {{client, POLLIN, 0}, {plain, POLLIN, 0}, {wake, POLLIN, 0}};
          if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR) continue;
            break;
          }
          if (fds[2].revents != 0) break;
          if (fds[1].revents != 0) {
            const ssize_t n = recv(plain, buffer, sizeof buffer, 0);
            if (n <= 0 || SSL_write(ssl, buffer, static_cast<int>(n)) <= 0) break;
          }
          if (fds[0].revents == 0) continue;
        }
        const int n = SSL_read(ssl, buffer, sizeof buffer);
        open = n > 0 && WriteAll(plain, buffer, static_cast<std::size_t>(n));
      }
      SSL_shutdown(ssl);
    }
  }
  ERR_clear_error();
  if (plain >= 0) close(plain);
  SSL_free(ssl);
  close(client);
}

}  // namespace

absl::StatusOr<std::unique_ptr<TlsFront>> TlsFront::Start(const common::HostPort& listen, const std::string& cert,
                                                         const std::string& key, const common::HostPort& backend,
                                                         int max_connections, absl::Duration reload_interval) {
  in_addr probe{};
  if (inet_pton(AF_INET, listen.host.c_str(), &probe) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("cannot serve the console over HTTPS on ", listen.ToString(),
                                                   ": give an IPv4 address (such as 0.0.0.0 or 127.0.0.1)"));
  }
  absl::StatusOr<std::unique_ptr<TlsCertificates>> certificates = TlsCertificates::Load(cert, key, reload_interval);
  if (!certificates.ok()) return certificates.status();
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in sa = SocketAddress(listen);
  socklen_t len = sizeof sa;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 128) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat("cannot serve the console on ", listen.ToString(),
                                               ": the address is in use or not an address of this machine"));
  }
  common::HostPort bound = listen;
  bound.port = ntohs(sa.sin_port);
  std::unique_ptr<TlsFront> front(new TlsFront(*std::move(certificates), fd, bound, backend, max_connections));
  if (pipe2(front->shared_->wake, O_CLOEXEC) != 0) return absl::InternalError("cannot make a pipe");
  front->acceptor_ = std::thread([f = front.get()] { f->AcceptLoop(); });
  return front;
}

TlsFront::TlsFront(std::unique_ptr<TlsCertificates> certificates, int listen_fd, common::HostPort address,
                   common::HostPort backend, int max_connections)
    : listen_fd_(listen_fd),
      address_(std::move(address)),
      backend_(std::move(backend)),
      max_connections_(max_connections),
      certificates_(std::move(certificates)),
      shared_(std::make_shared<Shared>()) {}

TlsFront::~TlsFront() { Stop(); }

void TlsFront::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {shared_->wake[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    {
      absl::MutexLock lock(&shared_->mu);
      if (shared_->open >= max_connections_) {
        close(client);
        continue;
      }
      ++shared_->open;
    }
    // Detached: Stop() waits for `open` to fall to zero, and the thread holds `shared`.
    std::thread([shared = shared_, ctx = certificates_->ForNewConnection(), client, backend = backend_] {
      RelayConnection(ctx, client, backend, shared->wake[0]);
      absl::MutexLock lock(&shared->mu);
      --shared->open;
    }).detach();
  }
}

void TlsFront::Stop() {
  if (stopped_) return;
  stopped_ = true;
  const char byte = 0;
  if (write(shared_->wake[1], &byte, 1) != 1) std::abort();  // a fresh pipe always takes one byte
  acceptor_.join();
  close(listen_fd_);
  absl::MutexLock lock(&shared_->mu);
  shared_->mu.Await(absl::Condition(
      +[](int* open) { return *open == 0; }, &shared_->open));
}

}  // namespace cohort::console
