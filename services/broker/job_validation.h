#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "protos/cohort/v1/job.pb.h"

namespace cohort::broker {

// Caps on what a client may submit. Each size cap is a broker flag or follows from one.
struct SpecLimits {
  // The whole serialized spec (JobSpec::ByteSizeLong). Every hop must carry a spec this
  // size inside one message (Assign to the executor, Watch events, GetJob), so
  // BrokerApp::Validate keeps it well under --max-message-bytes.
  std::size_t max_spec_bytes = 2 << 20;
  std::size_t max_payload_bytes = 1 << 20;
  std::size_t max_labels = 32;
  std::size_t max_label_bytes = 256;  // key or value
  std::size_t max_argv = 256;         // command.argv entries
  std::size_t max_env = 256;          // command.env entries
  std::size_t max_command_string_bytes = 32 << 10;  // each argv entry, env key or env value
  std::size_t max_cwd_bytes = 4096;   // command.cwd (PATH_MAX)
  std::size_t max_depends_on = 1000;
  std::int32_t max_attempts = 100;
};

// OK for a valid JobSpec.kind: common::CheckName's rule, and one of the built-ins if it starts
// with "builtin."; otherwise INVALID_ARGUMENT "<what><quoted kind> <the rule>", quoting a
// bounded prefix. `what` names the field with its separator, e.g. "hello.kinds: ".
absl::Status CheckKindName(absl::string_view kind, absl::string_view what);

// Checks one spec on its own (dependencies on existing jobs are the caller's to
// check): names, sizes, every Duration and Timestamp (well formed, not negative, at
// most common::kMaxWireDuration; times within timestamp.proto's range), finite backoff
// numbers, known enum values, and a command only for kind "exec". INVALID_ARGUMENT
// naming the field (as `jobs[index].field`) and the rule; caller text in the message is
// quoted as a bounded prefix only.
absl::Status ValidateSpec(const cohort::v1::JobSpec& spec, int index, const SpecLimits& limits);

}  // namespace cohort::broker
