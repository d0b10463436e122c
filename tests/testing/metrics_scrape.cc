#include "tests/testing/metrics_scrape.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace cohort::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kScrapeTimeout = std::chrono::seconds(10);

// Waits until `fd` has one of `events`, or the deadline passes (false).
bool AwaitFd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p = {fd, events, 0};
    const int ready = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), INT_MAX)));
    if (ready > 0) return true;
    if (ready < 0 && errno != EINTR) return false;
  }
}

// A non-blocking socket connected to host:port, or the reason it could not be.
absl::StatusOr<int> Connect(const std::string& host, const std::string& port,
                            const std::string& host_port, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  const int gai = getaddrinfo(host.c_str(), port.c_str(), &hints, &addresses);
  if (gai != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve ", host_port, ": ", gai_strerror(gai)));
  }
  absl::Cleanup free_addresses = [addresses] { freeaddrinfo(addresses); };
  std::string last_error = "no address";
  for (const addrinfo* a = addresses; a != nullptr; a = a->ai_next) {
    const int fd =
        socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_error = strerror(errno);
      continue;
    }
    int error = 0;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      error = errno;
      if (error == EINPROGRESS) {
        if (!AwaitFd(fd, POLLOUT, deadline)) {
          close(fd);
          return absl::DeadlineExceededError(
              absl::StrCat("connecting to ", host_port, " timed out"));
        }
        socklen_t size = sizeof error;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
      }
    }
    if (error == 0) return fd;
    last_error = strerror(error);
    close(fd);
  }
  return absl::UnavailableError(absl::StrCat("cannot connect to ", host_port, ": ", last_error));
}

// Decodes a chunked transfer-encoded body.
absl::StatusOr<std::string> Dechunk(absl::string_view chunked) {
  std::string body;
  for (;;) {
    const size_t eol = chunked.find("\r\n");
    if (eol == absl::string_view::npos) return absl::InternalError("truncated chunked body");
    absl::string_view size_text = chunked.substr(0, eol);
    size_text = size_text.substr(0, size_text.find(';'));  // chunk extensions
    uint64_t size = 0;
    if (!absl::SimpleHexAtoi(absl::StripAsciiWhitespace(size_text), &size)) {
      return absl::InternalError("malformed chunk size");
    }
    chunked.remove_prefix(eol + 2);
    if (size == 0) return body;
    if (chunked.size() < size + 2) return absl::InternalError("truncated chunked body");
    body.append(chunked.data(), size);
    chunked.remove_prefix(size + 2);
  }
}

// The body of a complete HTTP response, if its status is 200.
absl::StatusOr<std::string> ParseResponse(absl::string_view response,
                                          const std::string& host_port) {
  const size_t header_end = response.find("\r\n\r\n");
  if (!absl::StartsWith(response, "HTTP/") || header_end == absl::string_view::npos) {
    return absl::InternalError(absl::StrCat(host_port, " did not answer HTTP"));
  }
  const std::vector<absl::string_view> header_lines =
      absl::StrSplit(response.substr(0, header_end), "\r\n");
  const std::vector<absl::string_view> status =
      absl::StrSplit(header_lines[0], absl::MaxSplits(' ', 1));
  if (status.size() < 2 || !absl::StartsWith(status[1], "200")) {
    return absl::UnavailableError(
        absl::StrCat("GET http://", host_port, "/metrics: ", header_lines[0]));
  }
  absl::string_view body = response.substr(header_end + 4);
  for (size_t i = 1; i < header_lines.size(); ++i) {
    const std::pair<absl::string_view, absl::string_view> header =
        absl::StrSplit(header_lines[i], absl::MaxSplits(':', 1));
    const absl::string_view value = absl::StripAsciiWhitespace(header.second);
    if (absl::EqualsIgnoreCase(header.first, "Transfer-Encoding") &&
        absl::StrContains(absl::AsciiStrToLower(value), "chunked")) {
      return Dechunk(body);
    }
    size_t length = 0;
    if (absl::EqualsIgnoreCase(header.first, "Content-Length") &&
        absl::SimpleAtoi(value, &length)) {
      if (body.size() < length) return absl::InternalError("truncated body");
      body = body.substr(0, length);
    }
  }
  return std::string(body);
}

