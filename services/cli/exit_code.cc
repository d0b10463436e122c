#include "services/cli/exit_code.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"

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

absl::string_view CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
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
      return Fail(ExitCode::kRejected, absl::StrCat(CodeName(status.error_code()), ": ", status.error_message()));
  }
}

}  // namespace cohort::cli
