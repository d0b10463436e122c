#include "libs/common/log_flags.h"

#include <string>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "libs/common/log.h"

ABSL_FLAG(std::string, log_format, "text", "log lines as text (for people) or json (one object per line, for log pipelines)");
ABSL_FLAG(std::string, log_level, "info", "least severe log lines written: debug, info, warn or error");

namespace cohort::log {

absl::Status ConfigureFromFlags() {
  absl::StatusOr<Format> format = ParseFormat("--log-format", absl::GetFlag(FLAGS_log_format));
  if (!format.ok()) return format.status();
  absl::StatusOr<Level> level = ParseLevel("--log-level", absl::GetFlag(FLAGS_log_level));
  if (!level.ok()) return level.status();
  LogOptions options;
  options.format = *format;
  options.level = *level;
  Configure(std::move(options));
  return absl::OkStatus();
}

}  // namespace cohort::log
