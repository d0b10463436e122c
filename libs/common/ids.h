#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace cohort::common {

// Job ids are k-sortable: 96 bits printed as 24 lowercase hex digits,
//
//   tttttttttttt ssss nnnnnnnn
//   48-bit Unix time in ms | 16-bit sequence | 32-bit node
//
// so comparing two ids as strings compares their creation times, and ids from one
// generator compare in the order they were made. The node bits are random per
// generator (or given), which keeps ids from different brokers apart.
inline constexpr std::size_t kJobIdLength = 24;

// The fields of a job id.
struct JobIdParts {
  absl::Time created;          // millisecond precision; may run ahead of the clock, see below
  std::uint16_t sequence = 0;  // order within that millisecond
  std::uint32_t node = 0;      // the generator's node bits
};

// Makes job ids that are unique and strictly increasing for this generator, even when
// the wall clock steps backwards (the generator keeps using its last timestamp until
// the clock passes it) and even beyond 65,536 ids in one millisecond (the timestamp
// then runs ahead of the clock by a millisecond per 65,536 ids, and the clock catches
// up later). Uniqueness across generators rests on distinct node bits.
//
// Thread-safe and lock-free: Next() is one compare-and-swap on a 64-bit word.
class JobIdGenerator {
 public:
  // Returns the current wall-clock time; called on every Next(), from any thread.
  using WallClock = std::function<absl::Time()>;

  // Random node bits and absl::Now().
  JobIdGenerator();
  // Given node bits and clock (tests, or a node id derived from the pod name).
  JobIdGenerator(std::uint32_t node, WallClock clock);

  JobIdGenerator(const JobIdGenerator&) = delete;
  JobIdGenerator& operator=(const JobIdGenerator&) = delete;

  // A new id, greater than every id this generator returned before.
  std::string Next();

  std::uint32_t node() const { return node_; }

 private:
  const std::uint32_t node_;
  const WallClock clock_;
  // (milliseconds << 16 | sequence) of the last id handed out.
  std::atomic<std::uint64_t> last_{0};
};

// OK when `id` is a well-formed job id (exactly 24 characters in [0-9a-f]); otherwise
// INVALID_ARGUMENT naming the rule: job id "X" is invalid: use 24 lowercase hex digits.
// For ids received over the wire: check before using one as a key.
absl::Status ValidateJobId(absl::string_view id);

// The fields of a well-formed id, or ValidateJobId's error.
absl::StatusOr<JobIdParts> ParseJobId(absl::string_view id);

}  // namespace cohort::common
