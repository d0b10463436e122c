#pragma once

#include <functional>
#include <initializer_list>
#include <ostream>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/common/log_format.h"

// Structured logs for every Cohort process, written through spdlog (Debian's
// libspdlog-dev): one line per event with a UTC timestamp, a level, the component
// and key/value fields, as text for people or as JSON for log pipelines.
//
//   namespace { const cohort::log::Logger kLog("executor"); }
//   kLog.Info("executor connected", {{"executor_id", id}, {"broker", address}});
//   kLog.Warn("attempt failed", {{"job_id", job.id()}, {"attempt", 2}, {"code", code}});
//
// writes (text)
//   2026-12-01T10:00:00.123456Z INFO  executor: executor connected executor_id=h-1 broker=10.0.0.2:7070
// or (--log-format=json)
//   {"time":"2026-12-01T10:00:00.123456Z","level":"info","component":"executor",
//    "msg":"executor connected","executor_id":"h-1","broker":"10.0.0.2:7070"}
//
// What to log: the events an operator acts on, at info (a peer connected or lost, a
// job's attempt failed and its code, a schedule fired or skipped); warn for what was
// retried or lost, error for what needs a person. Never a job's payload, result or
// environment, nor a token: fields with such keys are written "[redacted]" (see Field).
//
// Rate limit: each call site (file and line of the call) writes at most one line per
// second; later ones in that second are counted and the next line written from that
// site carries `suppressed=N`. A flood of the same warning is therefore one line per
// second, whatever the load. Pick distinct call sites for events that must each be
// seen (they are rare: connects, lifecycle).
//
// Thread-safe: any thread may log; lines are whole and never interleaved. Lines below
// the level are dropped before formatting (cost: one atomic load).
namespace cohort::log {

// The process's logging configuration. Defaults: info, text, stderr.
struct LogOptions {
  Level level = Level::kInfo;
  Format format = Format::kText;
  // Where lines go; null: stderr. Must outlive the configuration (for tests).
  std::ostream* out = nullptr;
  // The time of timestamps and of the rate limit (a manual clock in tests).
  std::function<absl::Time()> now = absl::Now;
  // The rate limit's window per call site.
  absl::Duration rate_window = absl::Seconds(1);
};

// Replaces the configuration, for every Logger at once, and forgets every call site's
// rate limit. Usually once, in main, after the flags are parsed (see log_flags.h).
void Configure(LogOptions options);

// "debug" | "info" | "warn" | "error"; INVALID_ARGUMENT naming `flag` otherwise.
absl::StatusOr<Level> ParseLevel(std::string_view flag, std::string_view text);
// "text" | "json"; INVALID_ARGUMENT naming `flag` otherwise.
absl::StatusOr<Format> ParseFormat(std::string_view flag, std::string_view text);

// Where a log call was made (what std::source_location gives, which clang 14 — the fuzz
// build's compiler — cannot compile from libstdc++ 12). Here() in a default argument
// names the caller's file, line and function, with gcc and clang alike.
struct CallSite {
  const char* file;
  unsigned line;
  const char* function;

  static constexpr CallSite Here(const char* file = __builtin_FILE(), unsigned line = __builtin_LINE(),
                                 const char* function = __builtin_FUNCTION()) {
    return {file, line, function};
  }
};

// A component's handle on the log: cheap, constant, safe to declare at namespace scope
// (it holds only the component's name, which must be a literal or outlive it).
class Logger {
 public:
  explicit constexpr Logger(std::string_view component) : component_(component) {}

  void Debug(std::string_view message, std::initializer_list<Field> fields = {},
             CallSite site = CallSite::Here()) const {
    Log(Level::kDebug, message, fields, site);
  }
  void Info(std::string_view message, std::initializer_list<Field> fields = {},
            CallSite site = CallSite::Here()) const {
    Log(Level::kInfo, message, fields, site);
  }
  void Warn(std::string_view message, std::initializer_list<Field> fields = {},
            CallSite site = CallSite::Here()) const {
    Log(Level::kWarn, message, fields, site);
  }
  void Error(std::string_view message, std::initializer_list<Field> fields = {},
             CallSite site = CallSite::Here()) const {
    Log(Level::kError, message, fields, site);
  }

  void Log(Level level, std::string_view message, std::initializer_list<Field> fields,
           CallSite site) const;
  // False when lines of `level` are dropped: skip building costly fields.
  static bool Enabled(Level level);

  std::string_view component() const { return component_; }

 private:
  std::string_view component_;
};

}  // namespace cohort::log
