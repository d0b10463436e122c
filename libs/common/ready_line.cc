#include "libs/common/ready_line.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace cohort::common {

std::string ReadyLine(const HostPort& grpc, const HostPort& metrics) {
  return absl::StrCat("listening grpc=", grpc.ToString(), " metrics=", metrics.ToString());
}

absl::Status WriteReadyLine(std::FILE* out, const HostPort& grpc, const HostPort& metrics) {
  const std::string line = absl::StrCat(ReadyLine(grpc, metrics), "\n");
  if (std::fwrite(line.data(), 1, line.size(), out) != line.size() || std::fflush(out) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot write the ready line: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status PrintReadyLine(const HostPort& grpc, const HostPort& metrics) {
  return WriteReadyLine(stdout, grpc, metrics);
}

}  // namespace cohort::common
