#include "libs/common/log_format.h"

#include <array>
#include <cmath>
#include <cstdio>

#include "absl/strings/ascii.h"

namespace cohort::log {
namespace {

constexpr std::array<std::string_view, 7> kSecretKeys = {"payload", "token",  "secret", "password",
                                                         "authorization", "result", "env"};

bool IsSecretKey(std::string_view key) {
  std::string lower(key);
  for (char& c : lower) c = absl::ascii_tolower(c);
  for (std::string_view secret : kSecretKeys) {
    if (lower.find(secret) != std::string::npos) return true;
  }
  return false;
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not one.
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  std::size_t n = 0;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) n = 3;
  else if (c >= 0xF0 && c <= 0xF4) n = 4;
  else return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  // Overlong three- and four-byte forms, surrogates and code points past U+10FFFF.
  if (c == 0xE0 && byte(i + 1) < 0xA0) return 0;
  if (c == 0xED && byte(i + 1) >= 0xA0) return 0;
  if (c == 0xF0 && byte(i + 1) < 0x90) return 0;
  if (c == 0xF4 && byte(i + 1) >= 0x90) return 0;
  return n;
}

// At most `max` bytes of `s`, never cutting a UTF-8 sequence, then "…(N bytes)".
std::string Bounded(std::string_view s, std::size_t max) {
  if (s.size() <= max) return std::string(s);
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  std::string out(s.substr(0, cut));
  out += "\xE2\x80\xA6(" + std::to_string(s.size()) + " bytes)";
  return out;
}

// JSON string contents: quotes, backslashes and control characters escaped, invalid
// UTF-8 replaced by U+FFFD (collectors reject a line that is not UTF-8).
void AppendJsonEscaped(std::string_view s, std::string& out) {
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else {
      const std::size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
        continue;
      }
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    ++i;
  }
}

void AppendJsonString(std::string_view s, std::string& out) {
  out.push_back('"');
  AppendJsonEscaped(s, out);
  out.push_back('"');
}

// A text value: bare when it is non-empty and holds no space, quote, '=' or control
// byte; otherwise in double quotes with the same escapes as JSON.
void AppendTextValue(std::string_view s, std::string& out) {
  bool bare = !s.empty();
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7F || c == '"' || c == '=' || c == '\\') {
      bare = false;
      break;
    }
  }
  if (bare) {
    // Still replace invalid UTF-8, as in JSON.
    AppendJsonEscaped(s, out);
    return;
  }
  AppendJsonString(s, out);
}

// Text keys and JSON keys alike: [A-Za-z0-9_.-], anything else becomes '_'.
std::string SafeKey(std::string_view key) {
  std::string k(key.empty() ? "_" : key);
  for (char& c : k) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != '-') c = '_';
  }
  return k;
}

}  // namespace

Field::Field(std::string_view k, double v) : key(k), is_number(std::isfinite(v)) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  value = buf;
}

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

std::string RenderBody(Format format, std::string_view message, std::span<const Field> fields,
                       std::int64_t suppressed) {
  std::string out;
  const std::string msg = Bounded(message, kMaxMessageBytes);
  if (format == Format::kJson) {
    out += "\"msg\":";
    AppendJsonString(msg, out);
  } else {
    // The message as it is, but on one line.
    std::string one_line;
    AppendJsonEscaped(msg, one_line);
    out += one_line;
  }
  auto append = [&](std::string_view key, std::string_view value, bool is_number) {
    const std::string k = SafeKey(key);
    if (format == Format::kJson) {
      out += ',';
      AppendJsonString(k, out);
      out += ':';
      if (is_number) {
        out += value;
      } else {
        AppendJsonString(value, out);
      }
    } else {
      out += ' ';
      out += k;
      out += '=';
      AppendTextValue(value, out);
    }
  };
  for (const Field& f : fields) {
    if (IsSecretKey(f.key)) {
      append(f.key, "[redacted]", false);
    } else {
      append(f.key, Bounded(f.value, kMaxFieldValueBytes), f.is_number);
    }
  }
  if (suppressed > 0) append("suppressed", std::to_string(suppressed), true);
  return out;
}

void AppendLine(Format format, absl::Time time, Level level, std::string_view component, std::string_view body,
                std::string& out) {
  const std::string when = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone());
  if (format == Format::kJson) {
    for (std::string_view part : {std::string_view("{\"time\":\""), std::string_view(when),
                                  std::string_view("\",\"level\":\""), LevelName(level),
                                  std::string_view("\",\"component\":")}) {
      out += part;
    }
    AppendJsonString(component, out);
    out += ',';
    out += body;
    out += "}\n";
    return;
  }
  std::string upper(LevelName(level));
  for (char& c : upper) c = absl::ascii_toupper(c);
  upper.resize(5, ' ');
  for (std::string_view part : {std::string_view(when), std::string_view(" "), std::string_view(upper),
                                std::string_view(" "), component, std::string_view(": "), body,
                                std::string_view("\n")}) {
    out += part;
  }
}

}  // namespace cohort::log
