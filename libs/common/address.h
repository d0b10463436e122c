#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cohort::common {

// A validated network address from a `HOST:PORT` flag such as `--listen`.
//
// Guarantees: `host` is a dotted-quad IPv4 address, an IPv6 address (stored without
// brackets), or an RFC 1123 hostname (letters, digits and '-', labels of 1..63
// characters, at most 253 in all); `port` is in 0..65535, where 0 means "pick a free
// port" for a listener. Nothing is resolved: a hostname is only checked for syntax.
struct HostPort {
  enum class Kind { kIPv4, kIPv6, kHostname };

  std::string host;
  std::uint16_t port = 0;
  Kind kind = Kind::kIPv4;

  // `host:port`, with an IPv6 host in brackets (`[::1]:7070`); ParseHostPort accepts
  // what this returns.
  std::string ToString() const;

  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// Whether a port of 0 is acceptable: listeners take 0 to mean "any free port", a
// client's target (`--broker`) needs a real one.
enum class PortZero { kAllowed, kRejected };

// Parses `text` as `HOST:PORT`: `127.0.0.1:7070`, `[::1]:0`, `broker.cohort:7070`.
// Rejects an empty host, an IPv6 address without brackets, a port that is not 1..5
// decimal digits or exceeds 65535, and anything else malformed, with an
// INVALID_ARGUMENT status that names the flag and says what is allowed:
//   --listen "abc" is invalid: use HOST:PORT with a port in 0..65535
absl::StatusOr<HostPort> ParseHostPort(absl::string_view flag_name, absl::string_view text,
                                       PortZero port_zero = PortZero::kAllowed);

}  // namespace cohort::common

namespace cohort::common {

// Whether a server could listen on `address` now: binds and listens a throwaway TCP
// socket as a server does (SO_REUSEADDR, so TIME_WAIT leftovers do not count, and never
// SO_REUSEPORT, so a port another process listens on does), then closes it. A hostname
// is resolved and its first address probed; port 0 always succeeds. Errors name
// `what` (e.g. "gRPC") and the address and say what to change, on one line:
//   UNAVAILABLE        cannot serve gRPC on 127.0.0.1:7070: the address is already in use
//   INVALID_ARGUMENT   ... the host is not an address of this machine
//   PERMISSION_DENIED  ... permission denied (ports below 1024 need privileges)
// The answer can be stale by the time the caller binds: use it to explain a failed
// bind, or to fail early, never as a reservation.
absl::Status ProbeListen(absl::string_view what, const HostPort& address);

}  // namespace cohort::common
