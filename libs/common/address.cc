#include "libs/common/address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace cohort::common {
namespace {

constexpr std::size_t kMaxEchoedInput = 80;
constexpr std::size_t kMaxHostnameLength = 253;
constexpr std::size_t kMaxLabelLength = 63;

// The flag's value as it appears in an error message: escaped, and cut short so a
// garbage argument cannot flood a log line.
std::string Quoted(absl::string_view text) {
  if (text.size() > kMaxEchoedInput) {
    return absl::StrCat("\"", absl::CHexEscape(text.substr(0, kMaxEchoedInput)), "...\"");
  }
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

absl::Status Invalid(absl::string_view flag_name, absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(flag_name, " ", Quoted(text), " is invalid: ", why));
}

bool IsIPv4(const std::string& host) {
  in_addr addr;
  return inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

bool IsIPv6(const std::string& host) {
  in6_addr addr;
  return inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

bool IsHostname(absl::string_view host) {
  if (host.empty() || host.size() > kMaxHostnameLength) return false;
  std::size_t label_length = 0;
  char previous = '.';
  for (char c : host) {
    if (c == '.') {
      if (label_length == 0 || previous == '-') return false;
      label_length = 0;
    } else if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-') {
      if (c == '-' && label_length == 0) return false;
      if (++label_length > kMaxLabelLength) return false;
    } else {
      return false;
    }
    previous = c;
  }
  return label_length > 0 && previous != '-';
}

// A name made only of digits and dots is a malformed IPv4 address ("1.2.3",
// "300.1.1.1"), never a hostname: resolvers would read it as a number.
bool LooksNumeric(absl::string_view host) {
  for (char c : host) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '.') return false;
  }
  return true;
}

}  // namespace

std::string HostPort::ToString() const {
  if (kind == Kind::kIPv6) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view flag_name, absl::string_view text,
                                       PortZero port_zero) {
  const absl::string_view usage = port_zero == PortZero::kAllowed
                                      ? "use HOST:PORT with a port in 0..65535"
                                      : "use HOST:PORT with a port in 1..65535";
  HostPort result;
  absl::string_view host;
  absl::string_view port;
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == absl::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Invalid(flag_name, text, usage);
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    result.kind = HostPort::Kind::kIPv6;
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) return Invalid(flag_name, text, usage);
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != absl::string_view::npos) {
      return Invalid(flag_name, text, "write an IPv6 host in brackets, as in [::1]:7070");
    }
  }

  if (port.empty() || port.size() > 5) return Invalid(flag_name, text, usage);
  std::uint32_t value = 0;
  for (char c : port) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return Invalid(flag_name, text, usage);
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (value > 65535 || (value == 0 && port_zero == PortZero::kRejected)) {
    return Invalid(flag_name, text, usage);
  }
  result.port = static_cast<std::uint16_t>(value);

  if (host.empty()) {
    return Invalid(flag_name, text, absl::StrCat("the host is missing: ", usage));
  }
  result.host = std::string(host);
  if (result.kind == HostPort::Kind::kIPv6) {
    if (!IsIPv6(result.host)) {
      return Invalid(flag_name, text,
                     absl::StrCat(Quoted(host), " is not an IPv6 address (zone ids are not supported)"));
    }
    return result;
  }
  if (LooksNumeric(host)) {
    if (!IsIPv4(result.host)) {
      return Invalid(flag_name, text, absl::StrCat(Quoted(host), " is not an IPv4 address"));
    }
    result.kind = HostPort::Kind::kIPv4;
    return result;
  }
  if (!IsHostname(host)) {
    return Invalid(flag_name, text,
                   absl::StrCat(Quoted(host),
                                " is not an IPv4 address, a bracketed IPv6 address or a hostname "
                                "(letters, digits, '-' and '.')"));
  }
  result.kind = HostPort::Kind::kHostname;
  return result;
}

}  // namespace cohort::common

namespace cohort::common {

absl::Status ProbeListen(absl::string_view what, const HostPort& address) {
  if (address.port == 0) return absl::OkStatus();
  const std::string prefix = absl::StrCat("cannot serve ", what, " on ", address.ToString(), ": ");
  addrinfo hints{};
  hints.ai_family = address.kind == HostPort::Kind::kIPv6   ? AF_INET6
                    : address.kind == HostPort::Kind::kIPv4 ? AF_INET
                                                            : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | (address.kind == HostPort::Kind::kHostname ? 0 : AI_NUMERICHOST);
  addrinfo* found = nullptr;
  const std::string port = std::to_string(address.port);
  if (const int rc = getaddrinfo(address.host.c_str(), port.c_str(), &hints, &found); rc != 0 || !found) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "the host does not resolve (", gai_strerror(rc), ")"));
  }
  int error = 0;
  const int fd = socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, found->ai_protocol);
  if (fd < 0) {
    error = errno;
  } else {
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, found->ai_addr, found->ai_addrlen) != 0 || listen(fd, 1) != 0) error = errno;
    close(fd);
  }
  freeaddrinfo(found);
  switch (error) {
    case 0:
      return absl::OkStatus();
    case EADDRINUSE:
      return absl::UnavailableError(absl::StrCat(prefix, "the address is already in use"));
    case EADDRNOTAVAIL:
      return absl::InvalidArgumentError(absl::StrCat(prefix, "the host is not an address of this machine"));
    case EACCES:
      return absl::PermissionDeniedError(absl::StrCat(prefix, "permission denied (ports below 1024 need privileges)"));
    case EAFNOSUPPORT:
      return absl::InvalidArgumentError(absl::StrCat(prefix, "this machine has no IPv6; use an IPv4 address"));
    default:
      return absl::InternalError(absl::StrCat(prefix, std::strerror(error)));
  }
}

}  // namespace cohort::common
