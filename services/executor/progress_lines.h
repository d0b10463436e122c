#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"

namespace cohort::executor {

// The progress protocol of `exec` children.
//
// The child inherits the write end of a pipe as fd kProgressFd, and the variable
// kProgressFdEnv holds that number (it is set even when the environment is not
// inherited). The child writes one line per report:
//
//   <fraction> [<message>]\n        e.g.  0.5 half way
//
// `fraction` is a decimal number (strtod syntax, e.g. 0.25, 1, 5e-1); values outside
// [0, 1] are clamped. The message is the rest of the line after one or more spaces or
// tabs, with surrounding whitespace removed; it must be UTF-8. A line that is empty,
// does not start with a finite number, has invalid UTF-8, or is longer than
// kMaxProgressLineBytes (newline excluded) is malformed: it is ignored and counted.
// A shell script reports with `echo "0.5 half way" >&"$COHORT_PROGRESS_FD"`.
//
// Reports are best effort: only the latest one matters, and a report that a newer one
// replaces before it reaches the broker is never sent.
inline constexpr int kProgressFd = 3;
inline constexpr char kProgressFdEnv[] = "COHORT_PROGRESS_FD";
inline constexpr std::size_t kMaxProgressLineBytes = 4096;

// One well-formed report.
struct ProgressLine {
  double fraction = 0;  // in [0, 1]
  std::string message;

  friend bool operator==(const ProgressLine&, const ProgressLine&) = default;
};

// Parses one line, without its '\n' (a trailing '\r' is dropped). nullopt if it is
// malformed (see above).
std::optional<ProgressLine> ParseProgressLine(absl::string_view line);

// Cuts a byte stream into progress lines. Keeps at most kMaxProgressLineBytes of an
// unfinished line: the rest of an overlong line is skipped up to its newline, and the
// line counts as malformed. Not thread-safe.
class ProgressLineSplitter {
 public:
  // Calls on_line for each well-formed line completed by `bytes`, in order.
  void Feed(absl::string_view bytes, absl::FunctionRef<void(ProgressLine)> on_line);
  // The stream ended: a last line without its newline is a line too.
  void Finish(absl::FunctionRef<void(ProgressLine)> on_line);

  std::int64_t accepted() const { return accepted_; }
  std::int64_t malformed() const { return malformed_; }

 private:
  void EndLine(absl::FunctionRef<void(ProgressLine)> on_line);

  std::string partial_;
  bool overlong_ = false;  // the current line passed the cap: skip to its end
  std::int64_t accepted_ = 0;
  std::int64_t malformed_ = 0;
};

}  // namespace cohort::executor
