#pragma once

#include <iterator>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"

namespace cohort::rpc {

// absl::Status <-> grpc::Status, one to one: the canonical codes share their numbers.
inline grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

inline absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

// The canonical name of a code ("OK", "NOT_FOUND", ...), as metrics label it and
// messages print it; "UNKNOWN" for a number outside the canonical codes (taken as an
// int: a grpc::StatusCode holding such a number would already be undefined behaviour).
inline absl::string_view CodeName(int code) {
  static constexpr absl::string_view kNames[] = {
      "OK",        "CANCELLED",           "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
      "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  return code >= 0 && code < static_cast<int>(std::size(kNames)) ? kNames[code] : "UNKNOWN";
}
inline absl::string_view CodeName(grpc::StatusCode code) { return CodeName(static_cast<int>(code)); }

}  // namespace cohort::rpc
