#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/common/address.h"
#include "services/console/tls_certificates.h"

namespace cohort::console {

// HTTPS in front of the console's HTTP server: accepts TLS (1.2 or later) on the public
// address and relays each connection's bytes to the HTTP server on a loopback port.
//
// Why not civetweb's own TLS: Debian's civetweb 1.15 loads OpenSSL by name at run time
// and calls SSL_get_peer_certificate, which OpenSSL 3 no longer exports, through a null
// pointer on every HTTPS connection. This relay uses OpenSSL through the link instead.
//
// One thread accepts; each connection gets a thread of its own, at most
// `max_connections` at once (more are closed at once, as a full civetweb would make
// them wait). The certificate and key are read at Start and re-read when they change
// (see TlsCertificates): a rotated pair reaches new connections within
// `reload_interval` while established ones go on. Stop() closes the listener and every
// connection and joins the threads; idempotent.
class TlsFront {
 public:
  static absl::StatusOr<std::unique_ptr<TlsFront>> Start(const common::HostPort& listen, const std::string& cert,
                                                         const std::string& key, const common::HostPort& backend,
                                                         int max_connections,
                                                         absl::Duration reload_interval = absl::Seconds(10));
  ~TlsFront();
  TlsFront(const TlsFront&) = delete;
  TlsFront& operator=(const TlsFront&) = delete;

  // The address bound (the real port when asked for 0).
  const common::HostPort& address() const { return address_; }

  void Stop();

 private:
  TlsFront(std::unique_ptr<TlsCertificates> certificates, int listen_fd, common::HostPort address,
           common::HostPort backend, int max_connections);
  // What relay threads share with the front; each holds a reference, so it outlives
  // them even after the front is gone.
  struct Shared;

  void AcceptLoop();

  const int listen_fd_;
  const common::HostPort address_;
  const common::HostPort backend_;
  const int max_connections_;
  const std::unique_ptr<TlsCertificates> certificates_;  // the acceptor's
  std::shared_ptr<Shared> shared_;
  std::thread acceptor_;
  bool stopped_ = false;
};

}  // namespace cohort::console
