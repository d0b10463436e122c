#include "services/cli/reconnect.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/rpc/status.h"

namespace cohort::cli {
bool Reconnect::Retryable(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE || status.error_code() == grpc::StatusCode::CANCELLED;
}

void Reconnect::Wait(const grpc::Status& status, absl::string_view address, absl::string_view resuming) {
  if (!lost_) {
    std::fprintf(stderr, "cohortctl: %s: lost the broker at %.*s (%s); reconnecting, %.*s\n", command_.c_str(),
                 static_cast<int>(address.size()), address.data(), std::string(rpc::CodeName(status.error_code())).c_str(),
                 static_cast<int>(resuming.size()), resuming.data());
    lost_ = true;
  }
  absl::SleepFor(backoff_.Next());
}

void Reconnect::Connected() {
  if (lost_) std::fprintf(stderr, "cohortctl: %s: reconnected\n", command_.c_str());
  lost_ = false;
  backoff_.Reset();
}

}  // namespace cohort::cli
