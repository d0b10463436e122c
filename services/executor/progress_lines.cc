#include "services/executor/progress_lines.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"

namespace cohort::executor {
namespace {

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
// U+10FFFF. The broker's protobuf would reject anything else in a string field.
bool IsValidUtf8(absl::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    const auto second = static_cast<unsigned char>(s[i + 1]);
    if (second < lo || second > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (b < 0x80 || b > 0xBF) return false;
    }
    i += len;
  }
  return true;
}

}  // namespace

std::optional<ProgressLine> ParseProgressLine(absl::string_view line) {
  absl::ConsumeSuffix(&line, "\r");
  if (line.size() > kMaxProgressLineBytes) return std::nullopt;
  const std::size_t sep = line.find_first_of(" \t");
  absl::string_view number = line.substr(0, sep);
  absl::string_view message = sep == absl::string_view::npos ? absl::string_view() : line.substr(sep + 1);
  double fraction = 0;
  if (number.empty() || !absl::SimpleAtod(number, &fraction) || !std::isfinite(fraction)) return std::nullopt;
  message = absl::StripAsciiWhitespace(message);
  if (!IsValidUtf8(message)) return std::nullopt;
  return ProgressLine{std::clamp(fraction, 0.0, 1.0), std::string(message)};
}

void ProgressLineSplitter::Feed(absl::string_view bytes, absl::FunctionRef<void(ProgressLine)> on_line) {
  while (!bytes.empty()) {
    const std::size_t newline = bytes.find('\n');
    absl::string_view piece = bytes.substr(0, newline);
    if (!overlong_) {
      // partial_ stays within the cap: one byte more is enough to know it is too long.
      const std::size_t room = kMaxProgressLineBytes + 1 - partial_.size();
      partial_.append(piece.data(), std::min(piece.size(), room));
      if (partial_.size() > kMaxProgressLineBytes) {
        overlong_ = true;
        partial_.clear();
      }
    }
    if (newline == absl::string_view::npos) return;
    EndLine(on_line);
    bytes.remove_prefix(newline + 1);
  }
}

void ProgressLineSplitter::Finish(absl::FunctionRef<void(ProgressLine)> on_line) {
  if (!partial_.empty() || overlong_) EndLine(on_line);
}

void ProgressLineSplitter::EndLine(absl::FunctionRef<void(ProgressLine)> on_line) {
  std::optional<ProgressLine> parsed = overlong_ ? std::nullopt : ParseProgressLine(partial_);
  partial_.clear();
  overlong_ = false;
  if (!parsed) {
    ++malformed_;
    return;
  }
  ++accepted_;
  on_line(*std::move(parsed));
}

}  // namespace cohort::executor
