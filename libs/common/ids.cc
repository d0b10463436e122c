#include "libs/common/ids.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace cohort::common {
namespace {

constexpr std::uint64_t kMaxMillis = (std::uint64_t{1} << 48) - 1;
constexpr std::size_t kMaxEchoedInput = 64;
constexpr char kHexDigits[] = "0123456789abcdef";

std::uint32_t RandomNode() {
  absl::BitGen gen;
  return absl::Uniform<std::uint32_t>(gen);
}

std::uint64_t ToMillis(absl::Time t) {
  const std::int64_t ms = absl::ToUnixMillis(t);
  if (ms < 0) return 0;
  return std::min(static_cast<std::uint64_t>(ms), kMaxMillis);
}

void PutHex(std::uint64_t value, int digits, char* out) {
  for (int i = digits - 1; i >= 0; --i) {
    out[i] = kHexDigits[value & 0xf];
    value >>= 4;
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

JobIdGenerator::JobIdGenerator() : JobIdGenerator(RandomNode(), [] { return absl::Now(); }) {}

JobIdGenerator::JobIdGenerator(std::uint32_t node, WallClock clock)
    : node_(node), clock_(std::move(clock)) {}

std::string JobIdGenerator::Next() {
  // The state is (ms << 16 | sequence): "last + 1" bumps the sequence and carries into
  // the timestamp when a millisecond's 65,536 sequence numbers are used up, and taking
  // the max with the clock never moves backwards.
  const std::uint64_t now = ToMillis(clock_()) << 16;
  std::uint64_t last = last_.load(std::memory_order_relaxed);
  std::uint64_t next;
  do {
    next = std::max(now, last + 1);
  } while (!last_.compare_exchange_weak(last, next, std::memory_order_relaxed));

  std::string id(kJobIdLength, '0');
  PutHex(next, 16, id.data());  // 12 digits of milliseconds, 4 of sequence
  PutHex(node_, 8, id.data() + 16);
  return id;
}

absl::Status ValidateJobId(absl::string_view id) {
  bool ok = id.size() == kJobIdLength;
  for (std::size_t i = 0; ok && i < id.size(); ++i) ok = HexValue(id[i]) >= 0;
  if (ok) return absl::OkStatus();
  const absl::string_view shown = id.substr(0, kMaxEchoedInput);
  return absl::InvalidArgumentError(absl::StrCat("job id \"", absl::CHexEscape(shown),
                                                 id.size() > kMaxEchoedInput ? "..." : "",
                                                 "\" is invalid: use 24 lowercase hex digits"));
}

absl::StatusOr<JobIdParts> ParseJobId(absl::string_view id) {
  if (absl::Status status = ValidateJobId(id); !status.ok()) return status;
  std::uint64_t high = 0;
  for (std::size_t i = 0; i < 16; ++i) high = high << 4 | static_cast<std::uint64_t>(HexValue(id[i]));
  std::uint32_t node = 0;
  for (std::size_t i = 16; i < kJobIdLength; ++i) node = node << 4 | static_cast<std::uint32_t>(HexValue(id[i]));
  JobIdParts parts;
  parts.created = absl::FromUnixMillis(static_cast<std::int64_t>(high >> 16));
  parts.sequence = static_cast<std::uint16_t>(high & 0xffff);
  parts.node = node;
  return parts;
}

}  // namespace cohort::common
