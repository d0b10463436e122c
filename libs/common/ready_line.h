#pragma once

#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "libs/common/address.h"

namespace cohort::common {

// The line a service prints once it is ready to serve, with the addresses it actually
// bound (never port 0):
//
//   listening grpc=127.0.0.1:7070 metrics=127.0.0.1:9470
//
// Tests and scripts start a service with port 0 and wait for this line, so they never
// race for ports. The format is a contract: see design.md, "Binaries, targets and flags".
std::string ReadyLine(const HostPort& grpc, const HostPort& metrics);

// Writes ReadyLine() and a newline to `out` and flushes it, so a reader of a pipe sees
// the line at once. Returns UNAVAILABLE if the write or the flush fails (the reader
// has gone away, for instance); the service may well carry on serving.
absl::Status WriteReadyLine(std::FILE* out, const HostPort& grpc, const HostPort& metrics);

// WriteReadyLine to stdout. Call it once, from the thread that finished start-up.
absl::Status PrintReadyLine(const HostPort& grpc, const HostPort& metrics);

}  // namespace cohort::common
