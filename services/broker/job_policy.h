#pragma once

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "protos/cohort/v1/job.pb.h"

namespace cohort::broker {

// What a job's spec says about its attempts, as the engine applies it. Pure functions.

// At least one attempt, whatever the spec says.
std::int32_t MaxAttempts(const cohort::v1::JobSpec& spec);

// The attempts of the current budget used so far: attempt - attempt_base (a RetryJob
// starts a new budget at the attempt it found, job.proto). Never negative.
std::int32_t AttemptsUsed(const cohort::v1::Job& job);

// True while the current budget allows another attempt after the current one:
// AttemptsUsed(job) < MaxAttempts(job.spec()).
bool HasAttemptsLeft(const cohort::v1::Job& job);

// A duration from a stored spec, made safe to add to a time: within
// [0, common::kMaxWireDuration]. Submit validates new specs; this also covers specs
// stored before it did, so a huge value means "far away", never an overflow that
// fires now.
absl::Duration Bounded(absl::Duration d);

// Delay before retrying after failed attempt n (1-based, counted within the current
// budget: pass AttemptsUsed): initial * multiplier^(n-1),
// capped, with +-jitter. Defaults: 1 s, x2, at most 5 min, no jitter. Always Bounded.
absl::Duration Backoff(const cohort::v1::JobSpec& spec, std::int32_t attempt);

// Failures that another attempt cannot fix (not_allowed, unknown_kind, spawn_failed):
// the job fails at once, whatever its attempts left (job.proto lists them).
bool IsPermanent(const cohort::v1::Error& e);

cohort::v1::Error MakeError(std::string code, std::string message);

}  // namespace cohort::broker
