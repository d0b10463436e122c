#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/time/time.h"

namespace cohort::log {

// Severity of a line. Lines below the configured level (LogOptions::level) are dropped
// before anything is formatted.
enum class Level { kDebug, kInfo, kWarn, kError };

// How a line is written: `kText` for people (one line, logfmt-style fields), `kJson` for
// log pipelines (one JSON object per line, as Kubernetes' collectors expect).
enum class Format { kText, kJson };

// "debug", "info", "warn", "error".
std::string_view LevelName(Level level);

// Longest field value written, in bytes; a longer one is cut and ends in "…(N bytes)".
inline constexpr std::size_t kMaxFieldValueBytes = 256;
// Longest message written, in bytes (messages are meant to be constant text).
inline constexpr std::size_t kMaxMessageBytes = 1024;

// One key/value of a line: `{"job_id", id}`, `{"attempt", 3}`, `{"after", duration}`.
// Keys are constant snake_case text and must not be "time", "level", "component" or
// "msg" (the envelope's). A key naming a secret or a job's data ("payload", "token",
// "secret", "password", "authorization", "result", "env" or one containing them) has
// its value written as "[redacted]", whoever passes it: logs never carry a payload or
// a token. The value is copied, so a Field may be built from a temporary.
struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v == nullptr ? "" : v) {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false"), is_number(true) {}
  template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Field(std::string_view k, T v) : key(k), value(std::to_string(v)), is_number(true) {}
  Field(std::string_view k, double v);
  // A duration as absl writes it ("1.5s", "250ms"): a string in JSON.
  Field(std::string_view k, absl::Duration v) : key(k), value(absl::FormatDuration(v)) {}

  std::string_view key;
  std::string value;
  // Written bare in JSON (a number or a boolean); otherwise a JSON string.
  bool is_number = false;
};

// The message and fields of one line, already cut, redacted and escaped for `format`:
// the part of a line that does not depend on when or where it is written.
//   text: `executor connected broker=127.0.0.1:7070 note="two words"`
//   json: `"msg":"executor connected","broker":"127.0.0.1:7070"`
// `suppressed` > 0 adds the field suppressed=N (lines the rate limit dropped at this
// call site since the last one written).
std::string RenderBody(Format format, std::string_view message, std::span<const Field> fields,
                       std::int64_t suppressed = 0);

// A whole line, newline included, around a body from RenderBody:
//   text: `2026-12-01T10:00:00.123456Z INFO  executor: <body>\n`
//   json: `{"time":"2026-12-01T10:00:00.123456Z","level":"info","component":"executor",<body>}\n`
// The time is UTC with microseconds (RFC 3339).
void AppendLine(Format format, absl::Time time, Level level, std::string_view component, std::string_view body,
                std::string& out);

}  // namespace cohort::log