// A series name and its labels (raw, escapes kept), sorted by label name.
struct Series {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  bool operator==(const Series&) const = default;
};

// Parses `name` or `name{a="x",...}` from the front of `*text`, leaving the rest.
std::optional<Series> ParseSeries(absl::string_view* text) {
  Series series;
  const size_t name_end = std::min(text->find_first_of("{ \t"), text->size());
  series.name = std::string(text->substr(0, name_end));
  text->remove_prefix(name_end);
  if (series.name.empty()) return std::nullopt;
  if (!absl::ConsumePrefix(text, "{")) return series;
  for (;;) {
    *text = absl::StripLeadingAsciiWhitespace(*text);
    if (absl::ConsumePrefix(text, "}")) break;
    const size_t eq = text->find('=');
    if (eq == absl::string_view::npos || text->substr(eq + 1, 1) != "\"") return std::nullopt;
    std::string label(absl::StripAsciiWhitespace(text->substr(0, eq)));
    text->remove_prefix(eq + 2);
    size_t close = 0;
    while (close < text->size() && (*text)[close] != '"') close += (*text)[close] == '\\' ? 2 : 1;
    if (close >= text->size()) return std::nullopt;
    series.labels.emplace_back(std::move(label), std::string(text->substr(0, close)));
    text->remove_prefix(close + 1);
    *text = absl::StripLeadingAsciiWhitespace(*text);
    if (!absl::ConsumePrefix(text, ",") && !absl::StartsWith(*text, "}")) return std::nullopt;
  }
  std::sort(series.labels.begin(), series.labels.end());
  return series;
}

}  // namespace

absl::StatusOr<std::string> ScrapeMetrics(std::string host_port) {
  const Clock::time_point deadline = Clock::now() + kScrapeTimeout;
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == host_port.size()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", host_port, "\" is not HOST:PORT"));
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  absl::StatusOr<int> fd = Connect(host, host_port.substr(colon + 1), host_port, deadline);
  if (!fd.ok()) return fd.status();
  absl::Cleanup close_fd = [fd = *fd] { close(fd); };

  const std::string request =
      absl::StrCat("GET /metrics HTTP/1.0\r\nHost: ", host_port, "\r\nConnection: close\r\n\r\n");
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = send(*fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return absl::UnavailableError(absl::StrCat("sending to ", host_port, ": ", strerror(errno)));
    } else if (n < 0 && errno == EAGAIN && !AwaitFd(*fd, POLLOUT, deadline)) {
      return absl::DeadlineExceededError(absl::StrCat("sending to ", host_port, " timed out"));
    }
  }
  std::string response;
  char buf[16384];
  for (;;) {
    const ssize_t n = recv(*fd, buf, sizeof buf, 0);
    if (n > 0) {
      response.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN) {
      if (!AwaitFd(*fd, POLLIN, deadline)) {
        return absl::DeadlineExceededError(
            absl::StrCat("GET http://", host_port, "/metrics timed out after 10s"));
      }
    } else if (errno != EINTR) {
      return absl::UnavailableError(
          absl::StrCat("reading from ", host_port, ": ", strerror(errno)));
    }
  }
  return ParseResponse(response, host_port);
}

std::optional<double> MetricValue(const std::string& body, std::string_view series) {
  absl::string_view query(series.data(), series.size());
  const std::optional<Series> wanted = ParseSeries(&query);
  if (!wanted.has_value() || !absl::StripAsciiWhitespace(query).empty()) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    line = absl::StripTrailingAsciiWhitespace(line);
    if (line.empty() || line.front() == '#' || !absl::StartsWith(line, wanted->name)) continue;
    const std::optional<Series> found = ParseSeries(&line);
    if (!found.has_value() || !(*found == *wanted)) continue;
    line = absl::StripLeadingAsciiWhitespace(line);
    const absl::string_view value = line.substr(0, line.find_first_of(" \t"));
    double result = 0;
    if (absl::SimpleAtod(value, &result)) return result;
  }
  return std::nullopt;
}

}  // namespace cohort::testing
