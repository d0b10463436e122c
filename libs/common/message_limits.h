#pragma once

#include <cstddef>

namespace cohort::common {

// The largest gRPC message every Cohort hop carries: cohort-broker's default
// --max-message-bytes, and what cohort-executor's channel to the broker accepts (an
// Assign carries the whole job). The broker refuses to start with a --max-spec-bytes
// whose jobs would not fit in it.
inline constexpr int kMaxMessageBytes = 64 << 20;

// The most kinds one executor may declare in Hello.kinds: the broker refuses a longer
// list with INVALID_ARGUMENT, and cohort-executor never sends one.
inline constexpr int kMaxExecutorKinds = 256;

}  // namespace cohort::common
