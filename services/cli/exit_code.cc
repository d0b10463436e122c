#include "services/cli/exit_code.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "libs/rpc/status.h"

namespace cohort::cli {

ExitCode Fail(ExitCode code, absl::string_view message) {
  std::fprintf(stderr, "cohortctl: %.*s\n", static_cast<int>(message.size()), message.data());
  return code;
}

ExitCode FailLocal(const absl::Status& status) {
  const std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return Fail(ExitCode::kUnreachable, message);
    default:
      return Fail(ExitCode::kUsage, message);
  }
}

ExitCode FailRpc(const grpc::Status& status, absl::string_view service, absl::string_view address) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return Fail(ExitCode::kUnreachable,
                  absl::StrCat("UNAVAILABLE: ", status.error_message(), " (", service, " at ", address, ")"));
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Fail(ExitCode::kUnreachable,
                  absl::StrCat("the ", service, " at ", address, " did not answer in time (see --timeout)"));
    default:
      return Fail(ExitCode::kRejected, absl::StrCat(rpc::CodeName(status.error_code()), ": ", status.error_message()));
  }
}

}  // namespace cohort::cli
