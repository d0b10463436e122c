#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "protos/cohort/v1/broker.pb.h"

namespace cohort::cli {

// --output: aligned tables for people, protobuf JSON for scripts.
enum class OutputFormat { kTable, kJson };
bool AbslParseFlag(absl::string_view text, OutputFormat* format, std::string* error);
std::string AbslUnparseFlag(OutputFormat format);

// Writes `message` to stdout as protobuf JSON (field names in lowerCamelCase, enums by
// name, scalar, repeated and map fields present even when empty), one object on one
// line, and flushes, so a stream of messages is one parseable object per line. A
// bytes field (a result, a payload) that is valid UTF-8 is printed as that text, with
// "<field>Encoding": "text" beside it; other bytes stay base64, with
// "<field>Encoding": "base64".
void PrintJson(const google::protobuf::Message& message);

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or values past
// U+10FFFF).
bool IsUtf8(absl::string_view s);

// Writes `text` to stdout as it is and flushes.
void PrintRaw(absl::string_view text);

// Rows of text cells printed in columns, each as wide as its widest cell (in UTF-8
// characters) plus two spaces; the last column is not padded. Rendering is
// deterministic and holds everything in memory: for listings of bounded size (one page).
class Table {
 public:
  // With an empty header the table has no heading line (key/value listings).
  explicit Table(std::vector<std::string> header = {});
  void AddRow(std::vector<std::string> cells);
  std::string Render() const;
  // Render() to stdout, flushed.
  void Print() const;

 private:
  std::vector<std::vector<std::string>> rows_;
  bool has_header_;
};

// "QUEUED", "SUCCEEDED": a state without its enum prefix.
std::string StateName(cohort::v1::JobState state);

// Parses "queued", "QUEUED" or "JOB_STATE_QUEUED"; false for anything else.
bool ParseJobState(absl::string_view text, cohort::v1::JobState* state);

// A short human duration: "850ms", "12s", "5m12s", "3h05m", "2d03h".
std::string FormatAge(absl::Duration d);

// RFC 3339 in UTC with milliseconds, or "-" when unset.
std::string FormatTime(const google::protobuf::Timestamp& t, bool has);
// "5s ago" from now, or "-" when unset.
std::string FormatAgo(const google::protobuf::Timestamp& t, bool has, absl::Time now);

// Bytes made fit for one table cell: control characters escaped, at most `max`
// characters, "..." marking a cut.
std::string Excerpt(absl::string_view bytes, std::size_t max = 40);

// A waiting RPC's outcome for a table cell: the result's excerpt (without a final
// newline), or "code: message".
std::string OutcomeText(const cohort::v1::JobOutcome& outcome);

}  // namespace cohort::cli
