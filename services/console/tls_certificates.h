#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace cohort::console {

// The HTTPS front's certificate chain and key, re-read when their files change, with the
// policy of the gRPC servers' FileWatcherCertificateProvider (libs/auth/server_security.h,
// --tls-reload-interval): Kubernetes rotates a mounted Secret in place, new connections
// then get the new certificate, and established ones keep the one they were made with
// (each OpenSSL connection holds a reference to the context it was made from).
//
// (gRPC's provider cannot be shared here: its public API hands the pair only to gRPC's
// own TLS stack, and the console's HTTPS is OpenSSL's; see TlsFront.)
//
// At most once per `reload_interval`, ForNewConnection() reads both files; when their
// bytes differ from the pair in use and they load as a PEM chain with its private key,
// the new pair is used from that connection on (logged at info). A pair that does not
// load, such as a half-written rotation or a key of another certificate, leaves the
// previous one in use (logged at warn, once per content of the files) and is tried
// again at the next interval.
//
// Not thread-safe: one thread (the front's acceptor) owns it.
class TlsCertificates {
 public:
  // Reads the pair now; INVALID_ARGUMENT naming the file (--tls-cert / --tls-key) when
  // it cannot be read or does not load.
  static absl::StatusOr<std::unique_ptr<TlsCertificates>> Load(std::string cert_file, std::string key_file,
                                                               absl::Duration reload_interval);
  ~TlsCertificates();
  TlsCertificates(const TlsCertificates&) = delete;
  TlsCertificates& operator=(const TlsCertificates&) = delete;

  // The context for a connection accepted at `now`, re-reading the files first if
  // `reload_interval` has passed since they were last read. A new reference: the caller
  // frees it (SSL_CTX_free) once its SSL object exists (or it gives up).
  SSL_CTX* ForNewConnection(absl::Time now = absl::Now());

  // How many times a changed pair was taken into use since Load (for tests and logs).
  int reloads() const { return reloads_; }

 private:
  TlsCertificates(std::string cert_file, std::string key_file, absl::Duration reload_interval)
      : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)), reload_interval_(reload_interval) {}

  const std::string cert_file_;
  const std::string key_file_;
  const absl::Duration reload_interval_;
  SSL_CTX* ctx_ = nullptr;
  std::string cert_pem_, key_pem_;      // the bytes ctx_ was made from
  std::string refused_cert_, refused_key_;  // the last pair that did not load (warned once)
  absl::Time last_read_ = absl::InfinitePast();
  int reloads_ = 0;
};

}  // namespace cohort::console
