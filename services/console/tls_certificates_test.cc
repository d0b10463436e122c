#include "services/console/tls_certificates.h"

#include <filesystem>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "openssl/pem.h"
#include "openssl/ssl.h"
#include "tests/testing/run_to_exit.h"
#include "tests/testing/temp_dir.h"

namespace cohort::console {
namespace {

namespace fs = std::filesystem;

// The SHA-256 of a certificate, hex.
std::string Fingerprint(const X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (cert == nullptr || X509_digest(cert, EVP_sha256(), md, &n) != 1) return "none";
  return absl::BytesToHexString(std::string(reinterpret_cast<char*>(md), n));
}

std::string FileFingerprint(const std::string& pem) {
  FILE* f = std::fopen(pem.c_str(), "r");
  if (f == nullptr) return "unreadable";
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  std::string fp = Fingerprint(cert);
  X509_free(cert);
  return fp;
}

// The fingerprint a connection made from `ctx` would present; frees the reference.
std::string Served(SSL_CTX* ctx) {
  SSL* ssl = SSL_new(ctx);
  SSL_CTX_free(ctx);
  std::string fp = Fingerprint(SSL_get_certificate(ssl));
  SSL_free(ssl);
  return fp;
}

class TlsCertificatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"a", "b"}) {
      absl::StatusOr<testing::Exited> made = testing::RunToExit(
          "/usr/bin/openssl", {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                               "-days", "1", "-subj", std::string("/CN=console-") + name, "-keyout",
                               Path(name, "key"), "-out", Path(name, "crt")});
      ASSERT_TRUE(made.ok() && made->exit_code == 0) << (made.ok() ? made->stderr_text : made.status().ToString());
    }
    Install("a", "a");
  }

  std::string Path(const std::string& name, const std::string& ext) const {
    return dir_.path() + "/" + name + "." + ext;
  }
  // Writes the served files in place, as a rotation does: `cert`'s chain, `key`'s key.
  void Install(const std::string& cert, const std::string& key) {
    fs::copy_file(Path(cert, "crt"), cert_, fs::copy_options::overwrite_existing);
    fs::copy_file(Path(key, "key"), key_, fs::copy_options::overwrite_existing);
  }

  testing::TempDir dir_;
  const std::string cert_ = dir_.path() + "/tls.crt";
  const std::string key_ = dir_.path() + "/tls.key";
};

TEST_F(TlsCertificatesTest, ARotatedPairReachesNewConnectionsOnceTheIntervalHasPassed) {
  auto certs = TlsCertificates::Load(cert_, key_, absl::Seconds(10));
  ASSERT_TRUE(certs.ok()) << certs.status();
  const absl::Time t0 = absl::Now();
  EXPECT_EQ(Served((*certs)->ForNewConnection(t0)), FileFingerprint(Path("a", "crt")));
  Install("b", "b");
  EXPECT_EQ(Served((*certs)->ForNewConnection(t0 + absl::Seconds(1))), FileFingerprint(Path("a", "crt")))
      << "the files are read at most once per interval";
  EXPECT_EQ(Served((*certs)->ForNewConnection(t0 + absl::Seconds(11))), FileFingerprint(Path("b", "crt")));
  EXPECT_EQ((*certs)->reloads(), 1);
  EXPECT_EQ(Served((*certs)->ForNewConnection(t0 + absl::Seconds(30))), FileFingerprint(Path("b", "crt")));
  EXPECT_EQ((*certs)->reloads(), 1) << "unchanged files are not taken again";
}

TEST_F(TlsCertificatesTest, AConnectionMadeBeforeTheRotationKeepsItsCertificate) {
  auto certs = TlsCertificates::Load(cert_, key_, absl::Seconds(1));
  ASSERT_TRUE(certs.ok()) << certs.status();
  SSL* before = SSL_new((*certs)->ForNewConnection(absl::Now()));
  SSL_CTX_free(SSL_get_SSL_CTX(before));  // the SSL holds its own reference
  Install("b", "b");
  EXPECT_EQ(Served((*certs)->ForNewConnection(absl::Now() + absl::Seconds(2))), FileFingerprint(Path("b", "crt")));
  certs->reset();
  EXPECT_EQ(Fingerprint(SSL_get_certificate(before)), FileFingerprint(Path("a", "crt")));
  SSL_free(before);
}

TEST_F(TlsCertificatesTest, AHalfRotatedPairLeavesThePreviousOneInUse) {
  auto certs = TlsCertificates::Load(cert_, key_, absl::Seconds(1));
  ASSERT_TRUE(certs.ok()) << certs.status();
  const absl::Time t0 = absl::Now();
  Install("b", "a");  // the new certificate has landed, its key not yet
  EXPECT_EQ(Served((*certs)->ForNewConnection(t0 + absl::Seconds(2))), FileFingerprint(Path("a", "crt")));
  std::filesystem::resize_file(key_, 10);  // a truncated key
  EXPECT_EQ(Served((*certs)->ForNewConnection(t0 + absl::Seconds(4))), FileFingerprint(Path("a", "crt")));
  EXPECT_EQ((*certs)->reloads(), 0);
  Install("b", "b");
  EXPECT_EQ(Served((*certs)->ForNewConnection(t0 + absl::Seconds(6))), FileFingerprint(Path("b", "crt")));
  EXPECT_EQ((*certs)->reloads(), 1);
}

TEST_F(TlsCertificatesTest, LoadRefusesAKeyOfAnotherCertificateAndAMissingFile) {
  Install("a", "b");
  auto mismatched = TlsCertificates::Load(cert_, key_, absl::Seconds(10));
  EXPECT_EQ(mismatched.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(mismatched.status().message().find("--tls-key"), std::string::npos) << mismatched.status();
  auto missing = TlsCertificates::Load(dir_.path() + "/nope.crt", key_, absl::Seconds(10));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("--tls-cert"), std::string::npos) << missing.status();
  auto fast = TlsCertificates::Load(cert_, key_, absl::Milliseconds(10));
  EXPECT_EQ(fast.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cohort::console
