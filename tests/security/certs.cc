#include "tests/security/certs.h"

#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/run_to_exit.h"

namespace cohort::testing {
namespace {

absl::Status OpenSsl(const std::vector<std::string>& args) {
  absl::StatusOr<Exited> done = RunToExit("/usr/bin/openssl", args, absl::Seconds(60));
  if (!done.ok()) return done.status();
  if (done->exit_code != 0) {
    return absl::InternalError(absl::StrCat("openssl ", args[0], " exited ", done->exit_code, ": ", done->stderr_text));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TestCa> TestCa::Create(const std::string& dir, const std::string& name) {
  TestCa ca;
  ca.dir_ = dir;
  ca.ca_ = {absl::StrCat(dir, "/", name, ".pem"), absl::StrCat(dir, "/", name, ".key")};
  if (absl::Status s = OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                "-keyout", ca.ca_.key, "-out", ca.ca_.cert, "-days", "2", "-subj", "/CN=" + name});
      !s.ok()) {
    return s;
  }
  return ca;
}

absl::StatusOr<CertFiles> TestCa::Issue(const std::string& common_name, const std::string& file_stem) const {
  const std::string stem = absl::StrCat(dir_, "/", file_stem);
  CertFiles files{stem + ".pem", stem + ".key"};
  const std::string csr = stem + ".csr", ext = stem + ".ext";
  std::ofstream(ext) << "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                     << "extendedKeyUsage=serverAuth,clientAuth\n";
  if (absl::Status s = OpenSsl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                "-keyout", files.key, "-out", csr, "-subj", "/CN=" + common_name});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = OpenSsl({"x509", "-req", "-in", csr, "-CA", ca_.cert, "-CAkey", ca_.key, "-CAcreateserial",
                                "-out", files.cert, "-days", "2", "-extfile", ext});
      !s.ok()) {
    return s;
  }
  return files;
}

}  // namespace cohort::testing
