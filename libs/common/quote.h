#pragma once

#include <cstddef>
#include <iterator>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace cohort::common {

// How much of one piece of caller text an error message may quote.
inline constexpr std::size_t kQuotePrefixBytes = 64;
// How many entries of a caller's list an error message may name.
inline constexpr std::size_t kQuoteListEntries = 3;

// Caller text made safe to put in a status message: at most `max_bytes` of it, with
// non-printable bytes C-escaped, in double quotes, and "…(N bytes)" after the quote
// when it was cut. The result is at most 4 * max_bytes + 40 bytes whatever the input,
// so a message built from a few of these stays far under gRPC's 8 KiB metadata limit.
//
//   QuoteBounded("abc") == "\"abc\""
//   QuoteBounded(std::string(1'000'000, 'x')) == "\"xx…x\"…(1000000 bytes)"  // 64 x
std::string QuoteBounded(absl::string_view text, std::size_t max_bytes = kQuotePrefixBytes);

// The first `max_entries` of `items` (strings), each QuoteBounded, joined by ", ",
// then " and N more" when some were left out: `"a", "b", "c" and 97 more`.
template <typename Range>
std::string QuoteListBounded(const Range& items, std::size_t max_entries = kQuoteListEntries) {
  std::string out;
  std::size_t n = 0;
  for (const auto& item : items) {
    if (n < max_entries) absl::StrAppend(&out, n == 0 ? "" : ", ", QuoteBounded(item));
    ++n;
  }
  if (n > max_entries) absl::StrAppend(&out, " and ", n - max_entries, " more");
  return out;
}

}  // namespace cohort::common
