#include "services/console/tls_certificates.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/log.h"
#include "libs/common/quote.h"
#include "openssl/err.h"
#include "openssl/pem.h"
#include "openssl/ssl.h"

namespace cohort::console {
namespace {

const log::Logger kLog("console");

// Larger than any certificate chain or key a Secret holds.
constexpr std::streamsize kMaxPemBytes = 1 << 20;

std::string SslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no detail from OpenSSL";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes(static_cast<std::size_t>(kMaxPemBytes) + 1, '\0');
  if (in) in.read(bytes.data(), kMaxPemBytes + 1);
  if (!in && !in.eof()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", common::QuoteBounded(path), " cannot be read"));
  }
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  if (bytes.size() > static_cast<std::size_t>(kMaxPemBytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", common::QuoteBounded(path), " is over ", kMaxPemBytes, " bytes"));
  }
  return bytes;
}

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
Bio MemoryBio(const std::string& bytes) {
  return Bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())), &BIO_free);
}

// A server context from a PEM chain (leaf first, as SSL_CTX_use_certificate_chain_file
// reads it) and its key, or INVALID_ARGUMENT naming the file at fault.
absl::StatusOr<SSL_CTX*> MakeContext(const std::string& cert_pem, const std::string& key_pem,
                                     const std::string& cert_file, const std::string& key_file) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()), &SSL_CTX_free);
  if (ctx == nullptr) return absl::InternalError(absl::StrCat("cannot make a TLS context: ", SslError()));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  const auto bad_cert = [&] {
    return absl::InvalidArgumentError(absl::StrCat("--tls-cert ", common::QuoteBounded(cert_file),
                                                   " is not a PEM certificate chain: ", SslError()));
  };
  Bio certs = MemoryBio(cert_pem);
  X509* leaf = PEM_read_bio_X509_AUX(certs.get(), nullptr, nullptr, nullptr);
  if (leaf == nullptr) return bad_cert();
  const bool used = SSL_CTX_use_certificate(ctx.get(), leaf) == 1;
  X509_free(leaf);
  if (!used) return bad_cert();
  while (X509* link = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx.get(), link) != 1) {
      X509_free(link);
      return bad_cert();
    }
  }
  ERR_clear_error();  // the end of the chain reads as "no start line"
  Bio key_bio = MemoryBio(key_pem);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
  const bool key_ok = key != nullptr && SSL_CTX_use_PrivateKey(ctx.get(), key) == 1 &&
                      SSL_CTX_check_private_key(ctx.get()) == 1;
  EVP_PKEY_free(key);
  if (!key_ok) {
    return absl::InvalidArgumentError(absl::StrCat("--tls-key ", common::QuoteBounded(key_file),
                                                   " is not a PEM private key of --tls-cert: ", SslError()));
  }
  return ctx.release();
}

}  // namespace

absl::StatusOr<std::unique_ptr<TlsCertificates>> TlsCertificates::Load(std::string cert_file, std::string key_file,
                                                                       absl::Duration reload_interval) {
  if (reload_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError("--tls-reload-interval must be at least 1s");
  }
  std::unique_ptr<TlsCertificates> certs(
      new TlsCertificates(std::move(cert_file), std::move(key_file), reload_interval));
  absl::StatusOr<std::string> cert_pem = ReadPem(certs->cert_file_, "--tls-cert");
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem = ReadPem(certs->key_file_, "--tls-key");
  if (!key_pem.ok()) return key_pem.status();
  absl::StatusOr<SSL_CTX*> ctx = MakeContext(*cert_pem, *key_pem, certs->cert_file_, certs->key_file_);
  if (!ctx.ok()) return ctx.status();
  certs->ctx_ = *ctx;
  certs->cert_pem_ = *std::move(cert_pem);
  certs->key_pem_ = *std::move(key_pem);
  certs->last_read_ = absl::Now();
  return certs;
}

TlsCertificates::~TlsCertificates() { SSL_CTX_free(ctx_); }

SSL_CTX* TlsCertificates::ForNewConnection(absl::Time now) {
  if (now - last_read_ >= reload_interval_) {
    last_read_ = now;
    absl::StatusOr<std::string> cert_pem = ReadPem(cert_file_, "--tls-cert");
    absl::StatusOr<std::string> key_pem = ReadPem(key_file_, "--tls-key");
    if (!cert_pem.ok() || !key_pem.ok()) {
      kLog.Warn("TLS certificate files unreadable: serving the previous pair",
                {{"error", std::string((cert_pem.ok() ? key_pem.status() : cert_pem.status()).message())}});
    } else if (*cert_pem != cert_pem_ || *key_pem != key_pem_) {
      absl::StatusOr<SSL_CTX*> next = MakeContext(*cert_pem, *key_pem, cert_file_, key_file_);
      if (next.ok()) {
        SSL_CTX_free(ctx_);
        ctx_ = *next;
        cert_pem_ = *std::move(cert_pem);
        key_pem_ = *std::move(key_pem);
        refused_cert_.clear();
        refused_key_.clear();
        ++reloads_;
        kLog.Info("TLS certificate reloaded: new connections get it", {{"cert", cert_file_}});
      } else if (*cert_pem != refused_cert_ || *key_pem != refused_key_) {
        refused_cert_ = *std::move(cert_pem);
        refused_key_ = *std::move(key_pem);
        kLog.Warn("TLS certificate files changed but do not load: serving the previous pair",
                  {{"error", std::string(next.status().message())}});
      }
    }
  }
  SSL_CTX_up_ref(ctx_);
  return ctx_;
}

}  // namespace cohort::console
