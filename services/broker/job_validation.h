#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "protos/cohort/v1/job.pb.h"

namespace cohort::broker {

// Caps on what a client may submit. Every one is a broker flag.
struct SpecLimits {
  std::size_t max_payload_bytes = 1 << 20;
  std::size_t max_labels = 32;
  std::size_t max_label_bytes = 256;  // key or value
  std::size_t max_argv = 256;
  std::size_t max_depends_on = 1000;
  std::int32_t max_attempts = 100;
};

// True for a queue name Cohort accepts: [a-z0-9._-]{1,64}.
bool IsValidQueueName(absl::string_view queue);

// Checks one spec on its own (dependencies on existing jobs are the caller's to
// check). INVALID_ARGUMENT naming the field (as `jobs[index].field`) and the rule.
absl::Status ValidateSpec(const cohort::v1::JobSpec& spec, int index, const SpecLimits& limits);

}  // namespace cohort::broker
