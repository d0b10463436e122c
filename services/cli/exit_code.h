#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"

namespace cohort::cli {

// cohortctl's exit codes, the contract scripts rely on (printed by `cohortctl --help`
// and listed in README.md). Every non-zero exit comes with one line on stderr,
// "cohortctl: <reason>".
enum class ExitCode : int {
  kOk = 0,
  // A job ended FAILED or CANCELLED where the command "raises" (gather without
  // --return-exceptions, wait-for, submit --wait, as-completed), or a wait timed out.
  kJobFailed = 1,
  // Bad command line: unknown command or flag, malformed value, unreadable @file.
  kUsage = 2,
  // The server answered with an error (INVALID_ARGUMENT, NOT_FOUND, ...).
  kRejected = 3,
  // The server could not be reached, or went away, or did not answer in time.
  kUnreachable = 4,
};

// Prints "cohortctl: <message>" on stderr and returns `code`.
ExitCode Fail(ExitCode code, absl::string_view message);

// Reports a failure that happened on this side of the wire: INVALID_ARGUMENT (and any
// code other than those below) is a usage error (2); UNAVAILABLE and DEADLINE_EXCEEDED
// mean the server could not be reached (4). Prints the status message.
ExitCode FailLocal(const absl::Status& status);

// Reports a failed RPC to `service` ("broker", "scheduler") at `address`:
// UNAVAILABLE, and DEADLINE_EXCEEDED of a call that is not a wait, are exit code 4;
// every other code is 3, printed as "cohortctl: <CODE>: <message>". Commands that
// wait handle ABORTED and DEADLINE_EXCEEDED themselves (exit code 1) before calling
// this.
ExitCode FailRpc(const grpc::Status& status, absl::string_view service, absl::string_view address);

}  // namespace cohort::cli
