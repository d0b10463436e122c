// Linked into every Cohort binary (not into tests): turns off absl::Mutex's deadlock
// detection before main.
//
// Debian builds Abseil without NDEBUG, and Abseil then checks every Mutex::Lock for
// deadlock cycles: each lock (gRPC takes several per call, on every thread) registers
// in a process-wide lock graph behind one global spin lock. Abseil's release builds
// skip this; so do Cohort's binaries. Tests keep the checks (they do not link this).
// Profiled on a broker round trip (bench/peers' round trip workload), absl's mutex and
// lock-graph code was 4.3% of the broker's and executor's CPU samples.

#include "absl/synchronization/mutex.h"

namespace {

const bool kDeadlockDetectionOff = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

}  // namespace
