#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace cohort::testing {

// A key pair and certificate made with Debian's openssl in a test's temp dir.
struct CertFiles {
  std::string cert;  // PEM certificate
  std::string key;   // PEM private key (P-256)
};

// A throwaway certificate authority under `dir` (openssl req -x509), able to sign
// server and client certificates. Each call to Issue writes new files.
class TestCa {
 public:
  static absl::StatusOr<TestCa> Create(const std::string& dir, const std::string& name);
  const std::string& cert() const { return ca_.cert; }

  // A certificate for `common_name`, valid for 127.0.0.1 and localhost, usable as both
  // server and client certificate, written to `<dir>/<file_stem>.{pem,key}`.
  absl::StatusOr<CertFiles> Issue(const std::string& common_name, const std::string& file_stem) const;

 private:
  std::string dir_;
  CertFiles ca_;
};

}  // namespace cohort::testing
